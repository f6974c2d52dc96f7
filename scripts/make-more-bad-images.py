#!/usr/bin/env python3
"""make-more-bad-images.py OUTDIR: Glimpse's own additions to the hostile disk-image corpus,
beside ../shared/tools/make-bad-images.sh, in the same MANIFEST.tsv layout
(file <TAB> disk_format_to_claim <TAB> expected <TAB> why; expected ACCEPT or REJECT).

These are the cases a hostile-client probe found becoming `active` (issue 13, item 5).
Python 3 standard library only; nothing here runs qemu or opens a host file. The qcow2 files are
built field by field (docs/interop/qcow2.txt) from one small valid image that `qemu-img check`
finds clean.
"""
import os
import struct
import sys

MIB = 1 << 20


def image(head: bytes, size: int = MIB) -> bytes:
    """`head` at offset 0, then a recognisable non-zero pattern up to `size` bytes."""
    body = bytes((i * 31 + 7) & 0xFF for i in range(size - len(head)))
    return head + body


def field(text: bytes, width: int) -> bytes:
    return text.ljust(width, b"\0")


CLOOP = b"#!/bin/sh\n#V2.0 Format\nmodprobe cloop file=$0 && mount -r -t iso9660 /dev/cloop $1\n"

CLUSTER = 1 << 16
COPIED = 1 << 63
EXT_CRYPTO = 0x0537BE77
EXT_BITMAPS = 0x23852875


def qcow2(l1=None, reftable=None, crypt_method=0, autoclear=0, extensions=b"", cut=None):
    """A qcow2 v3 image of 64 KiB clusters and 1 MiB virtual size, two data clusters mapped:
    header and extensions (cluster 0), refcount table (1), refcount block (2), L1 table (3),
    L2 table (4), data (5, 6). `l1`/`reftable` replace the first entry of those tables; `cut`
    keeps only that many bytes."""
    header_length = 104
    hdr = b"QFI\xfb" + struct.pack(
        ">IQIIQIIQQIIQQQQII", 3, 0, 0, 16, MIB, crypt_method, 1, 3 * CLUSTER, 1 * CLUSTER,
        1, 0, 0, 0, 0, autoclear, 4, header_length)
    assert len(hdr) == header_length
    clusters = [hdr + extensions + bytes(8)]
    clusters.append(struct.pack(">Q", 2 * CLUSTER if reftable is None else reftable))
    clusters.append(struct.pack(">7H", *[1] * 7))
    clusters.append(struct.pack(">Q", (4 * CLUSTER | COPIED) if l1 is None else l1))
    clusters.append(struct.pack(">QQ", 5 * CLUSTER | COPIED, 6 * CLUSTER | COPIED))
    data = image(b"", 2 * CLUSTER)
    out = b"".join(c.ljust(CLUSTER, b"\0") for c in clusters) + data
    return out if cut is None else out[:cut]


def extension(kind: int, body: bytes) -> bytes:
    return struct.pack(">II", kind, len(body)) + body.ljust((len(body) + 7) & ~7, b"\0")


CASES = [
    # qcow2 that qemu reads wrongly or refuses to open (issue 13, item 5).
    ("qcow2-handmade-valid.qcow2", "qcow2", "ACCEPT",
     "the base of the qcow2 cases below: every table and data cluster in place", qcow2()),
    ("qcow2-cut-in-data.qcow2", "qcow2", "REJECT",
     "cut inside its second data cluster (qemu would read zeros)", qcow2(cut=6 * CLUSTER + 4096)),
    ("qcow2-l1-entry-2p55.qcow2", "qcow2", "REJECT",
     "L1 entry points to offset 2^55", qcow2(l1=1 << 55)),
    ("qcow2-refcount-entry-2p55.qcow2", "qcow2", "REJECT",
     "refcount table entry points to offset 2^55", qcow2(reftable=1 << 55)),
    ("qcow2-crypto-ext-unencrypted.qcow2", "qcow2", "REJECT",
     "crypto header extension without encryption (qemu refuses to open it)",
     qcow2(extensions=extension(EXT_CRYPTO, struct.pack(">QQ", 5 * CLUSTER, 4096)))),
    ("qcow2-luks-without-crypto-ext.qcow2", "qcow2", "REJECT",
     "LUKS encryption method without its crypto header extension", qcow2(crypt_method=2)),
    ("qcow2-bitmaps-zero.qcow2", "qcow2", "REJECT",
     "bitmaps extension in use with zero bitmaps (qemu refuses to open it)",
     qcow2(autoclear=1, extensions=extension(EXT_BITMAPS, struct.pack(">IIQQ", 0, 0, 64, 5 * CLUSTER)))),
    ("qcow2-bitmaps-bad-length.qcow2", "qcow2", "REJECT",
     "bitmaps extension of 8 bytes instead of 24 (qemu refuses to open it)",
     qcow2(autoclear=1, extensions=extension(EXT_BITMAPS, struct.pack(">Q", 1)))),
    ("qcow2-bitmaps-disowned.qcow2", "qcow2", "ACCEPT",
     "a bitmaps extension the autoclear bit disowns: qemu ignores it",
     qcow2(extensions=extension(EXT_BITMAPS, struct.pack(">IIQQ", 0, 0, 64, 5 * CLUSTER)))),

    # Formats qemu probes but Glance does not list: "raw" content must really be raw.
    ("parallels-as-raw.img", "raw", "REJECT",
     "Parallels header (qemu's parallels driver) claimed as raw",
     image(b"WithoutFreeSpace" + struct.pack("<I", 2) + struct.pack("<I", 16))),
    ("ploop-ext-as-raw.img", "raw", "REJECT",
     "Parallels/ploop 'WithouFreSpacExt' header claimed as raw",
     image(b"WithouFreSpacExt" + struct.pack("<I", 2))),
    ("bochs-as-raw.img", "raw", "REJECT",
     "Bochs redolog header (qemu's bochs driver) claimed as raw",
     image(field(b"Bochs Virtual HD Image", 32) + field(b"Redolog", 16)
           + field(b"Growing", 16) + struct.pack("<I", 0x00020000))),
    ("cloop-as-raw.img", "raw", "REJECT",
     "cloop v2 shell header (qemu's cloop driver) claimed as raw", image(CLOOP)),
    ("cloop-prefix-as-raw.img", "raw", "ACCEPT",
     "starts like cloop's header but is shorter than it: qemu reads it as raw", CLOOP[:13]),
    ("bochs-as-qcow2.img", "qcow2", "REJECT",
     "Bochs header claimed as qcow2", image(field(b"Bochs Virtual HD Image", 32))),
    # Near misses stay raw.
    ("shell-script-as-raw.img", "raw", "ACCEPT",
     "a disk that starts with a shell script that is not cloop's header",
     image(b"#!/bin/sh\necho hello\n")),
    ("parallels-near-miss-as-raw.img", "raw", "ACCEPT",
     "15 of Parallels' 16 magic bytes", image(b"WithoutFreeSpac!")),
]


def main() -> None:
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    rows = ["file\tclaim\texpected\twhy"]
    for name, claim, expected, why, data in CASES:
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)
        rows.append(f"{name}\t{claim}\t{expected}\t{why}")
    with open(os.path.join(out, "MANIFEST.tsv"), "w") as f:
        f.write("\n".join(rows) + "\n")


if __name__ == "__main__":
    main()
