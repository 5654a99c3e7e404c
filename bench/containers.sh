#!/usr/bin/env bash
# Side-by-side benchmark of containers (issue 4), one run, alternating (hyperfine), medians:
#
#  1. `run --rm busybox true`, no network: berth daemon driven by the docker CLI, berth's
#     own CLI (`berth run`, when it has one), Debian's dockerd driven by the same docker CLI,
#     and `podman run --rm --network=none`;
#  2. the per-container resident helper of a running `sleep 1000` container: berth-monitor
#     vs podman's conmon vs dockerd's containerd-shim (RSS and PSS from smaps_rollup);
#  3. daemon memory (VmRSS): berth daemon vs dockerd + containerd, idle and with N running
#     `sleep 1000` containers (default 100), monitors / shims summed separately.
#
#   bench/containers.sh [RUNS]     (root; default 10 rounds; RUNS= also works)
#
# Everything runs from one short tmp dir (unix socket paths must stay < 108 bytes): berth
# daemon with its own --host/--data-root/--exec-root and --bridge none, its own dockerd
# (--bridge=none --iptables=false --ip6tables=false): no host network state on either;
# containers run --network none on both engines, so no networking is measured (that is
# bench/network.sh), podman with a private
# --root/--runroot/--tmpdir/--network-config-dir, cgroupfs, file events. Every engine gets
# the same image: the busybox rootfs of scripts/make-busybox-rootfs.sh, tarred and imported
# with CMD ["sh"]. The script removes every container it made, stops exactly the processes
# it started, by pid (and whatever they left behind that still names the tmp dir), unmounts
# what is left under the tmp dir, removes the cgroup parents the engines created if empty,
# checks that dockerd left no bridge or iptables chains, restores ip_forward, and removes
# the tmp dir. Missing peers are installed with apt-get, and it says so: docker.io
# containerd runc podman conmon hyperfine busybox-static iptables.
#
# podman runs with `--runtime runc` (the output says so): crun 1.8, podman's default, refuses
# this host's hybrid cgroups while hugetlb sits on the cgroup2 mount, and moving hugetlb to a
# v1 hierarchy for the run would change the cgroup layout under whatever else runs on the
# machine. dockerd drives runc too (through containerd's shim); berth drives berth-runc.
#
# Env: CARGO_TARGET_DIR (where berth is built), DOCKER_CLI (default /usr/local/bin/docker if
# present: the same client drives dockerd and berth), CONTAINERS (default 100: how many
# `sleep 1000` containers for the daemon memory figures), TMPDIR (where the work dir goes,
# default /tmp; keep it short), SKIP_RUN=1, SKIP_MANY=1.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
runs=${RUNS:-${1:-10}}
many=${CONTAINERS:-100}
podman_runtime=runc
target=${CARGO_TARGET_DIR:-$repo/target}
me=containers.sh
# say, bench_install, stop_pid, tree_pids, ours, wait_for, alternate.
source bench/lib.sh
[[ $(id -u) == 0 ]] || { say "containers.sh: run as root"; exit 1; }

# ---- peers (Debian packages), installed only when missing and never silently
pkgs=(docker.io containerd runc podman conmon hyperfine busybox-static iptables)
bench_install "${pkgs[@]}" || exit 1
docker_cli=${DOCKER_CLI:-$( [[ -x /usr/local/bin/docker ]] && echo /usr/local/bin/docker || command -v docker)}

# ---- berth: the daemon/CLI, its OCI runtime and its per-container monitor (found next to berth)
berth=""
if CARGO_TARGET_DIR=$target cargo build --release -q -p berth -p berth-runc -p berth-monitor; then
  berth=$target/release/berth
else
  say "containers.sh: berth does not build: the berth columns stay empty"
fi
berth_cli_run=0
if [[ -n $berth ]] && "$berth" run --help >/dev/null 2>&1; then berth_cli_run=1; fi
[[ -n $berth ]] && ((!berth_cli_run)) && say "containers.sh: \`berth run --help\` fails: berth's CLI has no run command yet, its column stays empty"

work=$(mktemp -d "${TMPDIR:-/tmp}/bbc.XXXXXX")
chmod 755 "$work"
# berth-monitor's attach socket is <exec-root>/m/<64-hex id>/sock: keep it under 108 bytes.
sock_tail=/run/m/$(printf '%064d' 0)/sock
if (( ${#work} + ${#sock_tail} >= 108 )); then
  say "containers.sh: the work dir $work is too long for unix socket paths: set a shorter TMPDIR"
  rmdir "$work"; exit 1
fi
pids=()            # daemons we started, stopped in reverse order by pid
declare -A up=()   # engine -> 1 while its daemon answers (containers are removed at exit)
# Host paths the peers create when missing (dockerd 20.10 its trust key and plugin dir;
# containerd's shims their sockets under /run/containerd/s; podman its shm lock segment and
# c/image caches): those that do not exist now are removed at the end if the run created
# them (dirs only if empty).
host_paths=(/etc/docker/key.json /etc/docker /run/docker/plugins /run/docker
  /run/containerd/s /run/containerd/fifo /run/containerd /dev/shm/libpod_lock
  /var/lib/containers/cache/blob-info-cache-v1.boltdb /var/lib/containers/cache /var/lib/containers
  /etc/containers/networks /run/containers/networks /run/containers /etc/cni/net.d/cni.lock)
absent=()
for h in "${host_paths[@]}"; do [[ -e $h ]] || absent+=("$h"); done
# Cgroup parents the engines make (berth /berth, dockerd /docker, podman /libpod_parent):
# the ones absent now are removed at the end when empty.
cg_absent=()
for d in /sys/fs/cgroup/*/ /sys/fs/cgroup/unified/; do
  for name in berth docker libpod_parent; do [[ -e $d$name ]] || cg_absent+=("$d$name"); done
done
fwd_before=$(cat /proc/sys/net/ipv4/ip_forward)
chains_before=$(iptables-save 2>/dev/null | grep -c DOCKER || true)

cleanup() {
  local rc=$? i p left
  set +e
  # Containers first, while their engine still answers.
  [[ -n ${up[berth]:-} ]] && rm_all berth
  [[ -n ${up[docker]:-} ]] && rm_all docker
  [[ -n ${up[podman]:-} ]] && rm_all podman
  [[ -s $work/berth.pid ]] && pids+=("$(cat "$work/berth.pid")")
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do stop_pid "${pids[i]}"; done
  [[ -n ${containerd_pid:-} ]] && stop_pid "$containerd_pid"
  left=$(for p in $(ours); do tree_pids "$p"; done | sort -u)
  if [[ -n $left ]]; then
    say "containers.sh: WARNING: processes left by the engines (stopped now): $(for p in $left; do printf '%s(%s) ' "$p" "$(cat /proc/$p/comm 2>/dev/null)"; done)"
    for p in $left; do kill -KILL "$p" 2>/dev/null; done
    sleep 0.5
  fi
  # Anything still mounted under the tmp dir (overlay drivers mount their homes private).
  awk -v w="$work" 'index($5, w "/") == 1 {print $5}' /proc/self/mountinfo | sort -r | while read -r m; do
    umount "$m" 2>/dev/null || umount -l "$m"
  done
  for d in "${cg_absent[@]}"; do
    [[ -d $d ]] || continue
    find "$d" -depth -type d -exec rmdir {} + 2>/dev/null
    if [[ -d $d ]]; then say "containers.sh: WARNING: cgroup $d (made during the run) is not empty"; else say "containers.sh: removed cgroup $d (made during the run)"; fi
  done
  if ip link show docker0 >/dev/null 2>&1; then say "containers.sh: WARNING: a docker0 bridge exists after the run"; fi
  local chains_after
  chains_after=$(iptables-save 2>/dev/null | grep -c DOCKER || true)
  [[ $chains_after == "$chains_before" ]] || say "containers.sh: WARNING: DOCKER iptables lines went from $chains_before to $chains_after"
  [[ $(cat /proc/sys/net/ipv4/ip_forward) == "$fwd_before" ]] || { echo "$fwd_before" >/proc/sys/net/ipv4/ip_forward; say "containers.sh: restored ip_forward=$fwd_before"; }
  for h in "${absent[@]}"; do
    if [[ -f $h ]]; then rm -f "$h" && say "containers.sh: removed $h (created by a peer during the run)"
    elif [[ -d $h ]]; then rmdir "$h" 2>/dev/null && say "containers.sh: removed $h (created by a peer during the run)"
    fi
  done
  rm -rf "$work"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM



# ---- the image: busybox rootfs, one tar, imported with CMD ["sh"] into every engine
say "== building the busybox image"
scripts/make-busybox-rootfs.sh "$work/rootfs"
tar --sort=name --numeric-owner -C "$work/rootfs" -cf "$work/busybox.tar" .
rm -rf "$work/rootfs"

# ---- daemons
say "== starting dockerd and berth daemon"
echo '{}' >"$work/daemon.json"   # not the host's /etc/docker/daemon.json
dockerd --config-file "$work/daemon.json" --data-root "$work/docker" --exec-root "$work/de" --pidfile "$work/dockerd.pid" \
  -H "unix://$work/docker.sock" --bridge=none --iptables=false --ip6tables=false --ip-masq=false \
  --log-level=error >"$work/dockerd.log" 2>&1 &
pids+=($!)
dockerd_pid=$!
wait_for "dockerd" "$docker_cli" -H "unix://$work/docker.sock" version || { tail -20 "$work/dockerd.log" >&2; exit 1; }
up[docker]=1
containerd_pid=$(ps -o pid= -o comm= --ppid "$dockerd_pid" | awk '$2 == "containerd" {print $1}' | head -1)

if [[ -n $berth ]]; then
  "$berth" daemon --host "unix://$work/berth.sock" --data-root "$work/berth-root" --exec-root "$work/run" --bridge none >"$work/berth.log" 2>&1 &
  echo $! >"$work/berth.pid"
  berth_pid=$!
  if wait_for "berth daemon" "$docker_cli" -H "unix://$work/berth.sock" version; then
    up[berth]=1
  else
    say "berth daemon log:"; tail -20 "$work/berth.log" >&2; berth=""
  fi
fi

# podman: everything under $work/podman; rlimits lowered (root lacks CAP_SYS_RESOURCE here,
# podman's default nofile/nproc of 1048576 cannot be set).
mkdir -p "$work/podman"
cat >"$work/podman/containers.conf" <<CONF
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
CONF
cat >"$work/podman/storage.conf" <<CONF
[storage]
driver = "overlay"
graphroot = "$work/podman/root"
runroot = "$work/podman/run"
CONF
export CONTAINERS_CONF=$work/podman/containers.conf CONTAINERS_STORAGE_CONF=$work/podman/storage.conf
pm_cmd="podman --root $work/podman/root --runroot $work/podman/run --tmpdir $work/podman/tmp --network-config-dir $work/podman/net --storage-driver overlay --events-backend file --cgroup-manager cgroupfs --runtime $podman_runtime"
up[podman]=1

engines=(docker podman)
[[ -n $berth ]] && engines=(berth docker podman)
cli() { case $1 in # engine: its client command
  berth) echo "$docker_cli -H unix://$work/berth.sock";;
  berthcli) echo "$berth -H unix://$work/berth.sock";;
  docker) echo "$docker_cli -H unix://$work/docker.sock";;
  podman) echo "$pm_cmd";;
esac; }
rm_all() { # engine: removes all its containers (best effort, quietly)
  local ids
  ids=$(timeout 60 $(cli "$1") ps -aq 2>/dev/null) || return 0
  [[ -z $ids ]] && return 0
  if [[ $1 == podman ]]; then timeout 120 $(cli "$1") rm -f -t 0 $ids >/dev/null 2>&1
  else timeout 120 $(cli "$1") rm -f $ids >/dev/null 2>&1; fi
}
declare -A err=()
fail() { err[$1]=$2; say "$1: FAILED: $2"; }

say "== importing the image into each engine"
for e in "${engines[@]}"; do
  if ! $(cli "$e") import --change 'CMD ["sh"]' "$work/busybox.tar" busybox >"$work/import-$e.log" 2>&1; then
    fail "$e" "import: $(tail -2 "$work/import-$e.log" | tr '\n' ' ')"
  fi
done

# ---- daemon RSS idle (3 s after start and import)
rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
pss_kb() { awk '/^Pss:/ {print $2}' "/proc/$1/smaps_rollup" 2>/dev/null || echo 0; }
rollup_rss_kb() { awk '/^Rss:/ {print $2}' "/proc/$1/smaps_rollup" 2>/dev/null || echo 0; }
ppid_of() { awk '{print $4}' "/proc/$1/stat"; }
facts=$work/facts
fact() { echo "$*" >>"$facts"; }
sleep 3
fact "idle berth_daemon $([[ -n $berth ]] && rss_kb "$berth_pid" || echo '')"
fact "idle dockerd $(rss_kb "$dockerd_pid")"
fact "idle containerd $(rss_kb "$containerd_pid")"

# ---- does each engine run a container at all (and print what it ran)
say "== one container each: \`run --rm --network none busybox echo ok\`"
check_run() { # engine, client
  local out
  if out=$($2 run --rm $([[ $1 == podman ]] && echo --network=none || echo --network none) busybox echo ok 2>&1) && [[ $out == ok ]]; then
    return 0
  fi
  fail "$1" "run --rm busybox echo ok: $(printf '%s' "$out" | tail -3 | tr '\n' ' ')"
  return 1
}
runnable=()
for e in "${engines[@]}"; do
  [[ -n ${err[$e]:-} ]] && continue
  check_run "$e" "$(cli "$e")" && runnable+=("$e")
done
if ((berth_cli_run)) && [[ -z ${err[berth]:-} ]]; then
  check_run berthcli "$(cli berthcli)" && runnable+=(berthcli)
fi

# ---- 1. run --rm busybox true, alternating
label() { case $1 in
  berth) echo "berth daemon (docker CLI)";; berthcli) echo "berth run (berth CLI)";;
  docker) echo "dockerd (docker CLI)";; podman) echo "podman ($podman_runtime)";;
esac; }
if [[ ${SKIP_RUN:-} != 1 && ${#runnable[@]} -gt 0 ]]; then
  say "== run --rm busybox true, no network, $runs rounds"
  names=() cmds=()
  for e in "${runnable[@]}"; do
    names+=("$(label "$e")")
    if [[ $e == podman ]]; then cmds+=("$(cli "$e") run --rm --network=none busybox true")
    else cmds+=("$(cli "$e") run --rm --network none busybox true"); fi
  done
  # Reference: what the docker CLI costs by itself (start, version negotiation, one call).
  if [[ " ${runnable[*]} " == *" berth "* ]]; then
    names+=("docker version (berth)"); cmds+=("$(cli berth) version")
  fi
  alternate "$work/run.json" "$runs"
  for e in berth docker podman; do
    [[ -n ${up[$e]:-} && -z ${err[$e]:-} ]] || continue
    n=$($(cli "$e") ps -aq 2>/dev/null | wc -l)
    ((n == 0)) || { say "$e: $n containers left after run --rm"; fact "leftover $e $n"; rm_all "$e"; }
  done
fi

# ---- 2. the per-container monitor of a running `sleep 1000`
say "== the per-container monitor of a running sleep 1000"
for e in berth docker podman; do
  [[ -n ${up[$e]:-} && -z ${err[$e]:-} ]] || continue
  c=$(cli "$e")
  if ! id=$($c run -d $([[ $e == podman ]] && echo --network=none || echo --network none) busybox sleep 1000 2>"$work/mon-$e.log"); then
    fail "$e" "run -d busybox sleep 1000: $(tail -2 "$work/mon-$e.log" | tr '\n' ' ')"; continue
  fi
  sleep 2
  init=$($c inspect -f '{{.State.Pid}}' "$id")
  if [[ -z $init || $init == 0 ]] || ! [[ -d /proc/$init ]]; then
    fail "$e" "inspect gives no running init pid ($init)"; $c rm -f "$id" >/dev/null 2>&1; continue
  fi
  mon=$(ppid_of "$init")
  comm=$(cat "/proc/$mon/comm")
  say "$e: init $init ($(cat /proc/$init/comm)), parent $mon ($comm): RSS $(rollup_rss_kb "$mon") kB, PSS $(pss_kb "$mon") kB"
  fact "monitor $e $comm $(rollup_rss_kb "$mon") $(pss_kb "$mon")"
  if [[ $e == podman ]]; then $c rm -f -t 0 "$id" >/dev/null; else $c rm -f "$id" >/dev/null; fi
done

# ---- 3. daemon memory with N running containers (berth, then dockerd)
if [[ ${SKIP_MANY:-} != 1 ]]; then
  for e in berth docker; do
    [[ -n ${up[$e]:-} && -z ${err[$e]:-} ]] || continue
    c=$(cli "$e")
    say "== $e: $many x \`run -d --network none busybox sleep 1000\`"
    t0=$(date +%s%N); ok=1
    for i in $(seq "$many"); do
      if ! $c run -d --network none busybox sleep 1000 >/dev/null 2>"$work/many-$e.log"; then
        fail "$e" "run -d number $i of $many: $(tail -2 "$work/many-$e.log" | tr '\n' ' ')"; ok=0; break
      fi
    done
    t1=$(date +%s%N)
    ((ok)) || { rm_all "$e"; continue; }
    fact "start_many $e $(((t1 - t0) / 1000000))"
    sleep 3
    ids=$($c ps -q)
    running=$(echo "$ids" | grep -c . || true)
    ((running == many)) || say "$e: $running containers running, not $many"
    helpers=$($c inspect -f '{{.State.Pid}}' $ids | while read -r p; do [[ -d /proc/$p ]] && ppid_of "$p"; done | sort -u)
    rs=0 ps=0 nh=0
    for h in $helpers; do rs=$((rs + $(rss_kb "$h"))); ps=$((ps + $(pss_kb "$h"))); nh=$((nh + 1)); done
    say "$e: $running running, $nh distinct helpers ($(cat /proc/$(echo "$helpers" | head -1)/comm)), helpers RSS $((rs / 1024)) MB, PSS $((ps / 1024)) MB"
    if [[ $e == berth ]]; then
      fact "many berth_daemon $(rss_kb "$berth_pid")"
    else
      fact "many dockerd $(rss_kb "$dockerd_pid")"
      fact "many containerd $(rss_kb "$containerd_pid")"
    fi
    fact "many ${e}_helpers_rss $rs"; fact "many ${e}_helpers_pss $ps"; fact "many ${e}_helpers_n $nh"; fact "many ${e}_running $running"
    t0=$(date +%s%N)
    $c rm -f $ids >/dev/null 2>"$work/rm-$e.log" || say "$e: rm -f failed: $(tail -2 "$work/rm-$e.log" | tr '\n' ' ')"
    t1=$(date +%s%N)
    fact "rm_many $e $(((t1 - t0) / 1000000))"
    left=$($c ps -aq | grep -c . || true)
    fact "many ${e}_left $left"
    ((left == 0)) && say "$e: all removed ($(((t1 - t0) / 1000000)) ms)" || say "$e: $left containers LEFT after rm -f"
    alive=0
    for i in $(seq 50); do alive=0; for h in $helpers; do [[ -d /proc/$h ]] && alive=$((alive + 1)); done; ((alive == 0)) && break; sleep 0.2; done
    ((alive == 0)) || say "$e: $alive helpers still alive 10 s after rm -f"
    fact "many ${e}_helpers_alive $alive"
    sleep 3
    if [[ $e == berth ]]; then fact "after berth_daemon $(rss_kb "$berth_pid")"
    else fact "after dockerd $(rss_kb "$dockerd_pid")"; fact "after containerd $(rss_kb "$containerd_pid")"; fi
  done
fi

# ---- results
for e in berth berthcli docker podman; do [[ -n ${err[$e]:-} ]] && fact "error $e ${err[$e]}"; done
fact "meta runs=$runs many=$many podman_runtime=$podman_runtime berth_cli_run=$berth_cli_run"
fact "versions dockerd=$(dockerd --version | awk '{print $3}' | tr -d ,) podman=$(podman --version | awk '{print $3}') $podman_runtime=$($podman_runtime --version | head -1 | awk '{print $3}') docker_cli=$($docker_cli version -f '{{.Client.Version}}' 2>/dev/null)"
python3 - "$work" <<'PY'
import json, os, sys
w = sys.argv[1]
f = {}; errors = {}; meta = {}
for line in open(os.path.join(w, "facts")):
    parts = line.rstrip("\n").split(" ", 2)
    if parts[0] == "error": errors[parts[1]] = parts[2]; continue
    if parts[0] in ("meta", "versions"):
        for kv in line.split()[1:]:
            k, _, v = kv.partition("="); meta[k] = v
        continue
    f[(parts[0], parts[1])] = parts[2] if len(parts) > 2 else ""
def num(k):
    v = f.get(k, "")
    try: return int(v.split()[0]) if v else None
    except ValueError: return None
mb = lambda kb: f"{kb / 1024:.1f} MB" if kb is not None else "-"
def row(cells): print("| " + " | ".join(cells) + " |")
runtime = meta.get("podman_runtime", "runc")
print(f"\n## Results: medians of {meta.get('runs')} alternating rounds; docker CLI {meta.get('docker_cli')}, "
      f"dockerd {meta.get('dockerd')}, podman {meta.get('podman')} with {runtime} {meta.get(runtime)}")
print(f"(podman with `--runtime {runtime}`: crun, its default, refuses this host's hybrid cgroups; dockerd drives runc "
      "through containerd-shim-runc-v2; berth drives berth-runc. Containers run with no network.)\n")

run = {}
p = os.path.join(w, "run.json")
if os.path.exists(p):
    run = {r["command"]: r for r in json.load(open(p))["results"]}
labels = [("berth daemon (docker CLI)", "berth"), ("berth run (berth CLI)", "berthcli"),
          ("dockerd (docker CLI)", "docker"), (f"podman ({runtime})", "podman")]
b = run.get("berth daemon (docker CLI)", {}).get("median")
print("### `run --rm busybox true`, no network\n")
row(["engine", "median", "min-max", "runs ok / failed", "berth daemon / this"]); row(["---"] * 5)
for name, e in labels:
    r = run.get(name)
    if e == "berthcli" and meta.get("berth_cli_run") != "1":
        row([name, "-", "-", "-", "no `berth run` command yet"]); continue
    if not r or "median" not in r:
        why = errors.get(e) or (f"{r['failed']} runs failed" if r else "not run")
        row([name, "-", "-", f"0 / {r['failed']}" if r else "-", "FAILED: " + why]); continue
    row([name, f"{r['median'] * 1000:.0f} ms", f"{r['min'] * 1000:.0f}-{r['max'] * 1000:.0f} ms",
         f"{len(r['times'])} / {r['failed']}", f"{b / r['median']:.2f}" if b and e != "berth" else ("1.00" if b else "-")])
r = run.get("docker version (berth)")
if r and "median" in r:
    row(["reference: `docker version` against berth (the CLI's own start and 2 API calls)", f"{r['median'] * 1000:.0f} ms",
         f"{r['min'] * 1000:.0f}-{r['max'] * 1000:.0f} ms", f"{len(r['times'])} / {r['failed']}", ""])
print()

print("### Per-container resident helper of a running `sleep 1000` (smaps_rollup)\n")
row(["engine", "process", "RSS", "PSS"]); row(["---"] * 4)
for e, label in [("berth", "berth"), ("podman", f"podman ({runtime})"), ("docker", "dockerd")]:
    v = f.get(("monitor", e))
    if v:
        comm, rss, pss = v.split()
        row([label, comm, mb(int(rss)), mb(int(pss))])
    else:
        row([label, "-", "-", "FAILED: " + errors.get(e, "not measured")])
print()

n = meta.get("many")
print(f"### Daemon memory (VmRSS; helpers: sum over the {n} monitors / shims, RSS and PSS)\n")
bd = {k: num((k, "berth_daemon")) for k in ("idle", "many", "after")}
dd = {k: num((k, "dockerd")) for k in ("idle", "many", "after")}
cd = {k: num((k, "containerd")) for k in ("idle", "many", "after")}
bh, bhp = num(("many", "berth_helpers_rss")), num(("many", "berth_helpers_pss"))
dh, dhp = num(("many", "docker_helpers_rss")), num(("many", "docker_helpers_pss"))
add = lambda *xs: sum(xs) if all(x is not None for x in xs) else None
row(["process(es)", "idle", f"{n} containers running", "after `rm -f` of all"]); row(["---"] * 4)
row(["berth daemon", mb(bd["idle"]), mb(bd["many"]), mb(bd["after"])])
row([f"berth-monitor x {num(('many', 'berth_helpers_n')) or '-'}", "-", f"{mb(bh)} (PSS {mb(bhp)})", "-"])
row(["**berth, all**", mb(bd["idle"]), mb(add(bd["many"], bh)), mb(bd["after"])])
row(["dockerd", mb(dd["idle"]), mb(dd["many"]), mb(dd["after"])])
row(["containerd", mb(cd["idle"]), mb(cd["many"]), mb(cd["after"])])
row(["**dockerd + containerd**", mb(add(dd["idle"], cd["idle"])), mb(add(dd["many"], cd["many"])), mb(add(dd["after"], cd["after"]))])
row([f"containerd-shim x {num(('many', 'docker_helpers_n')) or '-'}", "-", f"{mb(dh)} (PSS {mb(dhp)})", "-"])
row(["**docker, all**", mb(add(dd["idle"], cd["idle"])), mb(add(dd["many"], cd["many"], dh)), mb(add(dd["after"], cd["after"]))])
def ratio(a, b): return f"{a / b:.2f}" if a is not None and b else "-"
row(["ratio, daemon alone: berth / (dockerd + containerd)", ratio(bd["idle"], add(dd["idle"], cd["idle"])),
     ratio(bd["many"], add(dd["many"], cd["many"])), ratio(bd["after"], add(dd["after"], cd["after"]))])
row(["ratio, everything: berth + monitors / docker + shims", ratio(bd["idle"], add(dd["idle"], cd["idle"])),
     ratio(add(bd["many"], bh), add(dd["many"], cd["many"], dh)), "-"])
row(["ratio, everything by PSS of the helpers", "-",
     ratio(add(bd["many"], bhp), add(dd["many"], cd["many"], dhp)), "-"])
print()
for e in ("berth", "docker"):
    s, r = num(("start_many", e)), num(("rm_many", e))
    if s is not None:
        print(f"{e}: {n} x `run -d` one after another in {s / 1000:.1f} s ({s / int(n):.0f} ms each); "
              f"`rm -f` of all in {r / 1000:.1f} s; left after rm -f: {num(('many', e + '_left'))}; "
              f"helpers alive 10 s later: {num(('many', e + '_helpers_alive'))}")
for e, k in f.items():
    if e[0] == "leftover": print(f"{e[1]}: {k} containers were left after the `run --rm` rounds")
print()
def verdict(x, target): return "met" if x <= target else "NOT met"
bt, dt, pt = b, run.get("dockerd (docker CLI)", {}).get("median"), run.get(f"podman ({runtime})", {}).get("median")
if bt and dt: print(f"run: berth / dockerd = {bt / dt:.2f} (target <= 0.25: {verdict(bt / dt, 0.25)})")
if bt and pt: print(f"run: berth / podman ({runtime}) = {bt / pt:.2f} (target <= 0.33: {verdict(bt / pt, 1 / 3)})")
if bd["many"] and add(dd["many"], cd["many"]):
    x = bd["many"] / add(dd["many"], cd["many"])
    print(f"daemon RSS with {n} containers: berth / (dockerd + containerd) = {x:.2f} (target <= 0.20: {verdict(x, 0.2)})")
if bd["idle"] and add(dd["idle"], cd["idle"]):
    x = bd["idle"] / add(dd["idle"], cd["idle"])
    print(f"daemon RSS idle: berth / (dockerd + containerd) = {x:.2f} (target <= 0.20: {verdict(x, 0.2)})")
for e, why in errors.items(): print(f"FAILED: {e}: {why}")
PY
