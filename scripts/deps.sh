#!/bin/sh
# Installs what is missing, and nothing else: Debian packages with apt, npm packages from
# package.json. Safe to run again and again (make run / make test call it every time).
set -eu
cd "$(dirname "$0")/.."

# Debian packages the programs and the tests drive (real peers, no mocks).
apt_packages="ca-certificates gzip tar bzip2 xz-utils coreutils util-linux iproute2 gcc libc6-dev busybox-static debootstrap docker-registry skopeo umoci apache2-utils hyperfine tini qemu-system-x86 linux-image-cloud-amd64 erofs-utils cpio crun procps iptables openssl"
missing=""
for p in $apt_packages; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing="$missing $p"
done
if [ -n "$missing" ]; then
  echo "deps: installing Debian packages:$missing" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq --no-install-recommends $missing >&2
fi

# npm packages, including the pinned Node 24 that runs everything (node_modules/node/bin/node).
# The stamp is newer than package.json and the lock file once they are installed.
stamp=node_modules/.deps-stamp
if [ ! -x node_modules/node/bin/node ] || [ ! -e "$stamp" ] || [ package.json -nt "$stamp" ] || [ package-lock.json -nt "$stamp" ]; then
  echo "deps: installing npm packages" >&2
  if [ -e package-lock.json ]; then npm ci --no-audit --no-fund >&2; else npm install --no-audit --no-fund >&2; fi
  touch "$stamp"
fi
