#!/usr/bin/env bash
# The main job end to end: build berth-runc, make a busybox base image locally,
# and run a container from it.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
cargo build --release -p berth-runc
bin=$PWD/target/release/berth-runc
demo=$(mktemp -d /tmp/berth-demo.XXXXXX)
trap 'rm -rf "$demo"' EXIT
scripts/make-busybox-rootfs.sh "$demo/rootfs"
( cd "$demo" && "$bin" spec )
# Not interactive: no terminal; show what the container sees.
python3 - "$demo/config.json" <<'PY'
import json, sys
p = sys.argv[1]
c = json.load(open(p))
c["process"]["terminal"] = False
c["process"]["args"] = ["sh", "-c", "echo hello from a berth container; echo hostname=$(hostname); id; ps; cat /proc/self/cgroup | head -3"]
json.dump(c, open(p, "w"), indent=2)
PY
"$bin" --root "$demo/state" run --bundle "$demo" "berth-demo-$$"
