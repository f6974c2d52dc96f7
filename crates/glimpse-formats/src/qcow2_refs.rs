//! The qcow2 reference walk: every pointer qemu would follow to read the image, checked
//! against the stream's length at its end.
//!
//! The header checks in [`crate::qcow2`] place the tables inside the file; this walk reads
//! their entries as the stream passes them, in bounded memory:
//! * every refcount-table entry (a refcount block: reserved bits 0-8 clear, cluster aligned);
//! * every L1 entry (an L2 table: reserved bits 1-8 and 56-62 clear, cluster aligned);
//! * every entry of each L2 table that lies after the L1 table (a data cluster, or a
//!   compressed run of 512-byte sectors).
//!
//! Each reference must end inside the stream: a file cut inside its data clusters, or a
//! pointer to offset 2^55, is refused, where qemu would read zeros (or fail a guest read).
//! Compressed runs may end up to 511 bytes past the last byte, as qemu rounds their length up
//! to whole sectors.
//!
//! Kept per stream: the offsets of the L2 tables the L1 table names (at most
//! [`MAX_L2_TABLES`], 1 MiB) and the furthest reference. Left unchecked: the entries of an
//! L2 table that lies *before* the L1 table in the file (a resized image's), since the
//! stream has passed it before it is known to be one; the L1 entry naming it is checked.

use crate::report::Detection;

/// Bits 9-55 of an L1 or standard L2 entry: a host offset.
const OFFSET_MASK: u64 = 0x00ff_ffff_ffff_fe00;
/// L1 entry bits that must be clear: 1-8 and 56-62 (bit 63 is "copied").
const L1_RESERVED: u64 = 0x7f00_0000_0000_01fe;
/// Refcount-table entry bits that must be clear: 0-8.
const REFTABLE_RESERVED: u64 = 0x1ff;
/// An L2 entry describing compressed data.
const L2_COMPRESSED: u64 = 1 << 62;
/// The most L2 tables checked per image (8 bytes each: 1 MiB). 1 TiB, the default virtual
/// size cap, needs 2,048 of them with qemu's default 64 KiB clusters.
pub(crate) const MAX_L2_TABLES: usize = 1 << 17;

/// What the tables of an image are, from its header.
pub(crate) struct Layout {
    pub(crate) cluster_bits: u32,
    pub(crate) l1_offset: u64,
    pub(crate) l1_bytes: u64,
    pub(crate) reftable_offset: u64,
    pub(crate) reftable_bytes: u64,
}

/// A table of 8-byte big-endian entries at `[next, end)`, read as the stream passes it.
struct Table {
    next: u64,
    end: u64,
    index: u64,
    carry: [u8; 8],
    carried: usize,
}

impl Table {
    fn new(start: u64, bytes: u64) -> Table {
        Table {
            next: start,
            end: start.saturating_add(bytes),
            index: 0,
            carry: [0; 8],
            carried: 0,
        }
    }

    fn done(&self) -> bool {
        self.next >= self.end
    }

    /// Calls `f(index, entry)` for every entry the chunk at `pos` completes.
    fn feed(&mut self, pos: u64, chunk: &[u8], mut f: impl FnMut(u64, u64)) {
        let chunk_end = pos.saturating_add(chunk.len() as u64);
        if self.done() || self.next >= chunk_end || self.next < pos {
            return;
        }
        // Both fit: they are offsets inside `chunk`.
        let from = (self.next - pos) as usize;
        let to = (self.end.min(chunk_end) - pos) as usize;
        for &b in &chunk[from..to] {
            self.carry[self.carried] = b;
            self.carried += 1;
            if self.carried == 8 {
                f(self.index, u64::from_be_bytes(self.carry));
                self.index += 1;
                self.carried = 0;
            }
        }
        self.next += (to - from) as u64;
    }
}

/// Which pointer reaches furthest.
#[derive(Clone, Copy)]
enum Pointer {
    RefcountBlock,
    L2Table,
    Data,
    Compressed,
}

/// The furthest reference seen so far.
#[derive(Clone, Copy)]
struct Reach {
    end: u64,
    pointer: Pointer,
    index: u64,
    target: u64,
}

/// The streaming reference walk of one qcow2 image (see the module documentation).
pub(crate) struct Refs {
    cluster_bits: u32,
    l1_end: u64,
    l1: Table,
    reftable: Table,
    /// L2 tables after the L1 table; sorted once the L1 table has been read.
    l2: Vec<u64>,
    l2_sorted: bool,
    l2_next: usize,
    l2_current: Option<Table>,
    too_many: bool,
    furthest: Option<Reach>,
    bad: Option<String>,
}

impl Refs {
    pub(crate) fn new(layout: &Layout) -> Refs {
        Refs {
            cluster_bits: layout.cluster_bits,
            l1_end: layout.l1_offset.saturating_add(layout.l1_bytes),
            l1: Table::new(layout.l1_offset, layout.l1_bytes),
            reftable: Table::new(layout.reftable_offset, layout.reftable_bytes),
            l2: Vec::new(),
            l2_sorted: false,
            l2_next: 0,
            l2_current: None,
            too_many: false,
            furthest: None,
            bad: None,
        }
    }

    fn cluster(&self) -> u64 {
        1 << self.cluster_bits
    }

    fn reach(&mut self, r: Reach) {
        if self.furthest.is_none_or(|f| r.end > f.end) {
            self.furthest = Some(r);
        }
    }

    fn refuse(&mut self, why: impl FnOnce() -> String) {
        if self.bad.is_none() {
            self.bad = Some(why());
        }
    }

    /// A pointer to a whole cluster at `target` (reserved bits already cleared).
    fn cluster_at(&mut self, pointer: Pointer, index: u64, target: u64) {
        let cluster = self.cluster();
        if !target.is_multiple_of(cluster) {
            let what = describe(pointer, index);
            self.refuse(|| format!("{what} points to {target:#x}, not cluster aligned"));
            return;
        }
        self.reach(Reach {
            end: target.saturating_add(cluster),
            pointer,
            index,
            target,
        });
    }

    pub(crate) fn feed(&mut self, pos: u64, chunk: &[u8]) {
        let mut reftable = std::mem::replace(&mut self.reftable, Table::new(0, 0));
        reftable.feed(pos, chunk, |i, e| {
            if e & REFTABLE_RESERVED != 0 {
                self.refuse(|| format!("refcount table entry {i} has reserved bits set ({e:#x})"));
            } else if e != 0 {
                self.cluster_at(Pointer::RefcountBlock, i, e);
            }
        });
        self.reftable = reftable;

        let mut l1 = std::mem::replace(&mut self.l1, Table::new(0, 0));
        l1.feed(pos, chunk, |i, e| self.l1_entry(i, e));
        self.l1 = l1;

        if self.l1.done() {
            if !self.l2_sorted {
                self.l2.sort_unstable();
                self.l2.dedup();
                self.l2_sorted = true;
            }
            self.walk_l2(pos, chunk);
        }
    }

    fn l1_entry(&mut self, i: u64, e: u64) {
        if e & L1_RESERVED != 0 {
            self.refuse(|| format!("L1 entry {i} has reserved bits set ({e:#x})"));
            return;
        }
        let target = e & OFFSET_MASK;
        if target == 0 {
            return;
        }
        self.cluster_at(Pointer::L2Table, i, target);
        if target >= self.l1_end {
            if self.l2.len() < MAX_L2_TABLES {
                self.l2.push(target);
            } else {
                self.too_many = true;
            }
        }
    }

    /// Reads the L2 tables that the chunk at `pos` covers, in file order.
    fn walk_l2(&mut self, pos: u64, chunk: &[u8]) {
        let chunk_end = pos.saturating_add(chunk.len() as u64);
        loop {
            let mut table = match self.l2_current.take() {
                Some(t) => t,
                None => match self.l2.get(self.l2_next) {
                    Some(&start) if start < chunk_end => Table::new(start, self.cluster()),
                    _ => return,
                },
            };
            table.feed(pos, chunk, |i, e| self.l2_entry(i, e));
            if !table.done() {
                self.l2_current = Some(table);
                return;
            }
            self.l2_next += 1;
        }
    }

    fn l2_entry(&mut self, i: u64, e: u64) {
        if e & L2_COMPRESSED == 0 {
            let target = e & OFFSET_MASK;
            if target != 0 {
                self.cluster_at(Pointer::Data, i, target);
            }
            return;
        }
        // docs/interop/qcow2.txt: x = 62 - (cluster_bits - 8) bits of offset, then the
        // number of additional 512-byte sectors.
        let x = 62 - (self.cluster_bits - 8);
        let target = e & ((1 << x) - 1);
        let sectors = ((e >> x) & ((1 << (self.cluster_bits - 8)) - 1)) + 1;
        self.reach(Reach {
            end: (target & !511).saturating_add(sectors * 512),
            pointer: Pointer::Compressed,
            index: i,
            target,
        });
    }

    /// Adds what the walk found to `d`, for a stream of `len` bytes.
    pub(crate) fn finish(&self, d: &mut Detection, len: u64) {
        if let Some(why) = &self.bad {
            d.malformed(why.clone());
        }
        if self.too_many {
            d.malformed(format!(
                "more than {MAX_L2_TABLES} L2 tables are in use, more than Glimpse checks \
                 (convert the image with 64 KiB clusters)"
            ));
        }
        let Some(r) = self.furthest else { return };
        let limit = match r.pointer {
            Pointer::Compressed => len.saturating_add(511) & !511,
            _ => len,
        };
        if r.end > limit {
            d.truncated(format!(
                "{} points to {:#x}, past the end of the image ({len:#x} bytes)",
                describe(r.pointer, r.index),
                r.target
            ));
        }
    }
}

fn describe(pointer: Pointer, index: u64) -> String {
    match pointer {
        Pointer::RefcountBlock => format!("refcount table entry {index}"),
        Pointer::L2Table => format!("L1 entry {index}"),
        Pointer::Data => format!("an L2 entry ({index}) for a data cluster"),
        Pointer::Compressed => format!("an L2 entry ({index}) for compressed data"),
    }
}
