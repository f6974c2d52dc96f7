//! Fuzz target: the streaming inspector and every verdict.
//!
//! The input is fed in two chunks split at the first byte's value, then again
//! in one piece; the two reports must be identical (chunking must never change
//! a verdict), and `finish` + `verdict` for every claim must not panic.

#![no_main]

use glimpse_formats::{DiskFormat, Inspector, Limits};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let split = usize::from(data.first().copied().unwrap_or(0)).min(data.len());
    let mut two = Inspector::new();
    two.feed(&data[..split]);
    two.feed(&data[split..]);
    let report = two.finish();

    let mut one = Inspector::new();
    one.feed(data);
    assert_eq!(report, one.finish(), "chunking changed the report");

    let _ = report.detected();
    for claim in DiskFormat::ALL {
        for max_virtual_size in [0, 1 << 40, u64::MAX] {
            if let Err(e) = report.verdict(claim, &Limits { max_virtual_size }) {
                let _ = e.to_string();
                let _ = e.is_limit();
            }
        }
    }
});
