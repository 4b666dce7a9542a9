"""F2 exit destination takeover: a stranger builds circuits to a destination a victim uses.

  f2_takeover.py NODE_PORT DST_PORT GO_FILE CLIENT_OUTPUT

Serves the echo destination DST_PORT (remembering every reply it sends). Once the victim
(an honest `wisp client` with a sealed exit, started by the suite) has traffic flowing, a
stranger sends the exit node a sealed-exit CREATE (hop kind 3) and then a plain-exit
CREATE (kind 2) to the same destination, and listens. When GO_FILE appears the victim is done;
its loss is read from CLIENT_OUTPUT.
Secure: the stranger receives no DATA (none of the victim's replies, and none in
plaintext), and the victim keeps getting its own replies (loss under 5 %).
"""
import os, re, select, sys
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from peer import *


def run():
    node = ('127.0.0.1', int(sys.argv[1]))
    E = udp(port=int(sys.argv[2]))
    go, client_out = sys.argv[3], sys.argv[4]
    plain, sealed = udp(), udp()
    sent = set()
    served = [0]
    got = {'plain': [], 'sealed': []}
    created = {}

    def pump(seconds):
        end = time.time() + seconds
        while time.time() < end:
            r, _, _ = select.select([E, plain, sealed], [], [], 0.05)
            for s in r:
                d, addr = s.recvfrom(4096)
                if s is E:
                    served[0] += 1
                    sent.add(d)
                    E.sendto(d, loopback_only(addr))
                elif is_frame(d):
                    t, cid, body = parse(d)
                    kind = 'plain' if s is plain else 'sealed'
                    if t in (CREATED, REFUSED):
                        created[kind] = 'CREATED' if t == CREATED else 'REFUSED %d' % body[0]
                    elif t == DATA:
                        got[kind].append(body)

    deadline = time.time() + 10
    while served[0] < 20 and time.time() < deadline and not os.path.exists(go):
        pump(0.05)
    if served[0] < 20:
        raise RuntimeError('the victim sent only %d datagrams to the destination' % served[0])
    dst_port = int(sys.argv[2])
    sealed.sendto(frame(CREATE, 0x57A0002, hop(SEALED_EXIT, dst_port, rest=points(1)[0])), node)
    pump(0.2)
    plain.sendto(frame(CREATE, 0x57A0001, hop(EXIT, dst_port)), node)  # last: would turn sealing off
    deadline = time.time() + 20
    while not os.path.exists(go) and time.time() < deadline:
        pump(0.1)
    if not os.path.exists(go):
        raise RuntimeError('the victim did not finish')
    pump(0.3)
    text = open(client_out).read()
    m = re.search(r'loss ([0-9.]+)%', text)
    if not m:
        raise RuntimeError('no loss figure in the victim client output: %r' % text[-300:])
    loss = float(m.group(1))
    stolen = len(got['plain']) + len(got['sealed'])
    clear = sum(1 for b in got['plain'] + got['sealed'] if b in sent)
    ok = stolen == 0 and loss < 5.0
    result(ok, 'stranger CREATEs: plain %s, sealed %s; stranger received %d DATA frames, %d of them the victim\'s '
               'replies in plaintext; victim loss %.1f%% (destination served %d)'
           % (created.get('plain', 'no answer'), created.get('sealed', 'no answer'), stolen, clear, loss, served[0]))


main(run)
