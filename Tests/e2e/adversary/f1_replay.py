"""F1 sealed exit replay: a middle relay replays a captured sealed CREATE and its DATA.

  f1_replay.py PROXY_PORT EXIT_PORT ECHO_PORT GO_FILE

A UDP proxy stands where node A's next hop is (it forwards between A and the exit B and
keeps a copy of what passes), next to the echo destination behind B. It loses the first
sealed CREATE, so the client retries. While the honest
`wisp client` runs (the suite starts it), the proxy records the sealed CREATE (hop kind
3), its CREATED and the DATA both ways. When GO_FILE appears the client is done and the
proxy acts as a dishonest middle relay: it sends the captured CREATE to B again, twice,
and the captured DATA on the first replayed circuit.
Secure: the client's retry carries a fresh ephemeral point; the destination receives
nothing during the replay, no reply repeats an original ciphertext, and the CREATEDs for
identical CREATEs differ (the exit added fresh randomness, so no two circuits share keys).
"""
import os, select, sys
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from peer import *

REPLAYED = 20


def run():
    proxy_port, b_port, echo_port, go = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    b = ('127.0.0.1', b_port)
    P = udp(port=proxy_port)
    E = udp(port=echo_port)
    a_addr = None
    cap = {'first': None, 'create': None, 'create_cid': None, 'created': None, 'fwd': None}
    data_fwd, replies = [], set()
    echo_count = [0]
    from_b = []   # frames from B while replaying (the proxy no longer forwards then)
    replaying = [False]

    def pump(seconds):
        nonlocal a_addr
        end = time.time() + seconds
        while True:
            left = end - time.time()
            if left <= 0:
                return
            r, _, _ = select.select([P, E], [], [], min(left, 0.1))
            for s in r:
                d, addr = s.recvfrom(4096)
                if s is E:
                    echo_count[0] += 1
                    E.sendto(d, loopback_only(addr))
                    continue
                if addr == b:
                    if replaying[0]:
                        from_b.append(d)
                        continue
                    if a_addr:
                        P.sendto(d, a_addr)
                    if is_frame(d):
                        t, cid, body = parse(d)
                        if t == CREATED and cid == cap['create_cid'] and cap['created'] is None:
                            cap['created'] = body
                            cap['fwd'] = struct.unpack('>I', body[:4])[0]
                        elif t == DATA and cid == cap['create_cid']:
                            replies.add(body)
                else:
                    a_addr = addr
                    if is_frame(d):
                        t, cid, body = parse(d)
                        if t == CREATE and body[:1] == bytes([SEALED_EXIT]):
                            if cap['first'] is None:
                                cap['first'] = body   # lost on the way: the client must retry
                                continue
                            if cap['create'] is None:
                                cap['create'], cap['create_cid'] = body, cid
                        elif t == DATA and cap['fwd'] is not None and cid == cap['fwd']:
                            data_fwd.append(body)
                    P.sendto(d, b)

    deadline = time.time() + 30
    while not os.path.exists(go) and time.time() < deadline:
        pump(0.2)
    if not os.path.exists(go):
        raise RuntimeError('the honest client did not finish within 30 s')
    pump(0.5)  # late replies
    if cap['create'] is None or cap['created'] is None:
        raise RuntimeError('no sealed CREATE/CREATED passed the proxy (create=%s created=%s)'
                           % (cap['create'] is not None, cap['created'] is not None))
    if len(data_fwd) < REPLAYED:
        raise RuntimeError('only %d sealed DATA frames passed the proxy' % len(data_fwd))
    replaying[0] = True
    before = echo_count[0]

    def replay_create(cid):
        P.sendto(frame(CREATE, cid, cap['create']), b)
        end = time.time() + 2
        while time.time() < end:
            pump(0.05)
            for d in list(from_b):
                if is_frame(d):
                    t, c, body = parse(d)
                    if c == cid and t in (CREATED, REFUSED):
                        from_b.remove(d)
                        return t, body
        return None, b''

    c1, c2 = 0x5EA1ED01, 0x5EA1ED02
    t1, body1 = replay_create(c1)
    if t1 == CREATED:
        f1 = struct.unpack('>I', body1[:4])[0]
        for body in data_fwd[:REPLAYED]:
            P.sendto(frame(DATA, f1, body), b)
            pump(0.005)
    pump(1.0)
    delivered = echo_count[0] - before
    same_replies = 0
    for d in from_b:
        if is_frame(d):
            t, c, body = parse(d)
            if t == DATA and c == c1 and body in replies:
                same_replies += 1
    t2, body2 = replay_create(c2)
    orig = cap['created'][4:]
    reuse = [n for n, (t, body) in (('replay1', (t1, body1)), ('replay2', (t2, body2)))
             if t == CREATED and body[4:] == orig]
    if t1 == CREATED and t2 == CREATED and body1[4:] == body2[4:]:
        reuse.append('replay1=replay2')
    retry_same = cap['first'] == cap['create']
    ok = delivered == 0 and not reuse and same_replies == 0 and not retry_same
    result(ok, 'client\'s retried sealed CREATE %s the lost one; replayed CREATE answered %s/%s; %d of %d replayed sealed DATA delivered to the destination again; '
               '%d exit replies byte-identical to the original circuit\'s (same key and nonce); '
               'CREATED key material equal for identical CREATEs: %s'
           % ('identical to' if retry_same else 'differs from', 'CREATED' if t1 == CREATED else t1, 'CREATED' if t2 == CREATED else t2, delivered,
              min(REPLAYED, len(data_fwd)), same_replies, ', '.join(reuse) or 'no'))


main(run)
