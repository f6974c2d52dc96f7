//! Glance's metadata definitions API (`/v2/metadefs`) and the minimal tasks API (`/v2/tasks`)
//! end to end over HTTP, against a whole cloud started in-process on 127.0.0.1:0: namespace,
//! object, property, tag and resource type association CRUD as admin (201/200/204, 409 on
//! duplicates, 404 on unknown names, 403 on protected deletes), list paging and filters, what a
//! project member may read (public and own namespaces) and may not do (every write is 403,
//! other projects' private namespaces 404), and tasks (admin only, URL imports refused 400).

use crate::common;

use common::TestCloud;
use common::glance::{Api, REGION, expect, expect_all};
use serde_json::{Value, json};

const NS: &str = "/v2/metadefs/namespaces";

async fn create_ns(api: &Api<'_>, body: Value) -> Value {
    let r = api.post(NS, body).await;
    expect(&r, 201, "create namespace");
    r.json()
}

/// `method` on each path under the namespace `ns` ("" for itself): every one answers `want`.
async fn expect_under(api: &Api<'_>, method: &str, ns: &str, under: &[&str], want: u16) {
    for sub in under {
        let path = format!("{NS}/{ns}{sub}");
        expect(&api.call(method, &path, None).await, want, &path);
    }
}

/// The length of the list `field` in `GET path`.
async fn count(api: &Api<'_>, path: String, field: &str) -> usize {
    api.get(&path).await.json()[field].as_array().unwrap().len()
}

#[tokio::test]
async fn namespaces_crud_as_admin() {
    let tc = TestCloud::start().await;
    let admin = Api::admin(&tc).await;

    let r = admin.get("/v2/metadefs/resource_types").await;
    expect(&r, 200, "resource types");
    let types = common::http::owned_strings(&r.json()["resource_types"], "name");
    for t in [
        "OS::Glance::Image",
        "OS::Cinder::Volume",
        "OS::Nova::Flavor",
        "OS::Nova::Server",
    ] {
        assert!(types.contains(&t.to_string()), "{t} in {types:?}");
    }

    let body = json!({
        "namespace": "Glimpse::Test", "display_name": "Test", "description": "d",
        "visibility": "public", "protected": true,
        "resource_type_associations": [{"name": "OS::Glance::Image", "prefix": "hw_"}],
        "properties": {"cpu": {"title": "CPU", "type": "string", "enum": ["a", "b"]}},
        "objects": [{"name": "obj", "required": ["cpu"],
                     "properties": {"cpu": {"title": "CPU", "type": "string"}}}],
        "tags": [{"name": "t1"}, {"name": "t2"}]
    });
    let r = admin.post(NS, body.clone()).await;
    expect(&r, 201, "create");
    assert!(
        r.header("location")
            .ends_with("/v2/metadefs/namespaces/Glimpse::Test"),
        "{}",
        r.header("location")
    );
    let ns = r.json();
    assert_eq!(ns["namespace"], "Glimpse::Test");
    assert_eq!(ns["visibility"], "public");
    assert_eq!(ns["protected"], true);
    assert_eq!(ns["self"], "/v2/metadefs/namespaces/Glimpse::Test");
    assert_eq!(ns["schema"], "/v2/schemas/metadefs/namespace");
    assert!(ns["owner"].as_str().is_some_and(|o| !o.is_empty()));
    assert!(ns["created_at"].as_str().unwrap().ends_with('Z'));
    let owner = ns["owner"].as_str().unwrap().to_string();

    // A duplicate name is 409.
    let r = admin.post(NS, json!({"namespace": "Glimpse::Test"})).await;
    expect(&r, 409, "duplicate");

    // Show returns everything it holds; the resource type view prefixes property names.
    let r = admin.get(&format!("{NS}/Glimpse::Test")).await;
    expect(&r, 200, "show");
    let d = r.json();
    assert_eq!(d["display_name"], "Test");
    assert_eq!(d["properties"]["cpu"]["enum"], json!(["a", "b"]));
    assert_eq!(d["objects"][0]["name"], "obj");
    assert_eq!(
        d["objects"][0]["self"],
        "/v2/metadefs/namespaces/Glimpse::Test/objects/obj"
    );
    assert_eq!(d["resource_type_associations"][0]["prefix"], "hw_");
    assert_eq!(d["tags"], json!([{"name": "t1"}, {"name": "t2"}]));
    let r = admin
        .get(&format!(
            "{NS}/Glimpse::Test?resource_type=OS::Glance::Image"
        ))
        .await;
    let d = r.json();
    assert!(d["properties"].get("hw_cpu").is_some(), "{d}");
    assert_eq!(d["objects"][0]["required"], json!(["hw_cpu"]));

    // Listed, with its associations.
    let r = admin.get(NS).await;
    expect(&r, 200, "list");
    let l = r.json();
    assert_eq!(l["first"], "/v2/metadefs/namespaces");
    assert_eq!(l["schema"], "/v2/schemas/metadefs/namespaces");
    let listed = &l["namespaces"][0];
    assert_eq!(listed["namespace"], "Glimpse::Test");
    assert_eq!(
        listed["resource_type_associations"][0]["name"],
        "OS::Glance::Image"
    );
    assert!(listed.get("objects").is_none());

    // Protected: no delete of it or of anything in it.
    let in_it = [
        "",
        "/objects/obj",
        "/properties/cpu",
        "/tags/t1",
        "/tags",
        "/resource_types/OS::Glance::Image",
    ];
    expect_under(&admin, "DELETE", "Glimpse::Test", &in_it, 403).await;

    // PUT replaces: absent `protected` is false, absent `visibility` private; renames.
    let r = admin
        .put(
            &format!("{NS}/Glimpse::Test"),
            json!({"namespace": "Glimpse::Renamed", "description": "new"}),
        )
        .await;
    expect(&r, 200, "update");
    let u = r.json();
    assert_eq!(u["namespace"], "Glimpse::Renamed");
    assert_eq!(u["protected"], false);
    assert_eq!(u["visibility"], "private");
    assert_eq!(u["owner"], owner.as_str());
    assert!(u.get("display_name").is_none());
    let (old, moved) = (
        format!("{NS}/Glimpse::Test"),
        format!("{NS}/Glimpse::Renamed/objects/obj"),
    );
    expect_all(
        &admin,
        [
            ("GET", old, None, 404, "old name"),
            ("GET", moved, None, 200, "contents follow the rename"),
        ],
    )
    .await;

    // Renaming onto a taken name is 409.
    create_ns(&admin, json!({"namespace": "Other"})).await;
    let taken = json!({"namespace": "Glimpse::Renamed"});
    let r = admin.put(&format!("{NS}/Other"), taken).await;
    expect(&r, 409, "rename onto a taken name");

    // Delete cascades; then everything is 404.
    let r = admin.delete(&format!("{NS}/Glimpse::Renamed")).await;
    expect(&r, 204, "delete");
    assert!(r.text.is_empty());
    let all = [
        "",
        "/objects",
        "/objects/obj",
        "/properties",
        "/tags",
        "/resource_types",
    ];
    expect_under(&admin, "GET", "Glimpse::Renamed", &all, 404).await;
    let r = admin.delete(&format!("{NS}/Glimpse::Renamed")).await;
    expect(&r, 404, "delete again");
    // A namespace created again under the old name starts empty.
    create_ns(&admin, json!({"namespace": "Glimpse::Renamed"})).await;
    let r = admin.get(&format!("{NS}/Glimpse::Renamed/objects")).await;
    assert_eq!(r.json()["objects"], json!([]));
}

#[tokio::test]
async fn objects_properties_tags_and_associations() {
    let tc = TestCloud::start().await;
    let admin = Api::admin(&tc).await;
    create_ns(&admin, json!({"namespace": "ns", "visibility": "public"})).await;
    let p = |s: &str| format!("{NS}/ns{s}");

    // Objects.
    let r = admin
        .post(
            &p("/objects"),
            json!({"name": "o1", "description": "first",
                    "properties": {"x": {"title": "X", "type": "integer", "minimum": 1}}}),
        )
        .await;
    expect(&r, 201, "create object");
    let o = r.json();
    assert_eq!(o["name"], "o1");
    assert_eq!(o["schema"], "/v2/schemas/metadefs/object");
    assert_eq!(o["properties"]["x"]["minimum"], 1);
    let o3_self = json!({"name": "o3", "self": "/x"});
    let post = |body: Value, want, what| ("POST", p("/objects"), Some(body), want, what);
    expect_all(
        &admin,
        [
            post(json!({"name": "o1"}), 409, "duplicate object"),
            post(json!({"name": "o2"}), 201, "second object"),
            post(o3_self, 403, "read-only attribute"),
            post(json!({"nom": "o3"}), 400, "schema violation"),
        ],
    )
    .await;
    let r = admin.get(&p("/objects")).await;
    expect(&r, 200, "list objects");
    let names: Vec<Value> = r.json()["objects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["name"].clone())
        .collect();
    assert_eq!(names.len(), 2);
    let r = admin
        .get(&p("/objects?sort_key=name&sort_dir=asc&limit=1"))
        .await;
    assert_eq!(r.json()["objects"][0]["name"], "o1");
    let r = admin.put(&p("/objects/o1"), json!({"name": "o2"})).await;
    expect(&r, 409, "rename onto o2");
    let rename = json!({"name": "renamed", "description": "new"});
    let r = admin.put(&p("/objects/o1"), rename).await;
    expect(&r, 200, "rename object");
    assert_eq!(r.json()["description"], "new");
    assert!(r.json().get("properties").is_none());
    let renamed = || p("/objects/renamed");
    expect_all(
        &admin,
        [
            ("GET", p("/objects/o1"), None, 404, "old object name"),
            ("DELETE", renamed(), None, 204, "delete object"),
            ("DELETE", renamed(), None, 404, "delete object again"),
            ("DELETE", p("/objects"), None, 204, "delete all objects"),
        ],
    )
    .await;
    assert_eq!(admin.get(&p("/objects")).await.json()["objects"], json!([]));
    let r = admin
        .post(&format!("{NS}/nope/objects"), json!({"name": "o"}))
        .await;
    expect(&r, 404, "object in an unknown namespace");

    // Resource type associations (a new type joins the catalogue).
    let flavor = json!({"name": "OS::Nova::Flavor", "prefix": "hw:"});
    let r = admin.post(&p("/resource_types"), flavor).await;
    expect(&r, 201, "associate");
    assert_eq!(r.json()["name"], "OS::Nova::Flavor");
    assert_eq!(r.json()["prefix"], "hw:");
    let associate = |name: &str, want, what| {
        let body = Some(json!({"name": name}));
        ("POST", p("/resource_types"), body, want, what)
    };
    expect_all(
        &admin,
        [
            associate("OS::Nova::Flavor", 409, "associate twice"),
            associate("Vendor::Thing", 201, "associate a new type"),
        ],
    )
    .await;
    let r = admin.get("/v2/metadefs/resource_types").await;
    assert!(r.text.contains("Vendor::Thing"));
    let r = admin.get(&p("/resource_types")).await;
    expect(&r, 200, "list associations");
    assert_eq!(
        r.json()["resource_type_associations"]
            .as_array()
            .unwrap()
            .len(),
        2
    );

    // Properties.
    let prop = json!({"name": "cpu_arch", "title": "Arch", "type": "string",
                      "enum": ["x86_64", "aarch64"]});
    let r = admin.post(&p("/properties"), prop.clone()).await;
    expect(&r, 201, "create property");
    assert_eq!(r.json()["title"], "Arch");
    let bad = json!({"name": "bad", "title": "B", "type": "text"});
    let post = |body: Value, want, what| ("POST", p("/properties"), Some(body), want, what);
    expect_all(
        &admin,
        [
            post(prop.clone(), 409, "duplicate property"),
            post(bad, 400, "bad property type"),
        ],
    )
    .await;
    let r = admin.get(&p("/properties/cpu_arch")).await;
    expect(&r, 200, "show property");
    assert_eq!(r.json()["name"], "cpu_arch");
    let r = admin
        .get(&p("/properties/hw:cpu_arch?resource_type=OS::Nova::Flavor"))
        .await;
    expect(&r, 200, "show property by prefixed name");
    let r = admin
        .get(&p("/properties/cpu_arch?resource_type=OS::Nova::Flavor"))
        .await;
    expect(&r, 404, "unprefixed name under a resource type");
    let r = admin
        .put(
            &p("/properties/cpu_arch"),
            json!({"name": "cpu_arch", "title": "Architecture", "type": "string"}),
        )
        .await;
    expect(&r, 200, "update property");
    assert_eq!(r.json()["title"], "Architecture");
    let r = admin.get(&p("/properties")).await;
    assert_eq!(r.json()["properties"]["cpu_arch"]["title"], "Architecture");
    let cpu_arch = p("/properties/cpu_arch");
    expect(&admin.delete(&cpu_arch).await, 204, "delete property");
    expect(&admin.get(&cpu_arch).await, 404, "deleted property");
    let r = admin.get(&p("/properties")).await;
    assert_eq!(r.json()["properties"], json!({}));

    // Tags: bulk create replaces, append adds, single create, rename, deletes.
    let tags = json!({"tags": [{"name": "a"}, {"name": "b"}, {"name": "c"}]});
    let r = admin.post(&p("/tags"), tags).await;
    expect(&r, 201, "bulk tags");
    assert_eq!(r.json()["tags"].as_array().unwrap().len(), 3);
    let twice = json!({"tags": [{"name": "x"}, {"name": "x"}]});
    let r = admin.post(&p("/tags"), twice).await;
    expect(&r, 409, "duplicate in a bulk");
    let tag_count = || count(&admin, p("/tags"), "tags");
    assert_eq!(tag_count().await, 3, "a failed bulk changes nothing");
    let append = [("x-openstack-append", "true")];
    let d = json!({"tags": [{"name": "d"}]});
    let r = admin.call_with("POST", &p("/tags"), Some(d), &append).await;
    expect(&r, 201, "append");
    assert_eq!(tag_count().await, 4);
    let r = admin
        .post(&p("/tags"), json!({"tags": [{"name": "only"}]}))
        .await;
    expect(&r, 201, "replace");
    assert_eq!(
        admin.get(&p("/tags")).await.json()["tags"],
        json!([{"name": "only"}])
    );
    let r = admin.call("POST", &p("/tags/single"), None).await;
    expect(&r, 201, "create one tag");
    assert_eq!(r.json()["name"], "single");
    assert!(r.json()["created_at"].is_string());
    let r = admin.call("POST", &p("/tags/single"), None).await;
    expect(&r, 409, "duplicate tag");
    let r = admin
        .put(&p("/tags/single"), json!({"name": "renamed"}))
        .await;
    expect(&r, 200, "rename tag");
    assert_eq!(r.json()["name"], "renamed");
    let renamed = || p("/tags/renamed");
    expect_all(
        &admin,
        [
            ("GET", renamed(), None, 200, "show tag"),
            ("DELETE", renamed(), None, 204, "delete tag"),
            ("GET", renamed(), None, 404, "deleted tag"),
            ("DELETE", p("/tags"), None, 204, "delete all tags"),
        ],
    )
    .await;
    assert_eq!(admin.get(&p("/tags")).await.json()["tags"], json!([]));

    // Dissociation.
    let flavor = p("/resource_types/OS::Nova::Flavor");
    for (want, what) in [(204, "dissociate"), (404, "dissociate again")] {
        expect(&admin.delete(&flavor).await, want, what);
    }
}

#[tokio::test]
async fn members_read_what_they_see_and_write_nothing() {
    let tc = TestCloud::start().await;
    let admin = Api::admin(&tc).await;
    let (pid, tok) = tc.user_in_new_project("member", REGION).await;
    let member = Api::new(&tc, tok);
    create_ns(&admin, json!({"namespace": "pub", "visibility": "public"})).await;
    create_ns(&admin, json!({"namespace": "priv"})).await;
    create_ns(
        &admin,
        json!({"namespace": "theirs", "owner": pid, "visibility": "private"}),
    )
    .await;
    for ns in ["pub", "priv", "theirs"] {
        let r = admin
            .post(&format!("{NS}/{ns}/objects"), json!({"name": "o"}))
            .await;
        expect(&r, 201, ns);
    }

    let r = member.get("/v2/metadefs/resource_types").await;
    expect(&r, 200, "member lists resource types");
    let r = member.get(NS).await;
    expect(&r, 200, "member lists namespaces");
    let mut seen = common::http::owned_strings(&r.json()["namespaces"], "namespace");
    seen.sort();
    assert_eq!(seen, vec!["pub".to_string(), "theirs".to_string()]);

    let readable = [
        "",
        "/objects",
        "/objects/o",
        "/properties",
        "/tags",
        "/resource_types",
    ];
    for ns in ["pub", "theirs"] {
        expect_under(&member, "GET", ns, &readable, 200).await;
    }
    // Another project's private namespace does not exist for the member, whatever the call.
    for (m, path, body) in [
        ("GET", "", None),
        ("GET", "/objects/o", None),
        ("PUT", "", Some(json!({"namespace": "priv"}))),
        ("DELETE", "", None),
        ("POST", "/objects", Some(json!({"name": "x"}))),
        ("POST", "/tags/x", None),
    ] {
        let r = member.call(m, &format!("{NS}/priv{path}"), body).await;
        expect(&r, 404, &format!("member {m} priv{path}"));
    }
    // Visible namespaces are read-only for non-admins.
    for ns in ["pub", "theirs"] {
        for (m, path, body) in [
            ("PUT", String::new(), Some(json!({"namespace": ns}))),
            ("DELETE", String::new(), None),
            ("POST", "/objects".into(), Some(json!({"name": "x"}))),
            ("PUT", "/objects/o".into(), Some(json!({"name": "o"}))),
            ("DELETE", "/objects/o".into(), None),
            ("DELETE", "/objects".into(), None),
            (
                "POST",
                "/properties".into(),
                Some(json!({"name": "p", "title": "P", "type": "string"})),
            ),
            (
                "POST",
                "/tags".into(),
                Some(json!({"tags": [{"name": "t"}]})),
            ),
            ("POST", "/tags/t".into(), None),
            (
                "POST",
                "/resource_types".into(),
                Some(json!({"name": "OS::Glance::Image"})),
            ),
        ] {
            let r = member.call(m, &format!("{NS}/{ns}{path}"), body).await;
            expect(&r, 403, &format!("member {m} {ns}{path}"));
        }
    }
    let r = member.post(NS, json!({"namespace": "mine"})).await;
    expect(&r, 403, "member creates a namespace");
    assert!(
        r.text
            .contains("You are not authorized to complete add_metadef_namespace action."),
        "{}",
        r.text
    );
    // A bad document is 400 before the policy check, as in Glance.
    let r = member.post(NS, json!({"display_name": "x"})).await;
    expect(&r, 400, "member posts a bad document");
}

#[tokio::test]
async fn namespace_lists_page_and_filter() {
    let tc = TestCloud::start().await;
    let admin = Api::admin(&tc).await;
    for (name, vis) in [("n1", "public"), ("n2", "private"), ("n3", "public")] {
        create_ns(&admin, json!({"namespace": name, "visibility": vis})).await;
    }
    let volume = json!({"name": "OS::Cinder::Volume"});
    let r = admin.post(&format!("{NS}/n2/resource_types"), volume).await;
    expect(&r, 201, "associate");

    let names = |v: &Value| common::http::owned_strings(&v["namespaces"], "namespace");
    let r = admin
        .get(&format!("{NS}?sort_key=namespace&sort_dir=asc&limit=2"))
        .await;
    expect(&r, 200, "page 1");
    let page = r.json();
    assert_eq!(names(&page), vec!["n1", "n2"]);
    assert_eq!(
        page["first"],
        "/v2/metadefs/namespaces?sort_key=namespace&sort_dir=asc&limit=2"
    );
    let next = page["next"].as_str().expect("next link").to_string();
    assert!(next.contains("marker=n2"), "{next}");
    let r = admin.get(&next).await;
    expect(&r, 200, "page 2");
    assert_eq!(names(&r.json()), vec!["n3"]);
    assert!(r.json().get("next").is_none());

    let r = admin.get(&format!("{NS}?visibility=private")).await;
    assert_eq!(names(&r.json()), vec!["n2"]);
    let r = admin
        .get(&format!(
            "{NS}?resource_types=OS::Cinder::Volume,OS::Nova::Server"
        ))
        .await;
    assert_eq!(names(&r.json()), vec!["n2"]);
    for bad in [
        "visibility=shared",
        "sort_dir=sideways",
        "limit=-1",
        "limit=many",
    ] {
        let r = admin.get(&format!("{NS}?{bad}")).await;
        expect(&r, 400, bad);
    }
    let r = admin.get(&format!("{NS}?marker=nope")).await;
    expect(&r, 404, "unknown marker");
}

#[tokio::test]
async fn tasks_are_admin_only_and_never_fetch_urls() {
    let tc = TestCloud::start().await;
    let admin = Api::admin(&tc).await;
    let member = Api::new(&tc, tc.user_in_new_project("member", REGION).await.1);
    let task = json!({"type": "import", "input": {
        "import_from": "http://tempest-dummy-img-file-1.qcow2",
        "import_from_format": "qcow2",
        "image_properties": {"container_format": "bare", "disk_format": "qcow2"}}});

    let json_accept = [("accept", "application/json")];
    let r = admin
        .call_with("POST", "/v2/tasks", Some(task.clone()), &json_accept)
        .await;
    expect(&r, 400, "URL import");
    assert_eq!(r.json()["title"], "Bad Request");
    let r = member.post("/v2/tasks", task).await;
    expect(&r, 403, "member creates a task");

    let r = admin.get("/v2/tasks").await;
    expect(&r, 200, "list tasks");
    assert_eq!(
        r.json(),
        json!({"tasks": [], "first": "/v2/tasks", "schema": "/v2/schemas/tasks"})
    );
    let r = admin.get("/v2/tasks?status=success&limit=5").await;
    expect(&r, 200, "filtered list");
    assert_eq!(r.json()["first"], "/v2/tasks?status=success&limit=5");
    let r = admin.get("/v2/tasks?status=bogus").await;
    expect(&r, 400, "bad status filter");
    let r = member.get("/v2/tasks").await;
    expect(&r, 403, "member lists tasks");

    let id = "8f1c8ab2-3c5e-4c0b-9d55-1b0a4a1f0c11";
    let r = admin.get(&format!("/v2/tasks/{id}")).await;
    expect(&r, 404, "unknown task");
    let r = member.get(&format!("/v2/tasks/{id}")).await;
    expect(&r, 403, "member shows a task");
    let r = admin.delete(&format!("/v2/tasks/{id}")).await;
    expect(&r, 405, "delete a task");
    assert_eq!(r.header("allow"), "GET");
}

#[tokio::test]
async fn edges_401_405_and_error_dialect() {
    let tc = TestCloud::start().await;
    let admin = Api::admin(&tc).await;
    let anonymous = Api {
        tc: &tc,
        token: None,
    };
    for path in [NS, "/v2/metadefs/resource_types", "/v2/tasks"] {
        let r = anonymous.get(path).await;
        expect(&r, 401, path);
    }
    for (m, path, allow) in [
        ("PATCH", NS.to_string(), "GET, POST"),
        ("POST", format!("{NS}/x"), "GET, PUT, DELETE"),
        ("PUT", format!("{NS}/x/tags"), "GET, POST, DELETE"),
        ("PATCH", format!("{NS}/x/tags/t"), "GET, POST, PUT, DELETE"),
        ("GET", format!("{NS}/x/resource_types/r"), "DELETE"),
        ("POST", "/v2/metadefs/resource_types".into(), "GET"),
        ("PUT", "/v2/tasks/x".into(), "GET, DELETE"),
    ] {
        let r = admin.call(m, &path, None).await;
        expect(&r, 405, &format!("{m} {path}"));
        assert_eq!(r.header("allow"), allow, "{m} {path}");
    }
    // Glance's negotiated error bodies.
    let json_accept = [("accept", "application/json")];
    let missing = format!("{NS}/missing");
    let r = admin.call_with("GET", &missing, None, &json_accept).await;
    expect(&r, 404, "missing namespace");
    let e = r.json();
    assert_eq!(e["code"], "404 Not Found");
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .starts_with("Metadata definition namespace=missing was not found."),
        "{e}"
    );
    let r = admin.get(&missing).await;
    assert!(r.header("content-type").starts_with("text/html"));
    let json_type = [("content-type", "application/json")];
    let r = admin.call_with("POST", NS, None, &json_type).await;
    expect(&r, 400, "no body");
    let r = admin.post(NS, json!({"namespace": "n", "extra": 1})).await;
    expect(&r, 400, "additional property");
    assert!(
        r.text.contains("Additional properties are not allowed"),
        "{}",
        r.text
    );
}
