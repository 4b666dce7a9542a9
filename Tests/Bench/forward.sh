#!/usr/bin/env bash
# Tests/Bench/forward.sh — `wisp forward` through a 3-hop sealed path next to a direct path,
# in one run, with WireGuard (wireguard-go) as the application:
#
#   client ns: wg "mesh"   -> 127.0.0.1:51000 wisp forward -> r1 -> r2 -> x (exit) --veth--> server ns :51820
#              wg "direct" --------------------------- veth ----------------------------> server ns :51821
#
# Both tunnels have MTU 1348 (the forward's 1380-byte budget - 32) and end on the same server,
# so the only difference is the mesh. Figures (`bench NAME VALUE UNIT`):
#   forward_tcp_mbit_3hop / _direct      iperf3 TCP inside the tunnel, server to client, 3 s
#   forward_tcp_up_mbit_3hop / _direct   the same, client to server
#   forward_tcp_ratio                    3hop / direct (server to client)
#   forward_rtt_ms_3hop / _direct        ping inside the tunnel, average of 50 at 20 ms
#   forward_added_rtt_ms                 3hop - direct
# Network namespaces only (needs root); every process is killed and every namespace deleted
# on exit. A figure that could not be measured prints as n/a.
set -uo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
WISP=${WISP_BIN:-$root/.build-firmware/x86_64/wisp}
SECS=${BENCH_FORWARD_SECONDS:-3}
source "$root/Tests/Bench/cleanup.bash"
bench_scratch forward-bench
na() { for n in tcp_mbit_3hop tcp_mbit_direct tcp_up_mbit_3hop tcp_up_mbit_direct tcp_ratio rtt_ms_3hop rtt_ms_direct added_rtt_ms; do
  echo "bench forward_$n n/a"; done; }
[ "$(id -u)" = 0 ] || { echo "note: forward.sh needs root (network namespaces); skipped"; na; exit 0; }
[ -x "$WISP" ] || { echo "forward.sh: no $WISP" >&2; na; exit 1; }
missing=()
for t in ip:iproute2 wireguard-go:wireguard-go wg:wireguard-tools iperf3:iperf3 ping:iputils-ping; do
  command -v "${t%%:*}" >/dev/null || missing+=("${t#*:}")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "forward.sh: installing ${missing[*]}" >&2
  for try in 1 2 3; do
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends -o DPkg::Lock::Timeout=120 \
      -o Dpkg::Options::=--force-unsafe-io "${missing[@]}" >/dev/null 2>&1 && break
    apt-get update -qq -o Acquire::Retries=3 >/dev/null 2>&1 || true
    sleep $((try * 5))
  done
fi
for c in ip wireguard-go wg iperf3 ping; do command -v $c >/dev/null || { echo "forward.sh: no $c" >&2; na; exit 1; }; done

p=fb$$- net=10.79.0
wgm=wgm$$ wgd=wgd$$ wgs=wgs$$ wgt=wgt$$
namespaces=()
ns_cleanup() {
  local n q
  exec 2>/dev/null   # the shell's "Killed" notices
  for n in "${namespaces[@]:-}"; do
    [ -n "$n" ] || continue
    for q in $(ip netns pids "$n" 2>/dev/null); do kill -9 "$q" 2>/dev/null; done
  done
  bench_cleanup
  for n in "${namespaces[@]:-}"; do [ -n "$n" ] && ip netns del "$n" 2>/dev/null; done
  rm -f /var/run/wireguard/{$wgm,$wgd,$wgs,$wgt}.sock 2>/dev/null
}
trap ns_cleanup EXIT
trap 'exit 130' INT TERM
die() { echo "forward.sh: $*" >&2; na; exit 1; }
wait_file() { local i; for ((i = 0; i < 100; i++)); do grep -qs -- "$2" "$1" && return 0; sleep 0.1; done; return 1; }

ip netns add "${p}br" || die "cannot create network namespaces"
namespaces+=("${p}br")
ip -n "${p}br" link add br0 type bridge && ip -n "${p}br" link set br0 up
declare -A ipof=([c]=10 [r1]=21 [r2]=22 [x]=31)
for n in c r1 r2 x srv; do ip netns add "$p$n"; namespaces+=("$p$n"); ip -n "$p$n" link set lo up; done
for n in c r1 r2 x; do
  ip link add name eth0 netns "$p$n" type veth peer name "v$n" netns "${p}br"
  ip -n "${p}br" link set "v$n" master br0 up
  ip -n "$p$n" addr add "$net.${ipof[$n]}/24" dev eth0 && ip -n "$p$n" link set eth0 up
done
ip link add name srv0 netns "${p}x" type veth peer name x0 netns "${p}srv"
ip link add name srv0 netns "${p}c" type veth peer name c0 netns "${p}srv"
ip -n "${p}x" addr add 10.89.0.1/24 dev srv0 && ip -n "${p}x" link set srv0 up
ip -n "${p}srv" addr add 10.89.0.2/24 dev x0 && ip -n "${p}srv" link set x0 up
ip -n "${p}c" addr add 10.90.0.1/24 dev srv0 && ip -n "${p}c" link set srv0 up
ip -n "${p}srv" addr add 10.90.0.2/24 dev c0 && ip -n "${p}srv" link set c0 up

# The nodes: r1, r2 relays, x the exit to the WireGuard server; node links pinned (--peer).
declare -A fp
for n in r1 r2 x; do
  "$WISP" keygen --state-dir "$tmp/$n" >/dev/null || die "keygen"
  fp[$n]=$("$WISP" id --state-dir "$tmp/$n" | sed -n 's/^fingerprint //p')
done
for n in r1 r2 x; do
  args=(--listen "$net.${ipof[$n]}:7400" --state-dir "$tmp/$n" --name "$n" --lab-addresses yes --duration 120)
  for m in r1 r2 x; do [ $m != $n ] && args+=(--peer "$m=$net.${ipof[$m]}:7400=${fp[$m]}"); done
  [ $n = x ] && args+=(--exit 10.89.0.2:51820)
  ip netns exec "$p$n" "$WISP" run "${args[@]}" >"$tmp/$n.log" 2>&1 & pids+=($!)
done
for n in r1 r2 x; do wait_file "$tmp/$n.log" 'msg="listening"' || die "node $n did not start"; done
ip netns exec "${p}c" "$WISP" forward --listen 127.0.0.1:51000 --to 10.89.0.2:51820 \
  --via "$net.21:7400,$net.22:7400,$net.31:7400" --keys "${fp[r1]},${fp[r2]},${fp[x]}" >"$tmp/fwd.log" 2>&1 & pids+=($!)
wait_file "$tmp/fwd.log" '^forward: 127.0.0.1' || die "the forward did not start"

# WireGuard: two server interfaces (one per client interface), two client interfaces.
umask 077
for k in c1 c2 s1 s2; do wg genkey >"$tmp/$k.key"; wg pubkey <"$tmp/$k.key" >"$tmp/$k.pub"; done
umask 022
wgup() {  # NS IF KEY PORT|- PEERPUB ALLOWED ENDPOINT|- ADDR
  local ns=$1 ifc=$2 key=$3 port=$4 pub=$5 allowed=$6 ep=$7 addr=$8 i
  ip netns exec "$p$ns" wireguard-go -f "$ifc" >"$tmp/$ifc.log" 2>&1 & pids+=($!)
  for ((i = 0; i < 50; i++)); do [ -S "/var/run/wireguard/$ifc.sock" ] && break; sleep 0.1; done
  local a=(private-key "$tmp/$key")
  [ "$port" != - ] && a+=(listen-port "$port")
  a+=(peer "$(cat "$tmp/$pub")" allowed-ips "$allowed")
  [ "$ep" != - ] && a+=(endpoint "$ep" persistent-keepalive 25)
  ip netns exec "$p$ns" wg set "$ifc" "${a[@]}" || return 1
  ip -n "$p$ns" addr add "$addr" dev "$ifc" && ip -n "$p$ns" link set "$ifc" mtu 1348 up
}
wgup srv "$wgs" s1.key 51820 c1.pub 10.99.0.1/32 - 10.99.0.2/24 || die "wireguard server (mesh)"
wgup srv "$wgt" s2.key 51821 c2.pub 10.98.0.1/32 - 10.98.0.2/24 || die "wireguard server (direct)"
wgup c "$wgm" c1.key - s1.pub 10.99.0.2/32 127.0.0.1:51000 10.99.0.1/24 || die "wireguard client (mesh)"
wgup c "$wgd" c2.key - s2.pub 10.98.0.2/32 10.90.0.2:51821 10.98.0.1/24 || die "wireguard client (direct)"
ip netns exec "${p}srv" iperf3 -s >"$tmp/iperf3-s.log" 2>&1 & pids+=($!)
sleep 0.3

declare -A fig
# rtt KIND ADDR; tcp KIND ADDR (-R: server to client)
rtt() {
  ip netns exec "${p}c" ping -c 3 -i 0.2 -W 3 "$2" >/dev/null 2>&1   # handshake, circuit
  fig[rtt_ms_$1]=$(ip netns exec "${p}c" ping -q -n -c 50 -i 0.02 -W 2 "$2" 2>/dev/null |
    sed -n 's/^rtt min\/avg\/max\/mdev = [^/]*\/\([^/]*\)\/.*/\1/p')
}
tcp() {
  local j
  j=$(ip netns exec "${p}c" timeout $((SECS + 20)) iperf3 -c "$2" -t "$SECS" -J "${@:3}" 2>/dev/null) || return 0
  fig[$1]=$(python3 -c 'import json, sys; print("%.1f" % (json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"] / 1e6))' <<<"$j" 2>/dev/null)
}
rtt 3hop 10.99.0.2; rtt direct 10.98.0.2
tcp tcp_mbit_3hop 10.99.0.2 -R; tcp tcp_mbit_direct 10.98.0.2 -R
tcp tcp_up_mbit_3hop 10.99.0.2; tcp tcp_up_mbit_direct 10.98.0.2
ratio() { [ -n "$1" ] && [ -n "$2" ] && awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b }'; }
fig[tcp_ratio]=$(ratio "${fig[tcp_mbit_3hop]:-}" "${fig[tcp_mbit_direct]:-}")
[ -n "${fig[rtt_ms_3hop]:-}" ] && [ -n "${fig[rtt_ms_direct]:-}" ] &&
  fig[added_rtt_ms]=$(awk -v a="${fig[rtt_ms_3hop]}" -v b="${fig[rtt_ms_direct]}" 'BEGIN { printf "%.3f", a - b }')
grep -q '(sealed)' "$tmp/fwd.log" || echo "note: forward: the circuit was not sealed: $(grep '^forward: 127' "$tmp/fwd.log" | tail -1)"
echo "note: circuit: $(grep -m1 '(sealed)' "$tmp/fwd.log" | sed 's/^forward: //')"
status=0
for n in tcp_mbit_3hop tcp_mbit_direct tcp_up_mbit_3hop tcp_up_mbit_direct tcp_ratio rtt_ms_3hop rtt_ms_direct added_rtt_ms; do
  case $n in tcp_ratio) u=x ;; rtt*|added*) u=ms ;; *) u=Mbit/s ;; esac
  if [ -n "${fig[$n]:-}" ]; then echo "bench forward_$n ${fig[$n]} $u"; else echo "bench forward_$n n/a"; status=1; fi
done
exit $status
