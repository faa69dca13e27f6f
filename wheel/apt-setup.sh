#!/usr/bin/env bash
# Debian packages the wheel build needs (run as root; a no-op when all are there):
#   - deb-src lines for bookworm (apt-get source curl), the mirror the machine uses;
#   - the -dev packages of sources.lock, at the locked versions, for each
#     architecture named (x86_64 and/or aarch64; aarch64 adds the arm64
#     architecture, the cross compiler and libpython3.11-dev:arm64 for pyconfig.h);
#   - for the aarch64 test: qemu-user-static and debootstrap.
# usage: wheel/apt-setup.sh x86_64 [aarch64]
set -euo pipefail
cd "$(dirname "$0")"
export DEBIAN_FRONTEND=noninteractive
want=(dpkg-dev)
update=0
if ! grep -rqs '^Types: *deb-src' /etc/apt/sources.list.d/ && ! grep -qs '^deb-src ' /etc/apt/sources.list; then
  uri=$(sed -n 's/^URIs: *\(.*debian\)$/\1/p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -1)
  uri=${uri:-http://deb.debian.org/debian}
  cat > /etc/apt/sources.list.d/bookworm-src.sources <<SRC
Types: deb-src
URIs: $uri
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb-src
URIs: ${uri}-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
  update=1
fi
for arch in "$@"; do
  case $arch in
    x86_64) debarch=amd64 ;;
    aarch64) debarch=arm64; want+=(gcc-aarch64-linux-gnu qemu-user-static debootstrap "libpython3.11-dev:arm64")
      if ! dpkg --print-foreign-architectures | grep -qx arm64 && [ "$(dpkg --print-architecture)" != arm64 ]; then
        dpkg --add-architecture arm64; update=1
      fi ;;
    *) echo "unknown architecture $arch" >&2; exit 1 ;;
  esac
  while read -r kind name version _; do
    [ "$kind" = deb ] && want+=("$name:$debarch=$version")
  done < sources.lock
done
missing=()
for spec in "${want[@]}"; do
  pkg=${spec%%=*}; ver=${spec#*=}
  have=$(dpkg-query -W -f='${Status} ${Version}' "$pkg" 2>/dev/null || true)
  case $have in
    "install ok installed $ver"|"install ok installed "*) [ "$spec" = "$pkg" ] || [ "${have##* }" = "$ver" ] || missing+=("$spec") ;;
    *) missing+=("$spec") ;;
  esac
done
[ "$update" = 0 ] || apt-get update -qq
if [ ${#missing[@]} -gt 0 ]; then
  echo "wheel/apt-setup.sh: installing ${missing[*]}"
  apt-get update -qq
  apt-get install -y -qq --allow-downgrades "${missing[@]}" >/dev/null \
    || { echo "wheel/apt-setup.sh: could not install ${missing[*]}: a locked version may be gone from the mirror; update wheel/sources.lock" >&2; exit 1; }
fi
