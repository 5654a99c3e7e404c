#!/usr/bin/env bash
# All tests: unit tests, the cgroup and seccomp suites, the conformance suite that
# runs every scenario against berth-runc and against runc (plus podman and containerd
# as real callers), and the image suite that drives berth daemon with the real docker
# CLI, the docker Python SDK, skopeo, umoci and a local registry. Needs root.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh --test
cargo build -p berth-runc -p berth -p berth-monitor
cargo test --workspace --no-fail-fast -- --test-threads=2
