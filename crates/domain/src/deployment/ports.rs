//! What the deployment use cases need from the outside world.

use std::future::Future;

use chrono::{DateTime, Utc};

use super::error::SaveDeploymentError;
use super::model::{Deployment, DeploymentId, DeviceProgress, DeviceSelection, Label};
use crate::account::UserId;
use crate::audit::AuditEvent;
use crate::device::DeviceId;
use crate::error::UnexpectedError;
use crate::pagination::{Page, PageRequest};

/// Persistence of deployments, each loaded and saved whole (the
/// deployment and its devices' progress) under optimistic concurrency.
/// Loaded devices carry the EA version of their latest heartbeat.
pub trait DeploymentRepository: Send + Sync + 'static {
    /// The owner's active (not revoked) devices with their latest EA
    /// version, in creation order: all of them, those of a list (ids that
    /// are not the owner's active devices are left out), or those with a
    /// label.
    fn active_devices(
        &self,
        owner: UserId,
        only: DeviceSelection<'_>,
    ) -> impl Future<Output = Result<Vec<(DeviceId, Option<String>)>, UnexpectedError>> + Send;

    /// Replaces the labels of the owner's device (revoked ones too) and
    /// appends `audit`, in one transaction. `false` when the owner has no
    /// such device.
    fn set_labels(
        &self,
        owner: UserId,
        device: DeviceId,
        labels: &[Label],
        audit: &AuditEvent,
    ) -> impl Future<Output = Result<bool, UnexpectedError>> + Send;

    /// The labels of the owner's device, sorted; `None` when the owner has
    /// no such device.
    fn labels(
        &self,
        owner: UserId,
        device: DeviceId,
    ) -> impl Future<Output = Result<Option<Vec<Label>>, UnexpectedError>> + Send;

    /// Stores a new deployment (revision 0) and `audit`, in one transaction.
    fn create(
        &self,
        deployment: &Deployment,
        audit: &[AuditEvent],
    ) -> impl Future<Output = Result<(), UnexpectedError>> + Send;

    /// The owner's deployment.
    fn get(
        &self,
        owner: UserId,
        id: DeploymentId,
    ) -> impl Future<Output = Result<Option<Deployment>, UnexpectedError>> + Send;

    /// The owner's deployments, newest first.
    fn list(
        &self,
        owner: UserId,
        page: &PageRequest,
    ) -> impl Future<Output = Result<Page<Deployment>, UnexpectedError>> + Send;

    /// Claims up to `limit` running deployments (owner and id) for a
    /// periodic sweep, which applies timeouts and wave starts to them:
    /// never swept first, then least recently swept (ties by id), each
    /// marked swept at `now`. So however many deployments run, each gets
    /// its turn within a few sweeps, whatever the others do. Instances
    /// sweeping at once may claim different batches.
    fn claim_for_sweep(
        &self,
        now: DateTime<Utc>,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<(UserId, DeploymentId)>, UnexpectedError>> + Send;

    /// The newest running deployment in which `device` is pending or
    /// downloading.
    fn open_for_device(
        &self,
        device: DeviceId,
    ) -> impl Future<Output = Result<Option<Deployment>, UnexpectedError>> + Send;

    /// A deployment that targets `device` (any state).
    fn get_for_device(
        &self,
        device: DeviceId,
        id: DeploymentId,
    ) -> impl Future<Output = Result<Option<Deployment>, UnexpectedError>> + Send;

    /// Saves the deployment's state, wave and `changed` devices if it is
    /// still at `deployment.revision`, advancing the revision by one, and
    /// appends `audit`, in one transaction. `Conflict` when another write
    /// came first.
    fn save(
        &self,
        deployment: &Deployment,
        changed: &[DeviceProgress],
        audit: &[AuditEvent],
    ) -> impl Future<Output = Result<(), SaveDeploymentError>> + Send;
}
