#!/usr/bin/env bash
# A Debian 12 arm64 root (debootstrap, minbase) in build/arm64-root that runs
# under qemu-user-static through binfmt_misc: python3 + venv, nginx-light and
# openssl (the HTTPS tests), and /opt/wheels, the wheels (only wheels) of
# yt-dlp, pytest and what they need for aarch64 CPython 3.11, from PyPI.  Each part is kept between
# runs by a stamp keyed by what made it.
#   wheel/arm64-root.sh            make the root (a no-op when it is there)
#   wheel/arm64-root.sh run CMD... run CMD in it (a private mount namespace:
#                                  /proc, /dev and a /tmp, gone when CMD ends)
# ARM64_ROOT=trixie: a Debian 13 arm64 root in build/arm64-root-trixie for
# CPython 3.13 (Debian 12 has only 3.11): debootstrap's first stage only (it
# runs natively, 20 s), then the downloaded python3 packages unpacked with
# dpkg-deb and no maintainer script run (the second stage under qemu would take
# minutes); enough to run python3.13 and a venv made --without-pip, into which
# the host's pip installs (make test-wheel-aarch64-py313).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)/build/arm64-root
PACKAGES=python3,python3-venv,nginx-light,openssl
if [ "${ARM64_ROOT:-bookworm}" = trixie ]; then root=$root-trixie; fi
WHEELS="yt-dlp pytest"

binfmt() {  # register qemu-aarch64 (the F flag: the interpreter works inside the chroot)
  [ -f /proc/sys/fs/binfmt_misc/register ] || mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
  [ -f /proc/sys/fs/binfmt_misc/qemu-aarch64 ] || cat /usr/lib/binfmt.d/qemu-aarch64.conf > /proc/sys/fs/binfmt_misc/register
}

run() {
  binfmt
  cp /etc/resolv.conf "$root/etc/resolv.conf"
  unshare --mount --propagation private sh -c '
    root=$1; shift
    mount -t proc proc "$root/proc" && mount --rbind /dev "$root/dev" && mount -t tmpfs tmpfs "$root/tmp" &&
    exec chroot "$root" /usr/bin/env -i PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin HOME=/root LANG=C.UTF-8 "$@"' \
    sh "$root" "$@"
}

if [ "${1:-}" = run ]; then shift; run "$@"; exit; fi
if [ "${ARM64_ROOT:-bookworm}" = trixie ]; then
  [ ! -f "$root/.stamp-trixie" ] || { echo "arm64 trixie root: up to date ($root)"; exit 0; }
  mirror=$(sed -n 's/^URIs: *\(.*\/debian\)$/\1/p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -1)
  rm -rf "$root"; mkdir -p "$(dirname "$root")"
  start=$(date +%s)
  debootstrap --foreign --arch=arm64 --variant=minbase --include=python3 \
    trixie "$root" "${mirror:-http://deb.debian.org/debian}" > "$root.log" 2>&1 || { tail -20 "$root.log"; exit 1; }
  for deb in "$root"/var/cache/apt/archives/*.deb; do
    dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$root" --keep-directory-symlink
  done
  cp "$root/usr/share/base-passwd/passwd.master" "$root/etc/passwd"
  cp "$root/usr/share/base-passwd/group.master" "$root/etc/group"
  echo "arm64 trixie root: $(( $(date +%s) - start )) s, $(chroot "$root" /usr/bin/python3 -V 2>&1 || true)"
  touch "$root/.stamp-trixie"
  exit 0
fi
key=$(echo "$PACKAGES" | sha256sum | cut -c1-16)
if [ ! -f "$root/.stamp-debootstrap-$key" ]; then
  binfmt
  mirror=$(sed -n 's/^URIs: *\(.*\/debian\)$/\1/p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -1)
  rm -rf "$root"; mkdir -p "$(dirname "$root")"
  start=$(date +%s)
  debootstrap --arch=arm64 --variant=minbase --include="$PACKAGES" \
    bookworm "$root" "${mirror:-http://deb.debian.org/debian}" > "$root.log" 2>&1 \
    || { tail -20 "$root.log"; exit 1; }
  echo "arm64 root: debootstrap $(( $(date +%s) - start )) s"
  touch "$root/.stamp-debootstrap-$key"
fi
key=$(echo "$WHEELS" | sha256sum | cut -c1-16)
if [ ! -f "$root/.stamp-wheels-$key" ]; then
  start=$(date +%s)
  rm -rf "$root/opt/wheels"
  # on the host (its pip knows the way to PyPI, and runs natively): the
  # wheels a CPython 3.11 on manylinux_2_34 aarch64 installs
  python3 -m pip download -q --disable-pip-version-check --only-binary=:all: --platform manylinux_2_34_aarch64 \
    --python-version 3.11 --implementation cp --abi cp311 -d "$root/opt/wheels" $WHEELS
  echo "arm64 root: $(ls "$root/opt/wheels" | wc -l) wheels in /opt/wheels ($(ls "$root/opt/wheels" | grep -o '^yt_dlp-[^-]*')), $(( $(date +%s) - start )) s"
  touch "$root/.stamp-wheels-$key"
fi
echo "arm64 root: ready ($root)"
