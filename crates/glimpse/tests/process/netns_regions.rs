//! Regions on separate hosts (issue 14): identity, region-one and region-two each in its own
//! Linux network namespace (`scripts/netns-regions.sh`), each a `glimpse serve` process on a
//! private address, the link between the two regions shaped by `tc` tbf to 200 Mbit/s. The
//! regions know identity's URL only; each other's they find in the catalog. An image of
//! incompressible bytes replicates from region-one to region-two across the shaped link at
//! ≥ 0.9 of its rate (submit to `replicated`), printed beside a plain TCP copy of as many bytes
//! over the same link in the same run.
//!
//! Needs root and iproute2 (`ip`, `tc`); without them, or where `ip netns add` is refused, the
//! test says so and skips, except in CI (`CI` set) as root with iproute2, where it fails.

use crate::common;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::glance::{sha512_hex, show};
use common::process::replicator::Replicator;
use common::process::{self, GlimpseProcess, raw_image, temp_dir};
use serde_json::json;

const SCRIPT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../scripts/netns-regions.sh"
);
/// The tbf rate the script puts on the region-to-region link (its default, `200mbit`).
const LINK_BITS_PER_SECOND: f64 = 200e6;
/// The image: 200 MiB, about 8.8 s at the link's rate.
const IMAGE_BYTES: usize = 200 << 20;
/// Every service listens on this port of its own namespace's address.
const PORT: u16 = 5000;
/// The plain TCP baseline's port (on region-two's address).
const BASELINE_PORT: u16 = 7001;

/// The namespaces of one run (`scripts/netns-regions.sh up`), under a temporary directory
/// that also holds the three data dirs; dropped, it runs `down` and removes the directory.
struct Namespaces {
    root: PathBuf,
    env: HashMap<String, String>,
}

impl Namespaces {
    /// `None` (the test skips) without root, iproute2 or the right to make namespaces; in CI
    /// as root with iproute2 a refused `ip netns add` fails the test instead.
    fn up() -> Option<Namespaces> {
        let root = std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0);
        let tools = ["ip", "tc"].iter().all(|t| runs(Command::new(t).arg("-V")));
        if !root || !tools {
            eprintln!(
                "skipped: the namespace test needs root (root: {root}) and iproute2's ip and tc \
                 (found: {tools})"
            );
            return None;
        }
        let probe = format!(
            "gl-probe-{}",
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        );
        if !runs(Command::new("ip").args(["netns", "add", &probe])) {
            assert!(
                std::env::var_os("CI").is_none(),
                "`ip netns add` is refused, and CI requires the namespace test"
            );
            eprintln!("skipped: `ip netns add` is refused here");
            return None;
        }
        let _ = Command::new("ip").args(["netns", "del", &probe]).status();

        let root = temp_dir();
        let mut ns = Namespaces {
            root,
            env: HashMap::new(),
        };
        let out = Command::new(SCRIPT)
            .arg("up")
            .arg(&ns.root)
            .env_remove("RATE")
            .env_remove("BURST")
            .env_remove("LATENCY")
            .output()
            .expect("run scripts/netns-regions.sh");
        assert!(
            out.status.success(),
            "netns-regions.sh up: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        eprintln!("{}", String::from_utf8_lossy(&out.stdout).trim());
        let text = std::fs::read_to_string(ns.root.join("netns.env")).unwrap();
        ns.env = text
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.trim_matches('"').to_string()))
            .collect();
        Some(ns)
    }

    fn get(&self, key: &str) -> &str {
        self.env
            .get(key)
            .unwrap_or_else(|| panic!("{key} in netns.env"))
    }

    /// A data dir for one service under the run's directory.
    fn data_dir(&self, name: &str) -> PathBuf {
        let dir = self.root.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// Bytes the tbf on `ns`'s end of the region link has sent (`tc -s qdisc`).
    fn shaped_bytes_sent(&self, ns: &str, dev: &str) -> u64 {
        let out = Command::new("ip")
            .args([
                "netns",
                "exec",
                self.get(ns),
                "tc",
                "-s",
                "qdisc",
                "show",
                "dev",
            ])
            .arg(self.get(dev))
            .output()
            .expect("tc -s qdisc");
        let text = String::from_utf8_lossy(&out.stdout);
        let tbf = text
            .split("qdisc ")
            .find(|q| q.starts_with("tbf"))
            .unwrap_or_else(|| panic!("a tbf qdisc: {text}"));
        let sent = tbf.split("Sent ").nth(1).expect("Sent");
        sent.split_whitespace().next().unwrap().parse().unwrap()
    }
}

impl Drop for Namespaces {
    fn drop(&mut self) {
        let down = Command::new(SCRIPT)
            .arg("down")
            .arg(&self.root)
            .stdout(Stdio::null())
            .status();
        if !down.is_ok_and(|s| s.success()) {
            eprintln!("netns-regions.sh down {} failed", self.root.display());
        }
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// Whether the command runs and exits 0 (its output discarded).
fn runs(cmd: &mut Command) -> bool {
    cmd.stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Runs `f` on a new thread inside the network namespace `netns` (setns(2) moves only the
/// calling thread; the thread ends with `f`).
fn in_netns<T: Send + 'static>(
    netns: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> std::thread::JoinHandle<T> {
    let path = format!("/run/netns/{netns}");
    std::thread::spawn(move || {
        let file = std::fs::File::open(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
        f()
    })
}

/// A plain TCP copy of `bytes` from region-one's namespace to region-two's address, across
/// the shaped link: the time from connect to the receiver's end of stream.
fn tcp_baseline(ns_r1: &str, ns_r2: &str, r2_addr: &str, bytes: usize) -> Duration {
    let addr: SocketAddr = format!("{r2_addr}:{BASELINE_PORT}").parse().unwrap();
    let (listening, ready) = std::sync::mpsc::channel();
    let receiver = in_netns(ns_r2, move || {
        let listener = TcpListener::bind(addr).expect("bind the baseline receiver");
        listening.send(()).unwrap();
        let (mut conn, _) = listener.accept().unwrap();
        let mut buf = vec![0u8; 1 << 20];
        let mut got = 0;
        loop {
            match conn.read(&mut buf).unwrap() {
                0 => break,
                n => got += n,
            }
        }
        (got, Instant::now())
    });
    ready.recv().unwrap();
    let sender = in_netns(ns_r1, move || {
        let start = Instant::now();
        let mut conn = TcpStream::connect(addr).expect("connect to the baseline receiver");
        let buf = vec![0x5a_u8; 1 << 20];
        let mut left = bytes;
        while left > 0 {
            let n = left.min(buf.len());
            conn.write_all(&buf[..n]).unwrap();
            left -= n;
        }
        conn.shutdown(std::net::Shutdown::Write).unwrap();
        start
    });
    let start = sender.join().unwrap();
    let (got, end) = receiver.join().unwrap();
    assert_eq!(got, bytes, "the baseline receiver got every byte");
    end - start
}

/// `n` bytes of xorshift64 output: incompressible, and the same in every run.
fn incompressible(n: usize) -> Vec<u8> {
    common::replication::data(n, 0x9e37_79b9_7f4a_7c15)
}

/// Writes `toml` as `dir/glimpse.toml`; the path.
fn config(dir: &Path, toml: &str) -> PathBuf {
    let file = dir.join("glimpse.toml");
    std::fs::write(&file, toml).unwrap();
    file
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replication_across_a_shaped_link_between_namespaces_runs_at_the_link_rate() {
    let Some(ns) = Namespaces::up() else {
        return;
    };
    let (id_addr, r1_addr, r2_addr) = (ns.get("ID_ADDR"), ns.get("R1_ADDR"), ns.get("R2_ADDR"));
    let identity_base = format!("http://{id_addr}:{PORT}");
    let (r1_base, r2_base) = (
        format!("http://{r1_addr}:{PORT}"),
        format!("http://{r2_addr}:{PORT}"),
    );

    // Identity alone; the catalog names each region at its address on the region link.
    let id_dir = ns.data_dir("identity");
    let id_config = config(
        &id_dir,
        &format!(
            "[[regions]]\nname = \"region-one\"\nserve = false\nurl = \"{r1_base}/region-one\"\n\
             [[regions]]\nname = \"region-two\"\nserve = false\nurl = \"{r2_base}/region-two\"\n"
        ),
    );
    let _identity = GlimpseProcess::start_in_netns(
        ns.get("NS_ID"),
        &id_dir,
        Some(&id_config),
        &format!("{id_addr}:{PORT}"),
        &[("GLIMPSE_ADMIN_PASSWORD", "admin-pw")],
    );
    let service_pw = std::fs::read_to_string(id_dir.join("service-password")).unwrap();

    // Each region alone, knowing identity's URL and nothing of the other region.
    let region = |netns: &str, name: &str, addr: &str| {
        let dir = ns.data_dir(name);
        let file = config(
            &dir,
            &format!(
                "[identity]\nenabled = false\nurl = \"{identity_base}/identity/v3\"\n\
                 service_password = \"{}\"\n\n[[regions]]\nname = \"{name}\"\n",
                service_pw.trim()
            ),
        );
        GlimpseProcess::start_in_netns(
            ns.get(netns),
            &dir,
            Some(&file),
            &format!("{addr}:{PORT}"),
            &[],
        )
    };
    let _one = region("NS_R1", "region-one", r1_addr);
    let _two = region("NS_R2", "region-two", r2_addr);

    let http = reqwest::Client::new();
    let admin = process::identity::token(
        &http,
        &identity_base,
        "admin",
        "admin-pw",
        process::identity::project_named("admin"),
    )
    .await;
    let catalog =
        process::identity::validate(&http, &identity_base, &admin).await["token"]["catalog"]
            .to_string();
    for url in [
        format!("{r1_base}/region-one/image"),
        format!("{r2_base}/region-two/image"),
    ] {
        assert!(catalog.contains(&url), "{url} in {catalog}");
    }
    let far = process::identity::member_project(
        &http,
        &identity_base,
        &admin,
        "far",
        "region-two",
        "admin",
    )
    .await;

    let data = incompressible(IMAGE_BYTES);
    let sha512 = sha512_hex(&data);
    let image_one = format!("{r1_base}/region-one/image");
    let src = raw_image(&http, &image_one, &admin, "across", &data).await;
    drop(data);
    assert_eq!(
        show(&http, &image_one, &admin, &src).await["os_hash_value"],
        sha512.as_str()
    );

    // The link's own rate for a plain TCP stream, in the same run.
    let (ns_r1, ns_r2, r2) = (
        ns.get("NS_R1").to_string(),
        ns.get("NS_R2").to_string(),
        r2_addr.to_string(),
    );
    let tcp = tokio::task::spawn_blocking(move || tcp_baseline(&ns_r1, &ns_r2, &r2, IMAGE_BYTES))
        .await
        .unwrap();

    // The replication, submit to `replicated`.
    let shaped_before = ns.shaped_bytes_sent("NS_R1", "R1_LINK_DEV");
    let one = Replicator::new(&http, &image_one, &admin);
    let started = Instant::now();
    let job = one.submit(&src, &far).await;
    let (last, _) = one.wait_end(&job).await;
    let took = started.elapsed();
    assert_eq!(last["status"], "replicated", "{last}");
    let shaped = ns.shaped_bytes_sent("NS_R1", "R1_LINK_DEV") - shaped_before;
    assert!(
        shaped >= IMAGE_BYTES as u64,
        "the copy crossed the shaped link ({shaped} bytes through its tbf)"
    );

    // The copy in region-two holds the source's bytes (sha512 computed there on arrival).
    let far_token = process::identity::rescope(
        &http,
        &identity_base,
        &admin,
        json!({"project": {"id": far}}),
    )
    .await;
    let copy = last["destination_image_id"].as_str().unwrap();
    let img = show(
        &http,
        &format!("{r2_base}/region-two/image"),
        &far_token,
        copy,
    )
    .await;
    assert_eq!(img["status"], "active", "{img}");
    assert_eq!(img["size"], IMAGE_BYTES as u64);
    assert_eq!(img["os_hash_value"], sha512.as_str());

    let mib = IMAGE_BYTES as f64 / f64::from(1 << 20);
    let bits = IMAGE_BYTES as f64 * 8.0;
    let (glimpse_bps, tcp_bps) = (bits / took.as_secs_f64(), bits / tcp.as_secs_f64());
    let ratio = glimpse_bps / LINK_BITS_PER_SECOND;
    println!(
        "replication across the 200 Mbit/s link: {mib:.0} MiB in {:.2} s = {:.1} Mbit/s, \
         ratio {ratio:.3} of the link",
        took.as_secs_f64(),
        glimpse_bps / 1e6
    );
    println!(
        "plain TCP copy of as many bytes across the same link: {:.2} s = {:.1} Mbit/s, ratio \
         {:.3} of the link; the replication ran at {:.3} of plain TCP",
        tcp.as_secs_f64(),
        tcp_bps / 1e6,
        tcp_bps / LINK_BITS_PER_SECOND,
        glimpse_bps / tcp_bps
    );
    assert!(
        ratio >= 0.9,
        "replication at {ratio:.3} of the link (plain TCP: {:.3})",
        tcp_bps / LINK_BITS_PER_SECOND
    );
}
