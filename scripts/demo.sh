#!/usr/bin/env bash
# The main job end to end: build berth and berth-runc, make a busybox base image locally,
# store it as an image through `berth daemon` (import, list, save and load it again), and
# run a container from the same busybox root file system with berth-runc.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
cargo build --release -p berth-runc -p berth
bin=$PWD/target/release
demo=$(mktemp -d /tmp/berth-demo.XXXXXX)
daemon_pid=
cleanup() {
  if [[ -n $daemon_pid ]]; then kill "$daemon_pid" 2>/dev/null || true; wait "$daemon_pid" 2>/dev/null || true; fi
  rm -rf "$demo"
}
trap cleanup EXIT
scripts/make-busybox-rootfs.sh "$demo/rootfs"

# The image side: a daemon on a private socket and data root.
"$bin/berth" daemon --host "unix://$demo/berth.sock" --data-root "$demo/data" 2>"$demo/daemon.log" &
daemon_pid=$!
berth() { "$bin/berth" -H "unix://$demo/berth.sock" "$@"; }
for _ in $(seq 50); do berth version >/dev/null 2>&1 && break; sleep 0.1; done
tar -C "$demo/rootfs" -c . | berth import -c 'CMD ["/bin/sh"]' - busybox:demo
berth images
berth save -o "$demo/busybox.tar" busybox:demo
berth rmi busybox:demo
berth load -i "$demo/busybox.tar"
berth history busybox:demo

# The runtime side: a container from the same root file system.
( cd "$demo" && "$bin/berth-runc" spec )
# Not interactive: no terminal; show what the container sees.
python3 - "$demo/config.json" <<'PY'
import json, sys
p = sys.argv[1]
c = json.load(open(p))
c["process"]["terminal"] = False
c["process"]["args"] = ["sh", "-c", "echo hello from a berth container; echo hostname=$(hostname); id; ps; cat /proc/self/cgroup | head -3"]
json.dump(c, open(p, "w"), indent=2)
PY
"$bin/berth-runc" --root "$demo/state" run --bundle "$demo" "berth-demo-$$"
