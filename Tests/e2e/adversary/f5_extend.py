"""F5 extend anywhere: CREATEs whose `extend` hop names loopback, private, shared and
link-local addresses.

  f5_extend.py NODE_PORT LISTEN_PORT ADDRESS...

Runs in a network namespace of the suite's own (WISP_NETNS=1) where every ADDRESS is on
lo, with a UDP listener on each ADDRESS:LISTEN_PORT. Sends the node (lab mode off) one
CREATE per address asking it to extend there, the nested hop carrying 65 chosen bytes.
Secure: every CREATE is answered REFUSED and no listener receives anything.
"""
import os, sys
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from peer import *


def run():
    node = ('127.0.0.1', int(sys.argv[1]))
    lport, addrs = int(sys.argv[2]), sys.argv[3:]
    listeners = {a: udp(ip=a, port=lport) for a in addrs}
    s = udp()
    answers = {}
    chosen = b'\xAA' * 65   # the attacker's bytes, as a sealed-exit hop would carry
    for a in addrs:
        st, why, _ = create(s, node, hop(EXTEND, lport, ip=a, rest=hop(SEALED_EXIT, 9, ip='127.0.0.1', rest=chosen)),
                            wait=0.5)
        answers[a] = 'REFUSED %d' % why if st == 'refused' else ('CREATED' if st == 'created' else 'no answer')
    time.sleep(0.3)
    reached = {a: len(drain(l, 0.05)) for a, l in listeners.items()}
    bad = [a for a in addrs if reached[a] or not answers[a].startswith('REFUSED')]
    result(not bad, '; '.join('%s: %s, %d datagrams arrived' % (a, answers[a], reached[a]) for a in addrs))


main(run)
