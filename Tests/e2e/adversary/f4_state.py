"""F4 state that grows on demand.

  f4_state.py receipts NODE_PORT DST_PORT NODE_PID NODE_FINGERPRINT SECONDS STATUS_JSON_CMD...
  f4_state.py creates NODE_PORT DST_PORT COUNT

receipts: for SECONDS, circuit after circuit (CREATE to an exit, one RECEIPT naming the
  node with a valid client key and a bad signature, DESTROY), paced so the node can check
  each; reports the node's RSS growth and, when status has one, its ledger occupancy.
  Secure: RSS flat (< 256 KB growth for a few thousand receipts, after a warm-up with the
  same churn and receipts for another node) and no ledger entry left by a receipt that
  did not verify.
creates: COUNT CREATEs from one source (127.0.0.1), half of them extending to a next hop
  that never answers (pending), half to the exit; then a second source (127.0.0.2) builds
  a relay circuit (to a next hop that answers) and tries an exit circuit.
  Secure: the second source's relay circuit is built. Its exit circuit is reported, not
  asserted: exit sockets are a node-wide budget (`exit_sockets`) one source may fill.
Prints `FIGURE ok|bad <text>` for the suite to combine.
"""
import json, os, subprocess, sys
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from peer import *


def ledger_entries(cmd):
    """A ledger occupancy figure from `wisp status --json`, when the build reports one."""
    try:
        j = json.loads(subprocess.run(cmd, capture_output=True, text=True, timeout=5).stdout)
    except Exception:
        return None
    found = []

    def walk(x, path):
        if isinstance(x, dict):
            for k, v in x.items():
                walk(v, path + [k])
        elif isinstance(x, int) and not isinstance(x, bool) and any('ledger' in p for p in path) \
                and path[-1] in ('entries', 'open', 'used', 'count', 'size'):
            found.append(x)
    walk(j, [])
    return found[0] if found else None


def receipts():
    node = ('127.0.0.1', int(sys.argv[2]))
    dst, pid, node_fp, seconds = int(sys.argv[3]), int(sys.argv[4]), bytes.fromhex(sys.argv[5]), float(sys.argv[6])
    status = sys.argv[7:]
    s = udp(timeout=1.0)
    pts = points(16)
    time.sleep(0.3)
    def churn(seconds, node_fp):
        """Circuit after circuit, 16 at a time: CREATE, one receipt on each, DESTROY."""
        t0, n, built = time.time(), 0, 0
        while time.time() - t0 < seconds and n < 100000:
            cids = [random.randrange(1, 1 << 32) for _ in range(16)]
            for c in cids:
                s.sendto(frame(CREATE, c, hop(EXIT, dst)), node)
            fwd = {}
            end = time.time() + 1.0
            while len(fwd) < len(cids) and time.time() < end:
                try:
                    d, _ = s.recvfrom(4096)
                except socket.timeout:
                    break
                if is_frame(d):
                    t, c, b = parse(d)
                    if t == CREATED and c in cids:
                        fwd[c] = struct.unpack('>I', b[:4])[0]
            built += len(fwd)
            for c, f in fwd.items():
                s.sendto(frame(RECEIPT, f, garbage_receipt(node_fp, random.choice(pts), random.randrange(1, 1 << 63), 4096)), node)
                n += 1
            time.sleep(0.0012 * len(fwd))  # about what the node needs to check them (issue: 1.1 ms each)
            for c, f in fwd.items():
                s.sendto(frame(DESTROY, f, b'\0'), node)
        time.sleep(0.5)
        return n, built

    # Control: the same circuit churn with receipts naming another node (never checked
    # here); it also warms up the tables, so what follows is the receipts' own growth.
    rc0 = rss_kb(pid)
    churn(1.5, os.urandom(32))
    rss0, led0 = rss_kb(pid), ledger_entries(status)
    n, built = churn(seconds, node_fp)
    rss1, led1 = rss_kb(pid), ledger_entries(status)
    ok = rss1 - rss0 < 256 and (led1 is None or led0 is None or led1 - led0 <= 0)
    print('FIGURE %s %d garbage receipts on %d circuits: RSS %+d KB (budget 256 KB; the same churn without them: %+d KB), ledger entries %s'
          % ('ok' if ok else 'bad', n, built, rss1 - rss0, rss0 - rc0,
             'not in status' if led1 is None else '%s -> %d' % (led0, led1)))


def creates():
    node = ('127.0.0.1', int(sys.argv[2]))
    dst, count = int(sys.argv[3]), int(sys.argv[4])
    silent = udp()            # a next hop that never answers: extend CREATEs stay pending
    sink = udp(timeout=0.05)  # a next hop that answers every CREATE (for the second source)
    s = udp()
    s.setblocking(False)
    created = refused = 0

    def collect():
        nonlocal created, refused
        while True:
            try:
                d, _ = s.recvfrom(4096)
            except (BlockingIOError, socket.timeout):
                return
            if is_frame(d):
                t = parse(d)[0]
                created += t == CREATED
                refused += t == REFUSED
    t0 = time.time()
    for i in range(count):   # half extend (left pending), half exit
        body = hop(EXTEND, silent.getsockname()[1]) if i % 2 == 0 else hop(EXIT, dst)
        s.sendto(frame(CREATE, i + 1, body), node)
        if i % 50 == 49:
            collect()
            ahead = (i + 1) / 5000 - (time.time() - t0)   # 5,000 CREATEs/s
            if ahead > 0:
                time.sleep(ahead)
    end = time.time() + 1.0
    while time.time() < end:
        collect()
        time.sleep(0.05)
    other = udp(ip='127.0.0.2', timeout=1.0)
    other.sendto(frame(CREATE, 0xB0B, hop(EXTEND, sink.getsockname()[1])), node)
    end = time.time() + 1.0
    while time.time() < end:   # the sink answers the node's CREATE
        try:
            d, a = sink.recvfrom(4096)
        except socket.timeout:
            continue
        if is_frame(d) and parse(d)[0] == CREATE:
            sink.sendto(frame(CREATED, parse(d)[1], struct.pack('>I', 0x51)), a)
            break
    answer = 'no answer'
    for d, _ in drain(other, 1.0):
        if is_frame(d) and parse(d)[1] == 0xB0B and parse(d)[0] in (CREATED, REFUSED):
            t, _, b = parse(d)
            answer = 'CREATED' if t == CREATED else 'REFUSED %d' % b[0]
            break
    st, why, _ = create(other, node, hop(EXIT, dst))
    exit_answer = 'CREATED' if st == 'created' else ('REFUSED %d' % why if st == 'refused' else 'no answer')
    print('FIGURE %s %d CREATEs from one source (half extend, left pending; half exit: %d created, %d refused), '
          'then a second source: relay circuit %s (exit circuit: %s)'
          % ('ok' if answer == 'CREATED' else 'bad', count, created, refused, answer, exit_answer))


def run():
    {'receipts': receipts, 'creates': creates}[sys.argv[1]]()


main(run)
