//! Configuration: one TOML file plus `GLIMPSE_*` environment overrides (loaded by the binary),
//! deserialised into [`Config`]. Every field has a default, so no file at all gives the
//! all-in-one cloud: identity plus `region-one` and `region-two` under `data_dir`.
//! `glimpse.example.toml` documents each field (and docs/operations.md how to run them).

use std::path::{Path, PathBuf};

use glimpse_store::S3Options;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Where SQLite files, blobs, clouds.yaml and the admin password live.
    pub data_dir: PathBuf,
    /// Address of the one HTTP listener.
    pub listen: String,
    /// Base URL clients use to reach this process (defaults to `http://<listen>`).
    pub public_url: String,
    /// Largest JSON request body, bytes (Nova's default is 114688).
    pub max_json_body: usize,
    /// Limits on clients of the HTTP listener.
    pub http: HttpConfig,
    /// This process as one node of its regions (several nodes may serve a region).
    pub node: NodeConfig,
    pub identity: IdentityConfig,
    pub regions: Vec<RegionConfig>,
}

/// What a client of the listener may hold (`[http]`): slow or flooding clients are cut off.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    /// Time to receive a request's whole head (request line and headers) on HTTP/1.
    pub header_timeout_seconds: u64,
    /// A request body that sends nothing for this long ends with an error (an upload goes
    /// back to `queued`). Each byte received buys `1 / body_min_rate` seconds more, never
    /// more than this from now, so a body trickled a byte at a time ends about this long
    /// after it started (Apache's `RequestReadTimeout body=…,MinRate=…`).
    pub body_idle_seconds: u64,
    /// Bytes per second a body must keep up (0: only the idle limit).
    pub body_min_rate: u64,
    /// Open connections at most; past it the listener stops accepting until one closes.
    pub max_connections: usize,
}

impl Default for HttpConfig {
    fn default() -> HttpConfig {
        HttpConfig {
            header_timeout_seconds: 30,
            body_idle_seconds: 30,
            body_min_rate: 500,
            max_connections: 512,
        }
    }
}

/// This process as a node (`[node]`, see [`crate::nodes`]).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NodeConfig {
    /// The node's stable id; empty: the one in `<data_dir>/node-id`, made the first time.
    pub id: String,
    /// How often the node records that it is alive.
    pub heartbeat_seconds: u64,
    /// A node whose last heartbeat is older than this is dead: the others take its uploads
    /// over (its job leases expire on their own, after `[regions.jobs] lease_seconds`).
    pub timeout_seconds: u64,
    /// On SIGTERM or Ctrl-C, how long the node keeps serving with `/healthcheck` answering
    /// 503 before it stops accepting connections, so that a load balancer takes it out first
    /// (set it above the balancer's check interval times its fall count; 0: stop at once).
    pub drain_seconds: u64,
}

impl Default for NodeConfig {
    fn default() -> NodeConfig {
        NodeConfig {
            id: String::new(),
            heartbeat_seconds: 5,
            timeout_seconds: 30,
            drain_seconds: 0,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IdentityConfig {
    /// Serve identity from this process. When false, `url` names the remote identity.
    pub enabled: bool,
    /// Identity database (`sqlite://…` or `postgres://…`); empty: `<data_dir>/identity.db`.
    pub database: String,
    /// URL of the remote identity's `/v3` when `enabled = false`.
    pub url: String,
    /// Token lifetime in seconds (Keystone's default is 3600).
    pub token_ttl_seconds: u64,
    /// How long a region may trust a token it validated with a remote identity (≤ 300 s).
    pub validation_cache_seconds: u64,
    /// Bootstrap the admin and demo projects on first start.
    pub bootstrap: bool,
    /// The service account regions use to act across regions (replication): a user with the
    /// admin role in `service_project`. Bootstrap creates it; when `service_password` is
    /// empty, the password is read from `<data_dir>/service-password`.
    pub service_user: String,
    pub service_password: String,
    pub service_project: String,
    /// Keystone's account lockout: after this many consecutive failed password
    /// authentications a user is refused (401 "The account is locked for user: <id>.") until
    /// `lockout_duration_seconds` after the last failure (0 = until a successful reset never
    /// comes: locked for good). 0 attempts: no lockout. The service account is exempt.
    pub lockout_failure_attempts: u32,
    pub lockout_duration_seconds: u64,
    /// argon2id memory (KiB) and passes of new password hashes; stored hashes keep their own.
    pub password_hash_memory_kib: u32,
    pub password_hash_passes: u32,
    /// Password hashes and checks at once (each holds `password_hash_memory_kib`); 0 = one per
    /// core, at most four. A login that finds them all busy waits up to
    /// `password_queue_seconds`, then gets 503 with `Retry-After`.
    pub password_checks: usize,
    pub password_queue_seconds: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RegionConfig {
    pub name: String,
    /// Serve this region from this process. When false, `url` names where it is served; it
    /// then only appears in the catalog (identity side) and as a replication peer.
    pub serve: bool,
    /// Public base URL of a region served elsewhere (`http://host:port/<name>`).
    pub url: String,
    /// Region database; empty: `sqlite://<data_dir>/<name>/region.db`.
    pub database: String,
    /// Blob store; empty: `file://<data_dir>/<name>/blobs`.
    pub store: String,
    pub s3: S3Options,
    pub limits: Limits,
    pub jobs: JobsConfig,
    pub replication: ReplicationConfig,
    /// Local directory of server and volume disks and the cached image copies they sit on;
    /// empty: `<data_dir>/<name>/disks`. Always a local filesystem, whatever the blob store.
    pub disks: String,
    pub compute: ComputeConfig,
    pub kms: KmsConfig,
    /// The APIs this region serves, from [`REGION_SERVICES`] (`image` is required; the
    /// replicator extension comes with it). An operator beside an existing OpenStack keeps
    /// their own Nova and Cinder with `services = ["image", "ims", "kms"]`; the catalog,
    /// the routes and `/healthcheck` follow. Default: all.
    pub services: Vec<String>,
}

/// What a region can serve: the image service (Glance v2 and the replicator extension),
/// compute (the Nova subset), volume (the Cinder subset), IMS and the key manager.
pub const REGION_SERVICES: [&str; 5] = ["image", "compute", "volume", "ims", "kms"];

/// The compute (Nova subset) service of one region.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ComputeConfig {
    /// Whether `createImage` (server snapshots) is allowed; false answers 400, as Nova does
    /// when snapshots are disabled.
    pub snapshots: bool,
    /// Most metadata items `createImage` accepts before microversion 2.39 (Nova's
    /// `[quota] metadata_items`, 128); more give 403.
    pub metadata_items: usize,
}

impl Default for ComputeConfig {
    fn default() -> ComputeConfig {
        ComputeConfig {
            snapshots: true,
            metadata_items: 128,
        }
    }
}

/// The region's key manager (`[regions.kms]`, see docs/kms.md).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KmsConfig {
    /// File holding the operator's 256-bit master key (64 hex characters, mode 0600) that
    /// wraps every customer key. The environment variable `GLIMPSE_KMS_MASTER_KEY` (64 hex
    /// characters) takes precedence. Empty: `<data_dir>/<region>/kms-master-key`, generated on
    /// first start (for development: keep a production key out of the data directory).
    pub master_key_file: String,
    /// During a master key rotation, the file of the master key being replaced (64 hex
    /// characters, mode 0600; `GLIMPSE_KMS_PREVIOUS_MASTER_KEY` takes precedence). Keys still
    /// wrapped by it are read, and re-wrapped with the current master key when the region
    /// starts. Empty: no rotation in progress (docs/kms.md).
    pub previous_master_key_file: String,
    /// Set by [`Config::resolve`] when `master_key_file` is the default: only then is a
    /// missing file generated.
    #[serde(skip)]
    pub generate: bool,
}

/// What this region accepts as the destination of a replication (the seed's per-region
/// allow-lists; an image whose `license_switch` or `official_template_type` property is not
/// listed here cannot be replicated into this region).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReplicationConfig {
    /// Whether this region accepts replicated images at all.
    pub accept_replicas: bool,
    pub license_switch_types: Vec<String>,
    pub official_template_types: Vec<String>,
    /// Bandwidth limit of each outgoing copy from this region, bytes per second (0 = none).
    pub max_bytes_per_second: u64,
}

impl Default for ReplicationConfig {
    fn default() -> ReplicationConfig {
        ReplicationConfig {
            accept_replicas: true,
            license_switch_types: [
                "WindowsServer_2012R2_Standard_64bit_ComLicense",
                "WindowsServer_2012_Standard_64bit_ComLicense",
                "WindowsServer_2008R2_Enterprise_64bit_ComLicense",
                "WindowsServer_2008R2_Standard_64bit_ComLicense",
                "WindowsServer_2008_Enterprise_64bit_ComLicense",
                "WindowsServer_2008_Standard_64bit_ComLicense",
                "Red_Hat_Enterprise_Linux_6_64bit_BYOL",
            ]
            .map(String::from)
            .to_vec(),
            official_template_types: Vec::new(),
            max_bytes_per_second: 0,
        }
    }
}

/// The job runner of one region.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct JobsConfig {
    /// Concurrent jobs this process runs for the region (0: run none, an API-only node).
    pub workers: usize,
    /// Lease a worker holds on a job; another worker takes the job over after it expires.
    pub lease_seconds: u64,
    /// Attempts before a job that keeps failing transiently ends in error.
    pub max_attempts: i64,
    /// Running jobs per project and kind; the rest wait queued.
    pub per_project_running: i64,
    /// Days a finished job (and its idempotency key) is kept before the hourly housekeeping
    /// forgets it (0: keep forever).
    pub retention_days: u64,
}

impl Default for JobsConfig {
    fn default() -> JobsConfig {
        JobsConfig {
            workers: 2,
            lease_seconds: 30,
            max_attempts: 8,
            per_project_running: 2,
            retention_days: 30,
        }
    }
}

/// Size limits of one region's image service.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Largest image upload in bytes (Glance's `image_size_cap`, 1 TiB).
    pub image_size_cap: u64,
    /// Total bytes of active images per project (0 = unlimited).
    pub project_quota_bytes: u64,
    /// Largest virtual size a disk image may claim (our own cap; Glance has none).
    pub max_virtual_size: u64,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            image_size_cap: 1 << 40,
            project_quota_bytes: 0,
            max_virtual_size: 1 << 40,
        }
    }
}

impl Default for Config {
    fn default() -> Config {
        Config {
            data_dir: PathBuf::from("./glimpse-data"),
            listen: "127.0.0.1:5000".into(),
            public_url: String::new(),
            max_json_body: 114_688,
            http: HttpConfig::default(),
            node: NodeConfig::default(),
            identity: IdentityConfig::default(),
            regions: vec![
                RegionConfig::named("region-one"),
                RegionConfig::named("region-two"),
            ],
        }
    }
}

impl Default for IdentityConfig {
    fn default() -> IdentityConfig {
        IdentityConfig {
            enabled: true,
            database: String::new(),
            url: String::new(),
            token_ttl_seconds: 3600,
            validation_cache_seconds: 10,
            bootstrap: true,
            service_user: "glimpse-service".into(),
            service_password: String::new(),
            service_project: "service".into(),
            lockout_failure_attempts: 10,
            lockout_duration_seconds: 300,
            password_hash_memory_kib: 7 * 1024,
            password_hash_passes: 5,
            password_checks: 0,
            password_queue_seconds: 10,
        }
    }
}

impl Default for RegionConfig {
    fn default() -> RegionConfig {
        RegionConfig::named("")
    }
}

impl RegionConfig {
    pub fn named(name: &str) -> RegionConfig {
        RegionConfig {
            name: name.into(),
            serve: true,
            url: String::new(),
            database: String::new(),
            store: String::new(),
            s3: S3Options::default(),
            limits: Limits::default(),
            jobs: JobsConfig::default(),
            replication: ReplicationConfig::default(),
            disks: String::new(),
            compute: ComputeConfig::default(),
            kms: KmsConfig::default(),
            services: REGION_SERVICES.map(String::from).to_vec(),
        }
    }

    /// Whether the region serves `service` (one of [`REGION_SERVICES`]).
    pub fn serves(&self, service: &str) -> bool {
        self.services.iter().any(|s| s == service)
    }

    fn check_services(&self) -> anyhow::Result<()> {
        let mut seen = std::collections::HashSet::new();
        for s in &self.services {
            if !REGION_SERVICES.contains(&s.as_str()) {
                anyhow::bail!(
                    "region {}: unknown service {s:?} (services are {})",
                    self.name,
                    REGION_SERVICES.join(", ")
                );
            }
            if !seen.insert(s) {
                anyhow::bail!("region {}: service {s} is listed twice", self.name);
            }
        }
        if !self.serves("image") {
            anyhow::bail!("region {}: services must include \"image\"", self.name);
        }
        Ok(())
    }
}

impl Config {
    /// Fills derived defaults (paths under `data_dir`, URLs from `listen`) and checks the rest.
    pub fn resolve(mut self) -> anyhow::Result<Config> {
        std::fs::create_dir_all(&self.data_dir)?;
        self.data_dir = std::fs::canonicalize(&self.data_dir)?;
        if self.public_url.is_empty() {
            self.public_url = format!("http://{}", self.listen);
        }
        self.public_url = self.public_url.trim_end_matches('/').to_string();
        if self.identity.enabled && self.identity.database.is_empty() {
            self.identity.database = sqlite_url(&self.data_dir.join("identity.db"));
        }
        if !self.identity.enabled && self.identity.url.is_empty() {
            anyhow::bail!("identity.enabled = false needs identity.url (the remote /v3 URL)");
        }
        if self.identity.validation_cache_seconds > 300 {
            anyhow::bail!("identity.validation_cache_seconds must be at most 300");
        }
        let mut seen = std::collections::HashSet::new();
        for r in &mut self.regions {
            if r.name.is_empty()
                || !r
                    .name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            {
                anyhow::bail!("region name {:?} must be non-empty [A-Za-z0-9_-]", r.name);
            }
            if !seen.insert(r.name.clone()) {
                anyhow::bail!("region {} is configured twice", r.name);
            }
            r.check_services()?;
            let dir = self.data_dir.join(&r.name);
            if r.serve {
                if r.database.is_empty() {
                    std::fs::create_dir_all(&dir)?;
                    r.database = sqlite_url(&dir.join("region.db"));
                }
                if r.store.is_empty() {
                    r.store = format!("file://{}", dir.join("blobs").display());
                }
                if r.url.is_empty() {
                    r.url = format!("{}/{}", self.public_url, r.name);
                }
                if r.disks.is_empty() {
                    r.disks = dir.join("disks").display().to_string();
                }
                if r.kms.master_key_file.is_empty() {
                    std::fs::create_dir_all(&dir)?;
                    r.kms.master_key_file = dir.join("kms-master-key").display().to_string();
                    r.kms.generate = true;
                }
            } else if r.url.is_empty() {
                anyhow::bail!("region {} has serve = false and no url", r.name);
            }
            r.url = r.url.trim_end_matches('/').to_string();
        }
        if self.regions.is_empty() {
            anyhow::bail!("at least one region must be configured");
        }
        Ok(self)
    }

    /// The identity `/v3` URL clients and regions use.
    pub fn identity_url(&self) -> String {
        if self.identity.enabled {
            format!("{}/identity/v3", self.public_url)
        } else {
            self.identity.url.trim_end_matches('/').to_string()
        }
    }
}

pub fn sqlite_url(path: &Path) -> String {
    format!("sqlite://{}", path.display())
}
