//! Uploads that state the digests they expect (`X-Glimpse-Expected-Checksum`,
//! `X-Glimpse-Expected-Os-Hash-Value`, what a replication job sends) are published only when
//! the received bytes have them; a mismatch is a 400 and the image stays `queued` with no data.

use crate::common;

use common::TestCloud;
use common::glance::{create_bare, download, md5_hex, sha512_hex, show};

#[tokio::test]
async fn expected_digests_are_verified_before_publishing() {
    let tc = TestCloud::start().await;
    let (_, token) = tc.user_in_new_project("member", "region-one").await;
    let image = tc.image("region-one");
    let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    let put = |id: String, md5: String, sha: String| {
        let (http, image, token, data) =
            (tc.http.clone(), image.clone(), token.clone(), data.clone());
        async move {
            let r = http
                .put(format!("{image}/v2/images/{id}/file"))
                .header("x-auth-token", &token)
                .header("content-type", "application/octet-stream")
                .header("x-glimpse-expected-checksum", md5)
                .header("x-glimpse-expected-os-hash-value", sha)
                .body(data)
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };

    // A wrong sha512 (as if a byte flipped on the way): refused, nothing kept.
    let id = create_bare(&tc.http, &image, &token, "verify-bad", "raw").await;
    let mut wrong = sha512_hex(&data);
    wrong.replace_range(0..1, if wrong.starts_with('0') { "1" } else { "0" });
    let (status, body) = put(id.clone(), md5_hex(&data), wrong).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("os_hash_value"), "{body}");
    let img = show(&tc.http, &image, &token, &id).await;
    assert_eq!(img["status"], "queued");
    assert_eq!(download(&tc.http, &image, &token, &id).await.0, 204);

    // A wrong md5 is refused the same way.
    let (status, body) = put(id.clone(), "0".repeat(32), sha512_hex(&data)).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("checksum"), "{body}");

    // The right digests: published.
    let (status, body) = put(id.clone(), md5_hex(&data), sha512_hex(&data).to_uppercase()).await;
    assert_eq!(status, 204, "{body}");
    let img = show(&tc.http, &image, &token, &id).await;
    assert_eq!(img["status"], "active");
    assert_eq!(img["os_hash_value"], sha512_hex(&data));
}
