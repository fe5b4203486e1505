//! The deployment use cases: the owner creates, lists, reads and cancels
//! deployments; devices read their target and report progress. Time-driven
//! rules (timeouts, heartbeat confirmation, the next wave) are applied
//! lazily whenever a deployment is read or reported to.

use std::collections::BTreeMap;

use tracing::instrument;

use super::error::*;
use super::model::*;
use super::ports::*;
use crate::account::UserId;
use crate::audit::{AuditAction, AuditEvent, ClientInfo};
use crate::bundle::{BundleId, BundleStore};
use crate::clock::Clock;
use crate::device::DeviceId;
use crate::id::IdGenerator;
use crate::pagination::{Page, PageRequest};
use crate::validation::{FieldError, ValidationErrors};

/// A deployment request, as the owner sent it.
#[derive(Debug, Clone)]
pub struct NewDeploymentInput {
    pub bundle_id: BundleId,
    /// `devices`, `all` or `label`.
    pub target: String,
    pub device_ids: Option<Vec<DeviceId>>,
    /// With `target: label`.
    pub label: Option<String>,
    pub waves: Option<Vec<i64>>,
    pub abort_failure_percent: Option<i64>,
    pub abort_min_finished: Option<i64>,
    pub timeout_minutes: Option<i64>,
}

impl NewDeploymentInput {
    /// Validates the request's fields, collecting every error (what
    /// [`DeploymentService::create`] checks before any lookup): its target
    /// and rollout.
    pub fn parse(&self) -> Result<(Target, Rollout), ValidationErrors> {
        let mut errors = ValidationErrors::new();
        let target = match (self.target.as_str(), &self.label) {
            ("devices", _) => Some(Target::Devices),
            ("all", _) => Some(Target::All),
            ("label", Some(l)) => errors
                .collect(Label::parse(l).map_err(|e| FieldError { field: "label", ..e }))
                .map(Target::Label),
            ("label", None) => {
                errors.push(FieldError::new(
                    "label",
                    "required",
                    "is required when target is `label`",
                ));
                None
            }
            _ => {
                errors.push(FieldError::new(
                    "target",
                    "invalid",
                    "must be `devices`, `all` or `label`",
                ));
                None
            }
        };
        if self.label.is_some() && self.target != "label" {
            errors.push(FieldError::new(
                "label",
                "not_allowed",
                "is only for target `label`",
            ));
        }
        match (&target, &self.device_ids) {
            (None, _) => {}
            (Some(Target::Devices), None) => errors.push(FieldError::new(
                "device_ids",
                "required",
                "is required when target is `devices`",
            )),
            (Some(Target::Devices), Some(ids)) if ids.is_empty() || ids.len() > 1000 => errors.push(
                FieldError::new("device_ids", "invalid_length", "must name 1 to 1000 devices"),
            ),
            (Some(Target::All | Target::Label(_)), Some(_)) => errors.push(FieldError::new(
                "device_ids",
                "not_allowed",
                "is only for target `devices`",
            )),
            _ => {}
        }
        let rollout = match Rollout::parse(
            self.waves.as_deref(),
            self.abort_failure_percent,
            self.abort_min_finished,
            self.timeout_minutes,
        ) {
            Ok(r) => Some(r),
            Err(e) => {
                e.errors().iter().for_each(|e| errors.push(e.clone()));
                None
            }
        };
        match (target, rollout) {
            (Some(target), Some(rollout)) if errors.is_empty() => Ok((target, rollout)),
            _ => Err(errors),
        }
    }
}

/// Validates a device's status report (what [`DeploymentService::report`]
/// checks before any lookup): the status it moves to and the reason kept.
pub fn parse_report(
    status: &str,
    reason: Option<&str>,
) -> Result<(TargetStatus, Option<String>), ValidationErrors> {
    let to = match TargetStatus::parse(status) {
        Some(s @ (TargetStatus::Downloading | TargetStatus::Installed | TargetStatus::Failed)) => s,
        _ => {
            return Err(FieldError::new(
                "status",
                "invalid",
                "must be `downloading`, `installed` or `failed`",
            )
            .into());
        }
    };
    let reason = match reason.map(str::trim) {
        Some(r) if r.is_empty() || r.chars().count() > MAX_REASON || r.chars().any(char::is_control) => {
            return Err(FieldError::new(
                "reason",
                "invalid",
                format!("must be 1 to {MAX_REASON} characters without control characters"),
            )
            .into());
        }
        Some(_) if to != TargetStatus::Failed => {
            return Err(FieldError::new("reason", "not_allowed", "is only for `failed`").into());
        }
        r => r.map(str::to_owned),
    };
    Ok((to, reason))
}

/// Which deployment an update loads: the owner's, or one targeting a device.
#[derive(Debug, Clone, Copy)]
enum Load {
    Owner(UserId, DeploymentId),
    Device(DeviceId, DeploymentId),
}

/// The longest failure reason kept.
pub const MAX_REASON: usize = 512;

/// How often a save is retried after losing a race.
const SAVE_ATTEMPTS: usize = 5;

#[derive(Debug, Clone)]
pub struct DeploymentService<R, B, C, I> {
    deployments: R,
    bundles: B,
    clock: C,
    ids: I,
}

impl<R, B, C, I> DeploymentService<R, B, C, I>
where
    R: DeploymentRepository,
    B: BundleStore,
    C: Clock,
    I: IdGenerator,
{
    pub fn new(deployments: R, bundles: B, clock: C, ids: I) -> Self {
        Self {
            deployments,
            bundles,
            clock,
            ids,
        }
    }

    fn audit(
        &self,
        d: &Deployment,
        events: &[DeploymentEvent],
        user: Option<UserId>,
        client: &ClientInfo,
    ) -> Vec<AuditEvent> {
        let now = self.clock.now();
        events
            .iter()
            .map(|e| {
                let mut details = BTreeMap::from([
                    ("deployment_id".to_owned(), d.id.to_string()),
                    ("bundle_id".to_owned(), d.bundle.to_string()),
                ]);
                let mut device_id = None;
                let action = match e {
                    DeploymentEvent::WaveStarted { wave } => {
                        details.insert("wave".to_owned(), wave.to_string());
                        AuditAction::DeploymentWaveStarted
                    }
                    DeploymentEvent::DeviceStatus {
                        device,
                        status,
                        reason,
                    } => {
                        device_id = Some(*device);
                        details.insert("status".to_owned(), status.as_str().to_owned());
                        if let Some(r) = reason {
                            details.insert("reason".to_owned(), r.clone());
                        }
                        AuditAction::DeploymentDeviceStatus
                    }
                    DeploymentEvent::Aborted {
                        wave,
                        failed,
                        finished,
                    } => {
                        details.insert("wave".to_owned(), wave.to_string());
                        details.insert("failed".to_owned(), failed.to_string());
                        details.insert("finished".to_owned(), finished.to_string());
                        AuditAction::DeploymentAborted
                    }
                    DeploymentEvent::Completed => AuditAction::DeploymentCompleted,
                    DeploymentEvent::Cancelled => AuditAction::DeploymentCancelled,
                };
                AuditEvent {
                    id: self.ids.new_id(),
                    occurred_at: now,
                    action,
                    user_id: Some(user.unwrap_or(d.owner)),
                    device_id,
                    client: client.clone(),
                    details,
                }
            })
            .collect()
    }

    /// Creates a deployment of one of the owner's bundles to a list of
    /// their devices or all of them, and starts its first wave. Audited.
    #[instrument(skip_all, fields(user_id = %owner))]
    pub async fn create(
        &self,
        owner: UserId,
        input: NewDeploymentInput,
        client: &ClientInfo,
    ) -> Result<Deployment, DeploymentError> {
        let (target, rollout) = input.parse().map_err(DeploymentError::Invalid)?;
        let bundle = self
            .bundles
            .get(owner, input.bundle_id)
            .await?
            .ok_or(DeploymentError::BundleNotFound)?;
        let devices = match &input.device_ids {
            Some(ids) => {
                let mut unique = ids.clone();
                unique.sort();
                unique.dedup();
                let found = self
                    .deployments
                    .active_devices(owner, DeviceSelection::Ids(&unique))
                    .await?;
                if found.len() != unique.len() || unique.len() != ids.len() {
                    return Err(DeploymentError::Invalid(
                        FieldError::new(
                            "device_ids",
                            "unknown_or_repeated",
                            "must name each of your active devices at most once",
                        )
                        .into(),
                    ));
                }
                // Keep the order the owner gave: it decides the waves.
                let mut by_id: BTreeMap<DeviceId, Option<String>> = found.into_iter().collect();
                ids.iter().map(|id| (*id, by_id.remove(id).flatten())).collect()
            }
            None => {
                let selection = match target.label() {
                    Some(l) => DeviceSelection::Label(l),
                    None => DeviceSelection::All,
                };
                self.deployments.active_devices(owner, selection).await?
            }
        };
        if devices.is_empty() {
            return Err(DeploymentError::Invalid(
                FieldError::new("target", "no_devices", "no active device matches the target").into(),
            ));
        }
        let now = self.clock.now();
        let target_text = target.to_stored();
        let (deployment, events) = Deployment::start(
            DeploymentId::from_uuid(self.ids.new_id()),
            owner,
            bundle.id,
            bundle.version,
            target,
            rollout,
            devices,
            now,
        );
        let mut audit = self.audit(&deployment, &[], None, client);
        audit.push(AuditEvent {
            id: self.ids.new_id(),
            occurred_at: now,
            action: AuditAction::DeploymentCreated,
            user_id: Some(owner),
            device_id: None,
            client: client.clone(),
            details: BTreeMap::from([
                ("deployment_id".to_owned(), deployment.id.to_string()),
                ("bundle_id".to_owned(), deployment.bundle.to_string()),
                ("devices".to_owned(), deployment.devices.len().to_string()),
                ("target".to_owned(), target_text),
            ]),
        });
        audit.extend(self.audit(&deployment, &events, None, client));
        self.deployments.create(&deployment, &audit).await?;
        Ok(deployment)
    }

    async fn load(&self, how: Load) -> Result<Option<Deployment>, crate::error::UnexpectedError> {
        match how {
            Load::Owner(owner, id) => self.deployments.get(owner, id).await,
            Load::Device(device, id) => self.deployments.get_for_device(device, id).await,
        }
    }

    /// Loads the deployment, applies `change` and the lazy rules, and saves
    /// what changed; retried when another write came first.
    async fn update<F>(
        &self,
        how: Load,
        mut change: F,
        client: &ClientInfo,
    ) -> Result<Deployment, DeploymentError>
    where
        F: FnMut(
            &mut Deployment,
            chrono::DateTime<chrono::Utc>,
        ) -> Result<Vec<DeploymentEvent>, DeploymentError>,
    {
        for _ in 0..SAVE_ATTEMPTS {
            let Some(before) = self.load(how).await? else {
                return Err(DeploymentError::NotFound);
            };
            let now = self.clock.now();
            let mut after = before.clone();
            let mut events = change(&mut after, now)?;
            events.extend(after.evaluate(now));
            if after == before {
                return Ok(after);
            }
            let changed: Vec<DeviceProgress> = after
                .devices
                .iter()
                .zip(&before.devices)
                .filter(|(a, b)| a != b)
                .map(|(a, _)| a.clone())
                .collect();
            let audit = self.audit(&after, &events, None, client);
            match self.deployments.save(&after, &changed, &audit).await {
                Ok(()) => {
                    after.revision += 1;
                    return Ok(after);
                }
                Err(SaveDeploymentError::Conflict) => continue,
                Err(SaveDeploymentError::Unexpected(e)) => return Err(e.into()),
            }
        }
        Err(DeploymentError::Busy)
    }

    /// Replaces the labels of the owner's device. Audited.
    #[instrument(skip_all, fields(user_id = %owner, device_id = %device))]
    pub async fn set_labels(
        &self,
        owner: UserId,
        device: DeviceId,
        raw: &[String],
        client: &ClientInfo,
    ) -> Result<Vec<Label>, DeploymentError> {
        let labels = Label::parse_set(raw).map_err(|e| DeploymentError::Invalid(e.into()))?;
        let audit = AuditEvent {
            id: self.ids.new_id(),
            occurred_at: self.clock.now(),
            action: AuditAction::DeviceLabelsChanged,
            user_id: Some(owner),
            device_id: Some(device),
            client: client.clone(),
            details: BTreeMap::from([(
                "labels".to_owned(),
                labels.iter().map(Label::as_str).collect::<Vec<_>>().join(","),
            )]),
        };
        if self
            .deployments
            .set_labels(owner, device, &labels, &audit)
            .await?
        {
            Ok(labels)
        } else {
            Err(DeploymentError::DeviceNotFound)
        }
    }

    /// The labels of the owner's device.
    pub async fn labels(&self, owner: UserId, device: DeviceId) -> Result<Vec<Label>, DeploymentError> {
        self.deployments
            .labels(owner, device)
            .await?
            .ok_or(DeploymentError::DeviceNotFound)
    }

    /// Applies what time decided (timeouts, and the wave starts and aborts
    /// they cause) to a batch of up to `limit` running deployments, the
    /// least recently swept first, so a rollout moves on even when nobody
    /// reads it and its silent devices never report, and every running
    /// deployment gets its turn however many there are. A deployment that
    /// fails is logged and counted, and the sweep goes on with the next
    /// one. Fails only when no batch could be claimed. Safe on every
    /// instance at once (saves are optimistic).
    pub async fn sweep(&self, limit: u32) -> Result<SweepReport, DeploymentError> {
        let mut report = SweepReport::default();
        for (owner, id) in self.deployments.claim_for_sweep(self.clock.now(), limit).await? {
            report.swept += 1;
            match self.sweep_one(owner, id).await {
                Ok(true) => report.changed += 1,
                Ok(false) => {}
                Err(e) => {
                    report.failed += 1;
                    tracing::warn!(deployment_id = %id, error = %e, "sweeping a deployment failed; the sweep goes on");
                }
            }
        }
        Ok(report)
    }

    /// Applies time to one deployment; whether it changed.
    async fn sweep_one(&self, owner: UserId, id: DeploymentId) -> Result<bool, DeploymentError> {
        let before = self.deployments.get(owner, id).await?.map(|d| d.revision);
        match self.get(owner, id).await {
            Ok(after) => Ok(Some(after.revision) != before),
            Err(DeploymentError::NotFound) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// The owner's deployment, with time-driven rules applied.
    pub async fn get(&self, owner: UserId, id: DeploymentId) -> Result<Deployment, DeploymentError> {
        self.update(
            Load::Owner(owner, id),
            |_, _| Ok(Vec::new()),
            &ClientInfo::default(),
        )
        .await
    }

    pub async fn list(
        &self,
        owner: UserId,
        limit: Option<&str>,
        cursor: Option<&str>,
    ) -> Result<Page<Deployment>, DeploymentError> {
        let page = PageRequest::parse(limit, cursor).map_err(|errors| {
            let mut all = ValidationErrors::new();
            errors.into_iter().for_each(|e| all.push(e));
            DeploymentError::Invalid(all)
        })?;
        Ok(self.deployments.list(owner, &page).await?)
    }

    /// Cancels a running deployment. Audited.
    #[instrument(skip_all, fields(user_id = %owner, deployment_id = %id))]
    pub async fn cancel(
        &self,
        owner: UserId,
        id: DeploymentId,
        client: &ClientInfo,
    ) -> Result<Deployment, DeploymentError> {
        self.update(
            Load::Owner(owner, id),
            |d, now| {
                d.cancel(now).map_err(|state| DeploymentError::AlreadyEnded {
                    state: state.as_str(),
                })
            },
            client,
        )
        .await
    }

    /// The deployment the device should work on now, if any.
    pub async fn target_of(&self, device: DeviceId) -> Result<Option<Deployment>, DeploymentError> {
        let Some(open) = self.deployments.open_for_device(device).await? else {
            return Ok(None);
        };
        let d = self
            .update(
                Load::Device(device, open.id),
                |_, _| Ok(Vec::new()),
                &ClientInfo::default(),
            )
            .await?;
        let still_open = d.progress_of(device).is_some_and(|p| p.status.is_open());
        Ok(still_open.then_some(d))
    }

    /// A device reports its progress: `downloading`, `installed` or
    /// `failed` (with a reason). Audited.
    #[instrument(skip_all, fields(device_id = %device, deployment_id = %id))]
    pub async fn report(
        &self,
        device: DeviceId,
        id: DeploymentId,
        status: &str,
        reason: Option<&str>,
        client: &ClientInfo,
    ) -> Result<Deployment, DeploymentError> {
        let (to, reason) = parse_report(status, reason).map_err(DeploymentError::Invalid)?;
        self.update(
            Load::Device(device, id),
            |d, now| {
                d.report(device, to, reason.clone(), now).map_err(|e| match e {
                    ReportRefused::NotTargeted => DeploymentError::NotFound,
                    ReportRefused::Invalid { from, to } => DeploymentError::InvalidTransition { from, to },
                })
            },
            client,
        )
        .await
    }
}

/// What one sweep did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SweepReport {
    /// Running deployments looked at.
    pub swept: usize,
    /// Those that changed (a timeout, a wave started, an abort).
    pub changed: usize,
    /// Those that failed (logged); the sweep went on past them.
    pub failed: usize,
}

#[cfg(test)]
mod tests {
    use chrono::Duration;

    use super::*;
    use crate::testing::contracts::fixtures::{registered, stored_device};
    use crate::testing::{FixedClock, InMemoryStore, SequentialIds};

    type FakeDeployments = DeploymentService<
        crate::testing::InMemoryDeploymentRepository,
        crate::testing::InMemoryBundleStore,
        FixedClock,
        SequentialIds,
    >;

    fn world() -> (InMemoryStore, FixedClock, FakeDeployments) {
        let store = InMemoryStore::default();
        let clock = FixedClock::default_start();
        let service = DeploymentService::new(
            store.deployments(),
            store.bundles(),
            clock.clone(),
            SequentialIds::default(),
        );
        (store, clock, service)
    }

    async fn ea_bundle(store: &InMemoryStore, owner: UserId) -> crate::bundle::Bundle {
        crate::testing::contracts::bundle::uploaded(
            &store.bundles(),
            &crate::testing::contracts::bundle::new_bundle(owner, "EA", "1.0.0", 0),
            &[b"ea"],
        )
        .await
    }

    #[tokio::test]
    async fn a_sweep_times_out_silent_devices_and_starts_the_next_wave() {
        let (store, clock, service) = world();
        let owner = registered(&store.accounts()).await.id;
        let first = stored_device(&store.devices(), owner, "Silent", 0).await.id;
        let second = stored_device(&store.devices(), owner, "Next", 1).await.id;
        let bundle = ea_bundle(&store, owner).await;
        let input = NewDeploymentInput {
            bundle_id: bundle.id,
            target: "devices".into(),
            device_ids: Some(vec![first, second]),
            label: None,
            waves: Some(vec![50, 100]),
            abort_failure_percent: None,
            abort_min_finished: None,
            timeout_minutes: Some(10),
        };
        let d = service
            .create(owner, input, &ClientInfo::default())
            .await
            .unwrap();
        assert_eq!(service.sweep(100).await.unwrap().changed, 0, "nothing is due yet");
        clock.advance(Duration::minutes(10));
        assert_eq!(
            service.sweep(100).await.unwrap(),
            SweepReport {
                swept: 1,
                changed: 1,
                failed: 0
            },
            "the silent device timed out"
        );
        let after = service.get(owner, d.id).await.unwrap();
        let p = after.progress_of(first).unwrap();
        assert_eq!(
            (p.status, p.reason.as_deref()),
            (TargetStatus::Failed, Some("timeout"))
        );
        assert_eq!(
            after.current_wave, 1,
            "the next wave started without anyone reading"
        );
        assert_eq!(after.progress_of(second).unwrap().status, TargetStatus::Pending);
        let audited: Vec<AuditAction> = store.audit_events().iter().map(|e| e.action).collect();
        assert!(audited.contains(&AuditAction::DeploymentWaveStarted));
    }

    /// More running deployments than one sweep takes, the first ones with
    /// nothing to do: the sweep goes round them instead of taking the same
    /// batch every time, so the one that is due is reached.
    #[tokio::test]
    async fn a_sweep_reaches_every_running_deployment_in_turn() {
        let (store, clock, service) = world();
        let owner = registered(&store.accounts()).await.id;
        let bundle = ea_bundle(&store, owner).await;
        let mut created = Vec::new();
        for (i, timeout) in [None, None, Some(10)].into_iter().enumerate() {
            let device = stored_device(&store.devices(), owner, &format!("T{i}"), i as i64)
                .await
                .id;
            let input = NewDeploymentInput {
                bundle_id: bundle.id,
                target: "devices".into(),
                device_ids: Some(vec![device]),
                label: None,
                waves: None,
                abort_failure_percent: None,
                abort_min_finished: None,
                timeout_minutes: timeout,
            };
            let d = service
                .create(owner, input, &ClientInfo::default())
                .await
                .unwrap();
            created.push((d.id, device));
        }
        clock.advance(Duration::minutes(10));
        assert_eq!(
            service.sweep(2).await.unwrap(),
            SweepReport {
                swept: 2,
                changed: 0,
                failed: 0
            },
            "the first batch has nothing to do"
        );
        assert_eq!(
            service.sweep(2).await.unwrap(),
            SweepReport {
                swept: 2,
                changed: 1,
                failed: 0
            },
            "the next batch starts with the deployment not swept yet"
        );
        let (due, device) = created[2];
        let after = service.get(owner, due).await.unwrap();
        assert_eq!(
            after.progress_of(device).unwrap().reason.as_deref(),
            Some("timeout"),
            "its silent device timed out"
        );
    }
}
