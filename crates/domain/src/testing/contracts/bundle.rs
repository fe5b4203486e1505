//! The [`BundleStore`] contract; the account, device and deployment
//! repositories provide owners, devices and the deployments that put a
//! bundle in use.

use chrono::Duration;
use uuid::Uuid;

use super::fixtures::*;
use crate::account::*;
use crate::audit::AuditAction;
use crate::bundle::*;
use crate::deployment::*;
use crate::device::*;
use crate::pagination::PageRequest;

pub(crate) fn new_bundle(owner: UserId, name: &str, version: &str, minutes: i64) -> NewBundle {
    NewBundle {
        id: BundleId::from_uuid(Uuid::now_v7()),
        owner,
        name: BundleName::parse(name).unwrap(),
        version: BundleVersion::parse(version).unwrap(),
        notes: ReleaseNotes::parse("notes").unwrap(),
        created_at: t0() + Duration::minutes(minutes),
    }
}

fn digest(fill: u8) -> Sha256Hex {
    Sha256Hex::from_bytes(&[fill; 32])
}

/// Begins, appends `chunks` in order and completes a bundle.
pub(crate) async fn uploaded(bundles: &impl BundleStore, new: &NewBundle, chunks: &[&[u8]]) -> Bundle {
    bundles.begin(new).await.expect("setting up: begin failed");
    let mut at = 0u64;
    for c in chunks {
        bundles
            .append(new.id, at, c)
            .await
            .expect("setting up: append failed");
        at += c.len() as u64;
    }
    bundles
        .complete(
            new.id,
            at,
            &digest(7),
            &audit_event(AuditAction::BundleUploaded, Some(new.owner), None),
        )
        .await
        .expect("setting up: complete failed")
}

/// A running deployment of `bundle` to `devices` in two waves (the first
/// device's wave starts at once, the rest wait).
pub(super) async fn deployed(
    deployments: &impl DeploymentRepository,
    bundle: &Bundle,
    devices: &[DeviceId],
) -> Deployment {
    let (d, _) = Deployment::start(
        DeploymentId::from_uuid(Uuid::now_v7()),
        bundle.owner,
        bundle.id,
        bundle.version.clone(),
        Target::Devices,
        Rollout::parse(Some(&[1, 100]), None, None, None).unwrap(),
        devices.iter().map(|d| (*d, None)).collect(),
        t0(),
    );
    deployments
        .create(
            &d,
            &[audit_event(
                AuditAction::DeploymentCreated,
                Some(bundle.owner),
                None,
            )],
        )
        .await
        .expect("setting up: create deployment failed");
    d
}

pub async fn an_upload_is_listed_once_completed_and_reads_back_in_ranges(
    accounts: &impl AccountRepository,
    _devices: &impl DeviceRepository,
    bundles: &impl BundleStore,
    _deployments: &impl DeploymentRepository,
) {
    let owner = registered(accounts).await.id;
    let new = new_bundle(owner, "Reader", "1.0.0", 0);
    bundles.begin(&new).await.expect("begin failed");
    bundles.append(new.id, 0, b"01234").await.expect("append failed");
    bundles.append(new.id, 5, b"567").await.expect("append failed");
    assert_eq!(
        bundles.get(owner, new.id).await.expect("get failed"),
        None,
        "an upload in progress is not a bundle yet"
    );
    assert!(
        bundles
            .list(owner, &PageRequest::first(10))
            .await
            .expect("list failed")
            .items
            .is_empty(),
        "an upload in progress is not listed"
    );
    let audit = audit_event(AuditAction::BundleUploaded, Some(owner), None);
    let done = bundles
        .complete(new.id, 8, &digest(1), &audit)
        .await
        .expect("complete failed");
    assert_eq!(
        (done.size, &done.sha256, &done.name, &done.version),
        (8, &digest(1), &new.name, &new.version),
        "complete returns the bundle with its size and digest"
    );
    assert_eq!(
        bundles.get(owner, new.id).await.expect("get failed"),
        Some(done.clone()),
        "the completed bundle reads back as returned"
    );
    let read = async |offset, max| bundles.read(new.id, offset, max).await.expect("read failed");
    assert_eq!(read(0, 100).await, b"01234567", "the whole file");
    assert_eq!(read(3, 4).await, b"3456", "a range across chunks");
    assert_eq!(read(7, 10).await, b"7", "fewer bytes only at the end");
    assert_eq!(read(8, 10).await, b"", "nothing from the size on");
    assert_eq!(read(100, 10).await, b"", "nothing beyond it");
}

pub async fn a_name_and_version_is_taken_once_per_owner(
    accounts: &impl AccountRepository,
    _devices: &impl DeviceRepository,
    bundles: &impl BundleStore,
    _deployments: &impl DeploymentRepository,
) {
    let owner = registered(accounts).await.id;
    let other = registered(accounts).await.id;
    let first = new_bundle(owner, "Taken", "1.0.0", 0);
    bundles.begin(&first).await.expect("begin failed");
    let again = new_bundle(owner, "Taken", "1.0.0", 1);
    assert!(
        matches!(bundles.begin(&again).await, Err(BeginUploadError::VersionTaken)),
        "the same name and version is refused while the first upload is in progress"
    );
    uploaded(bundles, &new_bundle(owner, "Taken", "1.0.1", 2), &[b"x"]).await;
    uploaded(bundles, &new_bundle(other, "Taken", "1.0.0", 3), &[b"x"]).await;
    bundles.abandon(first.id).await.expect("abandon failed");
    bundles
        .begin(&again)
        .await
        .expect("an abandoned upload frees its name and version");
}

pub async fn an_upload_cut_off_long_ago_frees_its_name_and_version(
    accounts: &impl AccountRepository,
    _devices: &impl DeviceRepository,
    bundles: &impl BundleStore,
    _deployments: &impl DeploymentRepository,
) {
    let owner = registered(accounts).await.id;
    let crashed = new_bundle(owner, "Crashed", "1.0.0", 0);
    bundles.begin(&crashed).await.expect("begin failed");
    bundles
        .append(crashed.id, 0, b"half")
        .await
        .expect("append failed");
    assert!(
        matches!(
            bundles.begin(&new_bundle(owner, "Crashed", "1.0.0", 59)).await,
            Err(BeginUploadError::VersionTaken)
        ),
        "within the hour the upload may still be running"
    );
    let retry = new_bundle(owner, "Crashed", "1.0.0", 61);
    bundles
        .begin(&retry)
        .await
        .expect("an hour later the incomplete upload is replaced");
    bundles
        .append(retry.id, 0, b"whole")
        .await
        .expect("append failed");
    let audit = audit_event(AuditAction::BundleUploaded, Some(owner), None);
    let done = bundles
        .complete(retry.id, 5, &digest(2), &audit)
        .await
        .expect("complete failed");
    assert_eq!(
        bundles.read(done.id, 0, 100).await.expect("read failed"),
        b"whole",
        "a completed bundle reads back its bytes"
    );
    let late = new_bundle(owner, "Crashed", "1.0.0", 600);
    assert!(
        matches!(bundles.begin(&late).await, Err(BeginUploadError::VersionTaken)),
        "a completed bundle holds its name and version for good"
    );
}

pub async fn bundles_are_private_and_listed_newest_first(
    accounts: &impl AccountRepository,
    _devices: &impl DeviceRepository,
    bundles: &impl BundleStore,
    _deployments: &impl DeploymentRepository,
) {
    let owner = registered(accounts).await.id;
    let other = registered(accounts).await.id;
    let old = uploaded(bundles, &new_bundle(owner, "Listed", "1.0.0", 0), &[b"a"]).await;
    let new = uploaded(bundles, &new_bundle(owner, "Listed", "2.0.0", 5), &[b"b"]).await;
    assert_eq!(
        bundles.get(other, old.id).await.expect("get failed"),
        None,
        "another owner's bundle is not found"
    );
    let audit = audit_event(AuditAction::BundleDeleted, Some(other), None);
    assert!(
        matches!(
            bundles.delete(other, old.id, &audit).await,
            Err(DeleteBundleError::NotFound)
        ),
        "another owner cannot delete it"
    );
    let first = bundles
        .list(owner, &PageRequest::first(1))
        .await
        .expect("list failed");
    assert_eq!(first.items, vec![new.clone()], "newest first");
    let second = bundles
        .list(
            owner,
            &PageRequest {
                limit: 1,
                after: first.next,
            },
        )
        .await
        .expect("list failed");
    assert_eq!(
        (second.items, second.next),
        (vec![old], None),
        "the next page continues"
    );
}

pub async fn a_deployed_bundle_reaches_started_devices_and_cannot_be_deleted(
    accounts: &impl AccountRepository,
    devices: &impl DeviceRepository,
    bundles: &impl BundleStore,
    deployments: &impl DeploymentRepository,
) {
    let owner = registered(accounts).await.id;
    let first = stored_device(devices, owner, "Wave1", 0).await.id;
    let second = stored_device(devices, owner, "Wave2", 1).await.id;
    let bundle = uploaded(bundles, &new_bundle(owner, "Shipped", "1.0.0", 0), &[b"ea"]).await;
    let unused = uploaded(bundles, &new_bundle(owner, "Unused", "1.0.0", 0), &[b"ea"]).await;
    assert_eq!(
        bundles
            .deployed_to(first, bundle.id)
            .await
            .expect("deployed_to failed"),
        None,
        "not deployed yet"
    );
    deployed(deployments, &bundle, &[first, second]).await;
    assert_eq!(
        bundles
            .deployed_to(first, bundle.id)
            .await
            .expect("deployed_to failed"),
        Some(bundle.clone()),
        "a device whose wave started may download the bundle"
    );
    assert_eq!(
        bundles
            .deployed_to(second, bundle.id)
            .await
            .expect("deployed_to failed"),
        None,
        "a device whose wave has not started may not"
    );
    assert_eq!(
        bundles
            .deployed_to(first, unused.id)
            .await
            .expect("deployed_to failed"),
        None,
        "nor another bundle"
    );
    let audit = audit_event(AuditAction::BundleDeleted, Some(owner), None);
    assert!(
        matches!(
            bundles.delete(owner, bundle.id, &audit).await,
            Err(DeleteBundleError::InUse)
        ),
        "a bundle a deployment uses cannot be deleted"
    );
    bundles
        .delete(owner, unused.id, &audit)
        .await
        .expect("an unused bundle can be deleted");
    assert_eq!(
        bundles.get(owner, unused.id).await.expect("get failed"),
        None,
        "and is gone"
    );
}

pub async fn the_sweep_drops_only_uploads_abandoned_long_ago(
    accounts: &impl AccountRepository,
    _devices: &impl DeviceRepository,
    bundles: &impl BundleStore,
    _deployments: &impl DeploymentRepository,
) {
    let owner = registered(accounts).await.id;
    let other = registered(accounts).await.id;
    let now = t0() + Duration::minutes(90);
    // What other rules left in a shared store goes first.
    bundles.drop_stale_uploads(now).await.expect("sweep failed");
    let abandoned = new_bundle(owner, "Abandoned", "1.0.0", 0);
    bundles.begin(&abandoned).await.expect("begin failed");
    bundles
        .append(abandoned.id, 0, b"half a file")
        .await
        .expect("append failed");
    let elsewhere = new_bundle(other, "Elsewhere", "1.0.0", 1);
    bundles.begin(&elsewhere).await.expect("begin failed");
    let recent = new_bundle(owner, "Recent", "1.0.0", 40);
    bundles.begin(&recent).await.expect("begin failed");
    let done = uploaded(bundles, &new_bundle(owner, "Done", "1.0.0", 0), &[b"whole"]).await;
    assert_eq!(
        bundles.drop_stale_uploads(now).await.expect("sweep failed"),
        2,
        "both owners' uploads begun over an hour ago are dropped"
    );
    assert!(
        bundles.append(abandoned.id, 11, b"rest").await.is_err(),
        "a dropped upload takes no more chunks"
    );
    bundles
        .begin(&new_bundle(owner, "Abandoned", "1.0.0", 90))
        .await
        .expect("its name and version are free again");
    bundles
        .append(recent.id, 0, b"still coming")
        .await
        .expect("a recent upload is kept");
    assert_eq!(
        bundles.read(done.id, 0, 100).await.expect("read failed"),
        b"whole",
        "a completed bundle is kept, however old"
    );
    assert_eq!(
        bundles.drop_stale_uploads(now).await.expect("sweep failed"),
        0,
        "a second sweep finds nothing"
    );
}

pub async fn stored_bytes_count_completed_bundles_and_uploads_in_progress(
    accounts: &impl AccountRepository,
    _devices: &impl DeviceRepository,
    bundles: &impl BundleStore,
    _deployments: &impl DeploymentRepository,
) {
    let owner = registered(accounts).await.id;
    let other = registered(accounts).await.id;
    let stored = async |who| bundles.stored_bytes(who).await.expect("stored_bytes failed");
    assert_eq!(stored(owner).await, 0, "nothing stored yet");
    uploaded(
        bundles,
        &new_bundle(owner, "Stored", "1.0.0", 0),
        &[b"12345", b"678"],
    )
    .await;
    let progress = new_bundle(owner, "Stored", "2.0.0", 1);
    bundles.begin(&progress).await.expect("begin failed");
    bundles
        .append(progress.id, 0, b"abc")
        .await
        .expect("append failed");
    uploaded(
        bundles,
        &new_bundle(other, "Stored", "1.0.0", 0),
        &[b"0123456789"],
    )
    .await;
    assert_eq!(
        stored(owner).await,
        11,
        "a completed bundle's size plus what an upload in progress stored"
    );
    assert_eq!(stored(other).await, 10, "per owner");
    bundles.abandon(progress.id).await.expect("abandon failed");
    assert_eq!(stored(owner).await, 8, "an abandoned upload frees what it stored");
}

/// Every [`BundleStore`] rule, in order, on one set of ports.
pub async fn bundle_store_contract(
    accounts: &impl AccountRepository,
    devices: &impl DeviceRepository,
    bundles: &impl BundleStore,
    deployments: &impl DeploymentRepository,
) {
    an_upload_is_listed_once_completed_and_reads_back_in_ranges(accounts, devices, bundles, deployments)
        .await;
    a_name_and_version_is_taken_once_per_owner(accounts, devices, bundles, deployments).await;
    an_upload_cut_off_long_ago_frees_its_name_and_version(accounts, devices, bundles, deployments).await;
    bundles_are_private_and_listed_newest_first(accounts, devices, bundles, deployments).await;
    a_deployed_bundle_reaches_started_devices_and_cannot_be_deleted(accounts, devices, bundles, deployments)
        .await;
    the_sweep_drops_only_uploads_abandoned_long_ago(accounts, devices, bundles, deployments).await;
    stored_bytes_count_completed_bundles_and_uploads_in_progress(accounts, devices, bundles, deployments)
        .await;
}

/// One `#[tokio::test]` per [`BundleStore`] rule, in a module
/// `bundle_store_contract`. `$setup`: an async block returning
/// `(guard, accounts, devices, bundles, deployments)` over one store.
#[macro_export]
macro_rules! bundle_store_contract {
    ($setup:expr) => {
        $crate::__contract_cases!(
            bundle_store_contract,
            bundle,
            $setup,
            (accounts, devices, bundles, deployments),
            [
                an_upload_is_listed_once_completed_and_reads_back_in_ranges,
                a_name_and_version_is_taken_once_per_owner,
                an_upload_cut_off_long_ago_frees_its_name_and_version,
                bundles_are_private_and_listed_newest_first,
                a_deployed_bundle_reaches_started_devices_and_cannot_be_deleted,
                the_sweep_drops_only_uploads_abandoned_long_ago,
                stored_bytes_count_completed_bundles_and_uploads_in_progress,
            ]
        );
    };
}
