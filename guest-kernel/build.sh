#!/bin/sh
# Builds the tracevisor guest kernel into OUT (default build/guest-kernel):
# Debian's linux-source-6.1, `make tinyconfig`, config.fragment merged over it,
# patches/*.patch applied, the probe driver (probe/) built in. Produces vmlinux
# (PVH-bootable ELF), bzImage and System.map. Does nothing when none of its
# inputs changed.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
out=${1:-build/guest-kernel}
mkdir -p "$out"
out=$(cd "$out" && pwd)
src=$out/src
tarball=/usr/src/linux-source-6.1.tar.xz
jobs=$(nproc)

need_pkgs=""
for p in linux-source-6.1 gcc make flex bison bc libelf-dev libssl-dev lz4 xz-utils patch; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || need_pkgs="$need_pkgs $p"
done
if [ -n "$need_pkgs" ]; then
	echo "guest-kernel: installing$need_pkgs"
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $need_pkgs >/dev/null
fi

# Inputs that force a fresh source tree, and inputs that only force a rebuild.
src_key=$(ls -l "$tarball"; cat "$here"/patches/*.patch)
src_key=$(printf '%s' "$src_key" | sha256sum | cut -d' ' -f1)
all_key=$(printf '%s%s' "$src_key" "$(cat "$here/config.fragment" "$here/build.sh" "$here"/probe/Kbuild "$here"/probe/*.[ch])" | sha256sum | cut -d' ' -f1)

if [ -f "$out/stamp" ] && [ "$(cat "$out/stamp")" = "$all_key" ] &&
   [ -f "$out/vmlinux" ] && [ -f "$out/bzImage" ] && [ -f "$out/System.map" ]; then
	echo "guest-kernel: up to date ($out)"
	exit 0
fi

if [ ! -f "$src/.tracevisor-src" ] || [ "$(cat "$src/.tracevisor-src")" != "$src_key" ]; then
	echo "guest-kernel: unpacking $tarball"
	rm -rf "$src" "$out/unpack"
	mkdir -p "$out/unpack"
	tar -C "$out/unpack" -xJf "$tarball"
	mv "$out/unpack"/linux-source-6.1 "$src"
	rmdir "$out/unpack"
	for p in "$here"/patches/*.patch; do
		echo "guest-kernel: applying $(basename "$p")"
		patch -d "$src" -p1 --quiet < "$p"
	done
	echo "$src_key" > "$src/.tracevisor-src"
fi

cd "$src"
# The probe driver (guest-kernel/probe) is built in, as drivers/tracevisor.
# Its sources are copied, not linked: the build writes objects beside them.
# Only changed files are copied, so make rebuilds only what changed.
mkdir -p drivers/tracevisor
for f in drivers/tracevisor/*.[ch]; do
	if [ -e "$f" ] && [ ! -e "$here/probe/${f##*/}" ]; then rm -f "$f"; fi
done
for f in "$here"/probe/Kbuild "$here"/probe/*.[ch]; do
	cmp -s "$f" "drivers/tracevisor/${f##*/}" || cp "$f" drivers/tracevisor/
done
grep -qxF 'obj-$(CONFIG_VIRTIO) += tracevisor/' drivers/Makefile ||
	echo 'obj-$(CONFIG_VIRTIO) += tracevisor/' >> drivers/Makefile

make -s ARCH=x86_64 tinyconfig >/dev/null
scripts/kconfig/merge_config.sh -m .config "$here/config.fragment" >/dev/null
make -s ARCH=x86_64 olddefconfig >/dev/null

# Every option the fragment sets must have survived dependency resolution.
missing=""
for want in $(grep -E '^CONFIG_[A-Z0-9_]+=' "$here/config.fragment"); do
	grep -qx "$want" .config || missing="$missing $want"
done
for off in $(sed -n 's/^# \(CONFIG_[A-Z0-9_]*\) is not set$/\1/p' "$here/config.fragment"); do
	grep -q "^$off=" .config && missing="$missing $off(should be off)"
done
if [ -n "$missing" ]; then
	echo "guest-kernel: config.fragment options not in effect:$missing" >&2
	exit 1
fi

echo "guest-kernel: building with $jobs jobs"
make -s ARCH=x86_64 -j"$jobs" vmlinux bzImage
cp vmlinux System.map .config "$out/"
cp arch/x86/boot/bzImage "$out/"
echo "$all_key" > "$out/stamp"
echo "guest-kernel: built $out/vmlinux $out/bzImage"
