//! Domain tests of the image service against a real SQLite region database and an in-memory
//! blob store (no HTTP): records, lists, sharing, uploads, recovery and the cleaner.

use std::time::Duration;

use bytes::Bytes;
use glimpse_types::{ImageStatus, Visibility};

use super::list::ListQuery;
use super::model::{Attr, Change, NewImage};
use super::*;
use crate::Kind;
use crate::auth::Caller;
use crate::config::RegionConfig;
use crate::region::Region;

struct TestRegion {
    region: Region,
    dir: std::path::PathBuf,
}

impl Drop for TestRegion {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

async fn region_with(tweak: impl FnOnce(&mut RegionConfig)) -> TestRegion {
    let dir =
        std::env::temp_dir().join(format!("glimpse-images-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut config = RegionConfig::named("r");
    config.database = format!("sqlite://{}", dir.join("region.db").display());
    config.store = format!("file://{}", dir.join("blobs").display());
    config.url = "http://test/r".into();
    tweak(&mut config);
    let region = crate::testing::open_region(&config).await;
    TestRegion { region, dir }
}

async fn region() -> TestRegion {
    region_with(|_| {}).await
}

fn caller(project: &str, roles: &[&str]) -> Caller {
    Caller {
        user_id: format!("user-{project}"),
        user_name: "u".into(),
        project_id: Some(project.to_string()),
        project_name: None,
        roles: roles.iter().map(|r| r.to_string()).collect(),
        expires_at: chrono::Utc::now() + chrono::Duration::hours(1),
    }
}

fn member(project: &str) -> Caller {
    caller(project, &["member", "reader"])
}

fn raw_image(name: &str) -> NewImage {
    NewImage {
        name: Some(name.into()),
        disk_format: Some("raw".into()),
        container_format: Some("bare".into()),
        ..Default::default()
    }
}

fn body(
    data: Vec<u8>,
) -> impl futures::Stream<Item = std::result::Result<Bytes, std::io::Error>> + Send {
    let chunks: Vec<std::result::Result<Bytes, std::io::Error>> = data
        .chunks(7000)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    futures::stream::iter(chunks)
}

/// [`upload`] of `data` (in [`body`]'s chunks) with no expected digests.
async fn put(
    r: &Region,
    c: &Caller,
    id: &str,
    data: Vec<u8>,
    declared_len: Option<u64>,
) -> crate::error::Result<Image> {
    upload(r, c, id, body(data), declared_len, &Expected::default()).await
}

/// [`update`] with the one change `change`.
async fn update_one(
    r: &Region,
    c: &Caller,
    id: &str,
    change: Change,
) -> crate::error::Result<Image> {
    update(r, c, id, vec![change]).await
}

/// The keys of every blob in the region's store.
async fn blob_keys(r: &Region) -> Vec<String> {
    let blobs = r.store.list().await.unwrap();
    blobs.into_iter().map(|b| b.key).collect()
}

fn names(page: &list::Page) -> Vec<String> {
    page.images
        .iter()
        .map(|i| i.name.clone().unwrap_or_default())
        .collect()
}

#[tokio::test]
async fn create_show_update_delete() {
    let t = region().await;
    let r = &t.region;
    let a = member("a");
    let mut new = raw_image("one");
    new.properties = vec![
        ("os_distro".into(), "cirros".into()),
        ("b".into(), "2".into()),
    ];
    new.tags = vec!["t1".into()];
    let img = create(r, &a, new).await.unwrap();
    assert_eq!(img.status, ImageStatus::Queued);
    assert_eq!(img.visibility, Visibility::Shared);
    assert_eq!(img.owner, "a");
    let got = get(r, &a, &img.id).await.unwrap();
    assert_eq!(got.properties, img.properties);
    assert_eq!(got.tags, vec!["t1"]);

    let changes = vec![
        Change::Set(Attr::Name(Some("renamed".into()))),
        Change::AddProperty {
            name: "hw".into(),
            value: "scsi".into(),
            strict: false,
        },
        Change::ReplaceProperty {
            name: "b".into(),
            value: "3".into(),
        },
        Change::Set(Attr::Tags(vec!["x".into(), "y".into()])),
    ];
    let up = update(r, &a, &img.id, changes).await.unwrap();
    assert_eq!(up.name.as_deref(), Some("renamed"));
    assert_eq!(up.property("b"), Some("3"));
    assert_eq!(up.properties.last().unwrap().0, "hw");
    assert_eq!(up.tags, vec!["x", "y"]);
    let nope = Change::ReplaceProperty {
        name: "nope".into(),
        value: "1".into(),
    };
    let e = update_one(r, &a, &img.id, nope).await.unwrap_err();
    assert_eq!(e.kind, Kind::Conflict);
    let name = Change::RemoveBase {
        name: "name".into(),
    };
    let e = update_one(r, &a, &img.id, name).await.unwrap_err();
    assert_eq!(e.kind, Kind::Forbidden);
    let e = update_one(
        r,
        &a,
        &img.id,
        Change::Set(Attr::Visibility(Visibility::Public)),
    )
    .await
    .unwrap_err();
    assert_eq!(e.kind, Kind::Forbidden);

    // Other projects: private → 404; tags and protection.
    update_one(
        r,
        &a,
        &img.id,
        Change::Set(Attr::Visibility(Visibility::Private)),
    )
    .await
    .unwrap();
    let b = member("b");
    assert_eq!(get(r, &b, &img.id).await.unwrap_err().kind, Kind::NotFound);
    assert_eq!(
        delete(r, &b, &img.id).await.unwrap_err().kind,
        Kind::NotFound
    );
    add_tag(r, &a, &img.id, "z").await.unwrap();
    add_tag(r, &a, &img.id, "z").await.unwrap();
    assert_eq!(get(r, &a, &img.id).await.unwrap().tags, vec!["x", "y", "z"]);
    assert_eq!(
        remove_tag(r, &a, &img.id, "nope").await.unwrap_err().kind,
        Kind::NotFound
    );
    remove_tag(r, &a, &img.id, "x").await.unwrap();
    update_one(r, &a, &img.id, Change::Set(Attr::Protected(true)))
        .await
        .unwrap();
    assert_eq!(
        delete(r, &a, &img.id).await.unwrap_err().kind,
        Kind::Forbidden
    );
    update_one(r, &a, &img.id, Change::Set(Attr::Protected(false)))
        .await
        .unwrap();
    delete(r, &a, &img.id).await.unwrap();
    assert_eq!(get(r, &a, &img.id).await.unwrap_err().kind, Kind::NotFound);
    assert_eq!(
        delete(r, &a, &img.id).await.unwrap_err().kind,
        Kind::NotFound
    );
}

#[tokio::test]
async fn client_chosen_ids_are_unique() {
    let t = region().await;
    let a = member("a");
    let id = "24aa2105-1b4e-4de3-af4e-0ed2b54fb214".to_string();
    let mut n = raw_image("x");
    n.id = Some(id.clone());
    create(&t.region, &a, n.clone()).await.unwrap();
    assert_eq!(
        create(&t.region, &a, n).await.unwrap_err().kind,
        Kind::Conflict
    );
}

#[tokio::test]
async fn upload_publishes_verified_bytes() {
    let t = region().await;
    let r = &t.region;
    let a = member("a");
    let img = create(r, &a, raw_image("data")).await.unwrap();
    assert!(prepare_download(r, &a, &img.id).await.unwrap().is_none());
    let data: Vec<u8> = (0..100_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let up = put(r, &a, &img.id, data.clone(), Some(data.len() as u64))
        .await
        .unwrap();
    assert_eq!(up.status, ImageStatus::Active);
    assert_eq!(up.size, Some(100_000));
    assert_eq!(up.virtual_size, Some(100_000));
    let digests = glimpse_store::digest_bytes(&data);
    assert_eq!(up.checksum.as_deref(), Some(digests.md5.as_str()));
    assert_eq!(up.os_hash_value.as_deref(), Some(digests.sha512.as_str()));
    let stored = get(r, &a, &img.id).await.unwrap();
    assert_eq!(stored.checksum, up.checksum);
    let img2 = prepare_download(r, &a, &img.id).await.unwrap().unwrap();
    use futures::TryStreamExt;
    let bytes: Vec<Bytes> = read(r, &img2, Some((10, 20)))
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(bytes.concat(), data[10..20].to_vec());
    // A second upload is a conflict; readers may not download.
    let e = put(r, &a, &img.id, vec![1], None).await.unwrap_err();
    assert_eq!(e.kind, Kind::Conflict);
    let reader = caller("a", &["reader"]);
    assert_eq!(
        prepare_download(r, &reader, &img.id)
            .await
            .unwrap_err()
            .kind,
        Kind::Forbidden
    );
    // Deactivated: only admins download.
    deactivate(r, &a, &img.id).await.unwrap();
    deactivate(r, &a, &img.id).await.unwrap();
    assert_eq!(
        prepare_download(r, &a, &img.id).await.unwrap_err().kind,
        Kind::Forbidden
    );
    let admin = caller("z", &["admin", "member", "reader"]);
    assert!(
        prepare_download(r, &admin, &img.id)
            .await
            .unwrap()
            .is_some()
    );
    reactivate(r, &a, &img.id).await.unwrap();
    assert!(prepare_download(r, &a, &img.id).await.unwrap().is_some());
    // Deleting removes the blob.
    delete(r, &a, &img.id).await.unwrap();
    assert!(blob_keys(r).await.iter().all(|k| !k.starts_with("blobs/")));
}

#[tokio::test]
async fn rejected_uploads_leave_nothing() {
    let t = region_with(|c| {
        c.limits.image_size_cap = 50_000;
    })
    .await;
    let r = &t.region;
    let a = member("a");
    let mut q = raw_image("fake-qcow2");
    q.disk_format = Some("qcow2".into());
    let img = create(r, &a, q).await.unwrap();
    let e = put(r, &a, &img.id, vec![0x5a; 4096], None)
        .await
        .unwrap_err();
    assert_eq!(e.kind, Kind::UnsupportedMedia, "{e}");
    let after = get(r, &a, &img.id).await.unwrap();
    assert_eq!(after.status, ImageStatus::Queued);
    assert_eq!(after.size, None);
    assert_eq!(after.checksum, None);
    // Over the cap, with and without a declared length.
    let big = create(r, &a, raw_image("big")).await.unwrap();
    let e = put(r, &a, &big.id, vec![0; 60_000], Some(60_000))
        .await
        .unwrap_err();
    assert_eq!(e.kind, Kind::TooLarge);
    let e = put(r, &a, &big.id, vec![0; 60_000], None)
        .await
        .unwrap_err();
    assert_eq!(e.kind, Kind::TooLarge);
    assert_eq!(
        get(r, &a, &big.id).await.unwrap().status,
        ImageStatus::Queued
    );
    // A failing body.
    let failing = futures::stream::iter(vec![
        Ok(Bytes::from_static(b"abc")),
        Err(std::io::Error::other("client went away")),
    ]);
    let e = upload(r, &a, &big.id, failing, None, &Expected::default())
        .await
        .unwrap_err();
    assert_eq!(e.kind, Kind::BadRequest);
    assert_eq!(
        get(r, &a, &big.id).await.unwrap().status,
        ImageStatus::Queued
    );
    // Non-bare containers are not inspected (as in Glance).
    let mut ami = raw_image("ami");
    ami.disk_format = Some("qcow2".into());
    ami.container_format = Some("ova".into());
    let ami = create(r, &a, ami).await.unwrap();
    let up = put(r, &a, &ami.id, vec![1; 1000], None).await.unwrap();
    assert_eq!(up.virtual_size, None);
    assert_eq!(up.status, ImageStatus::Active);
    // Nothing unreferenced remains (the refused blobs are gone).
    let referenced = up.blob_key.unwrap();
    let left = blob_keys(r).await;
    assert_eq!(left, vec![referenced]);
}

#[tokio::test]
async fn project_quota() {
    let t = region_with(|c| c.limits.project_quota_bytes = 10_000).await;
    let r = &t.region;
    let a = member("a");
    let one = create(r, &a, raw_image("one")).await.unwrap();
    put(r, &a, &one.id, vec![1; 8000], None).await.unwrap();
    let two = create(r, &a, raw_image("two")).await.unwrap();
    let e = put(r, &a, &two.id, vec![1; 3000], None).await.unwrap_err();
    assert_eq!(e.kind, Kind::TooLarge);
    put(r, &a, &two.id, vec![1; 2000], None).await.unwrap();
    // Another project has its own quota.
    let b = member("b");
    let three = create(r, &b, raw_image("three")).await.unwrap();
    put(r, &b, &three.id, vec![1; 9000], None).await.unwrap();
}

/// With several nodes on one database, a node's start-up recovery resets only its own
/// interrupted uploads; another node's stay `saving` until that node's heartbeat is stale,
/// when any node takes them over; and a node whose upload was taken over cannot publish it.
#[tokio::test]
async fn recovery_touches_only_this_nodes_uploads_until_another_goes_stale() {
    let t = region().await;
    let r = &t.region;
    crate::nodes::register(&r.db, "other", 2).await.unwrap();
    let saving_on = |node: &'static str, name: &'static str| async move {
        let img = create(r, &member("a"), raw_image(name)).await.unwrap();
        assert!(
            lifecycle::claim_upload(&r.db, &img.id, node, glimpse_types::now())
                .await
                .unwrap()
        );
        img.id
    };
    let mine = saving_on("local", "mine").await;
    let theirs = saving_on("other", "theirs").await;
    let status = |id: String| async move { get(r, &member("a"), &id).await.unwrap().status };

    assert_eq!(recover(r).await.unwrap(), 1);
    assert_eq!(status(mine.clone()).await, ImageStatus::Queued);
    assert_eq!(status(theirs.clone()).await, ImageStatus::Saving);
    // The other node is alive: nothing to take over.
    assert_eq!(
        take_over(r, &crate::nodes::stale_before(&r.node_config))
            .await
            .unwrap(),
        0
    );
    // This node cannot publish or revert the other node's upload.
    assert!(!lifecycle::revert(&r.db, &theirs, "local").await.unwrap());

    // The other node's heartbeat stops.
    let old = glimpse_types::db_time(glimpse_types::now() - chrono::Duration::minutes(5));
    sqlx::query("UPDATE nodes SET heartbeat_at = $1 WHERE id = 'other'")
        .bind(old)
        .execute(&r.db.pool)
        .await
        .unwrap();
    assert_eq!(
        take_over(r, &crate::nodes::stale_before(&r.node_config))
            .await
            .unwrap(),
        1
    );
    assert_eq!(status(theirs.clone()).await, ImageStatus::Queued);
    // The zombie wakes up: its image is no longer its upload.
    let content = lifecycle::Content::new("blobs/x".into(), 1, "m".into(), "s".into());
    assert!(
        lifecycle::publish(&r.db, &theirs, "other", &content)
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(status(theirs).await, ImageStatus::Queued);
}

/// A claim whose answer was lost is reverted by its own time only: once the client's retry
/// claimed the image again on the same node, the late revert of the first claim leaves it be.
#[tokio::test]
async fn an_unanswered_claim_is_reverted_by_its_time_only() {
    let t = region().await;
    let r = &t.region;
    let a = member("a");
    let img = create(r, &a, raw_image("lost-claim")).await.unwrap();
    let first = glimpse_types::now();
    assert!(
        lifecycle::claim_upload(&r.db, &img.id, "local", first)
            .await
            .unwrap()
    );
    assert!(
        lifecycle::revert_claim(&r.db, &img.id, "local", first)
            .await
            .unwrap()
    );
    let status = || async { get(r, &a, &img.id).await.unwrap().status };
    assert_eq!(status().await, ImageStatus::Queued);

    let retry = first + chrono::Duration::milliseconds(5);
    assert!(
        lifecycle::claim_upload(&r.db, &img.id, "local", retry)
            .await
            .unwrap()
    );
    assert!(
        !lifecycle::revert_claim(&r.db, &img.id, "local", first)
            .await
            .unwrap()
    );
    assert_eq!(status().await, ImageStatus::Saving);
}

#[tokio::test]
async fn recovery_and_cleaner() {
    let t = region().await;
    let r = &t.region;
    let a = member("a");
    let img = create(r, &a, raw_image("crash")).await.unwrap();
    sqlx::query("UPDATE images SET status = 'saving' WHERE id = $1")
        .bind(img.id.clone())
        .execute(&r.db.pool)
        .await
        .unwrap();
    assert_eq!(recover(r).await.unwrap(), 1);
    assert_eq!(
        get(r, &a, &img.id).await.unwrap().status,
        ImageStatus::Queued
    );
    // An orphan blob goes; a referenced one stays.
    let kept = put(r, &a, &img.id, vec![3; 100], None).await.unwrap();
    let orphan = r
        .store
        .write(body(vec![9; 10]), |_: &[u8]| Ok(()))
        .await
        .unwrap();
    assert_eq!(
        clean_orphans(r, Duration::from_secs(3600)).await.unwrap(),
        0
    );
    assert_eq!(clean_orphans(r, Duration::ZERO).await.unwrap(), 1);
    let left = blob_keys(r).await;
    assert_eq!(left, vec![kept.blob_key.unwrap()]);
    assert!(!left.contains(&orphan.key));
}

#[tokio::test]
async fn members_share_images() {
    let t = region().await;
    let r = &t.region;
    let (a, b, c) = (member("a"), member("b"), member("c"));
    let img = create(r, &a, raw_image("shared")).await.unwrap();
    assert_eq!(get(r, &b, &img.id).await.unwrap_err().kind, Kind::NotFound);
    let m = members::add(r, &a, &img.id, "b").await.unwrap();
    assert_eq!(m.status, MemberStatus::Pending);
    assert_eq!(
        members::add(r, &a, &img.id, "b").await.unwrap_err().kind,
        Kind::Conflict
    );
    assert_eq!(
        members::add(r, &b, &img.id, "c").await.unwrap_err().kind,
        Kind::Forbidden
    );
    // A pending member sees it by id, but not in the default list.
    assert!(get(r, &b, &img.id).await.is_ok());
    let q = ListQuery::parse(&[]).unwrap();
    assert!(list::list(r, &b, &q).await.unwrap().images.is_empty());
    let pending = ListQuery::parse(&[
        ("member_status".into(), "pending".into()),
        ("visibility".into(), "shared".into()),
    ])
    .unwrap();
    assert_eq!(
        names(&list::list(r, &b, &pending).await.unwrap()),
        vec!["shared"]
    );
    // Only the member changes its status.
    assert_eq!(
        members::set_status(r, &a, &img.id, "b", "accepted")
            .await
            .unwrap_err()
            .kind,
        Kind::Forbidden
    );
    assert_eq!(
        members::set_status(r, &b, &img.id, "b", "maybe")
            .await
            .unwrap_err()
            .kind,
        Kind::BadRequest
    );
    members::set_status(r, &b, &img.id, "b", "accepted")
        .await
        .unwrap();
    assert_eq!(names(&list::list(r, &b, &q).await.unwrap()), vec!["shared"]);
    assert_eq!(members::list(r, &a, &img.id).await.unwrap().len(), 1);
    assert_eq!(members::list(r, &b, &img.id).await.unwrap().len(), 1);
    assert_eq!(
        members::get(r, &c, &img.id, "b").await.unwrap_err().kind,
        Kind::NotFound
    );
    assert_eq!(
        members::remove(r, &b, &img.id, "b").await.unwrap_err().kind,
        Kind::Forbidden
    );
    members::remove(r, &a, &img.id, "b").await.unwrap();
    assert_eq!(get(r, &b, &img.id).await.unwrap_err().kind, Kind::NotFound);
    // Only shared images have members.
    update_one(
        r,
        &a,
        &img.id,
        Change::Set(Attr::Visibility(Visibility::Private)),
    )
    .await
    .unwrap();
    assert_eq!(
        members::add(r, &a, &img.id, "b").await.unwrap_err().kind,
        Kind::Forbidden
    );
}

#[tokio::test]
async fn list_filters_sorting_and_paging() {
    let t = region().await;
    let r = &t.region;
    let a = member("a");
    for (i, name) in ["c", "a", "e", "b", "d"].iter().enumerate() {
        let mut n = raw_image(name);
        n.tags = vec!["all".into(), format!("t{}", i % 2)];
        n.properties = vec![("parity".into(), (i % 2).to_string())];
        n.visibility = Some(Visibility::Private);
        n.os_hidden = *name == "e";
        let img = create(r, &a, n).await.unwrap();
        put(r, &a, &img.id, vec![0; 100 * (i + 1)], None)
            .await
            .unwrap();
    }
    let q = |p: &[(&str, &str)]| {
        ListQuery::parse(
            &p.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<Vec<_>>(),
        )
        .unwrap()
    };
    let all = list::list(r, &a, &q(&[])).await.unwrap();
    assert_eq!(
        names(&all),
        vec!["d", "b", "a", "c"],
        "newest first, hidden excluded"
    );
    let filtered = [
        (&[("os_hidden", "true")][..], vec!["e"]),
        (&[("sort", "name:asc")][..], vec!["a", "b", "c", "d"]),
        (
            &[("sort_key", "size"), ("sort_dir", "desc")][..],
            vec!["d", "b", "a", "c"],
        ),
        (&[("tag", "t1"), ("tag", "all")][..], vec!["b", "a"]),
        (&[("parity", "0"), ("sort", "name:asc")][..], vec!["c", "d"]),
        (
            &[("size_min", "200"), ("size_max", "400")][..],
            vec!["b", "a"],
        ),
        (&[("name", "in:a,b")][..], vec!["b", "a"]),
        (&[("size", "100")][..], vec!["c"]),
    ];
    for (query, want) in filtered {
        assert_eq!(
            names(&list::list(r, &a, &q(query)).await.unwrap()),
            want,
            "{query:?}"
        );
    }
    // Paging with a marker, sorted by name.
    let p1 = list::list(r, &a, &q(&[("sort", "name:asc"), ("limit", "2")]))
        .await
        .unwrap();
    assert_eq!(names(&p1), vec!["a", "b"]);
    let marker = p1.next_marker.clone().unwrap();
    let p2 = list::list(
        r,
        &a,
        &q(&[("sort", "name:asc"), ("limit", "2"), ("marker", &marker)]),
    )
    .await
    .unwrap();
    assert_eq!(names(&p2), vec!["c", "d"]);
    let m2 = p2.next_marker.clone();
    assert!(m2.is_none(), "no page after the last");
    // Visibility: another project sees nothing private; a bad marker is 400.
    let b = member("b");
    assert!(list::list(r, &b, &q(&[])).await.unwrap().images.is_empty());
    let e = list::list(r, &b, &q(&[("marker", &marker)]))
        .await
        .unwrap_err();
    assert_eq!(e.kind, Kind::BadRequest);
    let admin = caller("z", &["admin", "member", "reader"]);
    assert_eq!(
        list::list(r, &admin, &q(&[])).await.unwrap().images.len(),
        4
    );
}

#[tokio::test]
async fn generation_moves_with_every_change() {
    let t = region().await;
    let r = &t.region;
    let a = member("a");
    let g0 = list::generation(r).await.unwrap();
    let img = create(r, &a, raw_image("g")).await.unwrap();
    let g1 = list::generation(r).await.unwrap();
    assert!(g1 > g0);
    add_tag(r, &a, &img.id, "x").await.unwrap();
    let g2 = list::generation(r).await.unwrap();
    assert!(g2 > g1);
    members::add(r, &a, &img.id, "b").await.unwrap();
    let g3 = list::generation(r).await.unwrap();
    assert!(g3 > g2);
    let _ = list::list(r, &a, &ListQuery::parse(&[]).unwrap())
        .await
        .unwrap();
    assert_eq!(
        list::generation(r).await.unwrap(),
        g3,
        "reads do not move it"
    );
    delete(r, &a, &img.id).await.unwrap();
    assert!(list::generation(r).await.unwrap() > g3);
}
