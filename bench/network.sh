#!/usr/bin/env bash
# Side-by-side benchmark of container networking (issue 5), one run, alternating, medians:
#
#  1. `run --rm bb true` with each engine's default bridge and with no network, alternating
#     (hyperfine, one round = every command once, the order rotating): berth daemon driven by
#     the docker CLI (bridge berth0, `--bip 172.31.251.1/24`), Debian's dockerd driven by the
#     same CLI (bridge docker0, `--bip 172.31.250.1/24`, iptables, its default userland proxy),
#     and podman (its default network `podman`: netavark, bridge podman0). bridge - none is
#     each engine's bridge setup cost (difference of the medians, and the median of the
#     per-round differences).
#  2. TCP throughput through a published port on loopback: `iperf3 -s -1` in a container
#     published as `-p 127.0.0.1:P:5201`, `iperf3 -c 127.0.0.1 -p P -t 5 -J` on the host, for
#     berth (nftables DNAT, no proxy process), dockerd (docker-proxy) and podman (netavark's
#     DNAT); alternating rounds, median Gbit/s (receiver side).
#
#   bench/network.sh [RUNS]     (root; default 15 rounds for 1; RUNS= also works)
#
# Everything runs in the host's network namespace (that is what is measured) and only uses
# loopback and the engines' own bridges: no traffic leaves the host. Each engine gets an
# explicit subnet that clashes with nothing (dockerd 172.31.250.0/24, berth 172.31.251.0/24,
# podman its default, printed). The script refuses to start when docker0 or berth0, or nft
# table inet berth, already exist (another engine owns them).
#
# Images: `bb` is the busybox rootfs of scripts/make-busybox-rootfs.sh; `iperf` is the same
# plus the host's /usr/bin/iperf3 and the shared libraries ldd names (checked with chroot
# first). Both tarred and `import --change 'CMD ["sh"]'`ed into each engine.
#
# Cleanup leaves the host as it was: containers removed, exactly the daemons the script
# started stopped by pid (and whatever still names the tmp dir), mounts under the tmp dir
# unmounted; then the bridges the run created (docker0, berth0, podman0: with any port left on
# them), nft table inet berth if it was absent, every iptables/ip6tables rule and chain added
# since the start (dockerd's DOCKER*, netavark's NETAVARK*), changed chain policies, the
# iptables-nft tables that were absent and are empty again, the sysctls ip_forward,
# conf.all.forwarding (IPv6) and bridge-nf-call-*; it says what it removed and reports any
# network interface, nft table or iptables line still different from the start.
#
# podman runs with `--runtime runc`: crun 1.8, its default, refuses this host's hybrid cgroups
# (see bench/containers.sh). Missing peers are installed with apt-get, and it says so:
# docker.io containerd runc podman conmon netavark hyperfine busybox-static iptables nftables
# iperf3.
#
# Env: CARGO_TARGET_DIR (where berth is built), DOCKER_CLI (default /usr/local/bin/docker if
# present), TCP_ROUNDS (default 5: iperf3 runs per engine), TCP_SECONDS (default 5), TMPDIR
# (keep it short), SKIP_RUN=1, SKIP_TCP=1, NO_PODMAN=1.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
me=network.sh
# shellcheck source=bench/lib.sh
source bench/lib.sh
runs=${RUNS:-${1:-15}}
tcp_rounds=${TCP_ROUNDS:-5}
tcp_secs=${TCP_SECONDS:-5}
podman_runtime=runc
target=${CARGO_TARGET_DIR:-$repo/target}
docker_bip=172.31.250.1/24
berth_bip=172.31.251.1/24
t_start=$(date +%s)
[[ $(id -u) == 0 ]] || { say "$me: run as root"; exit 1; }

# ---- peers (Debian packages), installed only when missing and never silently
bench_install docker.io containerd runc podman conmon netavark hyperfine busybox-static iptables nftables iperf3
docker_cli=${DOCKER_CLI:-$( [[ -x /usr/local/bin/docker ]] && echo /usr/local/bin/docker || command -v docker)}

# ---- berth: the daemon, its OCI runtime and its per-container monitor
berth=""
if CARGO_TARGET_DIR=$target cargo build --release -q -p berth -p berth-runc -p berth-monitor; then
  berth=$target/release/berth
  "$berth" daemon --help 2>/dev/null | grep -q -- --bip ||
    { say "$me: \`berth daemon --help\` has no --bip: the berth columns stay empty"; berth=""; }
else
  say "$me: berth does not build: the berth columns stay empty"
fi

# ---- the host's network state before (what cleanup restores and checks)
for b in docker0 berth0; do
  if ip link show "$b" >/dev/null 2>&1; then say "$me: a $b interface exists already: another engine owns it; stop it first"; exit 1; fi
done
if nft list table inet berth >/dev/null 2>&1; then say "$me: nft table inet berth exists already: another berth daemon runs in this network namespace"; exit 1; fi
links() { ip -o link show | awk -F': ' '{sub(/@.*/, "", $2); print $2}' | sort; }
links_before=$(links)
podman0_before=0; grep -qx podman0 <<<"$links_before" && podman0_before=1
nft_tables_before=$(nft list tables 2>/dev/null | sort)
sysctls=(net/ipv4/ip_forward net/ipv6/conf/all/forwarding net/ipv4/conf/all/route_localnet
  net/bridge/bridge-nf-call-iptables net/bridge/bridge-nf-call-ip6tables net/bridge/bridge-nf-call-arptables)
declare -A sysctl_before=()
for s in "${sysctls[@]}"; do [[ -r /proc/sys/$s ]] && sysctl_before[$s]=$(cat "/proc/sys/$s"); done

bench_workdir bbn
iptables-save >"$work/iptables.before" 2>/dev/null || true
ip6tables-save >"$work/ip6tables.before" 2>/dev/null || true
bench_track_host_paths
pids=()            # daemons we started, stopped in reverse order by pid
declare -A up=()   # engine -> 1 while it answers (its containers are removed at exit)

# ipt_restore TOOL BEFORE: puts TOOL's (iptables / ip6tables) rules back as they were in
# BEFORE (its -save output at the start): deletes the rules added since, flushes and deletes
# the user chains added since, restores changed built-in policies. Touches nothing that was
# there at the start.
ipt_restore() {
  local tool=$1 before=$2 t bt now line chain pol c
  for t in $("$tool-save" 2>/dev/null | awk '/^\*/ {print substr($1, 2)}'); do
    bt=$(awk -v t="*$t" '$0 == t {f = 1; next} /^COMMIT/ {f = 0} f' "$before")
    now=$("$tool-save" -t "$t" 2>/dev/null)
    # Rules that were not there: deleted by their spec (each once per extra copy).
    while read -r line; do
      [[ $line == "-A "* ]] || continue
      if ! grep -qxF -- "$line" <<<"$bt"; then
        eval "$tool -t $t -D ${line#-A }" 2>/dev/null && say "$me: $tool -t $t: removed rule: $line"
      fi
    done <<<"$now"
    # User chains that were not there: flush all, then delete all (they may jump to each other).
    local new=()
    while read -r chain pol; do
      [[ $pol == - ]] || continue
      grep -q "^:$chain " <<<"$bt" || new+=("$chain")
    done < <(awk '/^:/ {print substr($1, 2), $2}' <<<"$now")
    for c in "${new[@]}"; do "$tool" -t "$t" -F "$c" 2>/dev/null; done
    for c in "${new[@]}"; do "$tool" -t "$t" -X "$c" 2>/dev/null; done
    ((${#new[@]})) && say "$me: $tool -t $t: removed chains ${new[*]}"
    # Built-in policies (ACCEPT when the table did not exist).
    while read -r chain pol; do
      [[ $pol == - ]] && continue
      local was
      was=$(awk -v c=":$chain" '$1 == c {print $2}' <<<"$bt")
      was=${was:-ACCEPT}
      [[ $was == "$pol" ]] || { "$tool" -t "$t" -P "$chain" "$was" && say "$me: $tool -t $t: policy of $chain back to $was (was $pol)"; }
    done < <(awk '/^:/ {print substr($1, 2), $2}' <<<"$now")
  done
}

net_restore() {
  local b p s t fam name
  for b in docker0 berth0 podman0; do
    [[ $b == podman0 ]] && ((podman0_before)) && continue
    ip link show "$b" >/dev/null 2>&1 || continue
    for p in $(ip -o link show master "$b" 2>/dev/null | awk -F': ' '{sub(/@.*/, "", $2); print $2}'); do
      ip link del "$p" 2>/dev/null && say "$me: WARNING: removed $p, left on bridge $b"
    done
    ip link del "$b" && say "$me: removed bridge $b (made during the run)"
  done
  if ! grep -q '^table inet berth$' <<<"$nft_tables_before" && nft list table inet berth >/dev/null 2>&1; then
    nft delete table inet berth && say "$me: removed nft table inet berth (made during the run)"
  fi
  ipt_restore iptables "$work/iptables.before"
  ipt_restore ip6tables "$work/ip6tables.before"
  # iptables-nft tables absent at the start: deleted when nothing is left in them.
  while read -r _ fam name; do
    [[ -n $name ]] || continue
    grep -qx "table $fam $name" <<<"$nft_tables_before" && continue
    [[ $fam == ip || $fam == ip6 ]] && [[ $name =~ ^(filter|nat|mangle|raw|security)$ ]] || continue
    if ! nft list table "$fam" "$name" | grep -vE '^\s*(table .*\{|chain .*\{|type .* policy accept;|\}|)$' | grep -q .; then
      nft delete table "$fam" "$name" && say "$me: removed empty nft table $fam $name (made by iptables-nft during the run)"
    fi
  done < <(nft list tables 2>/dev/null)
  for s in "${!sysctl_before[@]}"; do
    [[ $(cat "/proc/sys/$s") == "${sysctl_before[$s]}" ]] && continue
    echo "${sysctl_before[$s]}" >"/proc/sys/$s" && say "$me: restored ${s//\//.}=${sysctl_before[$s]}"
  done
  # What is still different from the start.
  local now_links extra
  now_links=$(links)
  extra=$(comm -13 <(echo "$links_before") <(echo "$now_links") | tr '\n' ' ')
  [[ -z ${extra// /} ]] || say "$me: WARNING: network interfaces left: $extra"
  extra=$(comm -13 <(echo "$nft_tables_before") <(nft list tables 2>/dev/null | sort) | tr '\n' ' ')
  [[ -z ${extra// /} ]] || say "$me: WARNING: nft tables left: $extra"
  for t in iptables ip6tables; do
    extra=$(diff <(grep -v '^#' "$work/$t.before" | sed 's/\[[0-9]*:[0-9]*\]//') <("$t-save" 2>/dev/null | grep -v '^#' | sed 's/\[[0-9]*:[0-9]*\]//') | grep '^[<>]' | head -5 | tr '\n' ' ')
    [[ -z $extra ]] || say "$me: WARNING: $t differs from the start: $extra"
  done
}

cleanup() {
  local rc=$? i
  set +e
  [[ -n ${up[berth]:-} ]] && rm_all berth
  [[ -n ${up[docker]:-} ]] && rm_all docker
  [[ -n ${up[podman]:-} ]] && rm_all podman
  [[ -s $work/berth.pid ]] && pids+=("$(cat "$work/berth.pid")")
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do stop_pid "${pids[i]}"; done
  [[ -n ${containerd_pid:-} ]] && stop_pid "$containerd_pid"
  bench_kill_ours
  bench_unmount_work
  bench_restore_host_paths
  net_restore
  rm -rf "$work"
  say "$me: done in $(($(date +%s) - t_start)) s"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- the images: bb (busybox) and iperf (busybox + the host's iperf3 and its libraries)
say "== building the images"
scripts/make-busybox-rootfs.sh "$work/rootfs"
tar --sort=name --numeric-owner -C "$work/rootfs" -cf "$work/bb.tar" .
iperf3_bin=$(command -v iperf3)
cp "$iperf3_bin" "$work/rootfs/bin/iperf3"
for lib in $(ldd "$iperf3_bin" | grep -o '/[^ ]*'); do cp -L --parents "$lib" "$work/rootfs/"; done
chroot "$work/rootfs" /bin/iperf3 --version >/dev/null || { say "$me: iperf3 does not run in its image"; exit 1; }
tar --sort=name --numeric-owner -C "$work/rootfs" -cf "$work/iperf.tar" .
rm -rf "$work/rootfs"

# ---- daemons
say "== starting dockerd (bridge docker0 $docker_bip) and berth daemon (bridge berth0 $berth_bip)"
echo '{}' >"$work/daemon.json"   # not the host's /etc/docker/daemon.json
dockerd --config-file "$work/daemon.json" --data-root "$work/docker" --exec-root "$work/de" --pidfile "$work/dockerd.pid" \
  -H "unix://$work/docker.sock" --bip "$docker_bip" --iptables=true --ip6tables=false --userland-proxy=true \
  --log-level=error >"$work/dockerd.log" 2>&1 &
pids+=($!)
dockerd_pid=$!
wait_for "dockerd" "$docker_cli" -H "unix://$work/docker.sock" version || { tail -20 "$work/dockerd.log" >&2; exit 1; }
up[docker]=1
containerd_pid=$(ps -o pid= -o comm= --ppid "$dockerd_pid" | awk '$2 == "containerd" {print $1}' | head -1)

if [[ -n $berth ]]; then
  "$berth" daemon --host "unix://$work/berth.sock" --data-root "$work/berth-root" --exec-root "$work/run" \
    --bip "$berth_bip" >"$work/berth.log" 2>&1 &
  echo $! >"$work/berth.pid"
  if wait_for "berth daemon" "$docker_cli" -H "unix://$work/berth.sock" version; then
    up[berth]=1
  else
    say "berth daemon log:"; tail -20 "$work/berth.log" >&2; berth=""
  fi
fi

bench_podman "$podman_runtime"
engines=(docker)
[[ -n $berth ]] && engines=(berth docker)
if [[ ${NO_PODMAN:-} != 1 ]]; then
  up[podman]=1
  engines+=(podman)
fi
cli() { case $1 in # engine: its client command
  berth) echo "$docker_cli -H unix://$work/berth.sock";;
  docker) echo "$docker_cli -H unix://$work/docker.sock";;
  podman) echo "$pm_cmd";;
esac; }
none() { [[ $1 == podman ]] && echo --network=none || echo "--network none"; }
rm_all() { # engine: removes all its containers (best effort, quietly)
  local ids
  ids=$(timeout 60 $(cli "$1") ps -aq 2>/dev/null) || return 0
  [[ -z $ids ]] && return 0
  if [[ $1 == podman ]]; then timeout 120 $(cli "$1") rm -f -t 0 $ids >/dev/null 2>&1
  else timeout 120 $(cli "$1") rm -f $ids >/dev/null 2>&1; fi
}
facts=$work/facts
fact() { echo "$*" >>"$facts"; }
declare -A err=()
fail() { err[$1]="${err[$1]:+${err[$1]}; }$2"; say "$1: FAILED: $2"; }

if [[ " ${engines[*]} " == *" podman "* ]]; then
  fact "podman_backend $($pm_cmd info --format '{{.Host.NetworkBackend}}' 2>/dev/null)"
  fact "podman_subnet $($pm_cmd network inspect podman --format '{{range .Subnets}}{{.Subnet}} {{end}}' 2>/dev/null)"
  fact "podman_bridge $($pm_cmd network inspect podman --format '{{.NetworkInterface}}' 2>/dev/null)"
  ((podman0_before)) && say "$me: WARNING: podman0 existed before the run: podman shares it; it is left in place"
fi

say "== importing bb and iperf into each engine"
for e in "${engines[@]}"; do
  for img in bb iperf; do
    if ! $(cli "$e") import --change 'CMD ["sh"]' "$work/$img.tar" "$img" >"$work/import-$e.log" 2>&1; then
      fail "$e" "import $img: $(tail -2 "$work/import-$e.log" | tr '\n' ' ')"
    fi
  done
done

# ---- does each engine run a container, bridged and not; what address does it get
say "== one container each: bridged \`run --rm bb ip -4 -o addr show eth0\` and \`run --rm $(none x) bb echo ok\`"
bridged=() unbridged=()
for e in "${engines[@]}"; do
  [[ -n ${err[$e]:-} ]] && continue
  c=$(cli "$e")
  if out=$($c run --rm bb sh -c 'ip -4 -o addr show eth0; ip route show default' 2>&1) && [[ $out == *inet* ]]; then
    addr=$(awk '/inet/ {print $4}' <<<"$out"); gw=$(awk '/default/ {print $3}' <<<"$out")
    say "$e: eth0 $addr, default via $gw"
    fact "addr $e $addr via $gw"
    bridged+=("$e")
  else
    fail "$e" "bridged run: $(printf '%s' "$out" | tail -3 | tr '\n' ' ')"
  fi
  if out=$($c run --rm $(none "$e") bb echo ok 2>&1) && [[ $out == ok ]]; then unbridged+=("$e")
  else fail "$e" "run $(none "$e"): $(printf '%s' "$out" | tail -3 | tr '\n' ' ')"; fi
done

# ---- 1. run --rm bb true, bridge vs none, alternating
label() { case $1 in
  berth) echo "berth daemon (docker CLI)";; docker) echo "dockerd (docker CLI)";; podman) echo "podman ($podman_runtime)";;
esac; }
if [[ ${SKIP_RUN:-} != 1 ]] && ((${#bridged[@]} + ${#unbridged[@]})); then
  say "== run --rm bb true, default bridge and no network, $runs rounds"
  names=() cmds=()
  for e in "${engines[@]}"; do
    [[ " ${bridged[*]} " == *" $e "* ]] && { names+=("$(label "$e"), bridge"); cmds+=("$(cli "$e") run --rm bb true"); }
    [[ " ${unbridged[*]} " == *" $e "* ]] && { names+=("$(label "$e"), none"); cmds+=("$(cli "$e") run --rm $(none "$e") bb true"); }
  done
  alternate "$work/run.json" "$runs"
  for e in "${engines[@]}"; do
    n=$($(cli "$e") ps -aq 2>/dev/null | wc -l)
    ((n == 0)) || { say "$e: $n containers left after run --rm"; fact "leftover $e $n"; rm_all "$e"; }
  done
fi

# ---- 2. TCP throughput through a published port on 127.0.0.1
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
tcp_once() { # engine round: one iperf3 run; appends "tcp ENGINE BITS/S RETRANSMITS" to facts
  local e=$1 r=$2 c id i port
  c=$(cli "$e"); port=${port_of[$e]}
  if ! id=$($c run -d -p "127.0.0.1:$port:5201" iperf iperf3 -s -1 -p 5201 2>"$work/tcp-$e.err"); then
    fail "$e" "run -d -p 127.0.0.1:$port:5201 iperf: $(tail -2 "$work/tcp-$e.err" | tr '\n' ' ')"; return 1
  fi
  for i in $(seq 100); do $c logs "$id" 2>&1 | grep -q 'Server listening' && break; sleep 0.1; done
  if [[ $e == docker ]]; then   # the proxies serving the port now
    fact "proxies docker $(ps -o comm= --ppid "$dockerd_pid" | grep -c docker-proxy)"
  fi
  if timeout $((tcp_secs + 30)) iperf3 -c 127.0.0.1 -p "$port" -t "$tcp_secs" -J >"$work/tcp-$e-$r.json" 2>"$work/tcp-$e.err"; then
    python3 - "$work/tcp-$e-$r.json" "$e" >>"$facts" <<'PY'
import json, sys
j = json.load(open(sys.argv[1])); end = j["end"]
print("tcp", sys.argv[2], end["sum_received"]["bits_per_second"], end["sum_sent"].get("retransmits", 0),
      end["cpu_utilization_percent"]["host_total"])
PY
  else
    fail "$e" "iperf3 -c 127.0.0.1 -p $port (round $r): $( (python3 -c 'import json,sys; print(json.load(open(sys.argv[1])).get("error", ""))' "$work/tcp-$e-$r.json" 2>/dev/null; tail -2 "$work/tcp-$e.err") | tr '\n' ' ')"
    $c logs "$id" >"$work/tcp-$e-server.log" 2>&1
  fi
  if [[ $e == podman ]]; then $c rm -f -t 0 "$id" >/dev/null 2>&1; else $c rm -f "$id" >/dev/null 2>&1; fi
  return 0
}
if [[ ${SKIP_TCP:-} != 1 ]]; then
  declare -A port_of=()
  tcp_engines=()
  for e in "${bridged[@]}"; do port_of[$e]=$(free_port); tcp_engines+=("$e"); done
  say "== TCP through -p 127.0.0.1:P:5201, iperf3 -t $tcp_secs, $tcp_rounds rounds (${tcp_engines[*]}; ports ${port_of[*]})"
  n=${#tcp_engines[@]}
  for ((r = 0; r < tcp_rounds; r++)); do
    for ((i = 0; i < n; i++)); do
      e=${tcp_engines[$(((i + r) % n))]}
      [[ " ${!err[*]} " == *" tcp-$e "* ]] && continue
      tcp_once "$e" "$r" || err[tcp-$e]=1
      printf '.' >&2
    done
  done
  echo >&2
fi

# ---- results
for e in berth docker podman; do [[ -n ${err[$e]:-} ]] && fact "error $e ${err[$e]}"; done
fact "meta runs=$runs tcp_rounds=$tcp_rounds tcp_secs=$tcp_secs podman_runtime=$podman_runtime"
fact "versions dockerd=$(dockerd --version | awk '{print $3}' | tr -d ,) podman=$(podman --version | awk '{print $3}') $podman_runtime=$($podman_runtime --version | head -1 | awk '{print $3}') docker_cli=$($docker_cli version -f '{{.Client.Version}}' 2>/dev/null) iperf3=$(iperf3 --version | head -1 | awk '{print $2}') netavark=$(/usr/lib/podman/netavark --version 2>/dev/null | awk '{print $2}')"
python3 - "$work" <<'PY'
import json, os, statistics, sys
w = sys.argv[1]
errors, meta, tcp, proxies, addr, other = {}, {}, {}, [], {}, {}
for line in open(os.path.join(w, "facts")):
    p = line.split()
    if not p: continue
    if p[0] == "error": errors[p[1]] = line.split(" ", 2)[2].strip()
    elif p[0] in ("meta", "versions"):
        for kv in p[1:]:
            k, _, v = kv.partition("="); meta[k] = v
    elif p[0] == "tcp": tcp.setdefault(p[1], []).append((float(p[2]), int(p[3]), float(p[4])))
    elif p[0] == "proxies": proxies.append(int(p[2]))
    elif p[0] == "addr": addr[p[1]] = " ".join(p[2:])
    elif p[0] == "leftover": other.setdefault("leftover", []).append(f"{p[1]} {p[2]}")
    else: other[p[0]] = " ".join(p[1:])
rt = meta.get("podman_runtime", "runc")
label = {"berth": "berth daemon (docker CLI)", "docker": "dockerd (docker CLI)", "podman": f"podman ({rt})"}
title = {"berth": "berth", "docker": f"dockerd {meta.get('dockerd')}", "podman": f"podman {meta.get('podman')} + {rt}"}
run = {}
if os.path.exists(os.path.join(w, "run.json")):
    run = {r["command"]: r for r in json.load(open(os.path.join(w, "run.json")))["results"]}
def row(cells): print("| " + " | ".join(cells) + " |")
def ms(x): return f"{x * 1000:.0f} ms" if x is not None else "-"
def med(e, net): return run.get(f"{label[e]}, {net}", {}).get("median")
engines = ["berth", "docker", "podman"]
print(f"\n## Results: docker CLI {meta.get('docker_cli')}, dockerd {meta.get('dockerd')}, podman {meta.get('podman')} "
      f"with {rt} {meta.get(rt)} and netavark {meta.get('netavark')} ({other.get('podman_backend', '?')}), iperf3 {meta.get('iperf3')}")
for e in engines:
    if e in addr: print(f"- {e}: a bridged container gets eth0 {addr[e]}")
if "podman_subnet" in other: print(f"- podman's default network: {other['podman_subnet']} on {other.get('podman_bridge', '?')}")
print(f"\n### `run --rm bb true`: medians of {meta.get('runs')} alternating rounds\n")
row(["", *[title[e] for e in engines]]); row(["---"] * 4)
def cells(net):
    out = []
    for e in engines:
        r = run.get(f"{label[e]}, {net}")
        if r and "median" in r:
            out.append(f"{ms(r['median'])} ({ms(r['min'])[:-3]}-{ms(r['max'])}" + (f", {r['failed']} FAILED" if r["failed"] else "") + ")")
        else: out.append("FAILED: " + (errors.get(e) or (f"{r['failed']} runs failed" if r else "not run")))
    return out
row(["default bridge", *cells("bridge")])
row(["`--network none`", *cells("none")])
delta, paired = {}, {}
for e in engines:
    b, n = med(e, "bridge"), med(e, "none")
    if b is not None and n is not None: delta[e] = b - n
    rb, rn = run.get(f"{label[e]}, bridge", {}), run.get(f"{label[e]}, none", {})
    tb, tn = rb.get("times", []), rn.get("times", [])
    if tb and len(tb) == len(tn) and not rb.get("failed") and not rn.get("failed"):
        paired[e] = statistics.median(x - y for x, y in zip(tb, tn))
row(["bridge - none (medians)", *[f"{delta[e] * 1000:+.0f} ms" if e in delta else "-" for e in engines]])
row(["bridge - none (median of per-round differences)", *[f"{paired[e] * 1000:+.0f} ms" if e in paired else "-" for e in engines]])
bb = med("berth", "bridge")
row(["berth bridged / this bridged", *["1.00" if e == "berth" and bb else (f"{bb / med(e, 'bridge'):.3f}" if bb and med(e, "bridge") else "-") for e in engines]])
print()
print(f"### TCP through `-p 127.0.0.1:P:5201` on loopback: iperf3 -t {meta.get('tcp_secs')}, {meta.get('tcp_rounds')} alternating rounds\n")
row(["", *[title[e] for e in engines]]); row(["---"] * 4)
how = {"berth": "nftables DNAT, no proxy", "docker": "docker-proxy (userland)" + (f", {max(proxies)} process(es) for the port" if proxies else ""),
       "podman": "netavark DNAT (iptables)"}
row(["path", *[how[e] for e in engines]])
tm = {e: statistics.median(x[0] for x in v) for e, v in tcp.items()}
row(["median Gbit/s (receiver)", *[f"{tm[e] / 1e9:.2f}" if e in tm else "FAILED: " + errors.get(e, "not run") for e in engines]])
row(["all rounds, Gbit/s", *[", ".join(f"{x[0] / 1e9:.2f}" for x in tcp[e]) if e in tcp else "-" for e in engines]])
row(["client host CPU %, median", *[f"{statistics.median(x[2] for x in tcp[e]):.0f}" if e in tcp else "-" for e in engines]])
row(["retransmits, median", *[f"{statistics.median(x[1] for x in tcp[e]):.0f}" if e in tcp else "-" for e in engines]])
row(["berth / this", *["1.00" if e == "berth" and "berth" in tm else (f"{tm['berth'] / tm[e]:.2f}" if "berth" in tm and e in tm else "-") for e in engines]])
print()
def verdict(ok): return "met" if ok else "NOT met"
if "berth" in delta:
    d = paired.get("berth", delta["berth"])
    print(f"berth's bridge setup: {delta['berth'] * 1000:+.1f} ms (medians), {paired.get('berth', float('nan')) * 1000:+.1f} ms (paired) "
          f"over --network none (target < 10 ms: {verdict(max(delta['berth'], d) < 0.010)})")
if bb and med("docker", "bridge"):
    x = bb / med("docker", "bridge")
    print(f"berth bridged run / dockerd bridged run = {x:.3f} (target <= 0.25: {verdict(x <= 0.25)})")
if bb and med("podman", "bridge"): print(f"berth bridged run / podman bridged run = {bb / med('podman', 'bridge'):.3f}")
if "berth" in tm and "docker" in tm:
    x = tm["berth"] / tm["docker"]
    print(f"TCP via published port: berth / dockerd = {x:.2f} (target >= 1: {verdict(x >= 1)})")
if "berth" in tm and "podman" in tm: print(f"TCP via published port: berth / podman = {tm['berth'] / tm['podman']:.2f}")
if other.get("leftover"): print(f"containers left after the run --rm rounds: {', '.join(other['leftover'])}")
for e, why in errors.items(): print(f"FAILED: {e}: {why}")
PY
