#!/usr/bin/env bash
# Builds fuzz/corpus/inspector/ from the hostile-image corpus
# (shared/tools/make-bad-images.sh): every file except the sparse oversize
# one, cut to 1 MiB. Seeds are generated, never committed (.gitignore).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
shared=${GLIMPSE_SHARED_DIR:-$here/../../shared}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/glimpse-fuzz-seeds.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
BOMB_MIB=${BOMB_MIB:-16} OVERSIZE_GIB=1 bash "$shared/tools/make-bad-images.sh" "$tmp/corpus" >/dev/null
out="$here/corpus/inspector"
mkdir -p "$out"
n=0
for f in "$tmp"/corpus/*; do
  case "$(basename "$f")" in
    oversize-sparse.raw|MANIFEST.tsv|manifest.yaml|HOWTO-transport-cases.txt) continue ;;
  esac
  head -c 1048576 "$f" > "$out/$(basename "$f")"
  n=$((n + 1))
done
# Small synthetic VHDX files whose metadata region lies within -max_len
# (qemu puts it at 3 MiB, past the 1 MiB seed cut).
python3 - "$out" <<'PY'
import struct, sys, uuid
def g(s): return uuid.UUID(s).bytes_le
META, VDS = g('8B7CA206-4790-4B9A-B8FE-575F050F886E'), g('2FA54224-CD1B-4876-B211-5DBED83BF4B8')
PARAMS, PARENT = g('CAA16737-FA36-4D43-B3B6-33F0AA44E76B'), g('A8D35F2D-B30B-454D-ABF7-D3D84834AB0C')
for name, parent in (('vhdx-small.vhdx', False), ('vhdx-small-parent.vhdx', True)):
    img = bytearray(0x48000)
    img[0:8] = b'vhdxfile'
    img[0x30000:0x30010] = b'regi' + struct.pack('<III', 0, 1, 0)
    img[0x30010:0x30030] = META + struct.pack('<QII', 0x40000, 0x8000, 0)
    items = [(PARAMS, 0x1000, 8), (VDS, 0x1008, 8)] + ([(PARENT, 0x1010, 16)] if parent else [])
    img[0x40000:0x40020] = b'metadata' + struct.pack('<HH', 0, len(items)) + bytes(20)
    for i, (gid, off, ln) in enumerate(items):
        e = 0x40020 + 32 * i
        img[e:e + 32] = gid + struct.pack('<III', off, ln, 4) + bytes(4)
    img[0x41000:0x41008] = struct.pack('<II', 1 << 20, 2 if parent else 0)
    img[0x41008:0x41010] = struct.pack('<Q', 16 << 20)
    open(sys.argv[1] + '/' + name, 'wb').write(img)
PY
n=$((n + 2))
echo "wrote $n seeds to $out"
