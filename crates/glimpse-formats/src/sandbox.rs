//! The namespace sandbox every `qemu-img` and `qemu-io` runs in: bubblewrap (`bwrap`) with
//! every namespace unshared (no network but a private loopback, no view of other processes),
//! a root file system that holds only the system's programs and libraries (`/usr` and its
//! links) read-only, the inputs read-only, and the outputs as the only writable paths; inside,
//! `prlimit` bounds memory and CPU time as before. No OpenStack service confines qemu-img this
//! way (Glance and Nova use prlimit alone).
//!
//! Where bubblewrap is missing or namespaces are not allowed (a container without user
//! namespaces), children run under prlimit alone, and the first run logs a warning once.
//! Stateless; the one probe is cached for the process.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use tokio::process::Command;

/// What a child may touch besides the system's programs: `read` paths read-only, `write`
/// paths (files that exist, usually just created empty) read-write.
#[derive(Debug, Clone, Default)]
pub struct Access {
    pub read: Vec<PathBuf>,
    pub write: Vec<PathBuf>,
}

impl Access {
    pub fn reads(paths: &[&Path]) -> Access {
        Access {
            read: paths.iter().map(|p| p.to_path_buf()).collect(),
            write: Vec::new(),
        }
    }

    pub fn writes(mut self, path: &Path) -> Access {
        self.write.push(path.to_path_buf());
        self
    }
}

/// The command that runs `program` under prlimit with `prlimit_args`, inside the sandbox when
/// it is available.
pub fn command(program: &str, prlimit_args: &[String], access: &Access) -> Command {
    let mut cmd = if available() {
        let mut c = Command::new("bwrap");
        c.args(bwrap_args(access)).arg("--").arg("prlimit");
        c
    } else {
        Command::new("prlimit")
    };
    cmd.args(prlimit_args).arg("--").arg(program);
    cmd
}

fn bwrap_args(access: &Access) -> Vec<String> {
    let mut a: Vec<String> = [
        "--unshare-all",
        "--die-with-parent",
        "--new-session",
        "--cap-drop",
        "ALL",
        "--ro-bind",
        "/usr",
        "/usr",
        "--dev",
        "/dev",
        "--proc",
        "/proc",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    // Merged-/usr systems link these into /usr; older ones have real directories.
    for dir in ["/bin", "/sbin", "/lib", "/lib64", "/lib32"] {
        match std::fs::read_link(dir) {
            Ok(target) => a.extend(["--symlink".into(), target.display().to_string(), dir.into()]),
            Err(_) if Path::new(dir).is_dir() => {
                a.extend(["--ro-bind".into(), dir.into(), dir.into()])
            }
            Err(_) => {}
        }
    }
    if Path::new("/etc/ld.so.cache").exists() {
        a.extend([
            "--ro-bind".into(),
            "/etc/ld.so.cache".into(),
            "/etc/ld.so.cache".into(),
        ]);
    }
    let absolute = |p: &PathBuf| {
        std::path::absolute(p)
            .unwrap_or_else(|_| p.clone())
            .display()
            .to_string()
    };
    for p in access.read.iter().map(absolute) {
        a.extend(["--ro-bind".into(), p.clone(), p]);
    }
    for p in access.write.iter().map(absolute) {
        a.extend(["--bind".into(), p.clone(), p]);
    }
    // The root bwrap builds is a tmpfs: read-only too, so the outputs are the only place a
    // child can write.
    a.extend(["--remount-ro".into(), "/".into()]);
    a
}

static PROBE: OnceLock<bool> = OnceLock::new();

/// Runs the one-time [`available`] probe (a child process) off the async threads, so that
/// [`command`] never blocks one.
pub async fn probe() {
    if PROBE.get().is_none() {
        let _ = tokio::task::spawn_blocking(available).await;
    }
}

/// Whether children run in the sandbox: bubblewrap present and able to make its namespaces
/// here (probed once with `true`).
pub fn available() -> bool {
    *PROBE.get_or_init(|| {
        let ok = std::process::Command::new("bwrap")
            .args(bwrap_args(&Access::default()))
            .args(["--", "true"])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            tracing::warn!(
                "bubblewrap (bwrap) is missing or cannot create namespaces here: qemu-img \
                 runs under prlimit only, without the network and file system sandbox"
            );
        }
        ok
    })
}

#[cfg(test)]
mod tests {
    use std::net::TcpListener;

    use super::*;
    use crate::qemu::{QemuLimits, run_program};

    /// The sandbox is what these tests are about: where it cannot run they say so and stop,
    /// unless `GLIMPSE_REQUIRE_SANDBOX` is set (CI sets it, having installed bubblewrap).
    fn sandboxed() -> bool {
        if available() {
            return true;
        }
        assert!(
            std::env::var_os("GLIMPSE_REQUIRE_SANDBOX").is_none(),
            "bubblewrap is required here but cannot run"
        );
        eprintln!("bubblewrap unavailable: sandbox test skipped");
        false
    }

    fn scratch() -> PathBuf {
        let d = std::env::temp_dir()
            .join(format!("glimpse-sandbox-{}", std::process::id()))
            .join(format!("{:?}", std::thread::current().id()).replace(['(', ')'], ""));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    /// An image "file" that is really an NBD export on a loopback port: qemu-img opening it
    /// connects to the port.
    fn nbd_spec(port: u16) -> String {
        let spec = serde_json::json!({"driver": "raw", "file": {"driver": "nbd",
            "server": {"type": "inet", "host": "127.0.0.1", "port": port.to_string()},
            "export": "x"}});
        format!("json:{spec}")
    }

    fn connected(listener: &TcpListener) -> bool {
        listener.set_nonblocking(true).unwrap();
        listener.accept().is_ok()
    }

    #[tokio::test]
    async fn qemu_img_cannot_open_a_network_socket() {
        if !sandboxed() {
            return;
        }
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let spec = nbd_spec(listener.local_addr().unwrap().port());
        let args = ["info", "--output=json", "-f", "raw", spec.as_str()];
        // Unconfined, this input reaches the port (and then waits for an NBD greeting that
        // never comes): the attack is real.
        let mut unconfined = std::process::Command::new("qemu-img")
            .args(args)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let reached = (0..6000).any(|_| {
            connected(&listener) || {
                std::thread::sleep(std::time::Duration::from_millis(10));
                false
            }
        });
        let _ = unconfined.kill();
        let _ = unconfined.wait();
        assert!(reached, "the crafted input did not try the network");
        // Confined, it fails without a connection (the child has exited: any connection
        // would be waiting in the backlog).
        let run = run_program(
            "qemu-img",
            &args,
            &Access::default(),
            &QemuLimits::default(),
        )
        .await;
        assert!(run.is_err(), "{run:?}");
        assert!(
            !connected(&listener),
            "qemu-img reached the network from the sandbox"
        );
    }

    #[tokio::test]
    async fn qemu_img_writes_its_output_and_nothing_else() {
        if !sandboxed() {
            return;
        }
        let dir = scratch();
        let (input, output, escape) = (
            dir.join("in.raw"),
            dir.join("out.qcow2"),
            dir.join("escape.raw"),
        );
        std::fs::write(&input, vec![7u8; 1 << 20]).unwrap();
        std::fs::File::create(&output).unwrap();
        let access = Access::reads(&[&input]).writes(&output);
        let limits = QemuLimits::default();
        let (i, o, e) = (
            input.to_str().unwrap(),
            output.to_str().unwrap(),
            escape.to_str().unwrap(),
        );

        run_program(
            "qemu-img",
            &["convert", "-f", "raw", "-O", "qcow2", i, o],
            &access,
            &limits,
        )
        .await
        .expect("the output is writable");
        assert!(std::fs::metadata(&output).unwrap().len() > 0);

        // A file beside the output, one in /tmp, and the input itself are out of reach.
        let tmp = run_program(
            "qemu-img",
            &["create", "-f", "raw", "/tmp/escape.raw", "1M"],
            &access,
            &limits,
        )
        .await;
        assert!(tmp.is_err(), "{tmp:?}");
        let create = run_program(
            "qemu-img",
            &["create", "-f", "raw", e, "1M"],
            &access,
            &limits,
        )
        .await;
        assert!(create.is_err(), "{create:?}");
        assert!(!escape.exists(), "qemu-img wrote outside its output");
        let before = std::fs::read(&input).unwrap();
        let overwrite = run_program(
            "qemu-img",
            &["convert", "-f", "qcow2", "-O", "raw", o, i],
            &access,
            &limits,
        )
        .await;
        assert!(overwrite.is_err(), "{overwrite:?}");
        assert_eq!(
            std::fs::read(&input).unwrap(),
            before,
            "the input was changed"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
