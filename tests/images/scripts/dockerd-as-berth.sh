#!/usr/bin/env bash
# dockerd-as-berth.sh daemon --host H --data-root D [--insecure-registry R]...
#
# Runs the real dockerd (Debian's docker.io) with berth's daemon flags, so the
# suite can judge the tests themselves: `BERTH_BIN=$PWD/tests/images/scripts/dockerd-as-berth.sh`.
# A test that fails against dockerd is a test bug or a deliberate difference
# (see README.md). No bridge, no iptables: the host network is left alone.
# dockerd runs its own containerd under <dir>/exec, so everything it starts
# lives and dies with the test's directory.
set -euo pipefail
[[ ${1:-} == daemon ]] || { echo "dockerd-as-berth: only 'daemon' is supported" >&2; exit 2; }
shift
args=()
root=
while (($#)); do
    case $1 in
        --host) args+=(-H "$2"); shift 2 ;;
        --data-root) root=$2; args+=(--data-root "$2"); shift 2 ;;
        --insecure-registry) args+=(--insecure-registry "$2"); shift 2 ;;
        *) echo "dockerd-as-berth: unknown flag $1" >&2; exit 2 ;;
    esac
done
# Only ever inside a test's private directory: dockerd writes next to its data root.
[[ $root == /tmp/berth-it-*/* ]] || { echo "dockerd-as-berth: --data-root must be under /tmp/berth-it-*/, got '$root'" >&2; exit 2; }
dir=$(dirname "$root")
exec dockerd "${args[@]}" --exec-root "$dir/exec" --pidfile "$dir/dockerd.pid" \
    --bridge none --iptables=false --log-level warn
