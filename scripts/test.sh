#!/usr/bin/env bash
# All tests: unit tests, the cgroup and seccomp suites, and the conformance suite
# that runs every scenario against berth-runc and against runc (plus podman and
# containerd as real callers). Needs root (containers are real).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh --test
cargo build -p berth-runc
cargo test --workspace --no-fail-fast -- --test-threads=2
