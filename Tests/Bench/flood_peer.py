"""The flooder of Tests/Bench/flood.sh: hostile RECEIPTs and sealed-exit CREATEs at a node.

  flood_peer.py NODE_PORT DST_PORT NODE_FINGERPRINT SECONDS RECEIPTS_PER_S CREATES_PER_S SOURCES FIRST_IP

From SOURCES source addresses 127.0.0.FIRST_IP, 127.0.0.FIRST_IP+1, ... (one UDP socket
each) it builds 2 plain exit circuits per source to 127.0.0.1:DST_PORT and relays a few
kilobytes on each (so that a receipt for 1,000 bytes passes the node's cheap checks: more
than acknowledged, within what was relayed), then for SECONDS sends, spread evenly over the
sources:
  - RECEIPTS_PER_S RECEIPTs on those circuits naming the node, well formed, a valid client
    key, a signature that does not verify (each costs a signature check if it reaches the
    node's worker);
  - CREATES_PER_S sealed-exit CREATEs (hop kind 3, valid P-256 points, fresh circuit ids);
    every CREATED that comes back (the worker agreed keys) is answered with a DESTROY at
    once, so the flooder never holds more than a few exit circuits and its CREATEs keep
    reaching the key agreement instead of the cheap per-source refusals.
Prints one line:
  FLOOD seconds S receipts N creates N created N refused N destroyed N
Every loop is bounded in count and time; it sends only to 127.0.0.0/8. Shares the
adversary suite's frame builders (Tests/e2e/adversary/peer.py: version byte there).
"""
import os, sys
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'e2e', 'adversary'))
from peer import *   # noqa: E402,F403


def run():
    node_port, dst = int(sys.argv[1]), int(sys.argv[2])
    node_fp = bytes.fromhex(sys.argv[3])
    seconds, rrate, crate = float(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
    nsrc, first = int(sys.argv[7]), int(sys.argv[8])
    if not (0 < seconds <= 60 and 0 <= rrate <= 20000 and 0 <= crate <= 20000 and 1 <= nsrc <= 64
            and 2 <= first and first + nsrc <= 255):
        raise ValueError('arguments out of range')
    node = loopback_only(('127.0.0.1', node_port))
    socks = [udp(ip='127.0.0.%d' % (first + k), timeout=1.0) for k in range(nsrc)]
    pts = points(16)
    serial = random.randrange(1, 1 << 63)
    receipts = []   # per source: the RECEIPT frames it cycles through
    for s in socks:
        mine = []
        for c in range(2 if rrate else 0):
            st, fwd, _ = create(s, node, hop(EXIT, dst))
            if st != 'created':
                raise RuntimeError('the flooder could not build its circuit from %s (%s %s)'
                                   % (s.getsockname()[0], st, fwd))
            for _ in range(8):
                s.sendto(frame(DATA, fwd, os.urandom(1000)), node)
            mine += [frame(RECEIPT, fwd, garbage_receipt(node_fp, pts[c], serial + c, 1000 + i)) for i in range(16)]
        receipts.append(mine)
    time.sleep(0.3)   # the echoes come back: relayed counts both ways
    for s in socks:
        drain(s, 0.05, limit=1000)
        s.setblocking(False)
    total = rrate + crate
    # Which kind each slot of a round sends, interleaved evenly.
    kinds = [('r' if (i * rrate) // total != ((i + 1) * rrate) // total else 'c') for i in range(total)] if total else []
    sent_r = sent_c = created = refused = destroyed = 0
    n = 0
    t0 = time.time()
    limit = int(total * seconds) + 1
    while n < limit:
        now = time.time() - t0
        if now >= seconds:
            break
        due = min(limit, int(now * total) + 1)
        burst = 0
        while n < due and burst < 200:
            s = socks[n % nsrc]
            try:
                if kinds[n % total] == 'r':
                    mine = receipts[n % nsrc]
                    s.sendto(mine[(n // nsrc) % len(mine)], node)
                    sent_r += 1
                else:
                    cid = random.randrange(1, 1 << 32)
                    s.sendto(frame(CREATE, cid, hop(SEALED_EXIT, dst, rest=pts[n % len(pts)])), node)
                    sent_c += 1
            except BlockingIOError:
                pass
            n += 1
            burst += 1
        for s in socks:   # answers: CREATED -> DESTROY at once; REFUSED counted
            for _ in range(256):
                try:
                    d, _ = s.recvfrom(4096)
                except (BlockingIOError, socket.timeout):
                    break
                if not is_frame(d):
                    continue
                t, c, b = parse(d)
                if t == CREATED and len(b) >= 4:
                    created += 1
                    try:
                        s.sendto(frame(DESTROY, struct.unpack('>I', b[:4])[0], b'\x00'), node)
                        destroyed += 1
                    except BlockingIOError:
                        pass
                elif t == REFUSED:
                    refused += 1
        ahead = n / total - (time.time() - t0) if total else 0
        if ahead > 0:
            time.sleep(min(ahead, 0.01))
    wall = time.time() - t0
    # Late CREATEDs (keys agreed after the last send) are destroyed too: up to 1 s.
    end = time.time() + 1.0
    while time.time() < end:
        got = 0
        for s in socks:
            for _ in range(256):
                try:
                    d, _ = s.recvfrom(4096)
                except (BlockingIOError, socket.timeout):
                    break
                got += 1
                if is_frame(d):
                    t, c, b = parse(d)
                    if t == CREATED and len(b) >= 4:
                        created += 1
                        s.sendto(frame(DESTROY, struct.unpack('>I', b[:4])[0], b'\x00'), node)
                        destroyed += 1
                    elif t == REFUSED:
                        refused += 1
        if not got:
            time.sleep(0.02)
    print('FLOOD seconds %.2f receipts %d creates %d created %d refused %d destroyed %d'
          % (wall, sent_r, sent_c, created, refused, destroyed))
    sys.stdout.flush()


main(run)
