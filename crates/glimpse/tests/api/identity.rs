//! End-to-end tests of the identity service's Keystone surface over HTTP: version discovery,
//! token issue/validate/revoke/rescope, the token body and catalog, error shapes (401, 400),
//! expiry, and revocation as seen by the regions. Admin API, bootstrap and the real
//! `openstack` CLI: `identity_admin.rs`.

use crate::common;

use common::TestCloud;
use common::identity::*;
use reqwest::Method;
use serde_json::{Value, json};

/// The password body of the admin, scoped to the admin project (by names).
fn admin_scoped_body(tc: &TestCloud) -> Value {
    let scope = json!({"project": by_name("admin")});
    password_body(by_name("admin"), &tc.admin_password(), Some(scope))
}

#[tokio::test]
async fn version_discovery() {
    let tc = TestCloud::start().await;
    for path in ["/identity/v3", "/identity/v3/"] {
        let r = common::http::get_public(&tc.http, format!("{}{path}", tc.base)).await;
        assert_eq!(r.status(), 200, "{path}");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["version"]["id"], "v3.14");
        assert_eq!(v["version"]["status"], "stable");
        assert_eq!(
            v["version"]["links"][0]["href"],
            format!("{}/", tc.identity())
        );
        assert_eq!(
            v["version"]["media-types"][0]["type"],
            "application/vnd.openstack.identity-v3+json"
        );
    }
    // `/identity/` (trailing slash) needs `identity_v3::versions_route` mounted in lib.rs.
    for path in ["/identity"] {
        let r = common::http::get_public(&tc.http, format!("{}{path}", tc.base)).await;
        assert_eq!(r.status(), 300, "{path}");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["versions"]["values"][0]["id"], "v3.14", "{path}");
    }
    let (s, v) = call(&tc, Method::GET, "/no/such/thing", None, None).await;
    assert_error(s, &v, 404, "Not Found");
}

#[tokio::test]
async fn token_by_name_by_id_unscoped_and_rescoped() {
    let tc = TestCloud::start().await;
    let pw = tc.admin_password();
    let scope = json!({"project": by_name("admin")});
    let (t1, b1) = issue(&tc, &password_body(by_name("admin"), &pw, Some(scope))).await;
    let uid = b1["token"]["user"]["id"].as_str().unwrap().to_string();
    let pid = b1["token"]["project"]["id"].as_str().unwrap().to_string();
    assert_eq!(b1["token"]["project"]["name"], "admin");

    // By ids; the domain given by id.
    let (t2, b2) = issue(
        &tc,
        &password_body(
            json!({"id": uid}),
            &pw,
            Some(json!({"project": {"id": pid}})),
        ),
    )
    .await;
    assert_ne!(t1, t2);
    assert_eq!(b2["token"]["project"]["id"], pid);
    let (_, b3) = issue(
        &tc,
        &password_body(
            json!({"name": "admin", "domain": {"id": "default"}}),
            &pw,
            Some(json!({"project": {"name": "admin", "domain": {"id": "default"}}})),
        ),
    )
    .await;
    assert_eq!(b3["token"]["user"]["id"], uid);

    // No scope: a user without default project gets an unscoped token (no catalog, roles).
    let admin = t1.clone();
    create_user(&tc, &admin, "loner", "pw-loner").await;
    let (unscoped, b4) = issue(&tc, &password_body(by_name("loner"), "pw-loner", None)).await;
    let tok = &b4["token"];
    assert!(
        tok.get("project").is_none() && tok.get("catalog").is_none(),
        "{b4}"
    );
    assert!(tok.get("roles").is_none(), "{b4}");
    assert_eq!(tok["user"]["name"], "loner");
    // ... and the admin (default project admin) gets its default project; "unscoped" forces none.
    let (_, b5) = issue(&tc, &password_body(by_name("admin"), &pw, None)).await;
    assert_eq!(b5["token"]["project"]["name"], "admin");
    let (_, b6) = issue(
        &tc,
        &password_body(by_name("admin"), &pw, Some(json!("unscoped"))),
    )
    .await;
    assert!(b6["token"].get("project").is_none());

    // Rescope the unscoped token to a project where the user has a role.
    let p = create_project(&tc, &admin, json!({"name": "rescope-p"})).await;
    let member = role_id(&tc, &admin, "member").await;
    let loner_id = tok["user"]["id"].as_str().unwrap();
    let (s, _) = ks(&tc, &admin)
        .put(&format!(
            "/projects/{}/users/{loner_id}/roles/{member}",
            p["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(s, 204);
    let rescope = json!({"auth": {"identity": {"methods": ["token"], "token": {"id": unscoped}},
        "scope": {"project": {"id": p["id"]}}}});
    let (rescoped, b7) = issue(&tc, &rescope).await;
    assert_ne!(rescoped, unscoped);
    let t7 = &b7["token"];
    assert_eq!(t7["project"]["name"], "rescope-p");
    assert_eq!(
        t7["expires_at"], tok["expires_at"],
        "rescoping keeps the expiry"
    );
    assert_eq!(t7["audit_ids"].as_array().unwrap().len(), 2);
    assert_eq!(t7["audit_ids"][1], tok["audit_ids"][0]);
    assert!(t7["methods"].as_array().unwrap().contains(&json!("token")));
    let names: Vec<&str> = common::http::strings(&t7["roles"], "name");
    assert!(names.contains(&"member") && names.contains(&"reader") && !names.contains(&"admin"));
    // The rescoped token works.
    assert_eq!(validate(&tc, &rescoped, &rescoped).await, 200);
    // Rescoping with a bogus token is 401.
    let bogus = json!({"auth": {"identity": {"methods": ["token"], "token": {"id": "nope"}}}});
    let r = post_token(&tc, &bogus).await;
    assert_eq!(r.status(), 401);
}

#[tokio::test]
async fn token_body_is_what_tempest_reads() {
    let tc = TestCloud::start().await;
    let body = admin_scoped_body(&tc);
    let r = post_token(&tc, &body).await;
    assert_eq!(r.status(), 201);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    let token = r.headers()["x-subject-token"].to_str().unwrap().to_string();
    assert_eq!(token.len(), 64);
    assert!(token.chars().all(|c| c.is_ascii_hexdigit()));
    let v: Value = r.json().await.unwrap();
    let t = &v["token"];
    assert_eq!(t["methods"], json!(["password"]));
    assert_eq!(t["user"]["name"], "admin");
    assert_eq!(t["user"]["id"].as_str().unwrap().len(), 32);
    assert_eq!(
        t["user"]["domain"],
        json!({"id": "default", "name": "Default"})
    );
    assert!(t["user"]["password_expires_at"].is_null());
    assert!(
        t["user"]
            .as_object()
            .unwrap()
            .contains_key("password_expires_at")
    );
    assert_eq!(
        t["project"]["domain"],
        json!({"id": "default", "name": "Default"})
    );
    assert_eq!(t["project"]["name"], "admin");
    assert_eq!(t["is_domain"], false);
    let audit = t["audit_ids"].as_array().unwrap();
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0].as_str().unwrap().len(), 22);
    let (exp, iss) = (
        t["expires_at"].as_str().unwrap(),
        t["issued_at"].as_str().unwrap(),
    );
    assert!(is_keystone_time(exp), "{exp}");
    assert!(is_keystone_time(iss), "{iss}");
    let ttl = glimpse_types::parse_time(exp).unwrap() - glimpse_types::parse_time(iss).unwrap();
    assert_eq!(ttl.num_seconds(), 3600);
    let mut roles: Vec<&str> = t["roles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            assert_eq!(r["id"].as_str().unwrap().len(), 32);
            r["name"].as_str().unwrap()
        })
        .collect();
    roles.sort();
    assert_eq!(roles, ["admin", "member", "reader"]);

    // GET /v3/auth/tokens returns the same body and echoes the subject token; HEAD is 200.
    let r = tc.auth_tokens(Method::GET, "", &token, &token).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-subject-token"], token.as_str());
    let again: Value = r.json().await.unwrap();
    assert_eq!(again, v);
    let r = tc.auth_tokens(Method::HEAD, "", &token, &token).await;
    assert_eq!(r.status(), 200);
    // nocatalog
    let r = tc
        .auth_tokens(Method::GET, "?nocatalog", &token, &token)
        .await;
    let v: Value = r.json().await.unwrap();
    assert!(v["token"].get("catalog").is_none());
    // Unknown subject: 404 (GET and HEAD).
    let r = tc
        .auth_tokens(Method::GET, "", &token, &"0".repeat(64))
        .await;
    assert_eq!(r.status(), 404);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], 404);
    let r = tc
        .auth_tokens(Method::HEAD, "", &token, &"0".repeat(64))
        .await;
    assert_eq!(r.status(), 404);
}

#[tokio::test]
async fn catalog_lists_every_service_in_both_regions() {
    let tc = TestCloud::start().await;
    let body = admin_scoped_body(&tc);
    let (token, v) = issue(&tc, &body).await;
    let pid = v["token"]["project"]["id"].as_str().unwrap().to_string();
    let catalog = v["token"]["catalog"].as_array().unwrap().clone();
    let expected = [
        ("identity", "keystone"),
        ("image", "glance"),
        ("compute", "nova"),
        ("volumev3", "cinderv3"),
        ("block-storage", "cinder"),
        ("ims", "ims"),
        ("kms", "kms"),
    ];
    assert_eq!(catalog.len(), expected.len());
    for (ty, name) in expected {
        let svc = catalog
            .iter()
            .find(|s| s["type"] == ty)
            .unwrap_or_else(|| panic!("no {ty} in catalog"));
        assert_eq!(svc["name"], name);
        assert!(svc["id"].is_string());
        let eps = svc["endpoints"].as_array().unwrap();
        assert_eq!(eps.len(), 6, "{ty}: 2 regions x 3 interfaces");
        for region in ["region-one", "region-two"] {
            for iface in ["public", "internal", "admin"] {
                let ep = eps
                    .iter()
                    .find(|e| e["region"] == region && e["interface"] == iface)
                    .unwrap_or_else(|| panic!("{ty} {region} {iface}"));
                assert_eq!(ep["region_id"], region);
                assert!(ep["id"].is_string());
                let url = ep["url"].as_str().unwrap();
                let want = match ty {
                    "identity" => tc.identity(),
                    "image" => format!("{}/{region}/image", tc.base),
                    "compute" => format!("{}/{region}/compute/v2.1", tc.base),
                    "volumev3" | "block-storage" => {
                        format!("{}/{region}/volume/v3/{pid}", tc.base)
                    }
                    _ => format!("{}/{region}/{ty}", tc.base),
                };
                assert_eq!(url, want);
            }
        }
    }
    // Endpoint ids are stable across tokens.
    let (_, v2) = issue(&tc, &body).await;
    assert_eq!(v2["token"]["catalog"], v["token"]["catalog"]);

    let (s, c) = ks(&tc, &token).get("/auth/catalog").await;
    assert_eq!(s, 200);
    assert_eq!(c["catalog"], v["token"]["catalog"]);
    let (s, services) = ks(&tc, &token).get("/services").await;
    assert_eq!(s, 200);
    assert_eq!(services["services"].as_array().unwrap().len(), 7);
    let (s, eps) = ks(&tc, &token).get("/endpoints?interface=public").await;
    assert_eq!(s, 200);
    let eps = eps["endpoints"].as_array().unwrap();
    assert_eq!(eps.len(), 14);
    assert!(
        eps.iter()
            .all(|e| e["service_id"].is_string() && e["region_id"].is_string())
    );
    let one = eps[0]["id"].as_str().unwrap();
    let (s, _) = ks(&tc, &token).get(&format!("/endpoints/{one}")).await;
    assert_eq!(s, 200);
}

#[tokio::test]
async fn failed_authentication_is_401_json() {
    let tc = TestCloud::start().await;
    let admin = tc.admin_token().await;
    let pw = tc.admin_password();
    let project = json!({"project": by_name("admin")});
    let uid = create_user(&tc, &admin, "norole", "pw-norole").await;
    let cases = [
        password_body(by_name("admin"), "wrong", Some(project.clone())),
        password_body(by_name("nobody"), &pw, Some(project.clone())),
        password_body(json!({"id": "0123"}), &pw, Some(project.clone())),
        password_body(
            by_name("admin"),
            &pw,
            Some(json!({"project": by_name("no-such-project")})),
        ),
        password_body(
            by_name("admin"),
            &pw,
            Some(json!({"project": {"id": "nope"}})),
        ),
        password_body(
            json!({"name": "admin", "domain": {"name": "Other"}}),
            &pw,
            Some(project.clone()),
        ),
        // No role on the project.
        password_body(by_name("norole"), "pw-norole", Some(project.clone())),
        // Domain scope is not offered.
        password_body(
            by_name("admin"),
            &pw,
            Some(json!({"domain": {"id": "default"}})),
        ),
    ];
    for body in &cases {
        let r = post_token(&tc, body).await;
        assert_eq!(r.status(), 401, "{body}");
        assert!(
            r.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("application/json")
        );
        let v: Value = r.json().await.unwrap();
        assert_eq!(
            v,
            json!({"error": {"code": 401, "title": "Unauthorized", "message": UNAUTHORIZED}}),
            "{body}"
        );
    }
    // A disabled user cannot get a token.
    let (s, _) = ks(&tc, &admin)
        .patch_json(
            &format!("/users/{uid}"),
            json!({"user": {"enabled": false}}),
        )
        .await;
    assert_eq!(s, 200);
    let r = post_token(&tc, &password_body(by_name("norole"), "pw-norole", None)).await;
    assert_eq!(r.status(), 401);
    // Nor can anyone scope to a disabled project.
    let p = create_project(&tc, &admin, json!({"name": "off", "enabled": false})).await;
    assert_eq!(p["enabled"], false);
    let (_, users) = ks(&tc, &admin).get("/users?name=admin").await;
    let admin_id = users["users"][0]["id"].as_str().unwrap().to_string();
    let member = role_id(&tc, &admin, "member").await;
    let off_grant = format!(
        "/projects/{}/users/{admin_id}/roles/{member}",
        p["id"].as_str().unwrap()
    );
    assert_eq!(ks(&tc, &admin).put(&off_grant).await.0, 204);
    let r = post_token(
        &tc,
        &password_body(
            by_name("admin"),
            &pw,
            Some(json!({"project": {"id": p["id"]}})),
        ),
    )
    .await;
    assert_eq!(r.status(), 401);
    // Missing and bogus X-Auth-Token on the admin API.
    let (s, v) = call(&tc, Method::GET, "/projects", None, None).await;
    assert_error(s, &v, 401, "Unauthorized");
    let (s, v) = ks(&tc, "bogus").get("/projects").await;
    assert_error(s, &v, 401, "Unauthorized");
}

#[tokio::test]
async fn malformed_token_requests_are_400() {
    let tc = TestCloud::start().await;
    let raw_bodies: [&[u8]; 3] = [b"", b"{not json", b"[1,2]"];
    for raw in raw_bodies {
        let r = tc
            .http
            .post(format!("{}/auth/tokens", tc.identity()))
            .header("content-type", "application/json")
            .body(raw.to_vec())
            .send()
            .await
            .unwrap();
        let status = r.status();
        let v: Value = r.json().await.unwrap();
        assert_error(status, &v, 400, "Bad Request");
    }
    for body in [
        json!({}),
        json!({"auth": "x"}),
        json!({"auth": {}}),
        json!({"auth": {"identity": {}}}),
        json!({"auth": {"identity": {"methods": "password"}}}),
        json!({"auth": {"identity": {"methods": []}}}),
        json!({"auth": {"identity": {"methods": ["password"]}}}),
        json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {"name": "admin", "password": "x"}}}}}),
        json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {"name": 7, "domain": {"id": "default"}, "password": "x"}}}}}),
        json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {"name": "admin", "domain": {"id": "default"}}}}}}),
        json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {"name": "admin", "domain": {"id": "default"}, "password": "x"}}},
               "scope": {"project": {"name": "admin"}}}}),
    ] {
        let (s, v) = call(&tc, Method::POST, "/auth/tokens", None, Some(body.clone())).await;
        assert_error(s, &v, 400, "Bad Request");
    }
    // Admin API bodies too.
    let admin = tc.admin_token().await;
    for (path, body) in [
        ("/projects", json!({"name": "x"})),
        ("/projects", json!({"project": {"name": 5}})),
        (
            "/projects",
            json!({"project": {"name": "x", "enabled": "yes"}}),
        ),
        ("/projects", json!({"project": {}})),
        ("/users", json!({"user": {"name": "x", "password": 1}})),
        ("/roles", json!({"role": {}})),
    ] {
        let (s, v) = ks(&tc, &admin).post_json(path, body.clone()).await;
        assert_error(s, &v, 400, "Bad Request");
    }
}

#[tokio::test]
async fn tokens_born_expired_are_401() {
    let tc = TestCloud::start_with(|c| c.identity.token_ttl_seconds = 0).await;
    let body = admin_scoped_body(&tc);
    let (token, v) = issue(&tc, &body).await;
    assert_eq!(v["token"]["expires_at"], v["token"]["issued_at"]);
    assert_eq!(validate(&tc, &token, &token).await, 401);
    let (s, e) = ks(&tc, &token).get("/projects").await;
    assert_error(s, &e, 401, "Unauthorized");
    assert!(tc.cloud.regions[0].auth.validate(&token).await.is_err());
    // An expired token cannot be rescoped either.
    let rescope = json!({"auth": {"identity": {"methods": ["token"], "token": {"id": token}}}});
    assert_eq!(post_token(&tc, &rescope).await.status(), 401);
}

#[tokio::test]
async fn revoked_token_is_401_in_identity_and_regions() {
    let tc = TestCloud::start().await;
    let admin = tc.admin_token().await;
    let (_, user_token) = tc.user_in_new_project("member", "region-one").await;
    let region = &tc.cloud.regions[0];
    assert!(region.auth.validate(&user_token).await.is_ok());
    assert_eq!(validate(&tc, &user_token, &user_token).await, 200);
    let image_list = format!("{}/v2/images", tc.image("region-one"));
    let image_before = common::http::get(&tc.http, &image_list, &user_token)
        .await
        .status();

    let r = tc
        .auth_tokens(Method::DELETE, "", &admin, &user_token)
        .await;
    assert_eq!(r.status(), 204);

    assert_eq!(validate(&tc, &user_token, &user_token).await, 401);
    assert_eq!(validate(&tc, &admin, &user_token).await, 404);
    let err = region.auth.validate(&user_token).await.unwrap_err();
    assert_eq!(err.kind, glimpse_core::Kind::Unauthorized);
    assert_eq!(err.message, UNAUTHORIZED);
    assert_eq!(image_before, 200, "image list with a valid token");
    let r = common::http::get(&tc.http, &image_list, &user_token).await;
    assert_eq!(r.status(), 401, "image list with a revoked token");
    // Revoking again: the token is gone (404); the admin token still works.
    let r = tc
        .auth_tokens(Method::DELETE, "", &admin, &user_token)
        .await;
    assert_eq!(r.status(), 404);
    assert_eq!(validate(&tc, &admin, &admin).await, 200);
}

#[tokio::test]
async fn changes_invalidate_cached_tokens_at_once() {
    let tc = TestCloud::start().await;
    let admin = tc.admin_token().await;
    let region = tc.cloud.regions[1].clone();
    let member = role_id(&tc, &admin, "member").await;

    // Role removal.
    let p = create_project(&tc, &admin, json!({"name": "inv-p"})).await;
    let pid = p["id"].as_str().unwrap().to_string();
    let uid = create_user(&tc, &admin, "inv-u", "pw1").await;
    let grant = format!("/projects/{pid}/users/{uid}/roles/{member}");
    let (project, user) = (format!("/projects/{pid}"), format!("/users/{uid}"));
    assert_eq!(ks(&tc, &admin).put(&grant).await.0, 204);
    let t = tc.token("inv-u", "pw1", "inv-p").await;
    let caller = region.auth.validate(&t).await.unwrap(); // now cached
    assert_eq!(caller.project_id.as_deref(), Some(pid.as_str()));
    assert!(caller.is_member() && caller.is_reader() && !caller.is_admin());
    assert_eq!(ks(&tc, &admin).delete(&grant).await.0, 204);
    assert!(region.auth.validate(&t).await.is_err(), "role removal");

    // Password change.
    assert_eq!(ks(&tc, &admin).put(&grant).await.0, 204);
    let t = tc.token("inv-u", "pw1", "inv-p").await;
    assert!(region.auth.validate(&t).await.is_ok());
    let pw2 = json!({"user": {"password": "pw2"}});
    let (s, _) = ks(&tc, &admin).patch_json(&user, pw2).await;
    assert_eq!(s, 200);
    assert!(region.auth.validate(&t).await.is_err(), "password change");
    let r = post_token(&tc, &password_body(by_name("inv-u"), "pw1", None)).await;
    assert_eq!(r.status(), 401);

    // Self-service password change needs the original password.
    for (original, want) in [("wrong", 401), ("pw2", 204)] {
        let body = json!({"user": {"password": "pw3", "original_password": original}});
        let path = format!("{user}/password");
        let (s, _) = call(&tc, Method::POST, &path, None, Some(body)).await;
        assert_eq!(s, want);
    }

    // Project disable, then delete.
    let enabled = |on: bool| json!({"project": {"enabled": on}});
    let t = tc.token("inv-u", "pw3", "inv-p").await;
    assert!(region.auth.validate(&t).await.is_ok());
    let (s, _) = ks(&tc, &admin).patch_json(&project, enabled(false)).await;
    assert_eq!(s, 200);
    assert!(region.auth.validate(&t).await.is_err(), "project disabled");
    let (s, _) = ks(&tc, &admin).patch_json(&project, enabled(true)).await;
    assert_eq!(s, 200);
    assert!(
        region.auth.validate(&t).await.is_err(),
        "re-enabling does not revive tokens"
    );
    let t = tc.token("inv-u", "pw3", "inv-p").await;
    assert!(region.auth.validate(&t).await.is_ok());
    assert_eq!(ks(&tc, &admin).delete(&project).await.0, 204);
    assert!(region.auth.validate(&t).await.is_err(), "project deleted");

    // User deletion.
    let p2 = create_project(&tc, &admin, json!({"name": "inv-p2"})).await;
    let grant2 = format!(
        "/projects/{}/users/{uid}/roles/{member}",
        p2["id"].as_str().unwrap()
    );
    assert_eq!(ks(&tc, &admin).put(&grant2).await.0, 204);
    let t = tc.token("inv-u", "pw3", "inv-p2").await;
    assert!(region.auth.validate(&t).await.is_ok());
    assert_eq!(ks(&tc, &admin).delete(&user).await.0, 204);
    assert!(region.auth.validate(&t).await.is_err(), "user deleted");
}

/// `POST /v3/auth/tokens` for `user` by name: the status and the error message, if any.
async fn login(tc: &TestCloud, user: &str, password: &str) -> (u16, String) {
    let r = post_token(tc, &password_body(by_name(user), password, None)).await;
    let status = r.status().as_u16();
    let v: Value = r.json().await.unwrap_or(Value::Null);
    (
        status,
        v["error"]["message"].as_str().unwrap_or("").to_string(),
    )
}

/// Keystone's account lockout: consecutive wrong passwords lock the account (even against the
/// right password) until the lockout ends or an admin enables the user; a success in between
/// clears the count; the regions' service account is never locked.
#[tokio::test]
async fn repeated_wrong_passwords_lock_the_account() {
    let tc = TestCloud::start_with(|c| {
        c.identity.lockout_failure_attempts = 3;
        c.identity.lockout_duration_seconds = 600;
    })
    .await;
    let admin = tc.admin_token().await;
    let uid = create_user(&tc, &admin, "locky", "right-pw").await;
    let ok = (201, String::new());
    let wrong = (401, UNAUTHORIZED.to_string());
    let locked = (401, format!("The account is locked for user: {uid}."));

    // Two failures, then a success: the count starts again.
    assert_eq!(login(&tc, "locky", "no").await, wrong);
    assert_eq!(login(&tc, "locky", "no").await, wrong);
    assert_eq!(login(&tc, "locky", "right-pw").await, ok);
    assert_eq!(login(&tc, "locky", "no").await, wrong);
    assert_eq!(login(&tc, "locky", "no").await, wrong);
    assert_eq!(login(&tc, "locky", "right-pw").await, ok);

    // Three in a row: locked, even with the right password.
    for _ in 0..3 {
        assert_eq!(login(&tc, "locky", "no").await, wrong);
    }
    assert_eq!(login(&tc, "locky", "right-pw").await, locked);
    assert_eq!(login(&tc, "locky", "no").await, locked);

    // An admin enabling the user unlocks it.
    let (s, _) = ks(&tc, &admin)
        .patch_json(&format!("/users/{uid}"), json!({"user": {"enabled": true}}))
        .await;
    assert_eq!(s, 200);
    assert_eq!(login(&tc, "locky", "right-pw").await, ok);

    // Locked again; once the lockout has passed (the last failure moved back in time), the
    // right password works and the count is clear.
    for _ in 0..3 {
        assert_eq!(login(&tc, "locky", "no").await, wrong);
    }
    assert_eq!(login(&tc, "locky", "right-pw").await, locked);
    let db = &tc.cloud.identity.as_ref().unwrap().db;
    sqlx::query("UPDATE users SET failed_auth_at = $1 WHERE id = $2")
        .bind(glimpse_types::db_time(
            glimpse_types::now() - std::time::Duration::from_secs(601),
        ))
        .bind(&uid)
        .execute(&db.pool)
        .await
        .unwrap();
    assert_eq!(login(&tc, "locky", "right-pw").await, ok);
    assert_eq!(login(&tc, "locky", "no").await, wrong);
    assert_eq!(login(&tc, "locky", "right-pw").await, ok);

    // Unknown users are never "locked" (nothing to reveal), and the service account is exempt.
    for _ in 0..4 {
        assert_eq!(login(&tc, "nobody-here", "no").await, wrong);
    }
    let service = &tc.cloud.config.identity.service_user;
    common::replication::ensure_service_account(&tc).await;
    for _ in 0..4 {
        assert_eq!(login(&tc, service, "no").await, wrong);
    }
    assert!(tc.cloud.regions[0].service.token().await.is_ok());
}

/// keystonemiddleware's `X-Service-Token` with Glimpse's own identity: the service token must be
/// valid and carry the `service` role (else 401, whatever the user's token); a service may
/// validate other users' tokens; `allow_expired` answers an expired token (the revoked flag is
/// read before the expiry, so revocation still wins).
#[tokio::test]
async fn service_tokens_need_the_service_role_and_allow_expired_tokens() {
    let tc = TestCloud::start().await;
    let admin = tc.admin_token().await;
    let (s, v) = ks(&tc, &admin)
        .post_json("/roles", json!({"role": {"name": "service"}}))
        .await;
    assert_eq!(s, 201, "{v}");
    let (pid, member) = tc.user_in_new_project("member", "region-one").await;
    let service = tc.user_in(&pid, "service").await;
    let other = tc.user_in(&pid, "member").await;
    let images = format!("{}/v2/images", tc.image("region-one"));
    let get = |svc: String| {
        let rb = tc.http.get(&images).header("x-auth-token", &member);
        async move {
            rb.header("x-service-token", svc)
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(get(service.clone()).await, 200);
    assert_eq!(get(other.clone()).await, 401);
    assert_eq!(get("not-a-token".into()).await, 401);
    assert_eq!(
        tc.auth_tokens(Method::GET, "", &service, &member)
            .await
            .status(),
        200
    );
    assert_eq!(
        tc.auth_tokens(Method::GET, "", &other, &member)
            .await
            .status(),
        403
    );

    // Born expired (lifetime 0): refused, but answered with allow_expired unless revoked.
    let tc = TestCloud::start_with(|c| c.identity.token_ttl_seconds = 0).await;
    let (token, _) = issue(&tc, &admin_scoped_body(&tc)).await;
    let identity = tc.cloud.identity.as_ref().unwrap();
    assert!(identity.token_info(&token).await.is_err());
    let info = identity.token_info_allow_expired(&token).await.unwrap();
    assert_eq!(info.expires_at, info.issued_at);
}

/// A region validating remotely (as beside an operator's Keystone) asks identity once for a
/// busy token whose cache entry is missing, however many requests carry it at that moment:
/// 32 concurrent validations, one `GET /v3/auth/tokens`.
#[tokio::test]
async fn concurrent_remote_validations_of_one_token_ask_identity_once() {
    use glimpse_core::auth::{RemoteValidator, TokenValidator};
    use glimpse_core::service::{Password, ServiceAccount};
    let tc = TestCloud::start().await;
    let service = ServiceAccount::new(
        &tc.identity(),
        "admin",
        Password::Fixed(tc.admin_password()),
        "admin",
    );
    let remote = std::sync::Arc::new(RemoteValidator::new(
        std::sync::Arc::new(service),
        std::time::Duration::from_secs(60),
    ));
    let (_, token) = tc.user_in_new_project("member", "region-one").await;
    let validations = || async {
        let text = tc
            .http
            .get(format!("{}/metrics", tc.base))
            .send()
            .await
            .unwrap();
        let text = text.text().await.unwrap();
        text.lines()
            .filter(|l| l.starts_with("glimpse_http_requests_total{") && l.contains("GET"))
            .filter(|l| l.contains("auth/tokens") && l.contains("status=\"200\""))
            .map(|l| l.rsplit(' ').next().unwrap().parse::<u64>().unwrap())
            .sum::<u64>()
    };
    let before = validations().await;
    let all = (0..32).map(|_| {
        let (remote, token) = (remote.clone(), token.clone());
        tokio::spawn(async move { remote.validate(&token).await.map(|c| c.user_id) })
    });
    let users: Vec<String> = futures::future::join_all(all)
        .await
        .into_iter()
        .map(|r| r.unwrap().unwrap())
        .collect();
    assert!(users.windows(2).all(|w| w[0] == w[1]));
    assert_eq!(validations().await - before, 1);
}
