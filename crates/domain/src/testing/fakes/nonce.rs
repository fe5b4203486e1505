//! [`NonceStore`] in a set.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use chrono::Duration;

use super::store::lock;
use crate::device::*;
use crate::error::UnexpectedError;

/// A nonce store in a set; can be switched to "unreachable".
#[derive(Debug, Clone, Default)]
pub struct FakeNonceStore {
    seen: Arc<Mutex<std::collections::HashSet<(DeviceId, String)>>>,
    down: Arc<std::sync::atomic::AtomicBool>,
}

impl FakeNonceStore {
    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::Relaxed);
    }
}

impl NonceStore for FakeNonceStore {
    async fn check_and_record(
        &self,
        device: DeviceId,
        nonce: &str,
        _ttl: Duration,
    ) -> Result<bool, UnexpectedError> {
        if self.down.load(Ordering::Relaxed) {
            return Err(UnexpectedError::msg("nonce store unreachable"));
        }
        Ok(lock(&self.seen).insert((device, nonce.to_owned())))
    }
}
