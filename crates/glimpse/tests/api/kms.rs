//! The key manager (Huawei KMS shape) end to end: the key life cycle and its state codes,
//! validation errors in KMS's error shape, isolation between projects, the master key file,
//! key material never stored in the clear, and the `glimpse kms` command over HTTP.

use crate::common;

use common::TestCloud;
use common::identity::{create_user, ks, role_id};
use common::ims::{Kms, assert_kms_error};
use glimpse::kms_cli::{self, CloudArgs, KmsArgs, KmsCommand};
use serde_json::{Value, json};

#[tokio::test]
async fn key_life_cycle_and_errors() {
    let tc = TestCloud::start().await;
    let (pid, tok) = tc.user_in_new_project("member", "region-one").await;
    let kms = Kms::new(&tc, "region-one", &tok, &pid);
    let (s, v) = kms
        .call(
            "create-key",
            json!({"key_alias": "disk-key", "key_description": "for disks"}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let id = v["key_info"]["key_id"].as_str().unwrap().to_string();
    assert_eq!(id.len(), 36);
    assert_eq!(v["key_info"]["domain_id"], pid.as_str());

    let (s, v) = kms.describe(&id).await;
    assert_eq!(s, 200);
    let k = &v["key_info"];
    assert_eq!(k["key_alias"], "disk-key");
    assert_eq!(k["key_description"], "for disks");
    assert_eq!(k["key_state"], "2");
    assert_eq!(k["realm"], "region-one");
    assert!(k.get("material").is_none() && !v.to_string().contains("material"));

    // Same alias twice: refused. Bad alias, bad id, bad days, wrong state.
    let again = kms
        .call("create-key", json!({"key_alias": "disk-key"}))
        .await;
    assert_kms_error(&again, 400, "KMS.0208");
    for alias in ["", "has space", "x/default"] {
        let (s, v) = kms.call("create-key", json!({"key_alias": alias})).await;
        assert_eq!(
            (s, v["error"]["error_code"].as_str()),
            (400, Some("KMS.0202")),
            "{alias}: {v}"
        );
        assert!(v["error"]["error_msg"].is_string());
    }
    assert_kms_error(&kms.describe("nope").await, 400, "KMS.0205");
    let no_id = kms.call("describe-key", json!({})).await;
    assert_kms_error(&no_id, 400, "KMS.0201");
    for days in ["6", "1097", "x"] {
        let (s, v) = kms.schedule_deletion(&id, days).await;
        assert_eq!(
            (s, v["error"]["error_code"].as_str()),
            (400, Some("KMS.0203")),
            "{days}: {v}"
        );
    }
    assert_kms_error(&kms.cancel_deletion(&id).await, 400, "KMS.0209");
    let (s, v) = kms.call("no-such-action", json!({})).await;
    assert_eq!(s, 404, "{v}");

    // States: disable (3), enable (2), schedule deletion (4), cancel (3).
    let state = |(s, v): (u16, Value)| {
        assert_eq!(s, 200, "{v}");
        v["key_info"]["key_state"]
            .as_str()
            .or(v["key_state"].as_str())
            .unwrap()
            .to_string()
    };
    assert_eq!(state(kms.disable(&id).await), "3");
    assert_eq!(state(kms.enable(&id).await), "2");
    assert_eq!(state(kms.schedule_deletion(&id, "7").await), "4");
    let (_, v) = kms.describe(&id).await;
    assert!(
        !v["key_info"]["scheduled_deletion_date"]
            .as_str()
            .unwrap()
            .is_empty(),
        "{v}"
    );
    assert_eq!(state(kms.cancel_deletion(&id).await), "3");

    // list-keys, with a state filter and paging.
    let second = kms.create_key().await;
    let (s, v) = kms.list(json!({})).await;
    assert_eq!(s, 200);
    assert_eq!(v["total"], 2);
    assert_eq!(v["keys"], json!([id, second]));
    let (_, v) = kms.list(json!({"key_state": "2"})).await;
    assert_eq!(v["keys"], json!([second]));
    let (_, v) = kms.list(json!({"limit": "1"})).await;
    assert_eq!(
        (v["keys"].clone(), v["truncated"].clone()),
        (json!([id]), json!("true"))
    );
    let (_, v) = kms
        .list(json!({"limit": "1", "marker": v["next_marker"]}))
        .await;
    assert_eq!(
        (v["keys"].clone(), v["truncated"].clone()),
        (json!([second]), json!("false"))
    );

    // Readers see keys but may not change them; no token is 401.
    let reader = Kms {
        token: common::nova::reader_of(&tc, &pid).await,
        ..kms.clone()
    };
    assert_eq!(reader.list(json!({})).await.0, 200);
    assert_kms_error(&reader.disable(&second).await, 403, "KMS.0403");
    let anonymous = Kms {
        token: String::new(),
        ..kms.clone()
    };
    assert_kms_error(&anonymous.list(json!({})).await, 401, "KMS.0401");

    // Another project: the key does not exist for it.
    let (pid2, tok2) = tc.user_in_new_project("member", "region-one").await;
    let other = Kms::new(&tc, "region-one", &tok2, &pid2);
    for action in [
        "describe-key",
        "disable-key",
        "enable-key",
        "cancel-key-deletion",
    ] {
        let (s, v) = other.call(action, json!({"key_id": second})).await;
        assert_eq!(
            (s, v["error"]["error_code"].as_str()),
            (404, Some("KMS.0207")),
            "{action}: {v}"
        );
    }
    let (_, v) = other.list(json!({})).await;
    assert_eq!(v["total"], 0);
}

#[tokio::test]
async fn key_material_is_stored_wrapped_by_a_private_master_key() {
    let tc = TestCloud::start().await;
    let (pid, tok) = tc.user_in_new_project("member", "region-one").await;
    let id = Kms::new(&tc, "region-one", &tok, &pid).create_key().await;
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
    let kms = Kms::new(&tc, "region-one", &tok, &pid);
    let admin = tc.admin_token().await;
    let (_, p) = ks(&tc, &admin).get(&format!("/projects/{pid}")).await;
    let name = p["project"]["name"].as_str().unwrap().to_string();
    // A user with a known password in that project.
    let uname = format!("cli-{}", &pid[..8]);
    let uid = create_user(&tc, &admin, &uname, "secret").await;
    let rid = role_id(&tc, &admin, "member").await;
    let grant = format!("/projects/{pid}/users/{uid}/roles/{rid}");
    assert_eq!(ks(&tc, &admin).put(&grant).await.0, 204);
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
    let run = async |command: KmsCommand| {
        let cloud = CloudArgs {
            os_cloud: Some("k".into()),
            os_region_name: None,
            clouds_file: Some(clouds.clone()),
        };
        kms_cli::run(KmsArgs { cloud, command }).await
    };
    run(KmsCommand::Create {
        alias: "cli-key".into(),
        description: "d".into(),
    })
    .await
    .unwrap();
    let (_, v) = kms.list(json!({})).await;
    let id = v["keys"][0].as_str().unwrap().to_string();
    run(KmsCommand::Disable { key_id: id.clone() })
        .await
        .unwrap();
    let (_, v) = kms.describe(&id).await;
    assert_eq!(v["key_info"]["key_state"], "3");
    run(KmsCommand::Enable { key_id: id.clone() })
        .await
        .unwrap();
    let schedule = |days| KmsCommand::ScheduleDeletion {
        key_id: id.clone(),
        days,
    };
    run(schedule(30)).await.unwrap();
    let (_, v) = kms.describe(&id).await;
    assert_eq!(v["key_info"]["key_state"], "4");
    run(KmsCommand::Show { key_id: id.clone() }).await.unwrap();
    let list = KmsCommand::List {
        state: None,
        json: false,
    };
    run(list).await.unwrap();
    let e = run(schedule(3)).await.unwrap_err();
    assert!(e.to_string().contains("KMS.0203"), "{e}");
    let unknown = "00000000-0000-0000-0000-000000000000".into();
    let e = run(KmsCommand::Show { key_id: unknown }).await.unwrap_err();
    assert!(e.to_string().contains("404"), "{e}");
    assert!(
        kms_cli::keys_table(&[glimpse_types::kms::KeyDetails {
            key_id: "a".into(),
            key_alias: "b".into(),
            key_state: "2".into(),
            ..Default::default()
        }])
        .contains("2 (enabled)")
    );
}
