//! The identities the sandbox's host has, and the managed identity part of the sandbox's state.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::log::Route;

/// Client id of the sandbox's demo user-assigned managed identity.
pub const DEMO_MI_CLIENT_ID: &str = "33333333-0000-4000-8000-00000000c11d";
/// Object (principal) id of the demo user-assigned managed identity: the `sub` of its tokens.
pub const DEMO_MI_OBJECT_ID: &str = "33333333-0000-4000-8000-0000000000b1";
/// Azure resource id of the demo user-assigned managed identity.
pub const DEMO_MI_RESOURCE_ID: &str = "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/botauth/providers/Microsoft.ManagedIdentity/userAssignedIdentities/botauth-demo";
/// Client id of the sandbox host's system-assigned identity.
pub const DEMO_SYSTEM_MI_CLIENT_ID: &str = "44444444-0000-4000-8000-00000000c11d";
/// Object id of the sandbox host's system-assigned identity.
pub const DEMO_SYSTEM_MI_OBJECT_ID: &str = "44444444-0000-4000-8000-0000000000b1";
/// A managed identity the sandbox's host has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManagedIdentity {
    /// Client (application) id.
    pub(crate) client_id: String,
    /// Object (principal) id: the `sub` of its tokens, and the subject of federated credentials.
    pub(crate) object_id: String,
    /// Azure resource id.
    pub(crate) resource_id: String,
}

impl ManagedIdentity {
    /// An identity with these ids.
    pub fn new(
        client_id: impl Into<String>,
        object_id: impl Into<String>,
        resource_id: impl Into<String>,
    ) -> Self {
        ManagedIdentity {
            client_id: client_id.into(),
            object_id: object_id.into(),
            resource_id: resource_id.into(),
        }
    }

    /// The demo user-assigned identity ([`DEMO_MI_CLIENT_ID`], [`DEMO_MI_OBJECT_ID`]).
    pub(crate) fn demo_user_assigned() -> Self {
        Self::new(DEMO_MI_CLIENT_ID, DEMO_MI_OBJECT_ID, DEMO_MI_RESOURCE_ID)
    }

    /// The demo system-assigned identity.
    pub(crate) fn demo_system_assigned() -> Self {
        Self::new(
            DEMO_SYSTEM_MI_CLIENT_ID,
            DEMO_SYSTEM_MI_OBJECT_ID,
            "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/botauth/providers/Microsoft.Compute/virtualMachines/sandbox",
        )
    }
}

/// A time source for windowed faults ([`Fault::StatusFor`](crate::Fault::StatusFor)(crate::Fault::StatusFor)).
pub(crate) type TimeSource = Arc<dyn Fn() -> SystemTime + Send + Sync>;

/// The managed identity part of the sandbox's state.
pub(crate) struct MiState {
    pub(crate) system: Option<ManagedIdentity>,
    pub(crate) users: Vec<ManagedIdentity>,
    /// `IDENTITY_HEADER` / `MSI_SECRET` the endpoints expect.
    pub(crate) secret: String,
    pub(crate) arc_key_directory: Option<PathBuf>,
    pub(crate) arc_key_len: usize,
    pub(crate) arc_keys: HashSet<String>,
    pub(crate) clock: Option<TimeSource>,
    /// Route → (status, until): windows opened by `Fault::StatusFor`.
    pub(crate) outages: HashMap<Route, (u16, SystemTime)>,
}

impl std::fmt::Debug for MiState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MiState")
            .field("system", &self.system)
            .field("users", &self.users)
            .field("arc_key_directory", &self.arc_key_directory)
            .finish_non_exhaustive()
    }
}

impl Default for MiState {
    fn default() -> Self {
        MiState {
            system: Some(ManagedIdentity::demo_system_assigned()),
            users: vec![ManagedIdentity::demo_user_assigned()],
            secret: uuid::Uuid::new_v4().to_string(),
            arc_key_directory: None,
            arc_key_len: 64,
            arc_keys: HashSet::new(),
            clock: None,
            outages: HashMap::new(),
        }
    }
}

impl MiState {
    pub(crate) fn now(&self) -> SystemTime {
        self.clock.as_ref().map_or_else(SystemTime::now, |c| c())
    }

    /// The status of an open outage window on `route`, closing expired ones.
    pub(crate) fn outage(&mut self, route: Route) -> Option<u16> {
        let now = self.now();
        match self.outages.get(&route) {
            Some((status, until)) if now < *until => Some(*status),
            Some(_) => {
                self.outages.remove(&route);
                None
            }
            None => None,
        }
    }

    pub(crate) fn open_outage(&mut self, route: Route, status: u16, duration: Duration) {
        let until = self.now() + duration;
        self.outages.insert(route, (status, until));
    }
}
