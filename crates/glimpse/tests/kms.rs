//! The key manager (Huawei KMS shape) end to end: the key life cycle and its state codes,
//! validation errors in KMS's error shape, isolation between projects, the master key file,
//! key material never stored in the clear, and the `glimpse kms` command over HTTP.

mod common;

use common::TestCloud;
use common::ims::{create_key, kms};
use glimpse::kms_cli::{self, CloudArgs, KmsArgs, KmsCommand};
use serde_json::{Value, json};

#[tokio::test]
async fn key_life_cycle_and_errors() {
    let tc = TestCloud::start().await;
    let (pid, tok) = tc.user_in_new_project("member", "region-one").await;
    let (s, v) = kms(
        &tc.http,
        &tc.base,
        &tok,
        &pid,
        "create-key",
        json!({"key_alias": "disk-key", "key_description": "for disks"}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let id = v["key_info"]["key_id"].as_str().unwrap().to_string();
    assert_eq!(id.len(), 36);
    assert_eq!(v["key_info"]["domain_id"], pid.as_str());

    let (s, v) = kms(
        &tc.http,
        &tc.base,
        &tok,
        &pid,
        "describe-key",
        json!({"key_id": id}),
    )
    .await;
    assert_eq!(s, 200);
    let k = &v["key_info"];
    assert_eq!(k["key_alias"], "disk-key");
    assert_eq!(k["key_description"], "for disks");
    assert_eq!(k["key_state"], "2");
    assert_eq!(k["realm"], "region-one");
    assert!(k.get("material").is_none() && !v.to_string().contains("material"));

    // Same alias twice: refused. Bad alias, bad id, bad days, wrong state.
    let (s, v) = kms(
        &tc.http,
        &tc.base,
        &tok,
        &pid,
        "create-key",
        json!({"key_alias": "disk-key"}),
    )
    .await;
    assert_eq!(
        (s, v["error"]["error_code"].as_str()),
        (400, Some("KMS.0208")),
        "{v}"
    );
    for alias in ["", "has space", "x/default"] {
        let (s, v) = kms(
            &tc.http,
            &tc.base,
            &tok,
            &pid,
            "create-key",
            json!({"key_alias": alias}),
        )
        .await;
        assert_eq!(
            (s, v["error"]["error_code"].as_str()),
            (400, Some("KMS.0202")),
            "{alias}: {v}"
        );
        assert!(v["error"]["error_msg"].is_string());
    }
    let (s, v) = kms(
        &tc.http,
        &tc.base,
        &tok,
        &pid,
        "describe-key",
        json!({"key_id": "nope"}),
    )
    .await;
    assert_eq!(
        (s, v["error"]["error_code"].as_str()),
        (400, Some("KMS.0205")),
        "{v}"
    );
    let (s, v) = kms(&tc.http, &tc.base, &tok, &pid, "describe-key", json!({})).await;
    assert_eq!(
        (s, v["error"]["error_code"].as_str()),
        (400, Some("KMS.0201")),
        "{v}"
    );
    for days in ["6", "1097", "x"] {
        let (s, v) = kms(
            &tc.http,
            &tc.base,
            &tok,
            &pid,
            "schedule-key-deletion",
            json!({"key_id": id, "pending_days": days}),
        )
        .await;
        assert_eq!(
            (s, v["error"]["error_code"].as_str()),
            (400, Some("KMS.0203")),
            "{days}: {v}"
        );
    }
    let (s, v) = kms(
        &tc.http,
        &tc.base,
        &tok,
        &pid,
        "cancel-key-deletion",
        json!({"key_id": id}),
    )
    .await;
    assert_eq!(
        (s, v["error"]["error_code"].as_str()),
        (400, Some("KMS.0209")),
        "{v}"
    );
    let (s, v) = kms(&tc.http, &tc.base, &tok, &pid, "no-such-action", json!({})).await;
    assert_eq!(s, 404, "{v}");

    // States: disable (3), enable (2), schedule deletion (4), cancel (3).
    let state = async |action: &str, extra: Value| {
        let mut body = json!({"key_id": id});
        if let Some(o) = extra.as_object() {
            for (k, v) in o {
                body[k] = v.clone();
            }
        }
        let (s, v) = kms(&tc.http, &tc.base, &tok, &pid, action, body).await;
        assert_eq!(s, 200, "{action}: {v}");
        v["key_info"]["key_state"]
            .as_str()
            .or(v["key_state"].as_str())
            .unwrap()
            .to_string()
    };
    assert_eq!(state("disable-key", json!({})).await, "3");
    assert_eq!(state("enable-key", json!({})).await, "2");
    assert_eq!(
        state("schedule-key-deletion", json!({"pending_days": "7"})).await,
        "4"
    );
    let (_, v) = kms(
        &tc.http,
        &tc.base,
        &tok,
        &pid,
        "describe-key",
        json!({"key_id": id}),
    )
    .await;
    assert!(
        !v["key_info"]["scheduled_deletion_date"]
            .as_str()
            .unwrap()
            .is_empty(),
        "{v}"
    );
    assert_eq!(state("cancel-key-deletion", json!({})).await, "3");

    // list-keys, with a state filter and paging.
    let second = create_key(&tc.http, &tc.base, &tok, &pid).await;
    let (s, v) = kms(&tc.http, &tc.base, &tok, &pid, "list-keys", json!({})).await;
    assert_eq!(s, 200);
    assert_eq!(v["total"], 2);
    assert_eq!(v["keys"], json!([id, second]));
    let (_, v) = kms(
        &tc.http,
        &tc.base,
        &tok,
        &pid,
        "list-keys",
        json!({"key_state": "2"}),
    )
    .await;
    assert_eq!(v["keys"], json!([second]));
    let (_, v) = kms(
        &tc.http,
        &tc.base,
        &tok,
        &pid,
        "list-keys",
        json!({"limit": "1"}),
    )
    .await;
    assert_eq!(
        (v["keys"].clone(), v["truncated"].clone()),
        (json!([id]), json!("true"))
    );
    let (_, v) = kms(
        &tc.http,
        &tc.base,
        &tok,
        &pid,
        "list-keys",
        json!({"limit": "1", "marker": v["next_marker"]}),
    )
    .await;
    assert_eq!(
        (v["keys"].clone(), v["truncated"].clone()),
        (json!([second]), json!("false"))
    );

    // Readers see keys but may not change them; no token is 401.
    let admin = tc.admin_token().await;
    let p: Value = tc
        .http
        .get(format!("{}/projects/{pid}", tc.identity()))
        .header("x-auth-token", &admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let reader = tc
        .user_with_role(
            &admin,
            &pid,
            p["project"]["name"].as_str().unwrap(),
            "reader",
        )
        .await;
    assert_eq!(
        kms(&tc.http, &tc.base, &reader, &pid, "list-keys", json!({}))
            .await
            .0,
        200
    );
    let (s, v) = kms(
        &tc.http,
        &tc.base,
        &reader,
        &pid,
        "disable-key",
        json!({"key_id": second}),
    )
    .await;
    assert_eq!(
        (s, v["error"]["error_code"].as_str()),
        (403, Some("KMS.0403")),
        "{v}"
    );
    let (s, v) = kms(&tc.http, &tc.base, "", &pid, "list-keys", json!({})).await;
    assert_eq!(
        (s, v["error"]["error_code"].as_str()),
        (401, Some("KMS.0401")),
        "{v}"
    );

    // Another project: the key does not exist for it.
    let (pid2, tok2) = tc.user_in_new_project("member", "region-one").await;
    for action in [
        "describe-key",
        "disable-key",
        "enable-key",
        "cancel-key-deletion",
    ] {
        let (s, v) = kms(
            &tc.http,
            &tc.base,
            &tok2,
            &pid2,
            action,
            json!({"key_id": second}),
        )
        .await;
        assert_eq!(
            (s, v["error"]["error_code"].as_str()),
            (404, Some("KMS.0207")),
            "{action}: {v}"
        );
    }
    let (_, v) = kms(&tc.http, &tc.base, &tok2, &pid2, "list-keys", json!({})).await;
    assert_eq!(v["total"], 0);
}

#[tokio::test]
async fn key_material_is_stored_wrapped_by_a_private_master_key() {
    let tc = TestCloud::start().await;
    let (pid, tok) = tc.user_in_new_project("member", "region-one").await;
    let id = create_key(&tc.http, &tc.base, &tok, &pid).await;
    let region = &tc.cloud.regions[0];
    let file = std::path::PathBuf::from(&region.config.kms.master_key_file);
    assert!(file.starts_with(&tc.data_dir), "{}", file.display());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let material: String = sqlx::query_scalar("SELECT material FROM kms_keys WHERE id = $1")
        .bind(&id)
        .fetch_one(&region.db.pool)
        .await
        .unwrap();
    // nonce (12) + wrapped key (32) + tag (16), hex.
    assert_eq!(material.len(), 120);
    let master = std::fs::read_to_string(&file).unwrap();
    assert!(!material.contains(master.trim()));
}

#[tokio::test]
async fn the_glimpse_kms_command_drives_the_key_manager_over_http() {
    let tc = TestCloud::start().await;
    let (pid, tok) = tc.user_in_new_project("member", "region-one").await;
    let admin = tc.admin_token().await;
    let p: Value = tc
        .http
        .get(format!("{}/projects/{pid}", tc.identity()))
        .header("x-auth-token", &admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let name = p["project"]["name"].as_str().unwrap().to_string();
    // A user with a known password in that project.
    let uname = format!("cli-{}", &pid[..8]);
    let u: Value = tc
        .http
        .post(format!("{}/users", tc.identity()))
        .header("x-auth-token", &admin)
        .json(&json!({"user": {"name": uname, "password": "secret", "domain_id": "default"}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let uid = u["user"]["id"].as_str().unwrap();
    let roles: Value = tc
        .http
        .get(format!("{}/roles?name=member", tc.identity()))
        .header("x-auth-token", &admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let rid = roles["roles"][0]["id"].as_str().unwrap();
    let r = tc
        .http
        .put(format!(
            "{}/projects/{pid}/users/{uid}/roles/{rid}",
            tc.identity()
        ))
        .header("x-auth-token", &admin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let clouds = tc.data_dir.join("kms-clouds.yaml");
    std::fs::write(
        &clouds,
        format!(
            "clouds:\n  k:\n    auth:\n      auth_url: {}\n      username: {uname}\n      \
             password: secret\n      project_name: {name}\n      user_domain_name: Default\n      \
             project_domain_name: Default\n    region_name: region-one\n",
            tc.identity()
        ),
    )
    .unwrap();
    let args = |command: KmsCommand| KmsArgs {
        cloud: CloudArgs {
            os_cloud: Some("k".into()),
            os_region_name: None,
            clouds_file: Some(clouds.clone()),
        },
        command,
    };
    kms_cli::run(args(KmsCommand::Create {
        alias: "cli-key".into(),
        description: "d".into(),
    }))
    .await
    .unwrap();
    let (_, v) = kms(&tc.http, &tc.base, &tok, &pid, "list-keys", json!({})).await;
    let id = v["keys"][0].as_str().unwrap().to_string();
    kms_cli::run(args(KmsCommand::Disable { key_id: id.clone() }))
        .await
        .unwrap();
    let (_, v) = kms(
        &tc.http,
        &tc.base,
        &tok,
        &pid,
        "describe-key",
        json!({"key_id": id}),
    )
    .await;
    assert_eq!(v["key_info"]["key_state"], "3");
    kms_cli::run(args(KmsCommand::Enable { key_id: id.clone() }))
        .await
        .unwrap();
    kms_cli::run(args(KmsCommand::ScheduleDeletion {
        key_id: id.clone(),
        days: 30,
    }))
    .await
    .unwrap();
    let (_, v) = kms(
        &tc.http,
        &tc.base,
        &tok,
        &pid,
        "describe-key",
        json!({"key_id": id}),
    )
    .await;
    assert_eq!(v["key_info"]["key_state"], "4");
    kms_cli::run(args(KmsCommand::Show { key_id: id.clone() }))
        .await
        .unwrap();
    kms_cli::run(args(KmsCommand::List {
        state: None,
        json: false,
    }))
    .await
    .unwrap();
    let e = kms_cli::run(args(KmsCommand::ScheduleDeletion {
        key_id: id.clone(),
        days: 3,
    }))
    .await
    .unwrap_err();
    assert!(e.to_string().contains("KMS.0203"), "{e}");
    let e = kms_cli::run(args(KmsCommand::Show {
        key_id: "00000000-0000-0000-0000-000000000000".into(),
    }))
    .await
    .unwrap_err();
    assert!(e.to_string().contains("404"), "{e}");
    assert!(
        kms_cli::keys_table(&[json!({"key_id": "a", "key_alias": "b", "key_state": "2"})])
            .contains("2 (enabled)")
    );
}
