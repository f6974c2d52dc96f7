#!/usr/bin/env python3
"""make-more-bad-images.py OUTDIR: Glimpse's own additions to the hostile disk-image corpus,
beside ../shared/tools/make-bad-images.sh, in the same MANIFEST.tsv layout
(file <TAB> disk_format_to_claim <TAB> expected <TAB> why; expected ACCEPT or REJECT).

These are the cases a hostile-client probe found becoming `active` (issue 13, item 5).
Python 3 standard library only; nothing here runs qemu or opens a host file.
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

CASES = [
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
