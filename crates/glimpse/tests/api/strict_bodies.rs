//! Bodies are what they say they are (issue 13): a JSON body sent as another media type, and
//! a JSON body with a key given twice, on JSON endpoints of every API. Each API refuses in
//! its own way (Glance, Nova and Cinder 415 `Invalid content type`, Nova taking `text/plain`
//! as JSON as its WSGI layer does, Keystone 400, IMS and KMS 400 with their codes), and a
//! duplicate key is 400 everywhere. The check is one layer per API router
//! (`glimpse_api::json_guard`), so these samples stand for every route of each router.

use serde_json::Value;

use crate::common::TestCloud;

const XML: &str = "application/xml";

struct Case {
    method: reqwest::Method,
    url: String,
    body: &'static str,
}

async fn send(
    tc: &TestCloud,
    token: &str,
    c: &Case,
    media: Option<&str>,
    body: &str,
) -> (u16, String) {
    let mut r = tc
        .http
        .request(c.method.clone(), &c.url)
        .header("x-auth-token", token)
        .header("accept", "application/json")
        .body(body.to_string());
    if let Some(m) = media {
        r = r.header("content-type", m);
    }
    let r = r.send().await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

/// `{"a": …}` → `{"a": …, "a": …}`: the body's first key given twice.
fn doubled(body: &str) -> String {
    let v: Value = serde_json::from_str(body).unwrap();
    let (k, first) = v.as_object().unwrap().iter().next().unwrap();
    let trimmed = body.trim();
    let inner = &trimmed[1..trimmed.len() - 1];
    format!("{{{inner}, \"{k}\": {first}}}")
}

#[tokio::test]
async fn wrong_media_types_and_duplicate_keys_are_refused_by_every_api() {
    let tc = TestCloud::start().await;
    let (project, token) = tc.user_in_new_project("member", "region-one").await;
    let r1 = format!("{}/region-one", tc.base);
    let id = uuid::Uuid::new_v4();
    let post = reqwest::Method::POST;
    let case = |method: &reqwest::Method, url: String, body| Case {
        method: method.clone(),
        url,
        body,
    };
    // API, status for application/xml, method, path under the API's root, body.
    const ROWS: &str = r#"
        keystone 400 POST /auth/tokens {"auth": {"identity": {"methods": []}}}
        keystone 400 POST /projects {"project": {"name": "p"}}
        keystone 400 POST /users {"user": {"name": "u"}}
        glance 415 POST /v2/images {"name": "x", "disk_format": "raw"}
        glance 415 POST /v2/images/ID/members {"member": "m"}
        glance 415 PUT /v2/images/ID/members/m {"status": "accepted"}
        glance 415 POST /v2/tasks {"type": "import", "input": {}}
        glance 415 POST /v2/metadefs/namespaces {"namespace": "n"}
        nova 415 POST /servers {"server": {"name": "s"}}
        nova 415 POST /servers/ID/action {"os-stop": null}
        nova 415 POST /os-keypairs {"keypair": {"name": "k"}}
        nova 415 PUT /images/ID/metadata {"metadata": {}}
        cinder 415 POST /volumes {"volume": {"size": 1}}
        cinder 415 PUT /volumes/ID {"volume": {"name": "v"}}
        cinder 415 POST /volumes/ID/action {"os-extend": {"new_size": 2}}
        ims 400 POST /v1/cloudimages/ID/copy {"name": "c"}
        kms 400 POST /kms/create-key {"key_alias": "k"}
        kms 400 POST /kms/list-keys {"limit": "10"}
    "#;
    let root = |api: &str| match api {
        "keystone" => tc.identity(),
        "glance" => format!("{r1}/image"),
        "nova" => format!("{r1}/compute/v2.1"),
        "cinder" => format!("{r1}/volume/v3/{project}"),
        "ims" => format!("{r1}/ims"),
        _ => format!("{r1}/kms/v1.0/{project}"),
    };
    let rows: Vec<(&str, u16, Case)> = ROWS
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let mut f = l.trim().splitn(5, ' ');
            let mut next = || f.next().unwrap();
            let (api, xml, method, path, body) = (next(), next(), next(), next(), next());
            let url = format!("{}{}", root(api), path.replace("ID", &id.to_string()));
            let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
            (api, xml.parse().unwrap(), case(&method, url, body))
        })
        .collect();
    for (api, xml_status, c) in &rows {
        let (status, text) = send(&tc, &token, c, Some(XML), c.body).await;
        assert_eq!(
            status, *xml_status,
            "{api} {} {} as {XML}: {text}",
            c.method, c.url
        );
        if *xml_status == 415 {
            assert!(
                text.contains("Invalid content type application/xml"),
                "{api}: {text}"
            );
        }
        let (status, text) = send(&tc, &token, c, Some("application/json"), &doubled(c.body)).await;
        assert_eq!(
            status, 400,
            "{api} {} {} duplicate key: {text}",
            c.method, c.url
        );
        assert!(text.contains("Duplicate key"), "{api}: {text}");
    }
    // Nova, as its WSGI layer does, reads a missing type or text/plain as JSON: the key pair
    // is made.
    let keypairs = &rows[10].2;
    for (media, name) in [(None, "k-none"), (Some("text/plain"), "k-text")] {
        let body = format!(r#"{{"keypair": {{"name": "{name}"}}}}"#);
        let (status, text) = send(&tc, &token, keypairs, media, &body).await;
        assert_eq!(status, 200, "nova as {media:?}: {text}");
    }
    // A NUL in a name, in the body or in the query, is 400 on every API and both backends
    // (PostgreSQL refuses NUL in text; it must never get that far).
    for (api, _, c) in rows
        .iter()
        .filter(|(_, _, c)| c.method == reqwest::Method::POST)
    {
        let body = c.body.replacen("\"", "\"\\u0000", 4);
        let (status, text) = send(&tc, &token, c, Some("application/json"), &body).await;
        assert_eq!(status, 400, "{api} NUL in {body}: {text}");
        assert!(text.contains("NUL characters"), "{api}: {text}");
    }
    for url in [
        format!("{r1}/image/v2/images?name=a%00b"),
        format!("{r1}/volume/v3/{project}/volumes?name=a%00b"),
        format!("{r1}/compute/v2.1/servers?name=a%00b"),
        format!("{}/projects?name=a%00b", tc.identity()),
    ] {
        let r = tc
            .http
            .get(&url)
            .header("x-auth-token", &token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{url}: {}", r.text().await.unwrap());
    }
    // KMS names are strings, states are KMS states; an IMS key id is not empty.
    let kms = |action: &str| format!("{r1}/kms/v1.0/{project}/kms/{action}");
    for (url, body, says) in [
        (
            kms("create-key"),
            r#"{"key_alias": 123}"#,
            "key_alias must be a string",
        ),
        (
            kms("list-keys"),
            r#"{"key_state": "9"}"#,
            "key_state 9 is not a key state",
        ),
        (
            format!("{r1}/ims/v1/cloudimages/{id}/copy"),
            r#"{"name": "c", "cmk_id": ""}"#,
            "cmk_id parameter must not be empty",
        ),
    ] {
        let c = case(&post, url, "{}");
        let (status, text) = send(&tc, &token, &c, Some("application/json"), body).await;
        assert_eq!(status, 400, "{body}: {text}");
        assert!(text.contains(says), "{body}: {text}");
    }
    // Glance's text/plain is refused like any other non-JSON type.
    let create = &rows[3].2;
    let (status, _) = send(&tc, &token, create, Some("text/plain"), create.body).await;
    assert_eq!(status, 415);
    tc.assert_no_server_errors().await;
}
