//! The shared-blob race on a real database (SQLite, or PostgreSQL when
//! `GLIMPSE_TEST_POSTGRES_URL` names a server): a copy that takes a reference to the source's
//! blob while the source — the blob's last image — is being deleted. Either the copy commits
//! first and the blob stays, or the delete wins and the copy inserts nothing: never a record
//! naming a deleted blob.

use std::sync::Arc;

use bytes::Bytes as Body;

use super::Params;
use super::handler::{Bytes, publish};
use crate::auth::Caller;
use crate::config::RegionConfig;
use crate::images::{self, NewImage};
use crate::region::Region;

async fn region(dir: &std::path::Path) -> Region {
    let mut config = RegionConfig::named("r");
    config.database = crate::testing::region_db_url(dir, "ims").await;
    config.store = format!("file://{}", dir.join("blobs").display());
    config.url = "http://test/r".into();
    crate::testing::open_region(&config).await
}

fn member(project: &str) -> Caller {
    Caller {
        user_id: format!("user-{project}"),
        user_name: "u".into(),
        project_id: Some(project.to_string()),
        project_name: None,
        roles: vec!["member".into(), "reader".into()],
        expires_at: chrono::Utc::now() + chrono::Duration::hours(1),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_copy_racing_the_last_delete_never_names_a_deleted_blob() {
    let dir = std::env::temp_dir().join(format!("glimpse-ims-{}", glimpse_types::hex_id()));
    std::fs::create_dir_all(&dir).unwrap();
    let region = Arc::new(region(&dir).await);
    let who = member("p1");
    for i in 0..30 {
        let src = images::create(
            &region,
            &who,
            NewImage {
                name: Some(format!("src-{i}")),
                disk_format: Some("raw".into()),
                container_format: Some("bare".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
        let data = vec![i as u8; 70_000];
        let body = futures::stream::iter([Ok::<_, std::io::Error>(Body::from(data.clone()))]);
        let src = images::upload(
            &region,
            &who,
            &src.id,
            body,
            None,
            &images::Expected::default(),
        )
        .await
        .unwrap();
        let blob = src.blob_key.clone().unwrap();
        let p = Params {
            source_image_id: src.id.clone(),
            image_id: glimpse_types::uuid_id(),
            name: format!("copy-{i}"),
            description: None,
            cmk_id: None,
            project_id: "p1".into(),
            requested_by: "u".into(),
        };
        let (r1, r2, w1) = (region.clone(), region.clone(), who.clone());
        let (s1, b1, p1) = (src.clone(), blob.clone(), p.clone());
        let copy =
            tokio::spawn(async move { publish(&r1.db, &s1, &b1, &p1, &Bytes::Shared).await });
        let id = src.id.clone();
        let delete = tokio::spawn(async move { images::delete(&r2, &w1, &id).await });
        let published = copy.await.unwrap().unwrap();
        delete.await.unwrap().unwrap();
        let present = region.store.size(&blob).await.is_ok();
        if published {
            assert!(
                present,
                "round {i}: the copy names blob {blob}, which must stay"
            );
            let copy = images::get(&region, &who, &p.image_id).await.unwrap();
            let got: Vec<Body> = futures::TryStreamExt::try_collect(
                images::read(&region, &copy, None).await.unwrap(),
            )
            .await
            .unwrap();
            assert_eq!(got.concat(), data);
            images::delete(&region, &who, &p.image_id).await.unwrap();
            assert!(
                region.store.size(&blob).await.is_err(),
                "the last delete removes it"
            );
        } else {
            assert!(
                !present,
                "round {i}: nobody names blob {blob}; it must be gone"
            );
            assert!(images::get(&region, &who, &p.image_id).await.is_err());
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}
