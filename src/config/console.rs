//! `console:`: the web console `hydrant serve` serves at `/console/` (docs/console.md).

use serde::{Deserialize, Serialize};

/// Where the console is served. It shows stream names, definitions (secrets hidden) and
/// destination errors, so by default it is served only where producers do not connect: on
/// `admin_listen` when set, otherwise on `listen` only when that is a loopback address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsoleConfig {
    /// Serve the console at all. Default `true`.
    #[serde(default = "enabled")]
    pub enabled: bool,
    /// Also serve it on a `listen` address other machines can reach when there is no
    /// `admin_listen` (everyone who can reach the API can then read it; writes still need
    /// a credential when `auth` is on). Default `false`.
    #[serde(default)]
    pub on_shared_listen: bool,
}

fn enabled() -> bool {
    true
}

impl Default for ConsoleConfig {
    fn default() -> Self {
        Self { enabled: true, on_shared_listen: false }
    }
}

impl ConsoleConfig {
    /// Whether every field is at its default (the field is then left out when written).
    pub fn is_default(&self) -> bool {
        *self == Self::default()
    }
}
