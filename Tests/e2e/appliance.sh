#!/usr/bin/env bash
# The headless-appliance contract of a running node (firmware build):
#  - systemd notify protocol over NOTIFY_SOCKET: READY=1 after binding, WATCHDOG=1 at
#    half of WATCHDOG_USEC, STOPPING=1 on SIGTERM (this script plays systemd's side);
#  - SIGTERM: exit 0 within 2 s; SIGHUP: a valid config is applied without dropping an
#    established circuit, an invalid one is refused and the old one kept;
#  - `wisp status` (text and --json) over the UNIX socket, Prometheus metrics via curl.
source "$(dirname "$0")/lib.bash"
command -v curl >/dev/null || apt-get install -y -qq curl >/dev/null
dir=$(mktemp -d /tmp/wisp-appliance.XXXXXX)
port=$((20000 + RANDOM % 20000)) echo_port=$((port + 1)) metrics=$((port + 2)) peer_port=$((port + 3))
cat >"$dir/wisp.conf" <<CONF
name = appliance-test
listen = 127.0.0.1:$port
exits = 127.0.0.1:$echo_port
metrics = 127.0.0.1:$metrics
status_socket = $dir/status.sock
state_dir = $dir/state
peers = neighbour=127.0.0.1:$peer_port
lab_addresses = yes
links = optional
# This test is about systemd, reload and status: its plain client signs no receipts.
credit_window = 0
CONF
bin=.build-firmware/x86_64/wisp
$bin config check "$dir/wisp.conf" >/dev/null || fail "config check rejected a good file"
# Without lab mode a loopback exit is a config error that names the exit and why.
grep -v '^lab_addresses' "$dir/wisp.conf" >"$dir/public.conf"
rc=0; $bin config check "$dir/public.conf" >/dev/null 2>"$dir/check.err" || rc=$?
[ $rc = 1 ] && grep -q "'exits': 127.0.0.1:$echo_port is loopback (127.0.0.0/8" "$dir/check.err" \
  || { cat "$dir/check.err"; fail "config check accepted a loopback exit without lab_addresses (rc $rc)"; }
check "config check: $(cat "$dir/check.err")"
python3 Tests/e2e/wisppeer.py echo $echo_port 20 >/dev/null & pids+=($!)
wait_udp $echo_port
# A second node, the first one's configured peer: it answers the PINGs.
$bin run --listen 127.0.0.1:$peer_port --state-dir "$dir/peer" --links optional --duration 25 2>/dev/null & pids+=($!)
python3 - "$dir" "$bin" "$port" "$echo_port" "$metrics" <<'PY'
import json, os, signal, socket, subprocess, sys, time
sys.path.insert(0, 'Tests/e2e')
from wisppeer import *
d, binary, port, echo_port, metrics = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
ns = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
ns.bind(d + '/notify.sock'); ns.settimeout(5)
env = dict(os.environ, NOTIFY_SOCKET=d + '/notify.sock', WATCHDOG_USEC='400000')
t0 = time.time()
p = subprocess.Popen([binary, 'run', '--config', d + '/wisp.conf'], env=env, stderr=open(d + '/log', 'w'))
env['WATCHDOG_PID'] = str(p.pid)
import atexit
atexit.register(lambda: p.poll() is None and p.kill())   # never leave the node behind on a failure
def notes(until, want):
    seen = []
    while time.time() < until:
        try: m = ns.recv(4096).decode()
        except socket.timeout: break
        seen.append(m)
        if want in m: return seen
    raise SystemExit('FAILED: no %r from the node (saw %r)' % (want, seen))
notes(time.time() + 5, 'READY=1')
print('check notify: READY=1 after %.0f ms' % ((time.time() - t0) * 1000))
w0 = time.time(); n = 0
while time.time() - w0 < 1.1:
    if 'WATCHDOG=1' in ns.recv(4096).decode(): n += 1
assert 4 <= n <= 8, 'expected 5-7 WATCHDOG=1 in 1.1 s at 200 ms, got %d' % n
print('check notify: %d WATCHDOG=1 in 1.1 s (WATCHDOG_USEC=400000)' % n)
# An established circuit carries traffic across SIGHUP.
c = Client()
fwd = c.build(('127.0.0.1', port), hop(2, echo_port))
got, dups, _ = c.transfer(('127.0.0.1', port), fwd, 200, 100)
assert len(got) == 200
with open(d + '/wisp.conf', 'a') as f: f.write('rate_mbit = 40\nled_chip = no-such-chip\nled_status = GPIO17\n')
p.send_signal(signal.SIGHUP); time.sleep(0.3)
got, dups, _ = c.transfer(('127.0.0.1', port), fwd, 200, 100)
assert len(got) == 200, 'circuit lost across a valid reload'
with open(d + '/wisp.conf', 'a') as f: f.write('listen = garbage\n')
p.send_signal(signal.SIGHUP); time.sleep(0.3)
got, dups, _ = c.transfer(('127.0.0.1', port), fwd, 200, 100)
assert len(got) == 200, 'circuit lost across a refused reload'
log = open(d + '/log').read()
assert 'msg="reloaded"' in log and 'rate_mbit=40' in log, log
assert 'reload failed, keeping the running config' in log and 'wisp.conf:15' in log, log
print('check SIGHUP: valid config applied (rate_mbit=40, new LED lines tried: headless with a clear reason), invalid refused with file:line, circuit kept across both')
# Status over the UNIX socket, and metrics.
st = subprocess.run([binary, 'status', '--socket', d + '/status.sock'], capture_output=True, text=True, timeout=5)
assert st.returncode == 0 and "node 'appliance-test'" in st.stdout and 'circuits:  1 open' in st.stdout, st.stdout + st.stderr
js = json.loads(subprocess.run([binary, 'status', '--json', '--socket', d + '/status.sock'], capture_output=True, text=True, timeout=5).stdout)
assert js['circuits']['open'] == 1 and js['traffic']['packets'] >= 1200 and 'unknown_circuit' in js['drops']
peer = js['peers'][0]
assert peer['name'] == 'neighbour' and peer['pongs'] >= 1 and 0 < peer['srtt_us'] < 1000000, js['peers']
assert 'neighbour 127.0.0.1:%d rtt ' % (port + 3) in st.stdout, st.stdout
assert any('reload failed' in e for e in js['last_errors'])
assert js['lab_addresses'] is True and 'addresses: LAB MODE' in st.stdout and 'lab addresses on' in log, st.stdout
print('check status: text and JSON over %s/status.sock (packets=%d; peer neighbour rtt %d us, %d/%d pings answered)'
      % (d, js['traffic']['packets'], peer['srtt_us'], peer['pongs'], peer['pings_sent']))
print(st.stdout.rstrip())
m = subprocess.run(['curl', '-sS', '-i', 'http://127.0.0.1:%d/metrics' % metrics], capture_output=True, text=True, timeout=5).stdout
head, body = m.replace('\r\n', '\n').split('\n\n', 1)
assert 'text/plain; version=0.0.4' in head
import re
for line in body.strip().split('\n'):
    assert re.match(r'^# (HELP|TYPE) wisp_[a-z_]+ .+$', line) or re.match(r'^wisp_[a-z_]+(\{(reason|peer)="[a-zA-Z0-9_.-]+"\})? [0-9]+$', line), 'bad exposition line: %r' % line
assert 'wisp_forwarded_packets_total ' in body and 'wisp_dropped_packets_total{reason="bad_type"}' in body
assert 'wisp_peer_rtt_microseconds{peer="neighbour"} ' in body, body
assert 'wisp_lab_addresses 1\n' in body, body
print('check metrics: %d lines in Prometheus exposition format' % len(body.strip().split('\n')))
# SIGTERM: STOPPING=1 and exit 0 within 2 s.
t1 = time.time(); p.send_signal(signal.SIGTERM)
notes(time.time() + 2, 'STOPPING=1')
rc = p.wait(timeout=5); dt = time.time() - t1
assert rc == 0 and dt < 2.0, 'exit %d after %.2f s' % (rc, dt)
assert not os.path.exists(d + '/status.sock'), 'status socket left behind'
print('check SIGTERM: STOPPING=1, exit 0 after %.0f ms, status socket removed' % (dt * 1000))
PY
rm -rf "$dir"
