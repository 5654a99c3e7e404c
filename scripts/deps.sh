#!/usr/bin/env bash
# Installs what building and testing berth needs on a fresh Debian machine (idempotent).
#   scripts/deps.sh          build deps + busybox (for the demo)
#   scripts/deps.sh --test   also the peers the test suite compares against (runc, crun, podman, containerd)
set -euo pipefail
pkgs=(pkg-config libseccomp-dev busybox-static iproute2 procps)
if [[ ${1:-} == --test ]]; then
  pkgs+=(runc crun podman containerd skopeo umoci hyperfine time)
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
command -v cargo >/dev/null || { echo "deps: cargo (rustup) is required" >&2; exit 1; }
