//! The deployment aggregate and its state machine. Everything here is pure:
//! time comes in as a parameter, so rules are tested without a clock.

use std::fmt;

use chrono::{DateTime, Duration, Utc};

use crate::account::UserId;
use crate::bundle::{BundleId, BundleVersion};
use crate::device::DeviceId;
use crate::pagination::Cursor;
use crate::validation::{FieldError, ValidationErrors};

id_newtype!(
    /// A deployment's id.
    DeploymentId
);

/// A label an owner puts on devices to target deployments: 1 to 32
/// characters, lowercase ASCII letters, digits, `.`, `_`, `-`, starting
/// with a letter or digit (`london`, `vps-2`, `prop.firm`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Label(String);

impl Label {
    pub const MAX: usize = 32;
    /// Labels per device.
    pub const MAX_PER_DEVICE: usize = 20;

    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        let valid = !raw.is_empty()
            && raw.len() <= Self::MAX
            && raw
                .bytes()
                .next()
                .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
            && raw
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-'));
        if valid {
            Ok(Self(raw.to_owned()))
        } else {
            Err(FieldError::new(
                "labels",
                "invalid",
                "each label must be 1 to 32 lowercase ASCII letters, digits, '.', '_' or '-', starting with a letter or digit",
            ))
        }
    }

    /// A device's labels: at most [`Self::MAX_PER_DEVICE`], each valid;
    /// repeats are dropped and the result is sorted.
    pub fn parse_set(raw: &[String]) -> Result<Vec<Self>, FieldError> {
        let mut labels = raw
            .iter()
            .map(|l| Self::parse(l))
            .collect::<Result<Vec<_>, _>>()?;
        labels.sort();
        labels.dedup();
        if labels.len() > Self::MAX_PER_DEVICE {
            return Err(FieldError::new(
                "labels",
                "too_many",
                format!("at most {} labels per device", Self::MAX_PER_DEVICE),
            ));
        }
        Ok(labels)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// How the devices were chosen (resolved once, when the deployment is
/// created).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// An explicit list of the owner's active devices.
    Devices,
    /// Every active device of the owner.
    All,
    /// The owner's active devices with a label.
    Label(Label),
}

impl Target {
    /// `devices`, `all` or `label`.
    pub const fn kind(&self) -> &'static str {
        match self {
            Self::Devices => "devices",
            Self::All => "all",
            Self::Label(_) => "label",
        }
    }

    pub fn label(&self) -> Option<&Label> {
        match self {
            Self::Label(l) => Some(l),
            _ => None,
        }
    }

    /// As stored: `devices`, `all` or `label:<label>`.
    pub fn to_stored(&self) -> String {
        match self {
            Self::Label(l) => format!("label:{}", l.as_str()),
            other => other.kind().to_owned(),
        }
    }

    pub fn from_stored(raw: &str) -> Option<Self> {
        match raw {
            "devices" => Some(Self::Devices),
            "all" => Some(Self::All),
            other => Label::parse(other.strip_prefix("label:")?).ok().map(Self::Label),
        }
    }
}

/// Which of the owner's active devices to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceSelection<'a> {
    All,
    Ids(&'a [DeviceId]),
    Label(&'a Label),
}

/// One device's progress. `Waiting` until its wave starts; the device
/// reports `downloading`, then `installed` or `failed`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TargetStatus {
    Waiting,
    Pending,
    Downloading,
    Installed,
    Failed,
    Cancelled,
}

impl TargetStatus {
    pub const ALL: [Self; 6] = [
        Self::Waiting,
        Self::Pending,
        Self::Downloading,
        Self::Installed,
        Self::Failed,
        Self::Cancelled,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Waiting => "waiting",
            Self::Pending => "pending",
            Self::Downloading => "downloading",
            Self::Installed => "installed",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == raw)
    }

    /// Installed or failed: the device is done with this deployment.
    pub const fn is_finished(self) -> bool {
        matches!(self, Self::Installed | Self::Failed)
    }

    /// Pending or downloading: the device should be working on it.
    pub const fn is_open(self) -> bool {
        matches!(self, Self::Pending | Self::Downloading)
    }

    /// What a device may report from this status. Repeating the current
    /// status is accepted (a retried request) and changes nothing.
    pub fn may_report(self, to: Self) -> bool {
        use TargetStatus::*;
        matches!(
            (self, to),
            (Pending, Downloading | Installed | Failed)
                | (Downloading, Downloading | Installed | Failed)
                | (Installed, Installed)
                // A late or retried success wins over a timeout or an
                // earlier failure (while the deployment runs).
                | (Failed, Failed | Installed)
        )
    }
}

impl fmt::Display for TargetStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where the deployment as a whole is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeploymentState {
    Running,
    /// Every wave finished.
    Completed,
    /// A wave's failure rate crossed the abort threshold.
    Aborted,
    /// The owner cancelled it.
    Cancelled,
}

impl DeploymentState {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Completed => "completed",
            Self::Aborted => "aborted",
            Self::Cancelled => "cancelled",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        [Self::Running, Self::Completed, Self::Aborted, Self::Cancelled]
            .into_iter()
            .find(|s| s.as_str() == raw)
    }
}

/// Stop when more than `failure_percent` % of the finished devices of the
/// current wave failed, once at least `min_finished` of them finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AbortRule {
    pub failure_percent: u8,
    pub min_finished: u32,
}

/// How a deployment rolls out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rollout {
    /// Cumulative percentages of the devices, strictly ascending, ending
    /// at 100 (`[100]`: everything at once).
    pub waves: Vec<u8>,
    pub abort: Option<AbortRule>,
    /// A device that has not finished this many minutes after its wave
    /// started counts as failed (`timeout`).
    pub timeout_minutes: Option<u32>,
}

impl Default for Rollout {
    fn default() -> Self {
        Self {
            waves: vec![100],
            abort: None,
            timeout_minutes: None,
        }
    }
}

impl Rollout {
    pub const MAX_WAVES: usize = 10;
    pub const MAX_TIMEOUT_MINUTES: i64 = 60 * 24 * 30;

    /// Validates the rollout fields of a request, collecting every error.
    pub fn parse(
        waves: Option<&[i64]>,
        abort_failure_percent: Option<i64>,
        abort_min_finished: Option<i64>,
        timeout_minutes: Option<i64>,
    ) -> Result<Self, ValidationErrors> {
        let mut errors = ValidationErrors::new();
        let waves = match waves {
            None => vec![100],
            Some(w) => {
                let ascending = w.windows(2).all(|p| p[0] < p[1]);
                let in_range = w.iter().all(|p| (1..=100).contains(p));
                if w.is_empty()
                    || w.len() > Self::MAX_WAVES
                    || !ascending
                    || !in_range
                    || w.last() != Some(&100)
                {
                    errors.push(FieldError::new(
                        "waves",
                        "invalid",
                        format!(
                            "must be 1 to {} cumulative percentages from 1 to 100, strictly ascending, ending at 100 (e.g. [10, 50, 100])",
                            Self::MAX_WAVES
                        ),
                    ));
                    Vec::new()
                } else {
                    w.iter().map(|p| *p as u8).collect()
                }
            }
        };
        let abort = match (abort_failure_percent, abort_min_finished) {
            (None, None) => None,
            (Some(p), m) => {
                if !(0..=100).contains(&p) {
                    errors.push(FieldError::new(
                        "abort_failure_percent",
                        "out_of_range",
                        "must be from 0 to 100",
                    ));
                }
                let m = m.unwrap_or(1);
                if !(1..=100_000).contains(&m) {
                    errors.push(FieldError::new(
                        "abort_min_finished",
                        "out_of_range",
                        "must be from 1 to 100000",
                    ));
                }
                Some(AbortRule {
                    failure_percent: p.clamp(0, 100) as u8,
                    min_finished: m.clamp(1, 100_000) as u32,
                })
            }
            (None, Some(_)) => {
                errors.push(FieldError::new(
                    "abort_min_finished",
                    "requires_threshold",
                    "needs abort_failure_percent",
                ));
                None
            }
        };
        let timeout_minutes = match timeout_minutes {
            None => None,
            Some(t) if (1..=Self::MAX_TIMEOUT_MINUTES).contains(&t) => Some(t as u32),
            Some(_) => {
                errors.push(FieldError::new(
                    "timeout_minutes",
                    "out_of_range",
                    format!("must be from 1 to {}", Self::MAX_TIMEOUT_MINUTES),
                ));
                None
            }
        };
        errors.into_result()?;
        Ok(Self {
            waves,
            abort,
            timeout_minutes,
        })
    }

    /// The wave of each of `n` devices, in order: wave `i` holds the
    /// devices up to `ceil(n × waves[i] / 100)`. A wave may be empty.
    pub fn assign(&self, n: usize) -> Vec<u32> {
        let mut out = Vec::with_capacity(n);
        for (i, p) in self.waves.iter().enumerate() {
            let upto = (n * usize::from(*p)).div_ceil(100);
            while out.len() < upto {
                out.push(i as u32);
            }
        }
        out
    }
}

/// One targeted device's progress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceProgress {
    pub device: DeviceId,
    pub wave: u32,
    pub status: TargetStatus,
    /// Why it failed (`timeout`, or what the device reported).
    pub reason: Option<String>,
    /// When its wave started.
    pub started_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
    /// The EA version of the device's latest heartbeat (not stored with
    /// the deployment; read with it).
    pub ea_version: Option<String>,
}

/// Something that happened to a deployment, for the audit trail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeploymentEvent {
    WaveStarted {
        wave: u32,
    },
    DeviceStatus {
        device: DeviceId,
        status: TargetStatus,
        reason: Option<String>,
    },
    Aborted {
        wave: u32,
        failed: u32,
        finished: u32,
    },
    Completed,
    Cancelled,
}

/// Counts of the devices per status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StatusCounts {
    pub waiting: u32,
    pub pending: u32,
    pub downloading: u32,
    pub installed: u32,
    pub failed: u32,
    pub cancelled: u32,
}

impl StatusCounts {
    fn add(&mut self, s: TargetStatus) {
        let slot = match s {
            TargetStatus::Waiting => &mut self.waiting,
            TargetStatus::Pending => &mut self.pending,
            TargetStatus::Downloading => &mut self.downloading,
            TargetStatus::Installed => &mut self.installed,
            TargetStatus::Failed => &mut self.failed,
            TargetStatus::Cancelled => &mut self.cancelled,
        };
        *slot += 1;
    }
}

/// What the next wave waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NextWave {
    /// The wave to start next (0-based).
    pub wave: u32,
    /// Devices of the current wave that have not finished yet.
    pub unfinished: u32,
}

/// A deployment and every targeted device's progress.
#[derive(Debug, Clone, PartialEq)]
pub struct Deployment {
    pub id: DeploymentId,
    pub owner: UserId,
    pub bundle: BundleId,
    pub bundle_version: BundleVersion,
    pub target: Target,
    pub rollout: Rollout,
    pub state: DeploymentState,
    /// The wave in progress (0-based).
    pub current_wave: u32,
    /// Changes on every save (optimistic concurrency).
    pub revision: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub devices: Vec<DeviceProgress>,
}

impl Deployment {
    /// A new deployment to `devices` (in the order given, with their EA
    /// versions), its first wave started at `now`.
    #[allow(clippy::too_many_arguments)]
    pub fn start(
        id: DeploymentId,
        owner: UserId,
        bundle: BundleId,
        bundle_version: BundleVersion,
        target: Target,
        rollout: Rollout,
        devices: Vec<(DeviceId, Option<String>)>,
        now: DateTime<Utc>,
    ) -> (Self, Vec<DeploymentEvent>) {
        let waves = rollout.assign(devices.len());
        let mut deployment = Self {
            id,
            owner,
            bundle,
            bundle_version,
            target,
            rollout,
            state: DeploymentState::Running,
            current_wave: 0,
            revision: 0,
            created_at: now,
            updated_at: now,
            devices: devices
                .into_iter()
                .zip(waves)
                .map(|((device, ea_version), wave)| DeviceProgress {
                    device,
                    wave,
                    status: TargetStatus::Waiting,
                    reason: None,
                    started_at: None,
                    updated_at: now,
                    ea_version,
                })
                .collect(),
        };
        let mut events = deployment.start_wave(0, now);
        events.extend(deployment.evaluate(now));
        (deployment, events)
    }

    fn start_wave(&mut self, wave: u32, now: DateTime<Utc>) -> Vec<DeploymentEvent> {
        self.current_wave = wave;
        for d in self.devices.iter_mut().filter(|d| d.wave == wave) {
            if d.status == TargetStatus::Waiting {
                d.status = TargetStatus::Pending;
                d.started_at = Some(now);
                d.updated_at = now;
            }
        }
        vec![DeploymentEvent::WaveStarted { wave }]
    }

    /// A device's report, then [`Self::evaluate`]. `NotTargeted` when the
    /// device is not part of the deployment.
    pub fn report(
        &mut self,
        device: DeviceId,
        to: TargetStatus,
        reason: Option<String>,
        now: DateTime<Utc>,
    ) -> Result<Vec<DeploymentEvent>, ReportRefused> {
        let mut events = self.evaluate(now);
        let d = self
            .devices
            .iter_mut()
            .find(|d| d.device == device)
            .ok_or(ReportRefused::NotTargeted)?;
        if !d.status.may_report(to) {
            return Err(ReportRefused::Invalid { from: d.status, to });
        }
        if d.status != to {
            d.status = to;
            d.reason =
                (to == TargetStatus::Failed).then(|| reason.unwrap_or_else(|| "unspecified".to_owned()));
            d.updated_at = now;
            events.push(DeploymentEvent::DeviceStatus {
                device,
                status: to,
                reason: d.reason.clone(),
            });
        }
        events.extend(self.evaluate(now));
        Ok(events)
    }

    /// Applies what time and heartbeats decide: a downloading device whose
    /// EA reports the bundle's version is installed (not a pending one: its
    /// EA may run that version of another build or name from before); one past the timeout has
    /// failed (`timeout`); a wave over the abort threshold aborts the
    /// deployment; a finished wave starts the next, the last completes it.
    pub fn evaluate(&mut self, now: DateTime<Utc>) -> Vec<DeploymentEvent> {
        let mut events = Vec::new();
        while self.state == DeploymentState::Running {
            let wave = self.current_wave;
            let timeout = self
                .rollout
                .timeout_minutes
                .map(|m| Duration::minutes(i64::from(m)));
            for d in self
                .devices
                .iter_mut()
                .filter(|d| d.wave == wave && d.status.is_open())
            {
                let (status, reason) = if d.status == TargetStatus::Downloading
                    && d.ea_version
                        .as_deref()
                        .is_some_and(|v| self.bundle_version.matches(v))
                {
                    (TargetStatus::Installed, None)
                } else if let (Some(t), Some(started)) = (timeout, d.started_at)
                    && now >= started + t
                {
                    (TargetStatus::Failed, Some("timeout".to_owned()))
                } else {
                    continue;
                };
                d.status = status;
                d.reason = reason.clone();
                d.updated_at = now;
                events.push(DeploymentEvent::DeviceStatus {
                    device: d.device,
                    status,
                    reason,
                });
            }
            let (finished, failed, unfinished) = self.wave_tally(wave);
            if let Some(rule) = self.rollout.abort
                && finished >= rule.min_finished
                && u64::from(failed) * 100 > u64::from(rule.failure_percent) * u64::from(finished)
            {
                self.end(DeploymentState::Aborted, now);
                events.push(DeploymentEvent::Aborted {
                    wave,
                    failed,
                    finished,
                });
                break;
            }
            if unfinished > 0 {
                break;
            }
            let next = wave + 1;
            if (next as usize) < self.rollout.waves.len() {
                events.extend(self.start_wave(next, now));
            } else {
                self.end(DeploymentState::Completed, now);
                events.push(DeploymentEvent::Completed);
            }
        }
        if !events.is_empty() {
            self.updated_at = now;
        }
        events
    }

    /// The owner stops the deployment: devices that have not finished are
    /// cancelled.
    pub fn cancel(&mut self, now: DateTime<Utc>) -> Result<Vec<DeploymentEvent>, DeploymentState> {
        if self.state != DeploymentState::Running {
            return Err(self.state);
        }
        self.end(DeploymentState::Cancelled, now);
        Ok(vec![DeploymentEvent::Cancelled])
    }

    fn end(&mut self, state: DeploymentState, now: DateTime<Utc>) {
        self.state = state;
        self.updated_at = now;
        for d in self.devices.iter_mut().filter(|d| !d.status.is_finished()) {
            d.status = TargetStatus::Cancelled;
            d.updated_at = now;
        }
    }

    /// (finished, failed, not finished) devices of a wave.
    fn wave_tally(&self, wave: u32) -> (u32, u32, u32) {
        let mut tally = (0, 0, 0);
        for d in self.devices.iter().filter(|d| d.wave == wave) {
            match d.status {
                TargetStatus::Installed => tally.0 += 1,
                TargetStatus::Failed => {
                    tally.0 += 1;
                    tally.1 += 1;
                }
                _ => tally.2 += 1,
            }
        }
        tally
    }

    pub fn counts(&self) -> StatusCounts {
        let mut counts = StatusCounts::default();
        self.devices.iter().for_each(|d| counts.add(d.status));
        counts
    }

    /// While running with a wave after the current one: which wave and how
    /// many devices of the current wave it waits for.
    pub fn next_wave(&self) -> Option<NextWave> {
        let next = self.current_wave + 1;
        (self.state == DeploymentState::Running && (next as usize) < self.rollout.waves.len()).then(|| {
            NextWave {
                wave: next,
                unfinished: self.wave_tally(self.current_wave).2,
            }
        })
    }

    pub fn progress_of(&self, device: DeviceId) -> Option<&DeviceProgress> {
        self.devices.iter().find(|d| d.device == device)
    }

    pub fn cursor(&self) -> Cursor {
        Cursor::new(self.created_at, self.id.as_uuid())
    }
}

/// Why a report was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportRefused {
    NotTargeted,
    Invalid { from: TargetStatus, to: TargetStatus },
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use uuid::Uuid;

    use super::*;

    fn at(minutes: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000, 0).unwrap() + Duration::minutes(minutes)
    }

    fn device(i: u128) -> DeviceId {
        DeviceId::from_uuid(Uuid::from_u128(i + 1))
    }

    fn deploy(n: u128, rollout: Rollout) -> Deployment {
        Deployment::start(
            DeploymentId::from_uuid(Uuid::from_u128(999)),
            UserId::from_uuid(Uuid::from_u128(7)),
            BundleId::from_uuid(Uuid::from_u128(8)),
            BundleVersion::parse("2.0.0").unwrap(),
            Target::All,
            rollout,
            (0..n).map(|i| (device(i), Some("1.0.0".to_owned()))).collect(),
            at(0),
        )
        .0
    }

    fn waves(w: &[i64], abort: Option<(i64, i64)>, timeout: Option<i64>) -> Rollout {
        Rollout::parse(Some(w), abort.map(|a| a.0), abort.map(|a| a.1), timeout).unwrap()
    }

    #[test]
    fn waves_are_cumulative_percentages() {
        let r = waves(&[10, 50, 100], None, None);
        assert_eq!(r.assign(10), vec![0, 1, 1, 1, 1, 2, 2, 2, 2, 2]);
        assert_eq!(r.assign(1), vec![0]);
        assert_eq!(r.assign(0), Vec::<u32>::new());
        for bad in [
            &[][..],
            &[50, 50, 100],
            &[50],
            &[0, 100],
            &[10, 101],
            &[60, 40, 100],
        ] {
            assert!(Rollout::parse(Some(bad), None, None, None).is_err(), "{bad:?}");
        }
        let e = Rollout::parse(None, Some(101), Some(0), Some(0)).unwrap_err();
        let fields: Vec<_> = e.errors().iter().map(|e| e.field).collect();
        assert_eq!(
            fields,
            ["abort_failure_percent", "abort_min_finished", "timeout_minutes"]
        );
    }

    #[test]
    fn devices_report_through_the_state_machine() {
        let mut d = deploy(2, Rollout::default());
        assert_eq!(d.devices[0].status, TargetStatus::Pending);
        d.report(device(0), TargetStatus::Downloading, None, at(1))
            .unwrap();
        d.report(device(0), TargetStatus::Downloading, None, at(1))
            .unwrap();
        assert_eq!(
            d.report(device(0), TargetStatus::Pending, None, at(2)),
            Err(ReportRefused::Invalid {
                from: TargetStatus::Downloading,
                to: TargetStatus::Pending
            })
        );
        d.report(device(0), TargetStatus::Failed, Some("disk full".into()), at(2))
            .unwrap();
        assert_eq!(d.devices[0].reason.as_deref(), Some("disk full"));
        // A retry that worked: a late success wins while the rollout runs.
        d.report(device(0), TargetStatus::Installed, None, at(3)).unwrap();
        assert_eq!(d.devices[0].reason, None);
        assert_eq!(
            d.report(device(0), TargetStatus::Downloading, None, at(3)),
            Err(ReportRefused::Invalid {
                from: TargetStatus::Installed,
                to: TargetStatus::Downloading
            })
        );
        assert_eq!(
            d.report(device(5), TargetStatus::Installed, None, at(3)),
            Err(ReportRefused::NotTargeted)
        );
        let events = d.report(device(1), TargetStatus::Installed, None, at(3)).unwrap();
        assert_eq!(events.last(), Some(&DeploymentEvent::Completed));
        assert_eq!(d.state, DeploymentState::Completed);
    }

    #[test]
    fn the_next_wave_starts_when_the_current_one_finished() {
        let mut d = deploy(4, waves(&[50, 100], None, None));
        assert_eq!(
            d.next_wave(),
            Some(NextWave {
                wave: 1,
                unfinished: 2
            })
        );
        d.report(device(0), TargetStatus::Installed, None, at(1)).unwrap();
        assert_eq!(d.devices[2].status, TargetStatus::Waiting);
        let events = d.report(device(1), TargetStatus::Failed, None, at(2)).unwrap();
        assert!(events.contains(&DeploymentEvent::WaveStarted { wave: 1 }));
        assert_eq!(d.devices[2].status, TargetStatus::Pending);
        assert_eq!(d.devices[2].started_at, Some(at(2)));
        assert_eq!(d.next_wave(), None);
    }

    #[test]
    fn a_failing_wave_aborts_once_enough_devices_finished() {
        let mut d = deploy(10, waves(&[40, 100], Some((50, 2)), None));
        d.report(device(0), TargetStatus::Failed, None, at(1)).unwrap();
        assert_eq!(
            d.state,
            DeploymentState::Running,
            "one finished is below the minimum"
        );
        d.report(device(1), TargetStatus::Failed, None, at(1)).unwrap();
        assert_eq!(d.state, DeploymentState::Aborted);
        assert_eq!(d.counts().cancelled, 8);
        assert!(d.report(device(2), TargetStatus::Installed, None, at(2)).is_err());
    }

    #[test]
    fn silence_past_the_timeout_is_a_failure_and_a_heartbeat_confirms_installation() {
        let mut d = deploy(2, waves(&[100], None, Some(30)));
        // Running that version before the download proves nothing.
        d.devices[0].ea_version = Some("2.0.0".into());
        assert!(d.evaluate(at(1)).is_empty(), "a pending device is not confirmed");
        d.devices[0].ea_version = None;
        d.report(device(1), TargetStatus::Downloading, None, at(2))
            .unwrap();
        d.devices[1].ea_version = Some("2.0.0".into());
        let events = d.evaluate(at(29));
        assert_eq!(
            events,
            vec![DeploymentEvent::DeviceStatus {
                device: device(1),
                status: TargetStatus::Installed,
                reason: None
            }]
        );
        d.evaluate(at(30));
        assert_eq!(d.devices[0].status, TargetStatus::Failed);
        assert_eq!(d.devices[0].reason.as_deref(), Some("timeout"));
        assert_eq!(d.state, DeploymentState::Completed);
    }

    #[test]
    fn an_installation_reported_after_its_timeout_still_counts() {
        let mut d = deploy(2, waves(&[50, 100], None, Some(30)));
        d.evaluate(at(31));
        assert_eq!(d.devices[0].status, TargetStatus::Failed);
        d.report(device(0), TargetStatus::Installed, None, at(32))
            .unwrap();
        assert_eq!(d.devices[0].status, TargetStatus::Installed);
        assert_eq!(d.devices[0].reason, None, "the timeout reason is gone");
    }

    #[test]
    fn cancelling_cancels_unfinished_devices_once() {
        let mut d = deploy(3, waves(&[34, 100], None, None));
        d.report(device(0), TargetStatus::Installed, None, at(1)).unwrap();
        d.cancel(at(2)).unwrap();
        assert_eq!(d.counts().installed, 1);
        assert_eq!(d.counts().cancelled, 2);
        assert_eq!(d.cancel(at(3)), Err(DeploymentState::Cancelled));
    }

    proptest! {
        /// Whatever devices report and whenever: waves start in order,
        /// only after the previous one finished; an ended deployment never
        /// runs again; nothing is left open once it ended.
        #[test]
        fn the_state_machine_keeps_its_invariants(
            n in 0u128..30,
            cut in proptest::collection::btree_set(1i64..100, 0..4),
            abort in proptest::option::of((0i64..=100, 1i64..5)),
            timeout in proptest::option::of(1i64..60),
            steps in proptest::collection::vec((0u128..32, 0usize..6, 0i64..20), 0..80),
        ) {
            let mut w: Vec<i64> = cut.into_iter().collect();
            w.push(100);
            let mut d = deploy(n, waves(&w, abort, timeout));
            let mut minute = 0;
            for (who, status, dt) in steps {
                minute += dt;
                let before = d.state;
                let _ = d.report(device(who), TargetStatus::ALL[status], None, at(minute));
                if before != DeploymentState::Running {
                    prop_assert_eq!(d.state, before);
                }
                prop_assert!((d.current_wave as usize) < d.rollout.waves.len());
                for p in &d.devices {
                    if d.state == DeploymentState::Running {
                        prop_assert_eq!(p.wave > d.current_wave, p.status == TargetStatus::Waiting);
                        if p.wave < d.current_wave {
                            prop_assert!(p.status.is_finished());
                        }
                    } else {
                        prop_assert!(p.status.is_finished() || p.status == TargetStatus::Cancelled);
                    }
                    prop_assert_eq!(p.status == TargetStatus::Failed, p.reason.is_some());
                }
                let c = d.counts();
                prop_assert_eq!((c.waiting + c.pending + c.downloading + c.installed + c.failed + c.cancelled) as u128, n);
            }
        }
    }
}
