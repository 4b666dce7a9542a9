"""F8 unsafe defaults: small probes the suite combines.

  f8_defaults.py create NODE_PORT DST_PORT   a stranger's plain exit CREATE
  f8_defaults.py listen PORT SECONDS         stands where a client's first hop is: counts
                                             plain wisp frames and DTLS records received
  f8_defaults.py ping NODE_PORT              a stranger's plain PINGs
Each prints `FIGURE ok|bad <text>` (ok: the secure outcome).
"""
import os, sys
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from peer import *


def probe_create():
    s = udp()
    st, why, _ = create(s, ('127.0.0.1', int(sys.argv[2])), hop(EXIT, int(sys.argv[3])), wait=1.0)
    answer = 'CREATED' if st == 'created' else ('REFUSED %d' % why if st == 'refused' else 'no answer')
    print('FIGURE %s node without a links key: stranger\'s plain CREATE got %s' % ('bad' if st == 'created' else 'ok', answer))


def listen():
    s = udp(port=int(sys.argv[2]))
    got = drain(s, float(sys.argv[3]), limit=1000)
    plain = sum(1 for d, _ in got if is_frame(d))
    dtls = sum(1 for d, _ in got if d and 20 <= d[0] <= 63)
    print('FIGURE %s %d plain wisp frames, %d DTLS records' % ('bad' if plain else 'ok', plain, dtls))


def ping():
    node = ('127.0.0.1', int(sys.argv[2]))
    s = udp(timeout=0.3)
    pongs = 0
    for i in range(5):
        s.sendto(frame(PING, 0, struct.pack('>Q', 0xF800 + i)), node)
        for d, _ in drain(s, 0.2):
            pongs += is_frame(d) and parse(d)[0] == PONG
    print('FIGURE %s links = required node: %d PONGs to 5 plain PINGs from a stranger' % ('bad' if pongs else 'ok', pongs))


def run():
    {'create': probe_create, 'listen': listen, 'ping': ping}[sys.argv[1]]()


main(run)
