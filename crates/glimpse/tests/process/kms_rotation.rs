//! A KMS master key rotation with the real binary (docs/kms.md): a region started with the
//! new master key and the old one as `GLIMPSE_KMS_PREVIOUS_MASTER_KEY` re-wraps every
//! customer key at start-up; after that the new key alone opens everything, so an image
//! encrypted before the rotation stays readable and new keys keep working.

use crate::common;

use common::glance::{download, sha512_hex};
use common::ims::Ims;
use common::process::{GlimpseProcess, identity, raw_image, temp_dir};

fn hex_key() -> String {
    format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

/// Starts the all-in-one server on `dir` with these master keys; an admin token and its
/// project id.
async fn start(
    http: &reqwest::Client,
    dir: &std::path::Path,
    master: &str,
    previous: Option<&str>,
) -> (GlimpseProcess, String, String) {
    let mut env = vec![
        ("GLIMPSE_ADMIN_PASSWORD", "pw"),
        ("GLIMPSE_KMS_MASTER_KEY", master),
    ];
    if let Some(p) = previous {
        env.push(("GLIMPSE_KMS_PREVIOUS_MASTER_KEY", p));
    }
    let server = GlimpseProcess::start(dir, None, &env);
    let tok = server.admin_token(http).await;
    let pid = identity::project_of(http, &server.base, &tok).await;
    (server, tok, pid)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotating_the_master_key_keeps_encrypted_images_readable() {
    let dir = temp_dir();
    let http = reqwest::Client::new();
    let (old, new) = (hex_key(), hex_key());
    let data: Vec<u8> = (0..3u32 << 20).map(|i| (i % 249) as u8).collect();

    // Before: an image encrypted under a customer key wrapped by the old master key.
    let (server, tok, pid) = start(&http, &dir, &old, None).await;
    let image = format!("{}/region-one/image", server.base);
    let src = raw_image(&http, &image, &tok, "plain", &data).await;
    let ims = Ims::at(&http, &server.base, "region-one", &tok, &pid);
    let key = ims.kms().create_key().await;
    let sealed = ims.sealed_copy(&src, "sealed", &key).await;
    drop(server);

    // The new key alone, before any rotation: the old customer key does not open.
    let (server, tok, _) = start(&http, &dir, &new, None).await;
    let image = format!("{}/region-one/image", server.base);
    let (status, _) = download(&http, &image, &tok, &sealed).await;
    assert_eq!(
        status, 500,
        "a wrong master key reads nothing (a server fault, logged)"
    );
    drop(server);

    // The rotation: new key current, old key previous; the start re-wraps.
    let (server, tok, _) = start(&http, &dir, &new, Some(&old)).await;
    let image = format!("{}/region-one/image", server.base);
    let (status, got) = download(&http, &image, &tok, &sealed).await;
    assert_eq!(status, 200);
    assert_eq!(sha512_hex(&got), sha512_hex(&data));
    drop(server);

    // After: the new key alone opens the old image, and new keys work.
    let (server, tok, pid) = start(&http, &dir, &new, None).await;
    let image = format!("{}/region-one/image", server.base);
    let (status, got) = download(&http, &image, &tok, &sealed).await;
    assert_eq!(status, 200);
    assert_eq!(sha512_hex(&got), sha512_hex(&data));
    let ims = Ims::at(&http, &server.base, "region-one", &tok, &pid);
    let key2 = ims.kms().create_key().await;
    let again = ims.sealed_copy(&src, "sealed-again", &key2).await;
    let (status, got) = download(&http, &image, &tok, &again).await;
    assert_eq!((status, sha512_hex(&got)), (200, sha512_hex(&data)));
    drop(server);

    // The old master key alone no longer opens anything.
    let (server, tok, _) = start(&http, &dir, &old, None).await;
    let image = format!("{}/region-one/image", server.base);
    assert_eq!(download(&http, &image, &tok, &sealed).await.0, 500);
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}
