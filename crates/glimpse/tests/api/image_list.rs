//! `GET /v2/images` end to end: filters (the ones Tempest's `ListUserImagesTest` uses and
//! Glance's `in:`, time and property filters), sorting in both syntaxes, `os_hidden`, paging
//! by following `next` links, and the 400s for bad parameters.

use crate::common;

use common::TestCloud;
use serde_json::{Value, json};

const REGION: &str = "region-one";

async fn get(tc: &TestCloud, token: &str, path: &str) -> (u16, Value) {
    let r = common::http::get(&tc.http, format!("{}{path}", tc.image(REGION)), token).await;
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

fn names(v: &Value) -> Vec<String> {
    v["images"]
        .as_array()
        .unwrap_or_else(|| panic!("no images in {v}"))
        .iter()
        .map(|i| i["name"].as_str().unwrap_or("").to_string())
        .collect()
}

async fn names_of(tc: &TestCloud, token: &str, query: &str) -> Vec<String> {
    let (s, v) = get(tc, token, &format!("/v2/images?{query}")).await;
    assert_eq!(s, 200, "{query}: {v}");
    names(&v)
}

/// Creates the fixture: six private images with sizes, formats, tags and a property, in this
/// creation order (so the default list is newest first: f, e, d, c, b, a).
async fn fixture(tc: &TestCloud, token: &str) -> Vec<String> {
    let specs = [
        ("a", "raw", 1024usize, ["x86", "linux"], "ubuntu"),
        ("b", "raw", 2048, ["x86", "windows"], "windows"),
        ("c", "ami", 3072, ["arm", "linux"], "ubuntu"),
        ("d", "ami", 4096, ["x86", "linux"], "debian"),
        ("e", "iso", 1500, ["arm", "bsd"], "freebsd"),
        ("f", "raw", 2500, ["x86", "linux"], "debian"),
    ];
    let mut ids = Vec::new();
    for (name, fmt, size, tags, distro) in specs {
        let r = tc
            .http
            .post(format!("{}/v2/images", tc.image(REGION)))
            .header("x-auth-token", token)
            .json(&json!({"name": name, "disk_format": fmt, "container_format": if fmt == "ami" { "ami" } else { "bare" },
                "visibility": "private", "tags": tags, "os_distro": distro}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        let v: Value = r.json().await.unwrap();
        let id = v["id"].as_str().unwrap().to_string();
        let data = if fmt == "iso" {
            None
        } else {
            Some(vec![0x11u8; size])
        };
        if let Some(data) = data {
            let image = tc.image(REGION);
            let (status, _) = common::glance::upload(&tc.http, &image, token, &id, data).await;
            assert_eq!(status, 204, "upload {name}");
        }
        ids.push(id);
    }
    ids
}

#[tokio::test]
async fn filters_sorting_paging() {
    let tc = TestCloud::start().await;
    let (pid, tok) = tc.user_in_new_project("member", REGION).await;
    let ids = fixture(&tc, &tok).await;

    assert_eq!(
        names_of(&tc, &tok, "").await,
        vec!["f", "e", "d", "c", "b", "a"]
    );
    assert_eq!(names_of(&tc, &tok, "name=c").await, vec!["c"]);
    assert_eq!(names_of(&tc, &tok, "name=in:a,c,zz").await, vec!["c", "a"]);
    assert_eq!(names_of(&tc, &tok, "status=queued").await, vec!["e"]);
    assert_eq!(
        names_of(&tc, &tok, "status=in:queued,active&sort=name:asc").await,
        vec!["a", "b", "c", "d", "e", "f"]
    );
    assert_eq!(names_of(&tc, &tok, "disk_format=ami").await, vec!["d", "c"]);
    assert_eq!(
        names_of(&tc, &tok, "container_format=bare&disk_format=raw").await,
        vec!["f", "b", "a"]
    );
    assert_eq!(
        names_of(&tc, &tok, "visibility=private&sort=name:asc&limit=2").await,
        vec!["a", "b"]
    );
    assert!(names_of(&tc, &tok, "visibility=public").await.is_empty());
    assert_eq!(
        names_of(&tc, &tok, &format!("owner={pid}&name=a")).await,
        vec!["a"]
    );
    assert_eq!(names_of(&tc, &tok, "size=2048").await, vec!["b"]);
    assert_eq!(
        names_of(&tc, &tok, "size_min=2048&size_max=3072").await,
        vec!["f", "c", "b"]
    );
    assert_eq!(
        names_of(&tc, &tok, "tag=x86&tag=linux").await,
        vec!["f", "d", "a"]
    );
    assert_eq!(names_of(&tc, &tok, "tag=arm").await, vec!["e", "c"]);
    assert_eq!(
        names_of(&tc, &tok, "os_distro=debian").await,
        vec!["f", "d"]
    );
    assert_eq!(
        names_of(&tc, &tok, &format!("id=in:{},{}", ids[0], ids[1])).await,
        vec!["b", "a"]
    );
    assert_eq!(
        names_of(&tc, &tok, "created_at=gt:2000-01-01T00:00:00Z&name=a").await,
        vec!["a"]
    );
    assert!(
        names_of(&tc, &tok, "created_at=lt:2000-01-01T00:00:00Z")
            .await
            .is_empty()
    );
    assert_eq!(
        names_of(&tc, &tok, "protected=false&name=a").await,
        vec!["a"]
    );

    // Sorting, both syntaxes.
    assert_eq!(
        names_of(&tc, &tok, "sort=size:desc&status=active").await,
        vec!["d", "c", "f", "b", "a"]
    );
    assert_eq!(
        names_of(&tc, &tok, "sort_key=size&sort_dir=desc&status=active").await,
        vec!["d", "c", "f", "b", "a"]
    );
    assert_eq!(
        names_of(&tc, &tok, "sort_key=size&sort_dir=asc").await,
        vec!["e", "a", "b", "f", "c", "d"]
    );
    assert_eq!(
        names_of(&tc, &tok, "sort=disk_format:asc,name:desc").await,
        vec!["d", "c", "e", "f", "b", "a"]
    );
    assert_eq!(
        names_of(&tc, &tok, "sort_key=name&sort_dir=asc").await,
        vec!["a", "b", "c", "d", "e", "f"]
    );

    // os_hidden: excluded by default, listed on request (any case of "true").
    let r = tc
        .http
        .patch(format!("{}/v2/images/{}", tc.image(REGION), ids[2]))
        .header("x-auth-token", &tok)
        .header(
            "content-type",
            "application/openstack-images-v2.1-json-patch",
        )
        .body(r#"[{"op": "replace", "path": "/os_hidden", "value": true}]"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(!names_of(&tc, &tok, "").await.contains(&"c".to_string()));
    assert_eq!(names_of(&tc, &tok, "os_hidden=True").await, vec!["c"]);
    assert_eq!(names_of(&tc, &tok, "os_hidden=true").await, vec!["c"]);
    assert_eq!(
        names_of(&tc, &tok, "os_hidden=false&name=a").await,
        vec!["a"]
    );

    // Paging: follow `next` until it is absent.
    let (s, first) = get(&tc, &tok, "/v2/images?limit=2&sort=name:asc").await;
    assert_eq!(s, 200);
    assert_eq!(first["first"], "/v2/images?limit=2&sort=name%3Aasc");
    assert_eq!(first["schema"], "/v2/schemas/images");
    let mut seen = names(&first);
    let mut next = first["next"].as_str().map(str::to_string);
    while let Some(link) = next {
        assert!(
            link.starts_with("/v2/images?limit=2&sort=name%3Aasc&marker="),
            "{link}"
        );
        let (s, page) = get(&tc, &tok, &link).await;
        assert_eq!(s, 200);
        assert!(names(&page).len() <= 2);
        seen.extend(names(&page));
        next = page["next"].as_str().map(str::to_string);
    }
    assert_eq!(seen, vec!["a", "b", "d", "e", "f"]);
    let (_, all) = get(&tc, &tok, "/v2/images").await;
    assert_eq!(all["first"], "/v2/images");
    assert!(all.get("next").is_none());

    // Bad parameters are 400s with Glance's messages.
    for (q, needle) in [
        ("limit=-1", "limit param must be positive"),
        ("limit=x", "limit param must be an integer"),
        ("sort_key=nosuch", "Invalid sort key: nosuch"),
        ("sort_dir=sideways", "Invalid sort direction: sideways"),
        ("sort=name:up", "Invalid sort direction: up"),
        (
            "marker=00000000-0000-0000-0000-000000000000",
            "No image found with ID 00000000-0000-0000-0000-000000000000",
        ),
        ("visibility=everyone", "Invalid visibility value: everyone"),
        ("member_status=maybe", "Invalid status: maybe"),
        ("os_hidden=perhaps", "os_hidden"),
        ("size_min=big", "non-numeric"),
        ("created_at=gt:yesterday", "ISO 8601"),
        ("name=like:a", "unknown operator"),
    ] {
        let (s, v) = get(&tc, &tok, &format!("/v2/images?{q}")).await;
        assert_eq!(s, 400, "{q}");
        assert!(v.as_str().unwrap_or("").contains(needle), "{q}: {v}");
    }
    // Another project's image as a marker is unknown to this caller.
    let (_, other) = tc.user_in_new_project("member", REGION).await;
    let (s, _) = get(&tc, &other, &format!("/v2/images?marker={}", ids[0])).await;
    assert_eq!(s, 400);
    assert!(names_of(&tc, &other, "").await.is_empty());
}
