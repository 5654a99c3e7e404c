#!/usr/bin/env bash
# The main job end to end: build berth, berth-runc and berth-monitor, make a busybox base
# image locally, store it as an image through `berth daemon` (import, list, save and load it
# again), run containers from it through the daemon (one that prints and goes, one in the
# background with logs, exec and stop, a web server on a user network with a published port
# fetched from the host and by name from another container), and one from the same root file
# system with berth-runc alone. The daemon's bridges and netfilter table are removed at the end
# when the demo made them.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
cargo build --release -p berth-runc -p berth -p berth-monitor
bin=${CARGO_TARGET_DIR:-$PWD/target}/release
demo=$(mktemp -d /tmp/berth-demo.XXXXXX)
# Running state (monitor sockets) wants a short path on tmpfs, as /run/berth is.
run=$(mktemp -d /run/berth-demo.XXXXXX)
daemon_pid=
had_bridge=0; ip link show berth0 >/dev/null 2>&1 && had_bridge=1
had_table=0; nft list table inet berth >/dev/null 2>&1 && had_table=1
fwd_before=$(cat /proc/sys/net/ipv4/ip_forward)
cleanup() {
  if [[ -n $daemon_pid ]]; then
    # Containers outlive the daemon by design: remove the demo's before stopping it.
    ids=$("$bin/berth" -H "unix://$demo/berth.sock" ps -aq 2>/dev/null || true)
    [[ -z $ids ]] || "$bin/berth" -H "unix://$demo/berth.sock" rm -f $ids >/dev/null 2>&1 || true
    kill "$daemon_pid" 2>/dev/null || true; wait "$daemon_pid" 2>/dev/null || true
  fi
  awk -v d="$demo" -v r="$run" 'index($5, d "/") == 1 || index($5, r "/") == 1 {print $5}' /proc/self/mountinfo | sort -r | while read -r m; do umount -l "$m" 2>/dev/null || true; done
  # What the daemon made on the host for its networks, when the demo's daemon made it.
  ((had_bridge)) || ip link del berth0 2>/dev/null || true
  ((had_table)) || nft delete table inet berth 2>/dev/null || true
  [[ $(cat /proc/sys/net/ipv4/ip_forward) == "$fwd_before" ]] || echo "$fwd_before" >/proc/sys/net/ipv4/ip_forward
  rm -rf "$demo" "$run"
}
trap cleanup EXIT
scripts/make-busybox-rootfs.sh "$demo/rootfs"

# The image side: a daemon on a private socket and data root.
"$bin/berth" daemon --host "unix://$demo/berth.sock" --data-root "$demo/data" --exec-root "$run" 2>"$demo/daemon.log" &
daemon_pid=$!
berth() { "$bin/berth" -H "unix://$demo/berth.sock" "$@"; }
for _ in $(seq 50); do berth version >/dev/null 2>&1 && break; sleep 0.1; done
tar -C "$demo/rootfs" -c . | berth import -c 'CMD ["/bin/sh"]' - busybox:demo
berth images
berth save -o "$demo/busybox.tar" busybox:demo
berth rmi busybox:demo
berth load -i "$demo/busybox.tar"
berth history busybox:demo

# Containers through the daemon: each is watched by its own berth-monitor.
berth run --rm busybox:demo sh -c 'echo hello from a berth container; echo hostname=$(hostname); id'
berth run -d --name demo-web busybox:demo sh -c 'i=0; while :; do echo tick $i; i=$((i+1)); sleep 0.2; done'
sleep 1
berth ps
berth logs --tail 2 demo-web
berth exec demo-web sh -c 'echo exec sees: $(ps | wc -l) lines of ps'
berth stop -t 1 demo-web
berth rm demo-web

# Networks: a web server on a user network, its port published on the host's loopback (a DNAT
# rule, no proxy process), reached from the host and by name from another container.
berth network create demo-net
berth run -d --name demo-httpd --network demo-net --network-alias www -p 127.0.0.1:18080:80 busybox:demo \
  sh -c 'mkdir -p /w && echo "hello from demo-httpd" > /w/index.html && exec httpd -f -p 80 -h /w'
berth port demo-httpd
for _ in $(seq 50); do busybox wget -qO- http://127.0.0.1:18080/ 2>/dev/null && break; sleep 0.1; done
berth run --rm --network demo-net busybox:demo wget -qO- http://www/
berth rm -f demo-httpd
berth network rm demo-net

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
