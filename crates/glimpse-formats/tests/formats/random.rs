//! Dependency-free randomized testing of the inspector (no qemu needed):
//! random and mutated synthetic headers of every format, fed in random chunk
//! sizes. Properties: nothing panics, `finish` returns, and the report does
//! not depend on how the stream was chunked.

use glimpse_formats::{DiskFormat, Inspector, Limits, Report};

use crate::Rng;

/// A buffer of `len` bytes (random or zero) with `magic` placed at `at`.
fn seed(rng: &mut Rng, len: usize, placements: &[(usize, &[u8])]) -> Vec<u8> {
    let mut d = if rng.below(2) == 0 {
        vec![0u8; len]
    } else {
        rng.bytes(len)
    };
    for (at, magic) in placements {
        if at + magic.len() <= d.len() {
            d[*at..at + magic.len()].copy_from_slice(magic);
        }
    }
    d
}

fn seeds(rng: &mut Rng) -> Vec<Vec<u8>> {
    let desc = b"# Disk DescriptorFile\nversion=1\ncreateType=\"monolithicSparse\"\nRW 8 SPARSE \"x.vmdk\"\n";
    vec![
        seed(rng, 4096, &[]),
        seed(
            rng,
            70_000,
            &[(0, b"QFI\xfb\0\0\0\x03"), (20, &[0, 0, 0, 16])],
        ),
        seed(rng, 2048, &[(0, b"QFI\xfb\0\0\0\x02")]),
        seed(
            rng,
            4096,
            &[(0, b"KDMV\x01\0\0\0"), (28, &[1]), (36, &[2]), (512, desc)],
        ),
        seed(
            rng,
            8192,
            &[
                (0, b"KDMV\x03\0\0\0"),
                (28, &[1]),
                (36, &[1]),
                (56, &[0xff; 8]),
            ],
        ),
        desc.to_vec(),
        seed(rng, 1024, &[(0x40, &[0x7f, 0x10, 0xda, 0xbe, 1, 0, 1, 0])]),
        seed(rng, 40_000, &[(0x8001, b"CD001")]),
        seed(rng, 40_000, &[(0x8001, b"BEA01"), (0x8801, b"NSR02")]),
        seed(
            rng,
            300_000,
            &[(0, b"vhdxfile"), (0x30000, b"regi"), (0x30008, &[1])],
        ),
        seed(rng, 3000, &[(0, b"conectix"), (60, &[0, 0, 0, 3])]),
        seed(rng, 2000, &[(0, b"LUKS\xba\xbe\0\x01")]),
        seed(
            rng,
            600,
            &[(510, &[0x55, 0xaa]), (446, &[0x80, 0, 2, 0, 0xee])],
        ),
        seed(rng, 600, &[(0, b"QED\0"), (0, b"COWD")]),
    ]
}

fn feed(data: &[u8], rng: &mut Rng) -> Report {
    let mut ins = Inspector::new();
    let mut rest = data;
    while !rest.is_empty() {
        let n = match rng.below(4) {
            0 => 1,
            1 => 1 + rng.below(16),
            2 => 1 + rng.below(4096),
            _ => 1 + rng.below(200_000),
        };
        let (a, b) = rest.split_at(n.min(rest.len()));
        ins.feed(a);
        rest = b;
    }
    ins.finish()
}

#[test]
fn random_mutations_never_panic_and_chunking_is_irrelevant() {
    let mut rng = Rng(0x0123_4567_89ab_cdef);
    let interesting: [u64; 7] = [0, 1, 0x200, 0x7fff_ffff, 0xffff_ffff, u64::MAX, 1 << 62];
    for round in 0..400 {
        let base = seeds(&mut rng);
        let mut data = base[round % base.len()].clone();
        let times = rng.below(6);
        rng.mutate(&mut data, times, 600, |rng, data, at| match rng.below(3) {
            0 => data[at] = rng.next() as u8,
            1 => {
                let v = interesting[rng.below(interesting.len())].to_be_bytes();
                let end = (at + 8).min(data.len());
                data[at..end].copy_from_slice(&v[..end - at]);
            }
            _ => data.truncate(at),
        });
        let a = feed(&data, &mut rng);
        let b = feed(&data, &mut rng);
        assert_eq!(a, b, "round {round}: chunking changed the report");
        let _ = a.detected();
        for claim in DiskFormat::ALL {
            for limit in [0, 1 << 20, u64::MAX] {
                let _ = a.verdict(
                    claim,
                    &Limits {
                        max_virtual_size: limit,
                    },
                );
            }
        }
    }
}

#[test]
fn many_tiny_streams() {
    let mut rng = Rng(42);
    for len in 0..600 {
        let data = rng.bytes(len);
        let r = feed(&data, &mut rng);
        assert_eq!(r.total_len(), len as u64);
        let _ = r.verdict(DiskFormat::Raw, &Limits::default());
    }
}
