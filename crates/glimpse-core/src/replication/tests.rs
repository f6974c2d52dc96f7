//! Unit tests of the replicator's pure parts: status words, the job view, the destination
//! image body, capability checks, role rules, progress and hash comparison, pause points.

use chrono::Utc;
use serde_json::json;

use glimpse_types::glance::Image;
use glimpse_types::replicator::ReplicationStatus;

use super::handler::{destination_body, is_custom_property, percent};
use super::submit::{check_capabilities, may_write};
use super::*;
use crate::Kind;
use crate::jobs::{JobRecord, JobState};

fn params() -> Params {
    Params {
        source_image_id: "11111111-1111-4111-8111-111111111111".into(),
        source_image_name: Some("Test-image-Ubuntu".into()),
        source_region_id: "region-one".into(),
        source_tenant_id: "236ae314ef6944f4ab98fa7519e54325".into(),
        destination_region_id: "region-two".into(),
        destination_tenant_id: "91b5c7c09cbd45caa3c146fd67ae471e".into(),
        destination_image_id: "22222222-2222-4222-8222-222222222222".into(),
        checksum: Some("c".into()),
        os_hash_algo: Some("sha512".into()),
        os_hash_value: Some("h".into()),
        size: 10,
        requested_by: "u".into(),
    }
}

fn job(state: JobState, cancel_requested: bool, attempts: i64) -> JobRecord {
    JobRecord {
        id: "0fa2817d-4e54-455d-a676-c78e863297e9".into(),
        kind: KIND.into(),
        project_id: "236ae314ef6944f4ab98fa7519e54325".into(),
        state,
        phase: String::new(),
        cancel_requested,
        progress: 0,
        params: serde_json::to_value(params()).unwrap(),
        checkpoint: None,
        result: None,
        error: None,
        attempts,
        idempotency_key: None,
        lease_owner: None,
        created_at: Utc::now(),
        updated_at: Utc::now(),
        started_at: None,
        finished_at: None,
    }
}

/// A Glance image document as the client reads it.
fn image(v: serde_json::Value) -> Image {
    serde_json::from_value(v).unwrap()
}

#[test]
fn status_words_follow_the_seed() {
    use JobState::*;
    let cases = [
        (Queued, false, 0, "replicate_requested"),
        (Queued, false, 1, "replicating"),
        (Running, false, 1, "replicating"),
        (Queued, true, 0, "cancel_requested"),
        (Running, true, 1, "cancel_requested"),
        (Canceling, true, 1, "canceling"),
        (Canceled, true, 1, "canceled"),
        (Succeeded, false, 1, "replicated"),
        (Failed, false, 3, "error"),
    ];
    for (state, cancel, attempts, want) in cases {
        assert_eq!(
            status(&job(state, cancel, attempts)),
            want,
            "{state:?} {cancel}"
        );
    }
    use ReplicationStatus as S;
    assert!(S::ReplicateRequested.cancelable() && S::Replicating.cancelable());
    assert!(!S::CancelRequested.cancelable() && !S::Replicated.cancelable());
}

#[test]
fn view_has_exactly_the_seed_fields_in_order() {
    let mut j = job(JobState::Queued, false, 0);
    let v = serde_json::to_string(&view(&j).unwrap()).unwrap();
    assert_eq!(
        v,
        r#"{"copy_progress":0,"destination_image_id":null,"destination_region_id":"region-two","destination_tenant_id":"91b5c7c09cbd45caa3c146fd67ae471e","job_id":"0fa2817d-4e54-455d-a676-c78e863297e9","source_image_id":"11111111-1111-4111-8111-111111111111","source_image_name":"Test-image-Ubuntu","source_region_id":"region-one","source_tenant_id":"236ae314ef6944f4ab98fa7519e54325","status":"replicate_requested"}"#
    );
    j.result = Some(json!({"destination_image_id": "d"}));
    j.progress = 42;
    j.state = JobState::Running;
    let v = view(&j).unwrap();
    assert_eq!(v.destination_image_id.as_deref(), Some("d"));
    assert_eq!((v.copy_progress, v.status.as_str()), (42, "replicating"));
    j.params = json!({"other": "kind"});
    assert!(view(&j).is_none());
}

#[test]
fn destination_body_keeps_metadata_and_records_the_origin() {
    let source = image(json!({
        "os_distro": "ubuntu", "license_switch": "X", "os_glance_import_task": "t",
        "replication_job_id": "old", "name": "img", "disk_format": "qcow2",
        "container_format": "bare", "visibility": "public", "size": 10, "virtual_size": null,
        "status": "active", "checksum": "c", "protected": true, "min_ram": 512, "min_disk": 3,
        "owner": "someone", "os_hidden": false, "os_hash_algo": "sha512", "os_hash_value": "h",
        "id": "11111111-1111-4111-8111-111111111111", "created_at": "x", "updated_at": "y",
        "tags": ["a"], "self": "/v2/images/1", "file": "/v2/images/1/file",
        "schema": "/v2/schemas/image"
    }));
    let b = serde_json::to_value(destination_body(&source, &params(), "job-1")).unwrap();
    assert_eq!(
        b,
        json!({
            "os_distro": "ubuntu", "license_switch": "X", "name": "img", "disk_format": "qcow2",
            "container_format": "bare", "min_ram": 512, "min_disk": 3, "tags": ["a"],
            "id": "22222222-2222-4222-8222-222222222222",
            "owner": "91b5c7c09cbd45caa3c146fd67ae471e", "visibility": "private",
            "replicated_from_region": "region-one",
            "replicated_from_image": "11111111-1111-4111-8111-111111111111",
            "replication_job_id": "job-1"
        })
    );
    assert!(is_custom_property("hw_disk_bus"));
    assert!(!is_custom_property("os_glance_x") && !is_custom_property("checksum"));
}

#[test]
fn destination_allow_lists_and_acceptance() {
    let caps = Capabilities {
        accept_replicas: true,
        license_switch_types: vec!["L".into()],
        official_template_types: vec!["T".into()],
    };
    let img = |props: serde_json::Value| {
        let mut v = json!({"id": "i", "status": "active"});
        v.as_object_mut()
            .unwrap()
            .extend(props.as_object().unwrap().clone());
        image(v)
    };
    assert!(check_capabilities(&caps, &img(json!({})), "r").is_ok());
    assert!(
        check_capabilities(
            &caps,
            &img(json!({"license_switch": "L", "official_template_type": "T"})),
            "r"
        )
        .is_ok()
    );
    assert!(check_capabilities(&caps, &img(json!({"license_switch": ""})), "r").is_ok());
    let kind = |props| {
        check_capabilities(&caps, &img(props), "r")
            .unwrap_err()
            .kind
    };
    assert_eq!(kind(json!({"license_switch": "M"})), Kind::NotFound);
    assert_eq!(kind(json!({"official_template_type": "U"})), Kind::NotFound);
    let closed = Capabilities {
        accept_replicas: false,
        ..caps.clone()
    };
    let e = check_capabilities(&closed, &img(json!({})), "r").unwrap_err();
    assert_eq!(e.kind, Kind::Conflict);
}

#[test]
fn member_or_admin_may_write() {
    let v = |r: &[&str]| r.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert!(may_write(&v(&["member"])));
    assert!(may_write(&v(&["admin"])));
    assert!(may_write(&v(&["reader", "member"])));
    assert!(!may_write(&v(&["reader"])));
    assert!(!may_write(&v(&[])));
}

#[test]
fn progress_and_hashes() {
    assert_eq!(percent(0, 100), 0);
    assert_eq!(percent(50, 100), 50);
    assert_eq!(percent(100, 100), 99);
    assert_eq!(percent(5, 0), 0);
    assert_eq!(percent(u64::MAX, u64::MAX), 99);
    let img = image(json!({"id": "i", "status": "active", "checksum": "c", "os_hash_value": "h"}));
    assert!(img.has_data(Some("c"), Some("h")));
    assert!(img.has_data(None, None));
    assert!(!img.has_data(Some("c"), Some("x")));
    assert!(!image(json!({"id": "i", "status": "queued"})).has_data(Some("c"), None));
}

#[test]
fn capabilities_from_config() {
    let c = crate::config::ReplicationConfig::default();
    let caps = Capabilities::from(&c);
    assert_eq!(caps.accept_replicas, c.accept_replicas);
    assert_eq!(caps.license_switch_types, c.license_switch_types);
}

#[tokio::test]
async fn pause_points_hold_until_released() {
    let id = glimpse_types::uuid_id();
    let point = pause::pause_copy(&id, 10);
    let found = pause::lookup(&id).unwrap();
    found.hold(5).await.unwrap(); // below the threshold: no wait
    assert!(!point.is_reached());
    let held = tokio::spawn(async move { found.hold(10).await });
    point.reached().await;
    assert!(!held.is_finished());
    point.release();
    held.await.unwrap().unwrap();
    pause::clear(&id);
    assert!(pause::lookup(&id).is_none());
}

#[tokio::test]
async fn fail_points_break_a_given_number_of_copies() {
    let id = glimpse_types::uuid_id();
    let point = pause::fail_copy(&id, 10, 2);
    let found = pause::lookup(&id).unwrap();
    assert!(found.hold(9).await.is_ok());
    assert!(found.hold(10).await.is_err());
    assert!(found.hold(20).await.is_err());
    assert!(found.hold(20).await.is_ok());
    assert_eq!(point.failures_left(), 0);
    assert!(point.is_reached());
    pause::clear(&id);
}
