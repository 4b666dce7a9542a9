"""An exit destination for the adversary suite: echoes every datagram, and each time a
file POKE_FILE.N (N = 1, 2, ...) appears sends one unsolicited datagram to the address it
last heard from (what any host at the destination's address could send, or spoof).

  dest.py PORT SECONDS POKE_FILE
"""
import os, sys
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from peer import *


def run():
    s = udp(port=int(sys.argv[1]), timeout=0.05)
    end, poke = time.time() + float(sys.argv[2]), sys.argv[3]
    last, pokes, n = None, 1, 0
    while time.time() < end:
        try:
            d, a = s.recvfrom(4096)
            s.sendto(d, loopback_only(a))
            last, n = a, n + 1
        except socket.timeout:
            pass
        if os.path.exists('%s.%d' % (poke, pokes)):
            if last:
                s.sendto(b'unsolicited reply %d' % pokes, last)
            pokes += 1
    print('dest: %d echoed, %d pokes' % (n, pokes - 1))


main(run)
