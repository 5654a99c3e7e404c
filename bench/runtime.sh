#!/usr/bin/env bash
# Side-by-side benchmark of OCI runtimes on one busybox bundle running /bin/true:
# berth-runc, crun and runc, alternating (hyperfine), full `run` cycle and
# create / start / delete alone, plus peak RSS (GNU time, max of 20 runs).
#
#   bench/runtime.sh [RUNS]        (root; needs hyperfine, crun, runc: scripts/deps.sh --test)
#
# crun 1.8 refuses this host's hybrid cgroup layout while hugetlb sits on the
# cgroup2 mount: for the run, hugetlb is mounted as its own v1 hierarchy (as
# ../shared/peers/setup.sh --crun does) and put back afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-30}
cargo build --release -q -p berth-runc
berth=$PWD/target/release/berth-runc
work=$(mktemp -d /tmp/berth-bench.XXXXXX)
moved_hugetlb=0
cleanup() {
  for rt in berth crun runc; do
    for id in $(ls "$work/state-$rt" 2>/dev/null); do "$(bin "$rt")" --root "$work/state-$rt" delete -f "$id" >/dev/null 2>&1 || true; done
  done
  if ((moved_hugetlb)); then
    umount /sys/fs/cgroup/hugetlb && rmdir /sys/fs/cgroup/hugetlb || true
    # The kernel hands the controller back to cgroup2 asynchronously: wait for it,
    # so what runs next sees the host as it was.
    for _ in $(seq 50); do
      grep -qw hugetlb /sys/fs/cgroup/unified/cgroup.controllers && break
      sleep 0.1
    done
  fi
  rm -rf "$work"
}
bin() { case $1 in berth) echo "$berth";; crun) command -v crun;; runc) command -v runc;; esac; }
trap cleanup EXIT

if [[ ! -d /sys/fs/cgroup/hugetlb ]] && grep -qw hugetlb /sys/fs/cgroup/unified/cgroup.controllers 2>/dev/null; then
  mkdir /sys/fs/cgroup/hugetlb
  if mount -t cgroup -o hugetlb cgroup /sys/fs/cgroup/hugetlb; then
    moved_hugetlb=1
  else
    rmdir /sys/fs/cgroup/hugetlb
    echo "hugetlb is in use on the cgroup2 mount: crun will refuse to run" >&2
  fi
fi

scripts/make-busybox-rootfs.sh "$work/bundle/rootfs"
(cd "$work/bundle" && runc spec)
python3 - "$work/bundle/config.json" <<'PY'
import json, sys
p = sys.argv[1]; c = json.load(open(p))
c["process"]["terminal"] = False
c["process"]["args"] = ["/bin/true"]
json.dump(c, open(p, "w"), indent=2)
PY

cmd() { # runtime verb...
  local rt=$1; shift
  echo "$(bin "$rt") --root $work/state-$rt $*"
}
rts=(berth crun runc)
echo "== full cycle: run (create+start+wait+delete) of /bin/true"
args=()
for rt in "${rts[@]}"; do args+=("$(cmd "$rt" run --bundle "$work/bundle" bench-run-$rt)"); done
hyperfine -N --warmup 3 --runs "$runs" --export-json "$work/run.json" "${args[@]}"

for verb in create start delete; do
  echo "== $verb alone"
  args=()
  for rt in "${rts[@]}"; do
    id=bench-$verb-$rt
    c=$(cmd "$rt" create --bundle "$work/bundle" "$id")
    s=$(cmd "$rt" start "$id")
    d=$(cmd "$rt" delete -f "$id")
    case $verb in
      create) args+=(--prepare "sh -c '$d >/dev/null 2>&1; true'" "$c");;
      start)  args+=(--prepare "sh -c '$d >/dev/null 2>&1; $c'" "$s");;
      delete) args+=(--prepare "sh -c '$d >/dev/null 2>&1; $c && $s && sleep 0.02'" "$d");;
    esac
  done
  # hyperfine applies one --prepare per command when given once per command.
  hyperfine -N --warmup 3 --runs "$runs" --export-json "$work/$verb.json" "${args[@]}" || true
done

echo "== peak RSS of the runtime process during run (max over 20 runs, KiB)"
for rt in "${rts[@]}"; do
  max=0
  for i in $(seq 20); do
    kb=$(/usr/bin/time -f %M $(cmd "$rt" run --bundle "$work/bundle" rss-$rt-$i) 2>&1 >/dev/null | tail -1)
    ((kb > max)) && max=$kb
  done
  echo "$rt: $max KiB"
done

python3 - "$work" <<'PY'
import json, sys, os
w = sys.argv[1]
print("\n== medians (ms) and ratio to crun")
for name in ["run", "create", "start", "delete"]:
    p = os.path.join(w, name + ".json")
    if not os.path.exists(p): continue
    res = json.load(open(p))["results"]
    med = {}
    for r in res:
        rt = "berth" if "berth-runc" in r["command"] else ("crun" if "crun" in r["command"] else "runc")
        med[rt] = r["median"] * 1000
    base = med.get("crun")
    line = "  ".join(f"{rt} {m:.1f}" + (f" ({m/base:.2f}x)" if base else "") for rt, m in med.items())
    print(f"{name:7s} {line}")
PY
