//! End-to-end tests of the identity admin API (projects with home regions, users, roles,
//! grants, role assignments, regions, domains) and its policy, bootstrap idempotence, and the
//! real `openstack` CLI (`GLIMPSE_OPENSTACK_CLI` or `openstack` on PATH; skipped without it
//! unless `CI=true`).

use crate::common;

use common::identity::*;
use common::osc::{Osc, openstack_cli};
use common::{TempDir, TestCloud};
use reqwest::Method;
use serde_json::{Value, json};

#[tokio::test]
async fn readers_and_members_cannot_use_the_admin_api() {
    let tc = TestCloud::start().await;
    let admin = tc.admin_token().await;
    let (pid, reader) = tc.user_in_new_project("reader", "region-one").await;
    let (other_pid, member) = tc.user_in_new_project("member", "region-two").await;
    let r = tc.auth_tokens(Method::GET, "", &reader, &reader).await;
    let info: Value = r.json().await.unwrap();
    let my_id = info["token"]["user"]["id"].as_str().unwrap().to_string();
    assert_eq!(info["token"]["roles"].as_array().unwrap().len(), 1);

    let project = format!("/projects/{pid}");
    let my_roles = format!("{project}/users/{my_id}/roles");
    let other_role = format!("/projects/{other_pid}/users/{my_id}/roles/x");
    let evil = |kind: &str| Some(json!({ kind: {"name": "evil"} }));
    for token in [&reader, &member] {
        for (method, path, body) in [
            (Method::GET, "/projects", None),
            (Method::POST, "/projects", evil("project")),
            (Method::GET, "/users", None),
            (Method::POST, "/users", evil("user")),
            (Method::GET, "/roles", None),
            (Method::POST, "/roles", evil("role")),
            (Method::GET, "/role_assignments", None),
            (
                Method::PATCH,
                project.as_str(),
                Some(json!({"project": {"name": "x"}})),
            ),
            (Method::DELETE, project.as_str(), None),
            (Method::GET, my_roles.as_str(), None),
            (Method::PUT, other_role.as_str(), None),
            (
                Method::POST,
                "/regions",
                Some(json!({"region": {"id": "evil"}})),
            ),
            (Method::DELETE, "/regions/region-one", None),
            (Method::GET, "/services", None),
            (Method::GET, "/endpoints", None),
        ] {
            let (s, v) = call(&tc, method.clone(), path, Some(token), body).await;
            assert_error(s, &v, 403, "Forbidden");
        }
    }
    // A user may read itself, its projects, the project it is scoped to, regions, the domain.
    let as_reader = ks(&tc, &reader);
    assert_eq!(as_reader.get(&format!("/users/{my_id}")).await.0, 200);
    let (s, v) = as_reader.get(&format!("/users/{my_id}/projects")).await;
    assert_eq!(s, 200);
    assert_eq!(v["projects"][0]["id"], pid);
    let (s, v) = as_reader.get("/auth/projects").await;
    assert_eq!(s, 200);
    assert_eq!(v["projects"].as_array().unwrap().len(), 1);
    assert_eq!(as_reader.get(&project).await.0, 200);
    let (s, v) = as_reader.get(&format!("/projects/{other_pid}")).await;
    assert_error(s, &v, 403, "Forbidden");
    assert_eq!(as_reader.get("/regions").await.0, 200);
    assert_eq!(as_reader.get("/domains/default").await.0, 200);
    // Another user's token cannot be inspected or revoked by a non-admin.
    assert_eq!(validate(&tc, &reader, &member).await, 403);
    // The admin still can.
    assert_eq!(validate(&tc, &admin, &member).await, 200);
}

#[tokio::test]
async fn project_user_role_crud() {
    let tc = TestCloud::start().await;
    let admin = tc.admin_token().await;

    // Projects.
    let p = create_project(
        &tc,
        &admin,
        json!({"name": "crud-p", "description": "d", "domain_id": "default",
               "home_region": "region-two", "cost_center": "42"}),
    )
    .await;
    let pid = p["id"].as_str().unwrap().to_string();
    assert_eq!(p["name"], "crud-p");
    assert_eq!(p["domain_id"], "default");
    assert_eq!(p["enabled"], true);
    assert_eq!(p["home_region"], "region-two");
    assert_eq!(p["cost_center"], "42");
    assert_eq!(
        p["links"]["self"],
        format!("{}/projects/{pid}", tc.identity())
    );
    let (s, v) = ks(&tc, &admin)
        .post_json("/projects", json!({"project": {"name": "crud-p"}}))
        .await;
    assert_error(s, &v, 409, "Conflict");
    let (s, v) = ks(&tc, &admin).get("/projects?name=crud-p").await;
    assert_eq!(s, 200);
    assert_eq!(v["projects"].as_array().unwrap().len(), 1);
    assert!(v["links"]["next"].is_null() && v["links"]["self"].is_string());
    let (_, v) = ks(&tc, &admin).get("/projects?enabled=false").await;
    assert_eq!(v["projects"].as_array().unwrap().len(), 0);
    let (_, v) = ks(&tc, &admin).get("/projects?domain_id=default").await;
    assert!(v["projects"].as_array().unwrap().len() >= 4); // admin, demo-one, demo-two, crud-p
    let (s, v) = ks(&tc, &admin)
        .patch_json(
            &format!("/projects/{pid}"),
            json!({"project": {"name": "crud-p2", "description": "d2", "cost_center": null}}),
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(v["project"]["name"], "crud-p2");
    assert_eq!(v["project"]["description"], "d2");
    assert!(v["project"].get("cost_center").is_none());
    let (s, v) = ks(&tc, &admin).get("/projects/nope").await;
    assert_eq!(s, 404);
    assert_eq!(
        v,
        json!({"error": {"code": 404, "title": "Not Found", "message": "Could not find project: nope."}})
    );

    // Users.
    let (s, v) = ks(&tc, &admin)
        .post_json(
            "/users",
            json!({"user": {"name": "crud-u", "password": "pw", "email": "u@example.com",
                             "description": "a user", "default_project_id": pid}}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let u = &v["user"];
    let uid = u["id"].as_str().unwrap().to_string();
    assert_eq!(u["email"], "u@example.com");
    assert_eq!(u["description"], "a user");
    assert_eq!(u["default_project_id"], pid);
    assert_eq!(u["domain_id"], "default");
    assert!(u.get("password").is_none() && u.get("password_hash").is_none());
    let (s, v) = ks(&tc, &admin)
        .post_json("/users", json!({"user": {"name": "crud-u"}}))
        .await;
    assert_error(s, &v, 409, "Conflict");
    let (_, v) = ks(&tc, &admin).get("/users?name=crud-u").await;
    assert_eq!(v["users"][0]["id"], uid);
    let (s, v) = ks(&tc, &admin).get("/users/nope").await;
    assert_eq!(v["error"]["message"], "Could not find user: nope.");
    assert_eq!(s, 404);
    let (s, v) = ks(&tc, &admin)
        .patch_json(
            &format!("/users/{uid}"),
            json!({"user": {"email": null, "enabled": true}}),
        )
        .await;
    assert_eq!(s, 200);
    assert!(v["user"].get("email").is_none());

    // Roles.
    let (s, v) = ks(&tc, &admin).get("/roles").await;
    assert_eq!(s, 200);
    let names: Vec<&str> = common::http::strings(&v["roles"], "name");
    for n in ["admin", "member", "reader"] {
        assert!(names.contains(&n), "{names:?}");
    }
    let (s, v) = ks(&tc, &admin)
        .post_json("/roles", json!({"role": {"name": "auditor"}}))
        .await;
    assert_eq!(s, 201);
    let auditor = v["role"]["id"].as_str().unwrap().to_string();
    let (s, _) = ks(&tc, &admin)
        .post_json("/roles", json!({"role": {"name": "auditor"}}))
        .await;
    assert_eq!(s, 409);
    let (s, v) = ks(&tc, &admin).get(&format!("/roles/{auditor}")).await;
    assert_eq!(
        (s.as_u16(), v["role"]["name"].as_str()),
        (200, Some("auditor"))
    );
    let member = role_id(&tc, &admin, "member").await;
    let (s, v) = ks(&tc, &admin).delete(&format!("/roles/{member}")).await;
    assert_error(s, &v, 403, "Forbidden");

    // Grants.
    let grant = |r: &str| format!("/projects/{pid}/users/{uid}/roles/{r}");
    let (s, v) = ks(&tc, &admin).get(&grant(&member)).await;
    assert_error(s, &v, 404, "Not Found");
    assert_eq!(ks(&tc, &admin).put(&grant(&member)).await.0, 204);
    assert_eq!(ks(&tc, &admin).put(&grant(&member)).await.0, 204);
    assert_eq!(ks(&tc, &admin).put(&grant(&auditor)).await.0, 204);
    assert_eq!(ks(&tc, &admin).get(&grant(&member)).await.0, 204);
    assert_eq!(ks(&tc, &admin).head(&grant(&member)).await.0, 204);
    let (s, v) = ks(&tc, &admin)
        .put(&format!("/projects/{pid}/users/{uid}/roles/nope"))
        .await;
    assert_eq!(
        (s.as_u16(), v["error"]["message"].as_str()),
        (404, Some("Could not find role: nope."))
    );
    let (s, v) = ks(&tc, &admin)
        .get(&format!("/projects/{pid}/users/{uid}/roles"))
        .await;
    assert_eq!(s, 200);
    assert_eq!(v["roles"].as_array().unwrap().len(), 2);
    // The token carries the custom role and the implied reader role.
    let t = tc.token("crud-u", "pw", "crud-p2").await;
    let caller = tc.cloud.regions[0].auth.validate(&t).await.unwrap();
    let mut roles = caller.roles.clone();
    roles.sort();
    assert_eq!(roles, ["auditor", "member", "reader"]);
    // No-scope request: the default project.
    let (_, b) = issue(&tc, &password_body(by_name("crud-u"), "pw", None)).await;
    assert_eq!(b["token"]["project"]["id"], pid);

    // Role assignments.
    let q = format!("/role_assignments?user.id={uid}&scope.project.id={pid}");
    let (s, v) = ks(&tc, &admin).get(&q).await;
    assert_eq!(s, 200);
    let ra = v["role_assignments"].as_array().unwrap();
    assert_eq!(ra.len(), 2);
    assert!(ra.iter().all(|a| a["user"]["id"] == uid.as_str() && a["scope"]["project"]["id"] == pid.as_str()));
    let (_, v) = ks(&tc, &admin)
        .get(&format!("{q}&role.id={member}&include_names=True"))
        .await;
    let ra = v["role_assignments"].as_array().unwrap();
    assert_eq!(ra.len(), 1);
    assert_eq!(ra[0]["role"]["name"], "member");
    assert_eq!(ra[0]["user"]["name"], "crud-u");
    assert_eq!(ra[0]["scope"]["project"]["name"], "crud-p2");
    assert_eq!(ra[0]["user"]["domain"]["id"], "default");
    let (_, v) = ks(&tc, &admin).get(&format!("{q}&effective")).await;
    assert_eq!(v["role_assignments"].as_array().unwrap().len(), 3, "{v}");
    let (_, v) = ks(&tc, &admin).get(&format!("/users/{uid}/projects")).await;
    assert_eq!(v["projects"][0]["id"], pid);

    // Removing a custom role removes its grants.
    assert_eq!(
        ks(&tc, &admin).delete(&format!("/roles/{auditor}")).await.0,
        204
    );
    let (_, v) = ks(&tc, &admin).get(&q).await;
    assert_eq!(v["role_assignments"].as_array().unwrap().len(), 1);
    assert_eq!(ks(&tc, &admin).delete(&grant(&member)).await.0, 204);
    assert_eq!(ks(&tc, &admin).delete(&grant(&member)).await.0, 404);

    // Deletes.
    assert_eq!(
        ks(&tc, &admin).delete(&format!("/users/{uid}")).await.0,
        204
    );
    assert_eq!(ks(&tc, &admin).get(&format!("/users/{uid}")).await.0, 404);
    assert_eq!(
        ks(&tc, &admin).delete(&format!("/projects/{pid}")).await.0,
        204
    );
    assert_eq!(
        ks(&tc, &admin).delete(&format!("/projects/{pid}")).await.0,
        404
    );
}

#[tokio::test]
async fn projects_have_a_home_region() {
    let tc = TestCloud::start().await;
    let admin = tc.admin_token().await;
    let p = create_project(&tc, &admin, json!({"name": "home-default"})).await;
    assert_eq!(p["home_region"], "region-one");
    let p2 = create_project(
        &tc,
        &admin,
        json!({"name": "home-two", "home_region": "region-two"}),
    )
    .await;
    let (_, v) = ks(&tc, &admin)
        .get(&format!("/projects/{}", p2["id"].as_str().unwrap()))
        .await;
    assert_eq!(v["project"]["home_region"], "region-two");
    let (s, v) = ks(&tc, &admin)
        .post_json(
            "/projects",
            json!({"project": {"name": "home-bad", "home_region": "region-nine"}}),
        )
        .await;
    assert_error(s, &v, 400, "Bad Request");
    let path = format!("/projects/{}", p["id"].as_str().unwrap());
    let (s, v) = ks(&tc, &admin)
        .patch_json(&path, json!({"project": {"home_region": "region-two"}}))
        .await;
    assert_eq!(s, 200);
    assert_eq!(v["project"]["home_region"], "region-two");
    let (s, _) = ks(&tc, &admin)
        .patch_json(&path, json!({"project": {"home_region": "nowhere"}}))
        .await;
    assert_eq!(s, 400);
    // Bootstrap's demo projects live in their regions.
    let (_, v) = ks(&tc, &admin).get("/projects?name=demo-two").await;
    assert_eq!(v["projects"][0]["home_region"], "region-two");
    let (_, v) = ks(&tc, &admin).get("/projects?name=demo-one").await;
    assert_eq!(v["projects"][0]["home_region"], "region-one");
    let (_, v) = ks(&tc, &admin).get("/projects?name=admin").await;
    assert_eq!(v["projects"][0]["home_region"], "region-one");
}

#[tokio::test]
async fn regions_and_domains() {
    let tc = TestCloud::start().await;
    let admin = tc.admin_token().await;
    let (s, v) = ks(&tc, &admin).get("/regions").await;
    assert_eq!(s, 200);
    let ids: Vec<&str> = common::http::strings(&v["regions"], "id");
    assert_eq!(ids, ["region-one", "region-two"]);
    let (s, v) = ks(&tc, &admin)
        .post_json(
            "/regions",
            json!({"region": {"id": "r-x", "description": "x"}}),
        )
        .await;
    assert_eq!(s, 201);
    assert_eq!(v["region"]["id"], "r-x");
    assert_eq!(
        ks(&tc, &admin)
            .post_json("/regions", json!({"region": {"id": "r-x"}}))
            .await
            .0,
        409
    );
    let (s, v) = ks(&tc, &admin)
        .post_json(
            "/regions",
            json!({"region": {"id": "r-y", "parent_region_id": "r-x"}}),
        )
        .await;
    assert_eq!(
        (s.as_u16(), v["region"]["parent_region_id"].as_str()),
        (201, Some("r-x"))
    );
    let (_, v) = ks(&tc, &admin).get("/regions?parent_region_id=r-x").await;
    assert_eq!(v["regions"].as_array().unwrap().len(), 1);
    let (s, v) = ks(&tc, &admin)
        .patch_json("/regions/r-x", json!({"region": {"description": "new"}}))
        .await;
    assert_eq!(
        (s.as_u16(), v["region"]["description"].as_str()),
        (200, Some("new"))
    );
    assert_eq!(ks(&tc, &admin).delete("/regions/r-x").await.0, 409);
    assert_eq!(ks(&tc, &admin).delete("/regions/r-y").await.0, 204);
    assert_eq!(ks(&tc, &admin).delete("/regions/r-x").await.0, 204);
    let (s, v) = ks(&tc, &admin).get("/regions/r-x").await;
    assert_eq!(
        (s.as_u16(), v["error"]["message"].as_str()),
        (404, Some("Could not find region: r-x."))
    );
    let (s, v) = ks(&tc, &admin).delete("/regions/region-one").await;
    assert_error(s, &v, 409, "Conflict");

    let (s, v) = ks(&tc, &admin).get("/domains").await;
    assert_eq!(s, 200);
    assert_eq!(v["domains"][0]["id"], "default");
    assert_eq!(v["domains"][0]["name"], "Default");
    let (_, v) = ks(&tc, &admin).get("/domains?name=Default").await;
    assert_eq!(v["domains"].as_array().unwrap().len(), 1);
    let (_, v) = ks(&tc, &admin).get("/domains?name=Other").await;
    assert_eq!(v["domains"].as_array().unwrap().len(), 0);
    let (s, v) = ks(&tc, &admin).get("/domains/default").await;
    assert_eq!(
        (s.as_u16(), v["domain"]["name"].as_str()),
        (200, Some("Default"))
    );
    assert_eq!(ks(&tc, &admin).get("/domains/Default").await.0, 404);
}

/// Reads `password:` of one cloud from a clouds.yaml written by bootstrap.
fn cloud_password(yaml: &str, cloud: &str) -> String {
    let mut current = "";
    for line in yaml.lines() {
        if let Some(name) = line.strip_prefix("  ").and_then(|l| l.strip_suffix(':'))
            && !name.starts_with(' ')
        {
            current = name;
        }
        if current == cloud
            && let Some(v) = line.trim().strip_prefix("password: ")
        {
            return serde_json::from_str(v).unwrap();
        }
    }
    panic!("no password for {cloud} in clouds.yaml:\n{yaml}");
}

async fn counts(tc: &TestCloud, admin: &str) -> (usize, usize, usize, usize) {
    let mut out = vec![];
    for path in ["/projects", "/users", "/roles", "/role_assignments"] {
        let (s, v) = ks(tc, admin).get(path).await;
        assert_eq!(s, 200);
        let key = path.trim_start_matches('/');
        out.push(v[key].as_array().unwrap().len());
    }
    (out[0], out[1], out[2], out[3])
}

#[tokio::test]
async fn bootstrap_is_idempotent() {
    let dir = TempDir::new();
    let data = dir.0.join("data");
    let first = TestCloud::start_in(data.clone(), |_| {}).await;
    let admin_pw = first.admin_password();
    let clouds = std::fs::read_to_string(data.join("clouds.yaml")).unwrap();
    for cloud in ["glimpse-admin", "glimpse-demo-one", "glimpse-demo-two"] {
        assert!(clouds.contains(&format!("  {cloud}:\n")), "{clouds}");
    }
    assert_eq!(cloud_password(&clouds, "glimpse-admin"), admin_pw);
    assert!(clouds.contains(&format!("auth_url: \"{}\"", first.identity())));
    assert!(clouds.contains("region_name: \"region-two\""));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        for f in ["clouds.yaml", "admin-password", "service-password"] {
            let mode = std::fs::metadata(data.join(f))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{f}");
        }
    }
    let demo_pw = cloud_password(&clouds, "glimpse-demo-two");
    let t = first.token("demo-two", &demo_pw, "demo-two").await;
    let caller = first.cloud.regions[0].auth.validate(&t).await.unwrap();
    assert!(caller.is_member() && !caller.is_admin());
    let admin = first.admin_token().await;
    let before = counts(&first, &admin).await;
    // admin, demo-one, demo-two and the service account (with their grants); 3 roles.
    assert_eq!(before, (4, 4, 3, 4));
    let service_pw = std::fs::read_to_string(data.join("service-password")).unwrap();
    let t = first
        .token("glimpse-service", service_pw.trim(), "service")
        .await;
    assert!(
        first.cloud.regions[1]
            .auth
            .validate(&t)
            .await
            .unwrap()
            .is_admin()
    );
    drop(first);

    let second = TestCloud::start_in(data.clone(), |_| {}).await;
    assert_eq!(second.admin_password(), admin_pw);
    assert_eq!(
        std::fs::read_to_string(data.join("service-password")).unwrap(),
        service_pw
    );
    assert_eq!(
        std::fs::read_to_string(data.join("clouds.yaml")).unwrap(),
        clouds
    );
    let admin = second.admin_token().await;
    assert_eq!(counts(&second, &admin).await, before);
    second.token("demo-two", &demo_pw, "demo-two").await;
    drop(second);

    // A missing clouds.yaml is written again, with working passwords.
    std::fs::remove_file(data.join("clouds.yaml")).unwrap();
    let third = TestCloud::start_in(data.clone(), |_| {}).await;
    let rewritten = std::fs::read_to_string(data.join("clouds.yaml")).unwrap();
    assert_eq!(cloud_password(&rewritten, "glimpse-admin"), admin_pw);
    let demo_pw2 = cloud_password(&rewritten, "glimpse-demo-one");
    third.token("demo-one", &demo_pw2, "demo-one").await;
    let admin = third.admin_token().await;
    assert_eq!(counts(&third, &admin).await, before);
}

#[tokio::test]
async fn real_openstack_cli() {
    let Some(cli) = openstack_cli() else {
        return;
    };
    let tc = TestCloud::start().await;
    let osc = Osc::new(cli, &tc);
    let demo = ["--os-cloud", "glimpse-demo-one"];
    let admin = ["--os-cloud", "glimpse-admin"];
    // `base` then the words of the command line `line`.
    let with = |base: &[&'static str], line: &'static str| -> Vec<&'static str> {
        base.iter()
            .copied()
            .chain(line.split_whitespace())
            .collect()
    };
    let admin_json = async |line: &'static str| osc.json(&with(&admin, line)).await;
    let admin_run = async |line: &'static str| osc.run(&with(&admin, line)).await;

    let t = osc.json(&with(&demo, "token issue")).await;
    assert_eq!(t["id"].as_str().unwrap().len(), 64, "{t}");
    assert_eq!(t["project_id"].as_str().unwrap().len(), 32, "{t}");
    assert!(t["expires"].is_string(), "{t}");

    let cat = admin_json("catalog list").await;
    let cat = cat.as_array().unwrap();
    for ty in [
        "identity",
        "image",
        "compute",
        "volumev3",
        "block-storage",
        "ims",
        "kms",
    ] {
        let svc = cat
            .iter()
            .find(|s| s["Type"] == ty)
            .unwrap_or_else(|| panic!("{ty} missing from catalog list: {cat:?}"));
        let eps = svc["Endpoints"].to_string();
        assert!(
            eps.contains("region-one") && eps.contains("region-two"),
            "{ty}: {eps}"
        );
    }

    let p = admin_json("project create --property home_region=region-two cli-p1").await;
    assert_eq!(p["name"], "cli-p1", "{p}");
    assert_eq!(p["home_region"], "region-two", "{p}");
    let u = admin_json("user create --password x --email u1@example.com cli-u1").await;
    assert_eq!(u["name"], "cli-u1", "{u}");
    admin_run("role add --user cli-u1 --project cli-p1 member").await;
    let ra = admin_json("role assignment list --user cli-u1 --project cli-p1 --names").await;
    assert_eq!(ra[0]["Role"], "member", "{ra}");
    assert_eq!(ra[0]["User"], "cli-u1@Default", "{ra}");
    assert_eq!(ra[0]["Project"], "cli-p1@Default", "{ra}");

    let as_u1 = |rest: &[&'static str]| -> Vec<String> {
        let mut v: Vec<String> = [
            "--os-auth-url",
            &tc.identity(),
            "--os-username",
            "cli-u1",
            "--os-password",
            "x",
            "--os-project-name",
            "cli-p1",
            "--os-user-domain-name",
            "Default",
            "--os-project-domain-name",
            "Default",
            "--os-identity-api-version",
            "3",
            "--os-region-name",
            "region-two",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        v.extend(rest.iter().map(|s| s.to_string()));
        v
    };
    let args = as_u1(&["token", "issue"]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let t1 = osc.json(&args).await;
    assert_eq!(t1["project_id"], p["id"], "{t1}");
    assert_eq!(t1["user_id"], u["id"], "{t1}");

    // Listings and lookups by name the CLI does.
    let projects = admin_json("project list").await;
    assert!(common::http::any(&projects, "Name", "cli-p1"), "{projects}");
    let users = admin_json("user list").await;
    assert!(common::http::any(&users, "Name", "cli-u1"), "{users}");
    let roles = admin_json("role list").await;
    assert!(common::http::any(&roles, "Name", "reader"), "{roles}");
    let shown = admin_json("project show cli-p1").await;
    assert_eq!(shown["home_region"], "region-two", "{shown}");
    let shown = admin_json("user show cli-u1").await;
    assert_eq!(shown["email"], "u1@example.com", "{shown}");
    let regions = admin_json("region list").await;
    assert_eq!(regions.as_array().unwrap().len(), 2, "{regions}");
    admin_run("region create --description extra cli-r").await;
    let r = admin_json("region show cli-r").await;
    assert_eq!(r["description"], "extra", "{r}");
    admin_run("region delete cli-r").await;
    let eps = admin_json("endpoint list --interface public").await;
    assert_eq!(eps.as_array().unwrap().len(), 14, "{eps}");
    let svcs = admin_json("service list").await;
    assert_eq!(svcs.as_array().unwrap().len(), 7, "{svcs}");
    admin_run("role create cli-role").await;
    admin_run("role delete cli-role").await;
    admin_run("project set --description changed cli-p1").await;
    admin_run("user set --password y cli-u1").await;

    // Token revocation through the CLI.
    let t = admin_json("token issue").await;
    let tid = t["id"].as_str().unwrap().to_string();
    assert_eq!(validate(&tc, &tid, &tid).await, 200);
    let revoke: Vec<&str> = with(&admin, "token revoke")
        .into_iter()
        .chain([tid.as_str()])
        .collect();
    osc.run(&revoke).await;
    assert_eq!(validate(&tc, &tid, &tid).await, 401);

    admin_run("role remove --user cli-u1 --project cli-p1 member").await;
    admin_run("user delete cli-u1").await;
    admin_run("project delete cli-p1").await;
    let projects = admin_json("project list").await;
    assert!(!common::http::any(&projects, "Name", "cli-p1"));
}
