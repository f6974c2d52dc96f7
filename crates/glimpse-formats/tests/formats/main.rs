//! glimpse-formats against real inputs, in one test binary: the hostile-image corpus, qcow2
//! overlays and the confined qemu-img runner (real qemu-img/qemu-io), and randomized
//! inspector streams. Shared here: the tool check that skips or fails a suite, and the
//! deterministic random generator.

mod corpus;
mod overlay;
mod qemu;
mod random;

use std::io::Write as _;
use std::process::Command;

/// Whether every one of `tools` answers `--version`. Without them a suite is skipped with
/// `msg` on the real stderr (so it shows without --nocapture), or fails when `CI=true`.
fn tools_present(tools: &[&str], msg: &str) -> bool {
    let missing: Vec<&str> = tools
        .iter()
        .copied()
        .filter(|t| {
            !Command::new(t)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
        })
        .collect();
    if !missing.is_empty() {
        assert!(std::env::var("CI").as_deref() != Ok("true"), "{msg}");
        let _ = writeln!(std::io::stderr(), "SKIPPED: {msg}");
    }
    missing.is_empty()
}

/// xorshift64*: deterministic, dependency-free randomness.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }

    /// Applies `op` to `data` `times` times (fewer once `data` is empty), each at an offset
    /// drawn here: half the time within the first `head` bytes, else anywhere.
    fn mutate(
        &mut self,
        data: &mut Vec<u8>,
        times: usize,
        head: usize,
        mut op: impl FnMut(&mut Rng, &mut Vec<u8>, usize),
    ) {
        for _ in 0..times {
            if data.is_empty() {
                break;
            }
            let at = if self.below(2) == 0 {
                self.below(data.len().min(head))
            } else {
                self.below(data.len())
            };
            op(self, data, at);
        }
    }
}
