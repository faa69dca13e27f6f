#!/usr/bin/env bash
# A static libcurl made for the wheel, for one architecture (x86_64 or aarch64),
# from the Debian source package pinned in sources.lock (hashes checked before
# anything is unpacked).  http and https only, HTTP/2 (nghttp2), OpenSSL, zlib,
# brotli and zstd; no other protocol, no RTMP, LDAP, GSS-API, SSH, IDN or PSL
# (docs/wheel.md says why).  The result, in build/wheel-curl/ARCH/:
#   prefix/          libcurl.a and its headers
#   pkgconfig/       libcurl.pc and libcrypto.pc that setup.py finds through
#                    PKG_CONFIG_LIBDIR: they link libcurl.a, nghttp2 (built here
#                    too) and Debian's static OpenSSL and brotli into the
#                    extension itself, every symbol of those archives kept local
#                    (--exclude-libs), strip it (-s), and link libzstd.so.1 (which
#                    auditwheel grafts) and the system's libz.so.1.
# A stamp keyed by sources.lock and this script makes a second run a no-op.
# usage: wheel/build-curl.sh x86_64|aarch64
set -euo pipefail
arch=${1:?usage: build-curl.sh x86_64|aarch64}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
lock=$here/sources.lock
key=$(cat "$lock" "$here/build-curl.sh" | sha256sum | cut -c1-16)
out=$root/build/wheel-curl/$arch
srcdir=$root/build/wheel-src
triple=$arch-linux-gnu
case $arch in
  x86_64) cc=gcc ;;
  aarch64) cc=aarch64-linux-gnu-gcc ;;
  *) echo "unknown architecture $arch" >&2; exit 1 ;;
esac
if [ -f "$out/.stamp-$key" ]; then echo "libcurl for $arch: up to date ($out)"; exit 0; fi

# 1. the source packages, checked against the lock, then unpacked (Debian's
#    patches applied) into build/wheel-src/NAME-VERSION
mkdir -p "$srcdir"
unpack() {  # unpack NAME: prints the unpacked tree
  local name=$1 version ok=1 kind n v file sum got
  version=$(awk -v n="$name" '$1 == "src" && $2 == n {print $3; exit}' "$lock")
  while read -r kind n v file sum; do
    [ "$kind" = src ] && [ "$n" = "$name" ] || continue
    [ "$(sha256sum "$srcdir/$file" 2>/dev/null | cut -d' ' -f1)" = "$sum" ] || ok=0
  done < "$lock"
  if [ $ok = 0 ]; then
    (cd "$srcdir" && apt-get source --download-only -qq "$name=$version" 2>&1 | grep -v '^W: Download is performed unsandboxed' >&2 || true)
    while read -r kind n v file sum; do
      [ "$kind" = src ] && [ "$n" = "$name" ] || continue
      got=$(sha256sum "$srcdir/$file" 2>/dev/null | cut -d' ' -f1)
      [ "$got" = "$sum" ] || { echo "$file: SHA-256 ${got:-missing}, sources.lock says $sum" >&2; return 1; }
    done < "$lock"
  fi
  echo "$name $version: the SHA-256 of every source file matches sources.lock" >&2
  local tree=$srcdir/$name-${version#*:}
  if [ ! -f "$tree/.unpacked" ]; then
    rm -rf "$tree"
    (cd "$srcdir" && dpkg-source -q -x "${name}_${version#*:}.dsc" "$tree" >/dev/null 2>&1) \
      || { echo "dpkg-source -x ${name}_${version#*:}.dsc failed" >&2; return 1; }
    touch "$tree/.unpacked"
  fi
  echo "$tree"
}
curl_tree=$(unpack curl)
nghttp2_tree=$(unpack nghttp2)
upstream=$(awk '$1 == "src" && $2 == "curl" {print $3; exit}' "$lock"); upstream=${upstream%-*}

# 2. the locked -dev packages must be what is installed (their .a get linked)
debarch=$( [ "$arch" = x86_64 ] && echo amd64 || echo arm64 )
while read -r kind n v _; do
  [ "$kind" = deb ] || continue
  have=$(dpkg-query -W -f='${Version}' "$n:$debarch" 2>/dev/null || true)
  [ "$have" = "$v" ] || { echo "$n:$debarch is '${have:-not installed}', sources.lock says $v (run wheel/apt-setup.sh $arch)" >&2; exit 1; }
done < "$lock"

# 3. nghttp2 (the library only), then curl: static, position-independent
rm -rf "$out"; mkdir -p "$out/build" "$out/nghttp2" "$out/pkgconfig"
libdir=/usr/lib/$triple
flags="-O2 -fPIC -fstack-protector-strong -D_FORTIFY_SOURCE=2"
# nghttp2's Debian source is its git tree (no configure script): its library is
# plain C, compiled here with the few HAVE_ macros it reads, and archived.
cd "$out/nghttp2"
ngver=$(sed -n 's/^AC_INIT(\[nghttp2\], \[\([0-9.]*\)\].*/\1/p' "$nghttp2_tree/configure.ac")
ngnum=$(printf '0x%02x%02x%02x' $(echo "$ngver" | tr . ' '))
mkdir -p "$out/prefix/include/nghttp2" "$out/prefix/lib/pkgconfig"
cp "$nghttp2_tree/lib/includes/nghttp2/nghttp2.h" "$out/prefix/include/nghttp2/"
sed -e "s/@PACKAGE_VERSION@/$ngver/" -e "s/@PACKAGE_VERSION_NUM@/$ngnum/" \
  "$nghttp2_tree/lib/includes/nghttp2/nghttp2ver.h.in" > "$out/prefix/include/nghttp2/nghttp2ver.h"
for c in "$nghttp2_tree"/lib/nghttp2_*.c; do
  $cc $flags -DNDEBUG -DBUILDING_NGHTTP2 -DNGHTTP2_STATICLIB -DHAVE_ARPA_INET_H -DHAVE_NETINET_IN_H \
    -DHAVE_TIME_H -DHAVE_CLOCK_GETTIME -I"$out/prefix/include" -I"$nghttp2_tree/lib" \
    -c "$c" -o "$(basename "${c%.c}").o" &
  [ "$(jobs -r | wc -l)" -lt "${JOBS:-2}" ] || wait -n
done
wait
"${cc%gcc}ar" rcs "$out/prefix/lib/libnghttp2.a" nghttp2_*.o
cat > "$out/prefix/lib/pkgconfig/libnghttp2.pc" <<PC
Name: libnghttp2
Description: nghttp2 $ngver (static, for the wheel's libcurl)
Version: $ngver
Cflags: -I$out/prefix/include -DNGHTTP2_STATICLIB
Libs: -L$out/prefix/lib -lnghttp2
PC
cd "$out/build"
PKG_CONFIG_LIBDIR=$out/prefix/lib/pkgconfig:$libdir/pkgconfig:/usr/share/pkgconfig \
CC=$cc CFLAGS="$flags" \
"$curl_tree/configure" --host="$triple" --build="$(uname -m)-linux-gnu" --prefix="$out/prefix" \
  --disable-shared --enable-static --with-pic --disable-dependency-tracking \
  --enable-optimize --disable-debug --disable-curldebug --disable-manual --disable-libcurl-option \
  --enable-http --disable-ftp --disable-file --disable-ldap --disable-ldaps --disable-rtsp --disable-dict \
  --disable-telnet --disable-tftp --disable-pop3 --disable-imap --disable-smb --disable-smtp \
  --disable-gopher --disable-mqtt --disable-ntlm-wb --disable-docs \
  --with-openssl --with-nghttp2 --with-zlib --with-brotli --with-zstd \
  --without-libpsl --without-libidn2 --without-librtmp --without-libssh2 --without-libssh \
  --without-gssapi --without-libgsasl --without-hyper --without-ngtcp2 --without-nghttp3 --without-quiche \
  --without-msh3 --without-zsh-functions-dir --without-fish-functions-dir \
  --with-ca-bundle=/etc/ssl/certs/ca-certificates.crt --with-ca-path=/etc/ssl/certs \
  > configure.log 2>&1 || { tail -30 configure.log; exit 1; }
grep -A40 'Configured to build curl' configure.log | sed -n '1,40p' > features.txt || true
make -s -j"${JOBS:-2}" -C lib > make.log 2>&1 || { tail -30 make.log; exit 1; }
make -s -C lib install >> make.log 2>&1
make -s -C include install >> make.log 2>&1

# 4. the pkg-config files setup.py reads (pkg-config --libs libcurl / libcrypto)
archives="$out/prefix/lib/libcurl.a $out/prefix/lib/libnghttp2.a $libdir/libssl.a $libdir/libcrypto.a \
$libdir/libbrotlidec.a $libdir/libbrotlicommon.a"
for a in $archives; do [ -f "$a" ] || { echo "missing $a" >&2; exit 1; }; done
cat > "$out/pkgconfig/libcurl.pc" <<PC
Name: libcurl
Description: libcurl $upstream made for the yt-dlp-async wheel ($arch, static)
Version: $upstream
Cflags: -I$out/prefix/include -DCURL_STATICLIB
Libs: -Wl,--exclude-libs,ALL -Wl,-s $archives -lzstd -lz -ldl -pthread
PC
cat > "$out/pkgconfig/libcrypto.pc" <<PC
Name: libcrypto
Description: OpenSSL's libcrypto (static, linked through libcurl.pc)
Version: $(dpkg-query -W -f='${Version}' "libssl-dev:$debarch")
Libs: $libdir/libcrypto.a
PC
touch "$out/.stamp-$key"
echo "libcurl $upstream for $arch: $out/prefix/lib/libcurl.a ($(stat -c %s "$out/prefix/lib/libcurl.a") bytes)"
