//! The compute vocabulary: [`Server`], Nova's states ([`VmState`], task states as text,
//! [`PowerState`]), the public status Nova derives from them ([`Server::status`]), and the
//! fixed [`Flavor`]s. Pure data: no I/O, nothing to recover after a crash.

use chrono::{DateTime, Utc};

/// Nova's `vm_state` (the subset Glimpse reaches).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VmState {
    Building,
    Active,
    Stopped,
    Paused,
    Suspended,
    Error,
}

impl VmState {
    pub fn as_str(self) -> &'static str {
        match self {
            VmState::Building => "building",
            VmState::Active => "active",
            VmState::Stopped => "stopped",
            VmState::Paused => "paused",
            VmState::Suspended => "suspended",
            VmState::Error => "error",
        }
    }

    pub fn parse(s: &str) -> Option<VmState> {
        use VmState::*;
        [Building, Active, Stopped, Paused, Suspended, Error]
            .into_iter()
            .find(|v| v.as_str() == s)
    }

    /// Nova's public `status` for this state (`nova/api/openstack/common.py` `_STATE_MAP`,
    /// for the tasks Glimpse runs, which do not change it).
    pub fn status(self) -> &'static str {
        match self {
            VmState::Building => "BUILD",
            VmState::Active => "ACTIVE",
            VmState::Stopped => "SHUTOFF",
            VmState::Paused => "PAUSED",
            VmState::Suspended => "SUSPENDED",
            VmState::Error => "ERROR",
        }
    }

    /// The power state a server in this state reports.
    pub fn power_state(self) -> PowerState {
        match self {
            VmState::Building => PowerState::NoState,
            VmState::Active => PowerState::Running,
            VmState::Stopped => PowerState::Shutdown,
            VmState::Paused => PowerState::Paused,
            VmState::Suspended => PowerState::Suspended,
            VmState::Error => PowerState::NoState,
        }
    }
}

/// Nova's `power_state` numbers (`nova/compute/power_state.py`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PowerState {
    NoState = 0,
    Running = 1,
    Paused = 3,
    Shutdown = 4,
    Suspended = 7,
}

/// Nova's task states Glimpse uses.
pub mod task {
    pub const SPAWNING: &str = "spawning";
    pub const IMAGE_SNAPSHOT: &str = "image_snapshot";
    pub const IMAGE_PENDING_UPLOAD: &str = "image_pending_upload";
    pub const IMAGE_UPLOADING: &str = "image_uploading";
    pub const DELETING: &str = "deleting";
}

/// One server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Server {
    pub id: String,
    pub project_id: String,
    pub user_id: String,
    pub name: String,
    pub image_id: String,
    pub flavor_id: String,
    pub vm_state: VmState,
    pub task_state: Option<String>,
    pub power_state: i64,
    pub metadata: Vec<(String, String)>,
    /// Nova's `accessIPv4` / `accessIPv6` (informative addresses the user sets; "" if none).
    pub access_ipv4: String,
    pub access_ipv6: String,
    /// The key pair named at creation (`key_name`), if any.
    pub key_name: Option<String>,
    /// The cached image copy under the disk dir (relative path), once built.
    pub base_path: Option<String>,
    /// Its disk format (`raw`, `qcow2`, …).
    pub base_format: Option<String>,
    /// The root disk overlay under the disk dir (relative path), once built.
    pub disk_path: Option<String>,
    /// Guest-visible size of the root disk, bytes.
    pub disk_size: Option<i64>,
    /// The image a running snapshot is making.
    pub snapshot_image: Option<String>,
    /// Why the server is in `error` (Nova's `fault.message`).
    pub fault: Option<String>,
    /// What the server keeps of its image (Nova's `image_*` system metadata): name, min_ram,
    /// min_disk, properties, owner, … as a JSON object; snapshots inherit it.
    pub image_meta: serde_json::Value,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub launched_at: Option<DateTime<Utc>>,
}

impl Server {
    /// Nova's public status.
    pub fn status(&self) -> &'static str {
        self.vm_state.status()
    }

    /// Nova's `hostId`: sha224 of the project id and the host name, empty before the server
    /// has a host (it never launched).
    pub fn host_id(&self, host: &str) -> String {
        use sha2::{Digest, Sha224};
        if self.launched_at.is_none() {
            return String::new();
        }
        let mut h = Sha224::new();
        h.update(self.project_id.as_bytes());
        h.update(host.as_bytes());
        hex::encode(h.finalize())
    }
}

/// A flavor (fixed in code: Nova's classic defaults).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flavor {
    pub id: &'static str,
    pub name: &'static str,
    /// MiB.
    pub ram: i64,
    /// GiB of root disk.
    pub disk: i64,
    pub vcpus: i64,
}

/// Nova's classic default flavors, ids "1" to "5".
pub const FLAVORS: [Flavor; 5] = [
    Flavor {
        id: "1",
        name: "m1.tiny",
        ram: 512,
        disk: 1,
        vcpus: 1,
    },
    Flavor {
        id: "2",
        name: "m1.small",
        ram: 2048,
        disk: 20,
        vcpus: 1,
    },
    Flavor {
        id: "3",
        name: "m1.medium",
        ram: 4096,
        disk: 40,
        vcpus: 2,
    },
    Flavor {
        id: "4",
        name: "m1.large",
        ram: 8192,
        disk: 80,
        vcpus: 4,
    },
    Flavor {
        id: "5",
        name: "m1.xlarge",
        ram: 16384,
        disk: 160,
        vcpus: 8,
    },
];

/// A flavor by id; 404 "Flavor X could not be found." otherwise.
pub fn flavor(id: &str) -> crate::Result<Flavor> {
    FLAVORS
        .iter()
        .find(|f| f.id == id)
        .copied()
        .ok_or_else(|| crate::Error::not_found(format!("Flavor {id} could not be found.")))
}
