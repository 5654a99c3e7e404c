# bench/lib.sh: the scaffolding the engine benchmarks share (sourced, not run).
#
# Sourced by bench/containers.sh and bench/network.sh: peers installed with apt-get when
# missing (no service may start), a short tmp work dir, stopping exactly the pids a script
# started, finding what the engines left behind that names the work dir, alternating rounds
# with hyperfine, podman with private roots, and the host paths and cgroup parents the peers
# create when missing (removed at the end when the run created them).
#
# The sourcing script sets `me` (its name, for messages) before sourcing, and `work` (from
# bench_workdir) before using anything that names the work dir.

say() { printf '%s\n' "$*" >&2; }

# bench_install PKG...: installs the Debian packages among PKG that are missing, and says so.
# No service may start on install (docker.io's init script would start a dockerd with its
# default bridge and iptables rules): a temporary policy-rc.d forbids it.
bench_install() {
  local p need=() policy=0
  for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || need+=("$p"); done
  ((${#need[@]})) || return 0
  say "$me: installing with apt-get: ${need[*]}"
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && policy=1
  fi
  if ! DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 update -qq ||
    ! DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq "${need[@]}" >/dev/null; then
    ((policy)) && rm -f /usr/sbin/policy-rc.d
    return 1
  fi
  ((policy)) && rm -f /usr/sbin/policy-rc.d
  return 0
}

# bench_workdir PREFIX: makes $work (mode 755) under TMPDIR; fails when it is too long for
# berth-monitor's attach socket (<exec-root>/m/<64-hex id>/sock must stay < 108 bytes).
bench_workdir() {
  work=$(mktemp -d "${TMPDIR:-/tmp}/$1.XXXXXX")
  chmod 755 "$work"
  local sock_tail=/run/m/$(printf '%064d' 0)/sock
  if ((${#work} + ${#sock_tail} >= 108)); then
    say "$me: the work dir $work is too long for unix socket paths: set a shorter TMPDIR"
    rmdir "$work"
    return 1
  fi
}

# Host paths the peers create when missing (dockerd 20.10 its trust key and plugin dir;
# containerd's shims their sockets under /run/containerd/s; podman its shm lock segment, c/image
# caches, netavark's IPAM database): bench_track_host_paths records those absent now,
# bench_restore_host_paths removes the ones the run created (dirs only if empty).
bench_host_paths=(/etc/docker/key.json /etc/docker /run/docker/plugins /run/docker
  /run/containerd/s /run/containerd/fifo /run/containerd /dev/shm/libpod_lock
  /var/lib/containers/cache/blob-info-cache-v1.boltdb /var/lib/containers/cache /var/lib/containers
  /etc/containers/networks /run/containers/networks/ipam.db /run/containers/networks /run/containers
  /etc/cni/net.d/cni.lock)
bench_track_host_paths() {
  local h d name
  bench_absent=()
  for h in "${bench_host_paths[@]}"; do [[ -e $h ]] || bench_absent+=("$h"); done
  # Cgroup parents the engines make (berth /berth, dockerd /docker, podman /libpod_parent).
  bench_cg_absent=()
  for d in /sys/fs/cgroup/*/ /sys/fs/cgroup/unified/; do
    for name in berth docker libpod_parent; do [[ -e $d$name ]] || bench_cg_absent+=("$d$name"); done
  done
}
bench_restore_host_paths() {
  local h d
  for d in "${bench_cg_absent[@]}"; do
    [[ -d $d ]] || continue
    find "$d" -depth -type d -exec rmdir {} + 2>/dev/null
    if [[ -d $d ]]; then say "$me: WARNING: cgroup $d (made during the run) is not empty"; else say "$me: removed cgroup $d (made during the run)"; fi
  done
  for h in "${bench_absent[@]}"; do
    if [[ -f $h ]]; then rm -f "$h" && say "$me: removed $h (created by a peer during the run)"
    elif [[ -d $h ]]; then rmdir "$h" 2>/dev/null && say "$me: removed $h (created by a peer during the run)"
    fi
  done
  return 0
}

stop_pid() { # pid: TERM, wait up to 20 s, then KILL
  local pid=$1 i
  kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for i in $(seq 200); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  say "$me: pid $pid ignored SIGTERM for 20 s: SIGKILL"
  kill -KILL "$pid" 2>/dev/null || true
}
tree_pids() { # pid: it and its descendants
  local p=$1 c
  echo "$p"
  for c in $(ps -o pid= --ppid "$p" 2>/dev/null); do tree_pids "$c"; done
}
# Processes whose command line names the work dir: berth-monitors, conmons, shims, runtimes,
# docker-proxies our daemons started (monitors and shims outlive their daemon by design).
ours() {
  local f p
  for f in /proc/[0-9]*/cmdline; do
    p=${f#/proc/}; p=${p%/cmdline}
    [[ $p == "$$" || $p == "$BASHPID" ]] && continue
    { tr '\0' ' ' <"$f"; } 2>/dev/null | grep -qF "$work/" && echo "$p"
  done
  return 0
}
# bench_kill_ours: stops (KILL) whatever still names the work dir, and says so.
bench_kill_ours() {
  local p left
  left=$(for p in $(ours); do tree_pids "$p"; done | sort -u)
  [[ -n $left ]] || return 0
  say "$me: WARNING: processes left by the engines (stopped now): $(for p in $left; do printf '%s(%s) ' "$p" "$(cat /proc/$p/comm 2>/dev/null)"; done)"
  for p in $left; do kill -KILL "$p" 2>/dev/null; done
  sleep 0.5
}
# bench_unmount_work: anything still mounted under the work dir (overlay drivers mount their
# homes private), deepest first.
bench_unmount_work() {
  awk -v w="$work" 'index($5, w "/") == 1 {print $5}' /proc/self/mountinfo | sort -r | while read -r m; do
    umount "$m" 2>/dev/null || umount -l "$m"
  done
}

wait_for() { # what, command...: up to 30 s
  local what=$1 i; shift
  for i in $(seq 300); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
  say "$me: $what did not come up"; return 1
}

# alternate OUT ROUNDS: runs the commands in names[] / cmds[] once each per round, the order
# rotating every round (one `hyperfine -N --runs 1` per round), after one untimed warm-up
# round, and merges the rounds into OUT (hyperfine's JSON, times of successful runs; median /
# min / max over them). Alternating matters here: a 2-vCPU VM shared with builds drifts by
# 2x within a minute, which back-to-back hyperfine runs would charge to one command.
alternate() {
  local out=$1 rounds=$2 n=${#names[@]} r i j args
  for ((r = 0; r <= rounds; r++)); do
    args=()
    for ((i = 0; i < n; i++)); do
      j=$(((i + r) % n))
      args+=(-n "${names[j]}" "${cmds[j]}")
    done
    hyperfine -N -i --runs 1 --style none --export-json "$work/round-$r.json" "${args[@]}" >/dev/null
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
    print(f"  {n:28s} " + (f"median {r['median']*1000:8.1f} ms  min {r['min']*1000:6.1f}  max {r['max']*1000:6.1f}  ({len(t)} runs" if t else "(no successful run") + (f", {failed[n]} FAILED)" if failed[n] else ")"), file=sys.stderr)
json.dump({"results": results}, open(out, "w"))
PY
  rm -f "$work"/round-*.json
}

# bench_podman RUNTIME: podman with everything under $work/podman, cgroupfs, file events,
# rlimits lowered (root lacks CAP_SYS_RESOURCE here: podman's default nofile/nproc of 1048576
# cannot be set); sets pm_cmd and exports CONTAINERS_CONF / CONTAINERS_STORAGE_CONF.
bench_podman() {
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
  pm_cmd="podman --root $work/podman/root --runroot $work/podman/run --tmpdir $work/podman/tmp --network-config-dir $work/podman/net --storage-driver overlay --events-backend file --cgroup-manager cgroupfs --runtime $1"
}
