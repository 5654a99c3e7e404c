#!/usr/bin/env bash
# Installs what building and testing berth needs on a fresh Debian machine (idempotent).
#   scripts/deps.sh          build deps + busybox (for the demo) + tini (docker run --init) + nftables
#                            (bridge networks; iptables is the fallback)
#   scripts/deps.sh --test   also the peers and clients the tests drive: runc, crun, podman, containerd,
#                            docker-registry, skopeo, umoci, dockerd, htpasswd, openssl, the docker Python SDK
set -euo pipefail
pkgs=(pkg-config libseccomp-dev busybox-static iproute2 procps tini nftables iptables)
if [[ ${1:-} == --test ]]; then
  pkgs+=(runc crun podman containerd skopeo umoci hyperfine time docker-registry docker.io apache2-utils openssl curl)
fi
need=()
for p in "${pkgs[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || need+=("$p")
done
if ((${#need[@]})); then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${need[@]}" >/dev/null
fi
if [[ ${1:-} == --test ]] && ! python3 -c 'import docker' 2>/dev/null; then
  python3 -m pip install -q 'docker==7.1.0'
fi
command -v cargo >/dev/null || { echo "deps: cargo (rustup) is required" >&2; exit 1; }
