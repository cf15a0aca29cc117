#!/bin/sh
# Builds cradle's guest assets into OUT (default .cache/cradle): the Debian cloud kernel (vmlinuz,
# copied from the installed linux-image-cloud-amd64's kernel package), initramfs.cpio (cradle-init
# as /init, a static krd-shim as /bin/krd-shim, cradle-nic for hot-plugged NICs, the virtio/erofs/
# overlay modules and virtio_pci, loaded only for a hot-plugged NIC) and bare.cpio (the benchmark's
# baseline init with the same modules), plus assets.json with their sha256 digests.
# Reproducible: the same inputs give the same bytes (sorted newc cpio, owner 0, mtime 0, no compression).
set -eu
cd "$(dirname "$0")/.."
out=${1:-.cache/cradle}
kpkg=$(dpkg-query -W -f='${Depends}' linux-image-cloud-amd64 | sed 's/ .*//; s/,.*//')
kver=${kpkg#linux-image-}
modules="virtio_ring virtio virtio_mmio virtio_blk failover net_failover virtio_net virtio_console libcrc32c erofs overlay fuse virtiofs virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci"
mkdir -p "$out"
tmp=$(mktemp -d "$out/.build-XXXXXX")
trap 'rm -rf "$tmp"' EXIT

stage() { # stage DIR INIT: the tree of one initramfs
  mkdir -p "$1/lib/modules" "$1/bin" "$1/dev" "$1/proc" "$1/sys" "$1/run" "$1/tmp"
  cp "$2" "$1/init"
  for m in $modules; do
    f=$(find "/lib/modules/$kver/kernel" -name "$m.ko" -o -name "$m.ko.xz" | head -1)
    [ -n "$f" ] || { echo "guest-assets: module $m missing from $kver" >&2; exit 1; }
    case "$f" in *.xz) xz -dc "$f" >"$1/lib/modules/$m.ko" ;; *) cp "$f" "$1/lib/modules/$m.ko" ;; esac
  done
}
pack() { # pack DIR FILE
  find "$1" -exec touch -h -d @0 {} +
  (cd "$1" && find . -mindepth 1 | LC_ALL=C sort | cpio --quiet -o -H newc -R 0:0 --reproducible) >"$2"
}

stage "$tmp/full" build/cradle-init
cp build/krd-shim.static "$tmp/full/bin/krd-shim"
cp build/cradle-nic "$tmp/full/bin/cradle-nic"
pack "$tmp/full" "$tmp/initramfs.cpio"
stage "$tmp/bare" build/cradle-bare-init
pack "$tmp/bare" "$tmp/bare.cpio"
cp "/boot/vmlinuz-$kver" "$tmp/vmlinuz"
for f in vmlinuz initramfs.cpio bare.cpio; do mv "$tmp/$f" "$out/$f"; done
{
  printf '{"kernelVersion":"%s"' "$kver"
  for f in vmlinuz initramfs.cpio bare.cpio; do printf ',"%s":"sha256:%s"' "$f" "$(sha256sum "$out/$f" | cut -d' ' -f1)"; done
  printf '}\n'
} >"$tmp/assets.json"
mv "$tmp/assets.json" "$out/assets.json"
