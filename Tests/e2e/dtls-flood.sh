#!/usr/bin/env bash
# DTLS flood against a node that is relaying for established sessions (loopback only):
#   wisp client ==DTLS==> node A (x86_64, the target) ==DTLS==> node B (exit) --> echo
# Phase 1 measures the client's echoed throughput unloaded; phase 2 repeats it, the client's
# session established first, while Tests/e2e/dtls_flood.py sends 10,000 ClientHellos from forged 127.x source addresses and
# 1,000 cookie-valid handshakes per second from 256 real sources (abandoned after the
# server's flight). Checks on A:
#   - established throughput under flood >= 80% of unloaded;
#   - bytes sent to unverified addresses <= bytes received from them (A's counters, and
#     what the flooder sniffed on lo for the forged sources);
#   - RSS stays flat (growth printed; bounded by the half-open cap);
#   - the refusals are counted by reason, and the node link and client session stay up.
# Needs root (raw socket for forged sources). Every load loop is bounded (flood --deadline).
source "$(dirname "$0")/lib.bash"
[ "$(id -u)" = 0 ] || fail "needs root (raw sockets for forged source addresses)"
base=$((23000 + RANDOM % 20000))
a=$base b=$((base + 1)) e=$((base + 2))
log=$(mktemp -d /tmp/wisp-flood.XXXXXX)
trap 'cleanup; rm -rf "$log"' EXIT
W=.build-firmware/x86_64/wisp
SECS=${WISP_FLOOD_SECONDS:-4}
RATE=${WISP_FLOOD_KBIT:-40000}

$W keygen --state-dir "$state/A" >/dev/null
$W keygen --state-dir "$state/B" >/dev/null
fa=$($W id --state-dir "$state/A" | sed -n 's/^fingerprint //p')
fb=$($W id --state-dir "$state/B" | sed -n 's/^fingerprint //p')
$W run --listen 127.0.0.1:$a --state-dir "$state/A" --name A --peer B=127.0.0.1:$b=$fb --credit-window 0 --lab-addresses yes \
  --status-socket "$log/a.sock" --duration 90 2>"$log/a.log" & apid=$!; pids+=($apid)
$W run --listen 127.0.0.1:$b --state-dir "$state/B" --name B --peer A=127.0.0.1:$a=$fa --exit 127.0.0.1:$e \
  --credit-window 0 --lab-addresses yes --duration 90 2>"$log/b.log" & pids+=($!)
python3 Tests/e2e/wisppeer.py echo $e 80 >/dev/null & pids+=($!)
wait_udp $e
for _ in $(seq 100); do grep -q 'msg="session up"' "$log/a.log" && break; sleep 0.1; done
grep -q 'msg="session up"' "$log/a.log" || { cat "$log/a.log"; fail "node link did not come up"; }

client() {  # client OUT: one DTLS client run of $SECS seconds at $RATE kbit/s
  timeout 60 $W client --via 127.0.0.1:$a,127.0.0.1:$b --keys "$fa,$fb" --exit 127.0.0.1:$e --dtls on \
    --seconds "$SECS" --size 1200 --rate-kbit "$RATE" >"$1" 2>&1 || { cat "$1"; fail "client failed"; }
}
mbit() { sed -n 's/^client: sent.*, \([0-9.]*\) Mbit\/s, rtt.*/\1/p' "$1"; }
rss() { awk '/^VmRSS/ {print $2}' /proc/$apid/status; }
status() { $W status --socket "$log/a.sock" --json; }

client "$log/warm.out"             # warm-up: allocator arenas, the first client session
rss0=$(rss)
client "$log/unloaded.out"
unloaded=$(mbit "$log/unloaded.out")
rss1=$(rss)

# The loaded run: its session is established first (established sessions must keep
# forwarding); the flood starts 1.5 s in and outlasts the seconds that are measured.
timeout 60 $W client --via 127.0.0.1:$a,127.0.0.1:$b --keys "$fa,$fb" --exit 127.0.0.1:$e --dtls on \
  --seconds $((SECS + 3)) --size 1200 --rate-kbit "$RATE" >"$log/loaded.out" 2>&1 & cpid=$!; pids+=($cpid)
sleep 1.5
python3 Tests/e2e/dtls_flood.py --target 127.0.0.1:$a --spoofed 10000 --spoof-rate 2500 \
  --valid-rate 1000 --valid-seconds $((SECS + 1)) --valid-sources 256 --deadline 40 \
  --json "$log/flood.json" 2>"$log/flood.err" & fpid=$!; pids+=($fpid)
wait $cpid || { cat "$log/loaded.out"; fail "the client established before the flood failed"; }
wait $fpid || { cat "$log/flood.err"; fail "flood generator failed"; }
# Mean of the client's per-second lines t=3 s .. t=SECS+2 s: all of them inside the flood.
loaded=$(awk -v hi=$((SECS + 2)) '/^t=[0-9]+s client:/ { t = substr($1, 3) + 0; if (t >= 3 && t <= hi) { s += $5; n++ } }
  END { if (n) printf "%.3f", s / n }' "$log/loaded.out")
[ -n "$loaded" ] || { cat "$log/loaded.out"; fail "no per-second lines from the loaded client"; }
rss2=$(rss)
sleep 12   # half-open handshakes expire (10 s), buffers go back
rss3=$(rss)
st=$(status)
client "$log/after.out"
after=$(mbit "$log/after.out")

python3 - "$unloaded" "$loaded" "$after" "$rss0" "$rss1" "$rss2" "$rss3" "$log/flood.json" "$st" <<'PY'
import json, sys
unloaded, loaded, after = map(float, sys.argv[1:4])
rss0, rss1, rss2, rss3 = map(int, sys.argv[4:8])
f = json.load(open(sys.argv[8]))
s = json.loads(sys.argv[9])['sessions']
r = s['refused']
print('check flood: %d forged ClientHellos at %.0f/s, %d cookie-valid handshakes at %.0f/s from %d sources' % (
  f['spoof_sent'], f['spoof_rate_achieved'], f['valid_cookie_hellos_sent'], f['valid_rate_achieved'], f['valid_sources']))
print('check throughput: unloaded %.2f Mbit/s, under flood %.2f (%.0f%%), after %.2f' % (
  unloaded, loaded, 100 * loaded / unloaded, after))
print('check unverified: %d bytes in, %d bytes out (%d cookies); forged sources sniffed: %d bytes sent, %d back' % (
  s['unverified_bytes_in'], s['unverified_bytes_out'], s['hello_verify_requests'], f['spoof_bytes_sent'], f.get('spoof_reply_bytes', -1)))
print('check rss kB: before %d, unloaded %d, end of flood %d, 12 s later %d (growth %d kB)' % (rss0, rss1, rss2, rss3, rss2 - rss1))
print('check refusals: %s; handshakes full %d, established now %d' % (
  {k: v for k, v in r.items() if v}, s['handshakes_full'], s['established']))
assert f['spoof_sent'] >= 9900, 'the flood did not run'
assert f['valid_cookie_hellos_sent'] >= 1000, 'no cookie-valid handshakes were attempted'
assert loaded >= 0.8 * unloaded, 'established throughput fell below 80% under flood'
assert s['unverified_bytes_out'] <= s['unverified_bytes_in'], 'amplification'
if f.get('spoof_sniffing'):
    assert f['spoof_reply_bytes'] <= f['spoof_bytes_sent'], 'amplification seen on the wire'
assert s['hello_verify_requests'] >= 9000, 'forged hellos were not answered statelessly'
assert r['half_open_full'] + r['handshake_rate'] + r['source_rate'] > 0, 'no admission refusal counted'
assert rss2 - rss1 < 8192, 'RSS grew by more than 8 MiB under flood'
assert s['established'] >= 1, 'the node link did not survive'
assert after >= 0.8 * unloaded, 'throughput did not recover'
PY
echo "e2e dtls-flood: unloaded ${unloaded} Mbit/s, flooded ${loaded} Mbit/s, rss ${rss1} -> ${rss2} kB"
