//! The [`DeploymentRepository`] contract; the account, device and bundle
//! ports provide owners, devices and the bundle deployed.

use chrono::Duration;

use super::bundle::{deployed, new_bundle, uploaded};
use super::fixtures::*;
use crate::account::*;
use crate::activity::DeviceActivity;
use crate::audit::AuditAction;
use crate::bundle::*;
use crate::deployment::*;
use crate::device::*;
use crate::pagination::PageRequest;

fn without_versions(mut d: Deployment) -> Deployment {
    d.devices.iter_mut().for_each(|p| p.ea_version = None);
    d
}

pub async fn a_created_deployment_reads_back_whole_for_its_owner_and_devices(
    accounts: &impl AccountRepository,
    devices: &impl DeviceRepository,
    bundles: &impl BundleStore,
    deployments: &impl DeploymentRepository,
) {
    let owner = registered(accounts).await.id;
    let other = registered(accounts).await.id;
    let a = stored_device(devices, owner, "DepA", 0).await.id;
    let b = stored_device(devices, owner, "DepB", 1).await.id;
    let bundle = uploaded(bundles, &new_bundle(owner, "Dep", "1.0.0", 0), &[b"x"]).await;
    let d = deployed(deployments, &bundle, &[a, b]).await;
    let read = deployments
        .get(owner, d.id)
        .await
        .expect("get failed")
        .expect("the owner's deployment");
    assert_eq!(
        without_versions(read),
        d,
        "it reads back as created, devices in order"
    );
    assert_eq!(
        deployments.get(other, d.id).await.expect("get failed"),
        None,
        "not another owner's"
    );
    assert_eq!(
        deployments
            .get_for_device(b, d.id)
            .await
            .expect("get_for_device failed")
            .map(|d| d.id),
        Some(d.id),
        "a targeted device reads it"
    );
    let stranger = stored_device(devices, owner, "DepC", 2).await.id;
    assert_eq!(
        deployments
            .get_for_device(stranger, d.id)
            .await
            .expect("get_for_device failed"),
        None,
        "a device it does not target does not"
    );
    let later = deployed(deployments, &bundle, &[a]).await;
    let page = deployments
        .list(owner, &PageRequest::first(1))
        .await
        .expect("list failed");
    assert_eq!(
        page.items.iter().map(|d| d.id).collect::<Vec<_>>(),
        vec![later.id.max(d.id)],
        "newest first"
    );
    assert!(page.next.is_some(), "and another page");
}

pub async fn saves_are_optimistic_and_store_what_changed(
    accounts: &impl AccountRepository,
    devices: &impl DeviceRepository,
    bundles: &impl BundleStore,
    deployments: &impl DeploymentRepository,
) {
    let owner = registered(accounts).await.id;
    let a = stored_device(devices, owner, "SaveA", 0).await.id;
    let b = stored_device(devices, owner, "SaveB", 1).await.id;
    let bundle = uploaded(bundles, &new_bundle(owner, "Save", "1.0.0", 0), &[b"x"]).await;
    let d = deployed(deployments, &bundle, &[a, b]).await;
    let mut changed = d.clone();
    let now = t0() + Duration::minutes(5);
    changed
        .report(a, TargetStatus::Failed, Some("disk full".into()), now)
        .expect("a valid report");
    assert_eq!(
        changed.devices[1].status,
        TargetStatus::Pending,
        "the second wave started"
    );
    let audit = [audit_event(
        AuditAction::DeploymentDeviceStatus,
        Some(owner),
        Some(a),
    )];
    deployments
        .save(&changed, &changed.devices, &audit)
        .await
        .expect("save failed");
    let read = deployments
        .get(owner, d.id)
        .await
        .expect("get failed")
        .expect("exists");
    assert_eq!(read.revision, d.revision + 1, "a save advances the revision");
    assert_eq!(
        (read.current_wave, read.state),
        (1, DeploymentState::Running),
        "the saved wave and state read back"
    );
    assert_eq!(
        read.devices[0].status,
        TargetStatus::Failed,
        "the failed status is stored"
    );
    assert_eq!(
        read.devices[0].reason.as_deref(),
        Some("disk full"),
        "the failure reason is stored"
    );
    assert_eq!(read.devices[1].started_at, Some(now), "timestamps are stored");
    assert!(
        matches!(
            deployments.save(&changed, &[], &audit).await,
            Err(SaveDeploymentError::Conflict)
        ),
        "a save from a stale read is refused"
    );
}

pub async fn devices_find_their_open_deployment_and_carry_their_ea_version(
    accounts: &impl AccountRepository,
    devices: &impl DeviceRepository,
    bundles: &impl BundleStore,
    deployments: &impl DeploymentRepository,
) {
    let owner = registered(accounts).await.id;
    let a = stored_device(devices, owner, "OpenA", 0).await.id;
    let b = stored_device(devices, owner, "OpenB", 1).await.id;
    let revoked = stored_device(devices, owner, "OpenR", 2).await.id;
    devices
        .revoke(
            owner,
            revoked,
            t0(),
            &audit_event(AuditAction::DeviceRevoked, Some(owner), Some(revoked)),
        )
        .await
        .expect("revoke failed");
    let heartbeat = Heartbeat {
        ea_version: Some("1.0.0".into()),
        terminal_build: None,
        broker: None,
        account_login: None,
        balance: None,
        equity: None,
        received_at: t0(),
    };
    let activity = DeviceActivity {
        heartbeat: Some(heartbeat),
        ..DeviceActivity::default()
    };
    devices
        .record_activity(&[(a, activity)])
        .await
        .expect("record_activity failed");
    assert_eq!(
        deployments
            .active_devices(owner, DeviceSelection::All)
            .await
            .expect("active_devices failed"),
        vec![(a, Some("1.0.0".to_owned())), (b, None)],
        "active devices in creation order, with their EA version"
    );
    assert_eq!(
        deployments
            .active_devices(owner, DeviceSelection::Ids(&[b, revoked, unknown_device()]))
            .await
            .expect("active_devices failed"),
        vec![(b, None)],
        "only the named ones that are active and the owner's"
    );
    let bundle = uploaded(bundles, &new_bundle(owner, "Open", "1.0.0", 0), &[b"x"]).await;
    let d = deployed(deployments, &bundle, &[a, b]).await;
    let running = deployments
        .claim_for_sweep(t0(), 100_000)
        .await
        .expect("claim_for_sweep failed");
    assert!(running.contains(&(owner, d.id)), "a running deployment is swept");
    let open = deployments
        .open_for_device(a)
        .await
        .expect("open_for_device failed")
        .expect("a is pending");
    assert_eq!(open.id, d.id, "the device's open deployment is found");
    assert_eq!(
        open.devices[0].ea_version.as_deref(),
        Some("1.0.0"),
        "read with the device's EA version"
    );
    assert_eq!(
        deployments
            .open_for_device(b)
            .await
            .expect("open_for_device failed"),
        None,
        "b is still waiting"
    );
    let mut cancelled = open.clone();
    cancelled.cancel(t0()).expect("running");
    deployments
        .save(&cancelled, &cancelled.devices, &[])
        .await
        .expect("save failed");
    assert!(
        !deployments
            .claim_for_sweep(t0(), 100_000)
            .await
            .expect("claim_for_sweep failed")
            .contains(&(owner, d.id)),
        "an ended deployment is not"
    );
    assert_eq!(
        deployments
            .open_for_device(a)
            .await
            .expect("open_for_device failed"),
        None,
        "a cancelled deployment is not open"
    );
}

pub async fn writes_change_the_deployment_revision_of_the_devices_they_touch(
    accounts: &impl AccountRepository,
    devices: &impl DeviceRepository,
    bundles: &impl BundleStore,
    deployments: &impl DeploymentRepository,
) {
    let revision = async |device| {
        devices
            .find_credentials(device)
            .await
            .expect("find_credentials failed")
            .expect("the device exists")
            .deployment_revision
    };
    let owner = registered(accounts).await.id;
    let a = stored_device(devices, owner, "RevA", 0).await.id;
    let b = stored_device(devices, owner, "RevB", 1).await.id;
    let bystander = stored_device(devices, owner, "RevC", 2).await.id;
    assert_eq!(revision(a).await, 0, "a device starts at deployment revision 0");
    let bundle = uploaded(bundles, &new_bundle(owner, "Rev", "1.0.0", 0), &[b"x"]).await;
    let d = deployed(deployments, &bundle, &[a, b]).await;
    let (after_a, after_b) = (revision(a).await, revision(b).await);
    assert!(
        after_a > 0 && after_b > 0,
        "creating a deployment changes its devices' revisions"
    );
    let mut changed = d.clone();
    changed
        .report(a, TargetStatus::Installed, None, t0())
        .expect("a valid report");
    let touched: Vec<DeviceProgress> = changed
        .devices
        .iter()
        .filter(|p| p.device == b)
        .cloned()
        .collect();
    deployments
        .save(&changed, &touched, &[])
        .await
        .expect("save failed");
    assert_ne!(
        revision(b).await,
        after_b,
        "a saved change of a device changes its revision"
    );
    assert_eq!(revision(a).await, after_a, "devices not saved keep theirs");
    assert_eq!(
        revision(bystander).await,
        0,
        "devices outside the deployment keep theirs"
    );
}

pub async fn labels_are_replaced_per_device_and_select_active_devices(
    accounts: &impl AccountRepository,
    devices: &impl DeviceRepository,
    _bundles: &impl BundleStore,
    deployments: &impl DeploymentRepository,
) {
    let owner = registered(accounts).await.id;
    let other = registered(accounts).await.id;
    let a = stored_device(devices, owner, "LabA", 0).await.id;
    let b = stored_device(devices, owner, "LabB", 1).await.id;
    let theirs = stored_device(devices, other, "LabT", 2).await.id;
    let label = |s: &str| Label::parse(s).unwrap();
    let audit = || audit_event(AuditAction::DeviceLabelsChanged, Some(owner), None);
    assert_eq!(
        deployments.labels(owner, a).await.expect("labels failed"),
        Some(vec![]),
        "no labels at first"
    );
    assert!(
        deployments
            .set_labels(owner, a, &[label("vps"), label("london")], &audit())
            .await
            .expect("set_labels failed"),
        "the owner labels their device"
    );
    assert!(
        deployments
            .set_labels(owner, b, &[label("london")], &audit())
            .await
            .expect("set_labels failed"),
        "the owner labels another device"
    );
    assert!(
        deployments
            .set_labels(other, theirs, &[label("london")], &audit())
            .await
            .expect("set_labels failed"),
        "another owner labels their own device"
    );
    assert!(
        !deployments
            .set_labels(other, a, &[label("x")], &audit())
            .await
            .expect("set_labels failed"),
        "another owner's device is not found"
    );
    assert_eq!(
        deployments.labels(other, a).await.expect("labels failed"),
        None,
        "another owner cannot read the labels"
    );
    assert_eq!(
        deployments.labels(owner, a).await.expect("labels failed"),
        Some(vec![label("london"), label("vps")]),
        "sorted"
    );
    let selected = async |l: &str| {
        let l = label(l);
        deployments
            .active_devices(owner, DeviceSelection::Label(&l))
            .await
            .expect("active_devices failed")
            .into_iter()
            .map(|(d, _)| d)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        selected("london").await,
        vec![a, b],
        "the owner's devices with the label, in creation order"
    );
    assert_eq!(selected("vps").await, vec![a], "only a carries vps");
    assert!(
        deployments
            .set_labels(owner, a, &[label("vps")], &audit())
            .await
            .expect("set_labels failed"),
        "the owner replaces a's labels"
    );
    assert_eq!(selected("london").await, vec![b], "setting replaces the labels");
    devices
        .revoke(
            owner,
            b,
            t0(),
            &audit_event(AuditAction::DeviceRevoked, Some(owner), Some(b)),
        )
        .await
        .expect("revoke failed");
    assert!(
        selected("london").await.is_empty(),
        "revoked devices are not selected"
    );
}

pub async fn sweeps_claim_running_deployments_least_recently_swept_first(
    accounts: &impl AccountRepository,
    devices: &impl DeviceRepository,
    bundles: &impl BundleStore,
    deployments: &impl DeploymentRepository,
) {
    let owner = registered(accounts).await.id;
    let device = stored_device(devices, owner, "Swept", 0).await.id;
    let bundle = uploaded(bundles, &new_bundle(owner, "Swept", "1.0.0", 0), &[b"x"]).await;
    // In no particular order.
    let claim = async |minutes: i64, limit: u32| {
        let mut claimed = deployments
            .claim_for_sweep(t0() + Duration::minutes(minutes), limit)
            .await
            .expect("claim_for_sweep failed");
        claimed.sort_by_key(|(_, id)| *id);
        claimed
    };
    // Whatever else runs in the store has been swept now.
    claim(0, 100_000).await;
    let mut ours = Vec::new();
    for _ in 0..3 {
        ours.push((owner, deployed(deployments, &bundle, &[device]).await.id));
    }
    ours.sort_by_key(|(_, id)| *id);
    let first = claim(1, 2).await;
    assert_eq!(first, ours[..2], "never swept first, by id");
    let second = claim(2, 1).await;
    assert_eq!(
        second,
        ours[2..],
        "then the one not swept yet, not the same batch again"
    );
    let third = claim(3, 2).await;
    assert!(
        !third.contains(&ours[2]),
        "the most recently swept comes last: {third:?}"
    );
    let all = claim(4, 100_000).await;
    assert!(
        ours.iter().all(|d| all.contains(d)),
        "a large enough batch takes every running deployment"
    );
}

/// Every [`DeploymentRepository`] rule, in order, on one set of ports.
pub async fn deployment_repository_contract(
    accounts: &impl AccountRepository,
    devices: &impl DeviceRepository,
    bundles: &impl BundleStore,
    deployments: &impl DeploymentRepository,
) {
    a_created_deployment_reads_back_whole_for_its_owner_and_devices(accounts, devices, bundles, deployments)
        .await;
    saves_are_optimistic_and_store_what_changed(accounts, devices, bundles, deployments).await;
    devices_find_their_open_deployment_and_carry_their_ea_version(accounts, devices, bundles, deployments)
        .await;
    writes_change_the_deployment_revision_of_the_devices_they_touch(accounts, devices, bundles, deployments)
        .await;
    labels_are_replaced_per_device_and_select_active_devices(accounts, devices, bundles, deployments).await;
    sweeps_claim_running_deployments_least_recently_swept_first(accounts, devices, bundles, deployments)
        .await;
}

/// One `#[tokio::test]` per [`DeploymentRepository`] rule, in a module
/// `deployment_repository_contract`. `$setup`: an async block returning
/// `(guard, accounts, devices, bundles, deployments)` over one store.
#[macro_export]
macro_rules! deployment_repository_contract {
    ($setup:expr) => {
        $crate::__contract_cases!(
            deployment_repository_contract,
            deployment,
            $setup,
            (accounts, devices, bundles, deployments),
            [
                a_created_deployment_reads_back_whole_for_its_owner_and_devices,
                saves_are_optimistic_and_store_what_changed,
                devices_find_their_open_deployment_and_carry_their_ea_version,
                writes_change_the_deployment_revision_of_the_devices_they_touch,
                labels_are_replaced_per_device_and_select_active_devices,
                sweeps_claim_running_deployments_least_recently_swept_first,
            ]
        );
    };
}
