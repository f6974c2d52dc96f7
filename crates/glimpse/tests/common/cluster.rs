//! Several `glimpse serve` nodes serving the same regions from one set of databases and blob
//! stores, behind a real HAProxy on loopback: the deployment docs/operations.md describes,
//! on one machine. On SQLite and the filesystem store (pass 1) the nodes share the files; with
//! `GLIMPSE_TEST_POSTGRES_URL` and `GLIMPSE_TEST_S3_ENDPOINT` (pass 2) they share fresh
//! PostgreSQL databases and buckets. [`Cluster::start_on`] takes the PostgreSQL server and S3
//! endpoint explicitly instead (a test's own servers, which it restarts).
//!
//! Every node advertises the load balancer's URL in the catalog, shares the service password
//! and the KMS master keys, and beats every second (dead after three).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::process::{GlimpseProcess, free_port, identity, temp_dir};

pub const REGIONS: [&str; 2] = ["region-one", "region-two"];

/// One node: its configuration, data dir and port, and the process while it runs.
pub struct ClusterNode {
    pub id: String,
    pub dir: PathBuf,
    pub config: PathBuf,
    pub port: u16,
    pub process: Option<GlimpseProcess>,
}

impl ClusterNode {
    pub fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

pub struct Cluster {
    pub root: PathBuf,
    /// The load balancer's base URL (what every client and the catalog use).
    pub lb: String,
    pub nodes: Vec<ClusterNode>,
    /// Region databases, by [`REGIONS`] order (for tests that look at a row).
    pub region_dbs: Vec<String>,
    /// A pool on each region database, opened at the first look ([`Cluster::select_text`]).
    pools: Vec<tokio::sync::OnceCell<sqlx::AnyPool>>,
    /// Region blob stores, by [`REGIONS`] order, opened here too (for tests that look at
    /// what a store holds).
    pub stores: Vec<glimpse_store::BlobStore>,
    haproxy: Child,
}

/// Where a cluster's databases and buckets are made: a PostgreSQL server URL (without a
/// database) and an S3 endpoint (user `test`, as `scripts/services.sh` makes it); `None`:
/// SQLite and files.
#[derive(Debug, Clone, Default)]
pub struct Backends {
    pub postgres: Option<String>,
    pub s3_endpoint: Option<String>,
}

impl Backends {
    /// The suite's: `GLIMPSE_TEST_POSTGRES_URL` and `GLIMPSE_TEST_S3_ENDPOINT` (pass 2).
    pub fn from_env() -> Backends {
        Backends {
            postgres: std::env::var("GLIMPSE_TEST_POSTGRES_URL").ok(),
            s3_endpoint: std::env::var("GLIMPSE_TEST_S3_ENDPOINT").ok(),
        }
    }
}

/// The `haproxy` binary: on the PATH, else Debian's `/usr/sbin/haproxy` (sbin is not on every
/// user's PATH).
fn haproxy_bin() -> Option<PathBuf> {
    ["haproxy", "/usr/sbin/haproxy"]
        .into_iter()
        .map(PathBuf::from)
        .find(|bin| {
            Command::new(bin)
                .arg("-v")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        })
}

impl Cluster {
    /// Starts `n` nodes (one after the other: the first bootstraps identity) and HAProxy in
    /// front of them. `None` (the test skips) without HAProxy, except in CI, where it fails.
    pub async fn start(n: usize) -> Option<Cluster> {
        Self::start_with(n, "").await
    }

    /// [`Cluster::start`], a client and an admin token: what most tests begin with.
    pub async fn start_as_admin(n: usize) -> Option<(Cluster, reqwest::Client, String)> {
        let c = Self::start(n).await?;
        let http = reqwest::Client::new();
        let token = c.admin_token(&http).await;
        Some((c, http, token))
    }

    /// [`Cluster::start`] with `region_one` appended to region-one's section of every node's
    /// configuration (sub-tables such as `[regions.replication]`).
    pub async fn start_with(n: usize, region_one: &str) -> Option<Cluster> {
        Self::start_full(n, region_one, &Backends::from_env()).await
    }

    /// [`Cluster::start`] on fresh databases and buckets of the given servers.
    pub async fn start_on(n: usize, backends: &Backends) -> Option<Cluster> {
        Self::start_full(n, "", backends).await
    }

    async fn start_full(n: usize, region_one: &str, backends: &Backends) -> Option<Cluster> {
        let Some(haproxy) = haproxy_bin() else {
            assert!(std::env::var("CI").is_err(), "haproxy is required in CI");
            eprintln!("skipped: haproxy is not installed");
            return None;
        };
        let root = temp_dir();
        let lb_port = free_port();
        let lb = format!("http://127.0.0.1:{lb_port}");
        let (identity_db, region_dbs, (stores, opened)) = make_backends(&root, backends).await;
        let mut nodes = Vec::new();
        for i in 0..n {
            let id = format!("node-{i}");
            let dir = root.join(&id);
            std::fs::create_dir_all(&dir).unwrap();
            let config = dir.join("glimpse.toml");
            let mut toml = format!(
                "public_url = \"{lb}\"\n[node]\nid = \"{id}\"\nheartbeat_seconds = 1\n\
                 timeout_seconds = 3\ndrain_seconds = 2\n[identity]\ndatabase = \"{identity_db}\"\n\
                 service_password = \"cluster-service-pw\"\n"
            );
            for (k, name) in REGIONS.iter().enumerate() {
                // Disks on storage every node shares (docs/operations.md, "Disks").
                toml += &format!(
                    "[[regions]]\nname = \"{name}\"\ndatabase = \"{}\"\ndisks = \"{}\"\n{}\n\
                     [regions.jobs]\nlease_seconds = 3\n[regions.kms]\n\
                     master_key_file = \"{}\"\n{}\n",
                    region_dbs[k],
                    root.join(format!("{name}-disks")).display(),
                    stores[k],
                    master_key(&root, name).display(),
                    if k == 0 { region_one } else { "" }
                );
            }
            std::fs::write(&config, toml).unwrap();
            nodes.push(ClusterNode {
                id,
                dir,
                config,
                port: free_port(),
                process: None,
            });
        }
        let haproxy = start_haproxy(&haproxy, &root, lb_port, &nodes);
        let mut cluster = Cluster {
            root,
            lb,
            nodes,
            region_dbs,
            pools: REGIONS
                .iter()
                .map(|_| tokio::sync::OnceCell::new())
                .collect(),
            stores: opened,
            haproxy,
        };
        for i in 0..n {
            cluster.restart(i);
        }
        cluster.wait_all_up().await;
        Some(cluster)
    }

    /// Starts node `i` (again), on its port, and waits until it is ready.
    pub fn restart(&mut self, i: usize) {
        let node = &mut self.nodes[i];
        if let Some(mut p) = node.process.take() {
            p.kill9();
        }
        let env = [("GLIMPSE_ADMIN_PASSWORD", "pw")];
        let listen = format!("127.0.0.1:{}", node.port);
        node.process = Some(GlimpseProcess::start_on(
            &node.dir,
            Some(&node.config),
            &listen,
            &env,
        ));
    }

    /// SIGTERM to node `i` and waits for it to exit (after its drain).
    pub fn terminate(&mut self, i: usize) {
        if let Some(mut p) = self.nodes[i].process.take() {
            let status = Command::new("kill")
                .arg("-TERM")
                .arg(p.child.id().to_string())
                .status()
                .unwrap();
            assert!(status.success());
            let exit = p.child.wait().unwrap();
            assert!(exit.success(), "node {i} exited with {exit}");
        }
    }

    /// Fails unless node `i`'s process still runs (it has not exited on its own).
    pub fn assert_running(&mut self, i: usize) {
        let node = &mut self.nodes[i];
        let p = node.process.as_mut().expect("the node was started");
        assert!(
            p.child.try_wait().unwrap().is_none(),
            "{} exited on its own",
            node.id
        );
    }

    /// SIGKILL of node `i`.
    pub fn kill9(&mut self, i: usize) {
        if let Some(mut p) = self.nodes[i].process.take() {
            p.kill9();
        }
    }

    /// Waits until HAProxy sees every running node up (its stats say `UP`).
    pub async fn wait_all_up(&self) {
        let running = self.nodes.iter().filter(|n| n.process.is_some()).count();
        let http = reqwest::Client::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let stats = http
                .get(format!("{}/haproxy-stats;csv", self.lb))
                .send()
                .await;
            if let Ok(r) = stats {
                let text = r.text().await.unwrap_or_default();
                let up = text
                    .lines()
                    .filter(|l| l.starts_with("nodes,node-") && l.contains(",UP,"))
                    .count();
                if up >= running {
                    return;
                }
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "nodes never all UP behind HAProxy"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// A token of `admin` (password `pw`) in the admin project, through the load balancer.
    pub async fn admin_token(&self, http: &reqwest::Client) -> String {
        identity::token(
            http,
            &self.lb,
            "admin",
            "pw",
            identity::project_named("admin"),
        )
        .await
    }

    /// `{lb}/region-one/image`.
    pub fn image_one(&self) -> String {
        format!("{}/region-one/image", self.lb)
    }

    /// The node whose worker holds job `id`'s lease (its owner is `<node>/…`), if leased.
    pub async fn job_node(&self, region: usize, id: &str) -> Option<usize> {
        self.leased_by(region, "id", id).await
    }

    /// [`Cluster::job_node`] of the job with idempotency key `key` (a snapshot's: its image).
    pub async fn keyed_job_node(&self, region: usize, key: &str) -> Option<usize> {
        self.leased_by(region, "idempotency_key", key).await
    }

    async fn leased_by(&self, region: usize, column: &str, value: &str) -> Option<usize> {
        let sql = format!("SELECT lease_owner FROM jobs WHERE {column} = $1 AND state = 'running'");
        let owner = self.select_text(region, &sql, value).await?;
        let node = owner.split('/').next()?;
        self.nodes.iter().position(|n| n.id == node)
    }

    /// The text column `sql` (with one parameter, `value`) selects from a region's database,
    /// if a row matches and it is not NULL. Each region's database is opened once.
    async fn select_text(&self, region: usize, sql: &str, value: &str) -> Option<String> {
        use sqlx::Row;
        let pool = self.pools[region]
            .get_or_init(|| async {
                sqlx::any::install_default_drivers();
                sqlx::AnyPool::connect(&self.region_dbs[region])
                    .await
                    .unwrap()
            })
            .await;
        let row = sqlx::query(sqlx::AssertSqlSafe(sql.to_string()))
            .bind(value)
            .fetch_optional(pool)
            .await
            .unwrap()?;
        row.try_get::<Option<String>, _>(0).ok().flatten()
    }

    /// The node an image's upload runs on (`images.saving_node`), if it is `saving`.
    pub async fn saving_node(&self, region: usize, image: &str) -> Option<String> {
        let sql = "SELECT saving_node FROM images WHERE id = $1 AND status = 'saving'";
        self.select_text(region, sql, image).await
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for n in &mut self.nodes {
            if let Some(mut p) = n.process.take() {
                p.kill9();
            }
        }
        let _ = self.haproxy.kill();
        let _ = self.haproxy.wait();
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// The identity database, the region databases and the region store lines (`store = …` and
/// its `[regions.s3]` table), shared by every node, with the stores opened.
async fn make_backends(
    root: &Path,
    backends: &Backends,
) -> (
    String,
    Vec<String>,
    (Vec<String>, Vec<glimpse_store::BlobStore>),
) {
    let (identity, regions) = match &backends.postgres {
        Some(pg) => {
            let base = pg.trim_end_matches('/').to_string();
            let mut regions = Vec::new();
            for _ in REGIONS {
                regions.push(super::backends::fresh_pg_db(&base).await);
            }
            (super::backends::fresh_pg_db(&base).await, regions)
        }
        None => (
            format!("sqlite://{}", root.join("identity.db").display()),
            REGIONS
                .iter()
                .map(|r| format!("sqlite://{}", root.join(format!("{r}.db")).display()))
                .collect(),
        ),
    };
    let (mut stores, mut opened) = (Vec::new(), Vec::new());
    for r in REGIONS {
        let bucket = match &backends.s3_endpoint {
            Some(endpoint) => Some(super::backends::fresh_bucket_at(endpoint).await),
            None => None,
        };
        let (line, url, s3) = match bucket {
            Some((bucket, s3)) => (
                format!(
                    "store = \"s3://{bucket}\"\n[regions.s3]\nendpoint = \"{}\"\n\
                     region = \"{}\"\naccess_key_id = \"{}\"\nsecret_access_key = \"{}\"\n\
                     allow_http = true",
                    s3.endpoint, s3.region, s3.access_key_id, s3.secret_access_key
                ),
                format!("s3://{bucket}"),
                s3,
            ),
            None => {
                let url = format!("file://{}", root.join(format!("{r}-blobs")).display());
                (format!("store = \"{url}\""), url, Default::default())
            }
        };
        stores.push(line);
        opened.push(glimpse_store::BlobStore::open(&url, &s3).unwrap());
    }
    (identity, regions, (stores, opened))
}

/// The region's KMS master key file, shared by every node (made the first time: 32 random
/// bytes in hex, mode 600).
fn master_key(root: &Path, region: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let file = root.join(format!("kms-{region}"));
    if !file.exists() {
        let key = format!(
            "{}{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        );
        std::fs::write(&file, key).unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    file
}

/// HAProxy in front of `nodes` on `port`: round robin, `/healthcheck` every 300 ms (down after
/// two failures), stats at `/haproxy-stats`.
fn start_haproxy(bin: &Path, root: &Path, port: u16, nodes: &[ClusterNode]) -> Child {
    let mut cfg = format!(
        "global\n  maxconn 2048\n\
         defaults\n  mode http\n  timeout connect 2s\n  timeout client 120s\n  \
         timeout server 120s\n  option redispatch\n  retries 2\n\
         frontend glimpse\n  bind 127.0.0.1:{port}\n  stats enable\n  \
         stats uri /haproxy-stats\n  default_backend nodes\n\
         backend nodes\n  balance roundrobin\n  option httpchk GET /healthcheck\n  \
         http-check expect status 200\n  default-server inter 300ms fall 2 rise 1\n"
    );
    for n in nodes {
        cfg += &format!("  server {} 127.0.0.1:{} check\n", n.id, n.port);
    }
    let file = root.join("haproxy.cfg");
    std::fs::write(&file, cfg).unwrap();
    Command::new(bin)
        .arg("-db")
        .arg("-f")
        .arg(&file)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start haproxy")
}

/// An upload whose body is sent in two parts: the first MiB at [`HeldUpload::start`], the
/// rest at [`HeldUpload::finish`], so that a test can act while it runs.
pub struct HeldUpload {
    pub id: String,
    pub data: Vec<u8>,
    tx: tokio::sync::mpsc::Sender<Result<Vec<u8>, std::io::Error>>,
    request: tokio::task::JoinHandle<reqwest::Result<reqwest::Response>>,
}

impl HeldUpload {
    pub async fn start(
        http: &reqwest::Client,
        image_url: &str,
        token: &str,
        id: &str,
        data: Vec<u8>,
    ) -> HeldUpload {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(4);
        let body = reqwest::Body::wrap_stream(futures::stream::poll_fn(move |cx| rx.poll_recv(cx)));
        let put = http
            .put(format!("{image_url}/v2/images/{id}/file"))
            .header("x-auth-token", token)
            .header("content-type", "application/octet-stream")
            .header("content-length", data.len().to_string())
            .body(body)
            .send();
        let request = tokio::spawn(put);
        tx.send(Ok(data[..1 << 20].to_vec())).await.unwrap();
        HeldUpload {
            id: id.to_string(),
            data,
            tx,
            request,
        }
    }

    /// Sends the rest; the answer's status (0: no answer).
    pub async fn finish(self) -> u16 {
        for piece in self.data[1 << 20..].chunks(256 << 10) {
            if self.tx.send(Ok(piece.to_vec())).await.is_err() {
                break;
            }
        }
        drop(self.tx);
        match self.request.await.unwrap() {
            Ok(r) => r.status().as_u16(),
            Err(_) => 0,
        }
    }

    /// Stops sending; the answer's status once the server gives up (0: no answer).
    pub async fn abandon(self) -> u16 {
        let _ = self
            .tx
            .send(Err(std::io::Error::other("client gave up")))
            .await;
        drop(self.tx);
        match self.request.await.unwrap() {
            Ok(r) => r.status().as_u16(),
            Err(_) => 0,
        }
    }
}
