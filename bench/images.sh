#!/usr/bin/env bash
# Side-by-side benchmark of image handling (issue 3), one run, alternating (hyperfine), medians:
#
#  1. full pull into the store (fetch, verify, gunzip, extract) of a busybox + ~100 MB random
#     data image (one gzip layer) from Debian's docker-registry on 127.0.0.1:
#     berth daemon (driven by the docker CLI) vs podman vs Debian's dockerd;
#  2. extraction alone of the same layer, plain tar and gzip: berth's apply_layer vs
#     `umoci unpack` vs GNU `tar -xf` (and `gzip -dc` as the decompression ceiling);
#  3. idle daemon RSS (VmRSS summed over the daemon's process tree): berth daemon vs
#     dockerd + containerd, after start and after one pull.
#
#   bench/images.sh [RUNS]     (root; default 10 runs per command; RUNS= also works)
#
# Everything runs from one tmp dir: its own registry (free port), its own dockerd
# (--bridge=none --iptables=false --ip6tables=false: no host network state), podman with a
# private --root/--runroot/--tmpdir, berth daemon with its own --data-root and --bridge none (no
# bridge or netfilter table: images need no network). The script stops
# exactly the processes it started, by pid, unmounts what is left under the tmp dir, checks
# that dockerd left no bridge or iptables chains, and removes the tmp dir.
# Missing peers are installed with apt-get, and it says so: docker.io podman umoci
# docker-registry hyperfine busybox-static curl time.
# Env: CARGO_TARGET_DIR (where berth is built), DOCKER_CLI (default /usr/local/bin/docker if
# present: the same client drives dockerd and berth), RANDOM_MB (default 100),
# TMPDIR (where the work dir goes, default /tmp), SKIP_EXTRACT=1 / SKIP_PULL=1, BERTH_FRESH_ROOT=1 (restart berth on a fresh data root before
# every pull instead of `rmi -f`; chosen automatically when rmi does not free the layer).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
runs=${RUNS:-${1:-10}}
random_mb=${RANDOM_MB:-100}
target=${CARGO_TARGET_DIR:-$repo/target}
say() { printf '%s\n' "$*" >&2; }
[[ $(id -u) == 0 ]] || { say "images.sh: run as root"; exit 1; }

# ---- peers (Debian packages), installed only when missing and never silently
pkgs=(docker.io podman umoci docker-registry hyperfine busybox-static curl time)
need=()
for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || need+=("$p"); done
if ((${#need[@]})); then
  say "images.sh: installing with apt-get: ${need[*]}"
  # No service may start on install (docker.io's init script would start a dockerd with
  # its default bridge and iptables rules): a temporary policy-rc.d forbids it.
  policy=0
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && policy=1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq "${need[@]}" >/dev/null || { ((policy)) && rm -f /usr/sbin/policy-rc.d; exit 1; }
  ((policy)) && rm -f /usr/sbin/policy-rc.d
fi
docker_cli=${DOCKER_CLI:-$( [[ -x /usr/local/bin/docker ]] && echo /usr/local/bin/docker || command -v docker)}

# ---- berth: the daemon/CLI and a driver for apply_layer (bench/apply-layer)
berth=""
if CARGO_TARGET_DIR=$target cargo build --release -q -p berth; then
  berth=$target/release/berth
else
  say "images.sh: berth does not build: the berth columns stay empty"
fi
apply=""
cp Cargo.lock bench/apply-layer/Cargo.lock
if (cd bench/apply-layer && CARGO_TARGET_DIR=$target cargo build --release -q); then
  apply=$target/release/berth-bench-apply-layer
else
  say "images.sh: berth-archive does not build: no apply_layer figures"
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/berth-bench-images.XXXXXX")
chmod 755 "$work"
pids=()            # what we started, stopped in reverse order by pid
# Host paths the peers create when missing (dockerd 20.10 its trust key and plugin dir; c/image
# its blob-info cache; podman's network locks are redirected by --network-config-dir): those
# that do not exist now are removed at the end if the run created them (dirs only if empty).
host_paths=(/etc/docker/key.json /etc/docker /run/docker/plugins /run/docker
  /var/lib/containers/cache/blob-info-cache-v1.boltdb /var/lib/containers/cache /var/lib/containers
  /etc/containers/networks /run/containers/networks /run/containers /etc/cni/net.d/cni.lock)
absent=()
for h in "${host_paths[@]}"; do [[ -e $h ]] || absent+=("$h"); done
fwd_before=$(cat /proc/sys/net/ipv4/ip_forward)
chains_before=$(iptables-save 2>/dev/null | grep -c DOCKER || true)
stop_pid() { # pid: TERM, wait up to 20 s, then KILL
  local pid=$1 i
  kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for i in $(seq 200); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  say "images.sh: pid $pid ignored SIGTERM for 20 s: SIGKILL"
  kill -KILL "$pid" 2>/dev/null || true
}
cleanup() {
  local rc=$? i
  set +e
  [[ -s $work/berth.pid ]] && pids+=("$(cat "$work/berth.pid")")
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do stop_pid "${pids[i]}"; done
  # dockerd's own containerd: it stops with dockerd; make sure, by the pid we saw.
  [[ -n ${containerd_pid:-} ]] && stop_pid "$containerd_pid"
  # Anything still mounted under the tmp dir (overlay drivers mount their homes private).
  awk -v w="$work" 'index($5, w "/") == 1 {print $5}' /proc/self/mountinfo | sort -r | while read -r m; do
    umount "$m" 2>/dev/null || umount -l "$m"
  done
  if ip link show docker0 >/dev/null 2>&1; then say "images.sh: WARNING: a docker0 bridge exists after the run"; fi
  local chains_after
  chains_after=$(iptables-save 2>/dev/null | grep -c DOCKER || true)
  [[ $chains_after == "$chains_before" ]] || say "images.sh: WARNING: DOCKER iptables lines went from $chains_before to $chains_after"
  [[ $(cat /proc/sys/net/ipv4/ip_forward) == "$fwd_before" ]] || { echo "$fwd_before" >/proc/sys/net/ipv4/ip_forward; say "images.sh: restored ip_forward=$fwd_before"; }
  for h in "${absent[@]}"; do
    if [[ -f $h ]]; then rm -f "$h" && say "images.sh: removed $h (created by a peer during the run)"
    elif [[ -d $h ]]; then rmdir "$h" 2>/dev/null && say "images.sh: removed $h (created by a peer during the run)"
    fi
  done
  rm -rf "$work"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

wait_for() { # what, command...: up to 30 s
  local what=$1 i; shift
  for i in $(seq 300); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
  say "images.sh: $what did not come up"; return 1
}

# alternate OUT ROUNDS: runs the commands in names[] / preps[] / cmds[] once each per round,
# the order rotating every round (one `hyperfine -N --runs 1` per round), after one untimed
# warm-up round, and merges the rounds into OUT (hyperfine's JSON, times of successful runs;
# median / min / max over them). Alternating matters here: a 2-vCPU VM shared with builds
# drifts by 2x within a minute, which back-to-back hyperfine runs would charge to one command.
alternate() {
  local out=$1 rounds=$2 n=${#names[@]} r i j args
  for ((r = 0; r <= rounds; r++)); do
    args=()
    for ((i = 0; i < n; i++)); do
      j=$(((i + r) % n))
      args+=(-n "${names[j]}" --prepare "${preps[j]}" "${cmds[j]}")
    done
    hyperfine -N -i --runs 1 --style none --export-json "$work/round-$r.json" "${args[@]}"
    printf '%s' "$([[ $r == 0 ]] && echo w || echo .)" >&2
  done
  echo >&2
  python3 - "$out" "$work" "$rounds" "${names[@]}" <<'PY'
import json, os, statistics, sys
out, work, rounds, names = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4:]
times = {n: [] for n in names}; failed = {n: 0 for n in names}
for r in range(1, rounds + 1):
    for res in json.load(open(os.path.join(work, f"round-{r}.json")))["results"]:
        if any(res.get("exit_codes") or [0]): failed[res["command"]] += 1
        else: times[res["command"]] += res["times"]
results = []
for n in names:
    t = times[n]
    r = {"command": n, "times": t, "failed": failed[n]}
    if t: r.update(median=statistics.median(t), min=min(t), max=max(t))
    results.append(r)
    print(f"  {n:24s} " + (f"median {r['median']*1000:8.0f} ms  min {r['min']*1000:6.0f}  max {r['max']*1000:6.0f}  ({len(t)} runs" if t else "(no successful run") + (f", {failed[n]} FAILED)" if failed[n] else ")"), file=sys.stderr)
json.dump({"results": [r for r in results if r["times"]]}, open(out, "w"))
PY
  rm -f "$work"/round-*.json
}

# ---- the image: busybox rootfs + RANDOM_MB of /dev/urandom in 4 files, one layer
say "== building the image (busybox + $random_mb MB random, gzip -6)"
rootfs=$work/rootfs
scripts/make-busybox-rootfs.sh "$rootfs"
mkdir -p "$rootfs/opt/bench"
for i in 1 2 3 4; do head -c $((random_mb * 1024 * 1024 / 4)) /dev/urandom >"$rootfs/opt/bench/random$i"; done
tar --sort=name --numeric-owner -C "$rootfs" -cf "$work/layer.tar" .
gzip -6 -n -c "$work/layer.tar" >"$work/layer.tar.gz"
rm -rf "$rootfs"
# An OCI layout with two tags, `gz` (gzip layer) and `tar` (the same layer uncompressed).
python3 - "$work" <<'PY'
import hashlib, json, os, sys
w = sys.argv[1]; oci = os.path.join(w, "oci"); blobs = os.path.join(oci, "blobs", "sha256")
os.makedirs(blobs)
def digest(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for b in iter(lambda: f.read(1 << 20), b""): h.update(b)
    return h.hexdigest()
def put_bytes(data):
    d = hashlib.sha256(data).hexdigest()
    open(os.path.join(blobs, d), "wb").write(data)
    return {"digest": "sha256:" + d, "size": len(data)}
def put_file(path):
    d = digest(path)
    os.link(path, os.path.join(blobs, d))
    return {"digest": "sha256:" + d, "size": os.path.getsize(path)}
diff_id = "sha256:" + digest(os.path.join(w, "layer.tar"))
config = {"architecture": "amd64", "os": "linux",
          "config": {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"], "Cmd": ["/bin/sh"]},
          "rootfs": {"type": "layers", "diff_ids": [diff_id]},
          "history": [{"created_by": "bench/images.sh"}]}
cfg = dict(put_bytes(json.dumps(config).encode()), mediaType="application/vnd.oci.image.config.v1+json")
manifests = []
for tag, name, mt in [("gz", "layer.tar.gz", "application/vnd.oci.image.layer.v1.tar+gzip"),
                      ("tar", "layer.tar", "application/vnd.oci.image.layer.v1.tar")]:
    layer = dict(put_file(os.path.join(w, name)), mediaType=mt)
    m = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json", "config": cfg, "layers": [layer]}
    manifests.append(dict(put_bytes(json.dumps(m).encode()), mediaType=m["mediaType"],
                          annotations={"org.opencontainers.image.ref.name": tag}))
json.dump({"schemaVersion": 2, "manifests": manifests}, open(os.path.join(oci, "index.json"), "w"))
json.dump({"imageLayoutVersion": "1.0.0"}, open(os.path.join(oci, "oci-layout"), "w"))
PY
tar_bytes=$(stat -c %s "$work/layer.tar")
gz_bytes=$(stat -c %s "$work/layer.tar.gz")
say "layer: $((tar_bytes / 1000000)) MB uncompressed, $((gz_bytes / 1000000)) MB gzip"
# Warm the page cache: every reader gets the files from memory.
cat "$work/layer.tar" "$work/layer.tar.gz" >/dev/null

# ---- 2. extraction alone
if [[ ${SKIP_EXTRACT:-} != 1 ]]; then
  mkdir -p "$work/x"
  for kind in tar gz; do
    file=$work/layer.tar; [[ $kind == gz ]] && file=$work/layer.tar.gz
    z=""; [[ $kind == gz ]] && z=z
    say "== extraction of the $kind layer ($((tar_bytes / 1000000)) MB uncompressed)"
    fresh() { echo "sh -c 'rm -rf $1 && mkdir -p $1 && sync'"; }
    names=() preps=() cmds=()
    if [[ -n $apply ]]; then names+=("berth apply_layer"); preps+=("$(fresh "$work/x/berth")"); cmds+=("$apply $file $work/x/berth"); fi
    names+=("GNU tar -x${z}f"); preps+=("$(fresh "$work/x/tar")"); cmds+=("tar -x${z}f $file -C $work/x/tar")
    names+=("umoci unpack"); preps+=("sh -c 'rm -rf $work/x/umoci && sync'"); cmds+=("umoci unpack --image $work/oci:$kind $work/x/umoci")
    if [[ $kind == gz ]]; then names+=("gzip -dc (ceiling)"); preps+=("sync"); cmds+=("gzip -dc $file"); fi
    alternate "$work/extract-$kind.json" "$runs"
    rm -rf "$work/x"/*
  done
fi

# ---- registry
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
mkdir -p "$work/registry"
cat >"$work/registry/config.yml" <<CONF
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $work/registry/data
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$port
CONF
docker-registry serve "$work/registry/config.yml" >"$work/registry.log" 2>&1 &
pids+=($!)
wait_for "docker-registry" curl -sf "http://127.0.0.1:$port/v2/"
ref=127.0.0.1:$port/bench:1
# Push the `gz` image with the registry API itself (skopeo would write its blob-info cache
# under /var/lib/containers): blobs as monolithic uploads, then the manifest.
python3 - "$work/oci" "$port" <<'PY'
import http.client, json, os, sys
oci, port = sys.argv[1], int(sys.argv[2])
blob = lambda d: os.path.join(oci, "blobs", "sha256", d.split(":")[1])
index = json.load(open(os.path.join(oci, "index.json")))
desc = next(m for m in index["manifests"] if m["annotations"]["org.opencontainers.image.ref.name"] == "gz")
manifest = open(blob(desc["digest"]), "rb").read()
def req(method, path, body=None, headers={}):
    c = http.client.HTTPConnection("127.0.0.1", port)
    c.request(method, path, body=body, headers=headers)
    r = c.getresponse(); r.read()
    if r.status >= 300: sys.exit(f"push: {method} {path}: {r.status}")
    return r
m = json.loads(manifest)
for d in [m["config"]] + m["layers"]:
    loc = req("POST", "/v2/bench/blobs/uploads/").getheader("Location")
    loc = loc.split("127.0.0.1:%d" % port, 1)[-1]
    with open(blob(d["digest"]), "rb") as f:
        req("PUT", loc + ("&" if "?" in loc else "?") + "digest=" + d["digest"], body=f,
            headers={"Content-Type": "application/octet-stream", "Content-Length": str(d["size"])})
req("PUT", "/v2/bench/manifests/1", body=manifest, headers={"Content-Type": m["mediaType"]})
PY
cat "$work/registry/data/docker/registry/v2/blobs/sha256"/*/*/data >/dev/null

# ---- daemons
say "== starting dockerd and berth daemon"
echo '{}' >"$work/daemon.json"   # not the host's /etc/docker/daemon.json
dockerd --config-file "$work/daemon.json" --data-root "$work/docker" --exec-root "$work/docker-exec" --pidfile "$work/dockerd.pid" \
  -H "unix://$work/docker.sock" --bridge=none --iptables=false --ip6tables=false --ip-masq=false \
  --log-level=error >"$work/dockerd.log" 2>&1 &
pids+=($!)
dockerd_pid=$!
wait_for "dockerd" "$docker_cli" -H "unix://$work/docker.sock" version
containerd_pid=$(ps -o pid= --ppid "$dockerd_pid" -o comm= | awk '$2 == "containerd" {print $1}' | head -1)

start_berth() { # starts berth daemon on $work/berth, pid into $work/berth.pid
  "$berth" daemon --host "unix://$work/berth.sock" --data-root "$work/berth" --bridge none >>"$work/berth.log" 2>&1 &
  echo $! >"$work/berth.pid"
  wait_for "berth daemon" "$docker_cli" -H "unix://$work/berth.sock" version
}
if [[ -n $berth ]]; then
  start_berth || { say "berth daemon log:"; tail -20 "$work/berth.log" >&2; berth=""; }
fi

tree_pids() { # pid: it and its descendants
  local p=$1 c
  echo "$p"
  for c in $(ps -o pid= --ppid "$p"); do tree_pids "$c"; done
}
rss_kb() { # pid: VmRSS summed over the process tree, KiB
  local sum=0 p kb
  for p in $(tree_pids "$1"); do
    kb=$(awk '/^VmRSS:/ {print $2}' "/proc/$p/status" 2>/dev/null || true)
    sum=$((sum + ${kb:-0}))
  done
  echo "$sum"
}
cpu_ticks() { # pid: utime+stime (and waited children) over the tree, clock ticks
  local sum=0 p t
  for p in $(tree_pids "$1"); do
    t=$(awk '{print $14 + $15 + $16 + $17}' "/proc/$p/stat" 2>/dev/null || true)
    sum=$((sum + ${t:-0}))
  done
  echo "$sum"
}
procs() { local p; for p in $(tree_pids "$1"); do printf '%s(%s KiB) ' "$(cat /proc/$p/comm)" "$(awk '/^VmRSS:/ {print $2}' /proc/$p/status)"; done; }

sleep 3
declare -A rss_idle rss_pulled cpu_pull wall_pull err
rss_idle[docker]=$(rss_kb "$dockerd_pid")
say "dockerd tree idle: $(procs "$dockerd_pid")"
if [[ -n $berth ]]; then
  rss_idle[berth]=$(rss_kb "$(cat "$work/berth.pid")")
  say "berth tree idle: $(procs "$(cat "$work/berth.pid")")"
fi

# Everything podman writes stays under $work/podman (storage, run state, its blob-info cache
# which libimage keeps under --root, events, network config and locks).
pm_cmd="podman --root $work/podman/root --runroot $work/podman/run --tmpdir $work/podman/tmp --network-config-dir $work/podman/net --storage-driver overlay --events-backend file --cgroup-manager cgroupfs"
engines=(docker podman)
[[ -n $berth ]] && engines=(berth docker podman)
pull_cmd() { case $1 in
  berth) echo "$docker_cli -H unix://$work/berth.sock pull -q $ref";;
  docker) echo "$docker_cli -H unix://$work/docker.sock pull -q $ref";;
  podman) echo "$pm_cmd pull -q --tls-verify=false $ref";;
esac; }
rmi_cmd() { case $1 in
  berth) echo "$docker_cli -H unix://$work/berth.sock rmi -f $ref";;
  docker) echo "$docker_cli -H unix://$work/docker.sock rmi -f $ref";;
  podman) echo "$pm_cmd rmi -f $ref";;
esac; }
store_dir() { case $1 in berth) echo "$work/berth";; docker) echo "$work/docker";; podman) echo "$work/podman/root";; esac; }
daemon_pid() { case $1 in berth) cat "$work/berth.pid";; docker) echo "$dockerd_pid";; podman) echo "";; esac; }

# ---- one pull each: does it work, CPU time, RSS after a pull, does rmi free the store
say "== one pull each (checks, CPU time, RSS after a pull)"
ticks=$(getconf CLK_TCK)
fresh_root=${BERTH_FRESH_ROOT:-0}
for e in "${engines[@]}"; do
  sync
  dp=$(daemon_pid "$e"); c0=0; [[ -n $dp ]] && c0=$(cpu_ticks "$dp")
  t0=$(date +%s%N)
  if ! /usr/bin/time -f '%U %S' -o "$work/time-$e" $(pull_cmd "$e") >"$work/pull-$e.log" 2>&1; then
    err[$e]=$(tail -3 "$work/pull-$e.log" | tr '\n' ' ')
    say "$e: pull FAILED: ${err[$e]}"
    continue
  fi
  wall_pull[$e]=$((($(date +%s%N) - t0) / 1000000))
  c1=0; [[ -n $dp ]] && c1=$(cpu_ticks "$dp")
  client=$(awk '{print $1 + $2}' "$work/time-$e")
  cpu_pull[$e]=$(python3 -c "print(f'{($c1 - $c0) / $ticks + $client:.2f}')")
  say "$e: pull ${wall_pull[$e]} ms, CPU ${cpu_pull[$e]} s (daemon tree + client), store $(du -sm "$(store_dir "$e")" | cut -f1) MB"
  if [[ $e != podman ]]; then
    sleep 3
    rss_pulled[$e]=$(rss_kb "$dp")
    say "$e tree after a pull: $(procs "$dp")"
  fi
  $(rmi_cmd "$e") >/dev/null 2>&1 || say "$e: rmi -f failed"
  sync
  left=$(du -sm "$(store_dir "$e")" | cut -f1)
  say "$e: store after rmi -f: $left MB"
  if [[ $e == berth ]] && ((left > random_mb / 2)) && ((!fresh_root)); then
    say "berth: rmi -f leaves $left MB in the store: every berth pull starts on a fresh data root instead"
    fresh_root=1
  fi
done
for e in "${!err[@]}"; do engines=("${engines[@]/$e/}"); done
engines=($(printf '%s\n' "${engines[@]}" | grep -v '^$' || true))

# A restart helper for BERTH_FRESH_ROOT: stop berth by its pid, wipe, start, wait.
cat >"$work/berth-fresh.sh" <<EOF
#!/bin/sh
pid=\$(cat $work/berth.pid)
kill -TERM \$pid 2>/dev/null
while kill -0 \$pid 2>/dev/null; do sleep 0.05; done
awk -v w="$work/berth/" 'index(\$5, w) == 1 {print \$5}' /proc/self/mountinfo | sort -r | xargs -r -n1 umount
rm -rf $work/berth
$berth daemon --host unix://$work/berth.sock --data-root $work/berth --bridge none >>$work/berth.log 2>&1 &
echo \$! >$work/berth.pid
for i in \$(seq 300); do $docker_cli -H unix://$work/berth.sock version >/dev/null 2>&1 && break; sleep 0.1; done
sync
EOF
chmod +x "$work/berth-fresh.sh"

# ---- 1. full pull, alternating
if [[ ${SKIP_PULL:-} != 1 && ${#engines[@]} -gt 0 ]]; then
  say "== full pull of $ref, image absent before every run"
  names=() preps=() cmds=()
  for e in "${engines[@]}"; do
    prep="sh -c '$(rmi_cmd "$e") >/dev/null 2>&1; sync'"
    [[ $e == berth ]] && ((fresh_root)) && prep="$work/berth-fresh.sh"
    names+=("$e pull"); preps+=("$prep"); cmds+=("$(pull_cmd "$e")")
  done
  alternate "$work/pull.json" "$runs"
fi

# ---- results
{
  echo "tar_bytes=$tar_bytes gz_bytes=$gz_bytes fresh_root=$fresh_root"
  for e in berth docker podman; do
    echo "engine $e idle=${rss_idle[$e]:-} pulled=${rss_pulled[$e]:-} cpu=${cpu_pull[$e]:-} err=${err[$e]:-}"
  done
} >"$work/facts"
python3 - "$work" <<'PY'
import json, os, re, sys
w = sys.argv[1]
facts = open(os.path.join(w, "facts")).read().splitlines()
tar_bytes = int(re.search(r"tar_bytes=(\d+)", facts[0]).group(1))
gz_bytes = int(re.search(r"gz_bytes=(\d+)", facts[0]).group(1))
eng = {}
for line in facts[1:]:
    m = re.match(r"engine (\w+) idle=(\d*) pulled=(\d*) cpu=([\d.]*) err=(.*)", line)
    eng[m.group(1)] = dict(idle=m.group(2), pulled=m.group(3), cpu=m.group(4), err=m.group(5))
mb = tar_bytes / 1e6
def load(name):
    p = os.path.join(w, name)
    return {r["command"]: r for r in json.load(open(p))["results"]} if os.path.exists(p) else {}
def row(cells): print("| " + " | ".join(cells) + " |")
def ratio(a, b): return f"{b / a:.2f}x" if a and b else "-"
print(f"\n## Results: layer {mb:.1f} MB uncompressed, {gz_bytes / 1e6:.1f} MB gzip; medians; MB/s of uncompressed data\n")
pull = load("pull.json")
if pull:
    print("### Full pull into the store (fetch, verify, gunzip, extract), image absent before each run\n")
    row(["engine", "median", "min-max", "MB/s", "CPU s / pull", "berth speedup"]); row(["---"] * 6)
    b = pull.get("berth pull", {}).get("median")
    for name in ["berth pull", "podman pull", "docker pull"]:
        r = pull.get(name)
        e = name.split()[0]
        if not r:
            row([e, "-", "-", "-", "-", "error: " + eng[e]["err"] if eng[e]["err"] else "-"]); continue
        row([e, f"{r['median']:.2f} s", f"{r['min']:.2f}-{r['max']:.2f} s", f"{mb / r['median']:.0f}",
             eng[e]["cpu"] or "-", ratio(b, r["median"]) if name != "berth pull" else "1.00x"])
    print()
for kind, title in [("tar", "Extraction of the uncompressed layer tar"), ("gz", "Extraction of the gzip layer (decompress + extract)")]:
    res = load(f"extract-{kind}.json")
    if not res: continue
    print(f"### {title}\n")
    row(["extractor", "median", "min-max", "MB/s", "berth speedup"]); row(["---"] * 5)
    b = res.get("berth apply_layer", {}).get("median")
    for name, r in res.items():
        row([name, f"{r['median'] * 1000:.0f} ms", f"{r['min'] * 1000:.0f}-{r['max'] * 1000:.0f} ms",
             f"{mb / r['median']:.0f}", ratio(b, r["median"]) if name != "berth apply_layer" else "1.00x"])
    print()
print("### Daemon RSS (VmRSS summed over the daemon's process tree)\n")
row(["daemon", "idle after start", "after one pull"]); row(["---"] * 3)
for e, label in [("berth", "berth daemon"), ("docker", "dockerd + containerd")]:
    f = lambda v: f"{int(v) / 1024:.1f} MB" if v else "-"
    row([label, f(eng[e]["idle"]), f(eng[e]["pulled"])])
bi, di = eng["berth"]["idle"], eng["docker"]["idle"]
bp, dp = eng["berth"]["pulled"], eng["docker"]["pulled"]
print()
if pull.get("berth pull"):
    for peer in ["podman", "docker"]:
        if pull.get(f"{peer} pull"):
            print(f"pull: berth / {peer} throughput = {pull[f'{peer} pull']['median'] / pull['berth pull']['median']:.2f}x")
for kind in ["tar", "gz"]:
    res = load(f"extract-{kind}.json")
    b = res.get("berth apply_layer", {}).get("median")
    for name, r in res.items():
        if b and name != "berth apply_layer":
            print(f"extract {kind}: berth / {name} throughput = {r['median'] / b:.2f}x")
if bi and di: print(f"idle RSS: berth / (dockerd+containerd) = {int(bi) / int(di):.2f} (target <= 0.20)")
if bp and dp: print(f"RSS after a pull: berth / (dockerd+containerd) = {int(bp) / int(dp):.2f}")
PY
