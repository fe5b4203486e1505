//! [`DeviceStateCache`] in two maps, with one epoch per device.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::store::lock;
use crate::cache::*;
use crate::device::{DeviceCredentials, DeviceId};

#[derive(Debug, Default)]
struct State {
    live: bool,
    /// Bumped for a device by every change that names it.
    epochs: HashMap<DeviceId, u64>,
    /// Bumped by `Everything` and by `set_live`.
    global: u64,
    credentials: HashMap<DeviceId, Option<Arc<DeviceCredentials>>>,
    idle: HashMap<DeviceId, ()>,
}

impl State {
    fn epoch(&self, device: DeviceId) -> u64 {
        self.global
            .wrapping_mul(1 << 32)
            .wrapping_add(self.epochs.get(&device).copied().unwrap_or(0))
    }

    fn forget(&mut self) {
        self.global += 1;
        self.credentials.clear();
        self.idle.clear();
    }
}

/// The simplest correct cache: no expiry, no size limit. Starts live.
#[derive(Debug, Clone)]
pub struct FakeDeviceCache(Arc<Mutex<State>>);

impl Default for FakeDeviceCache {
    fn default() -> Self {
        Self(Arc::new(Mutex::new(State {
            live: true,
            ..State::default()
        })))
    }
}

impl DeviceStateCache for FakeDeviceCache {
    fn credentials(&self, device: DeviceId) -> Lookup<Option<Arc<DeviceCredentials>>> {
        let state = lock(&self.0);
        match state.credentials.get(&device) {
            Some(found) if state.live => Lookup::Hit(found.clone()),
            _ => Lookup::Miss(Ticket::new(device, state.epoch(device))),
        }
    }

    fn fill_credentials(&self, ticket: Ticket, credentials: Option<Arc<DeviceCredentials>>) {
        let mut state = lock(&self.0);
        if state.live && state.epoch(ticket.device()) == ticket.epoch() {
            state.credentials.insert(ticket.device(), credentials);
        }
    }

    fn idle(&self, device: DeviceId) -> Lookup<()> {
        let state = lock(&self.0);
        match state.idle.get(&device) {
            Some(()) if state.live => Lookup::Hit(()),
            _ => Lookup::Miss(Ticket::new(device, state.epoch(device))),
        }
    }

    fn fill_idle(&self, ticket: Ticket) {
        let mut state = lock(&self.0);
        if state.live && state.epoch(ticket.device()) == ticket.epoch() {
            state.idle.insert(ticket.device(), ());
        }
    }

    fn apply(&self, change: Change) {
        let mut state = lock(&self.0);
        match change {
            Change::Device(device) => {
                *state.epochs.entry(device).or_default() += 1;
                state.credentials.remove(&device);
                state.idle.remove(&device);
            }
            Change::Published(device) => {
                *state.epochs.entry(device).or_default() += 1;
                state.idle.remove(&device);
            }
            Change::Everything => state.forget(),
        }
    }

    fn set_live(&self, live: bool) {
        let mut state = lock(&self.0);
        state.live = live;
        state.forget();
    }
}
