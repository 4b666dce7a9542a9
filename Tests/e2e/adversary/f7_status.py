"""F7 a local user and the status socket.

  f7_status.py NODE_PORT STATUS_SOCKET STATUS_COMMAND...

Checks the socket's mode, then holds 8 idle connections to it (connected, sending
nothing) while it measures 20 plain PING round trips to the node and times one
STATUS_COMMAND (`wisp status`).
Secure: the socket is not world-writable (0660 with the service's group), the worst PING
round trip and the status answer stay under 100 ms.
"""
import os, socket, stat, subprocess, sys
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from peer import *

LIMIT_MS = 100


def run():
    node, path, cmd = ('127.0.0.1', int(sys.argv[1])), sys.argv[2], sys.argv[3:]
    mode = stat.S_IMODE(os.stat(path).st_mode)
    idle = []
    for _ in range(8):
        c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        c.connect(path)
        idle.append(c)
    s = udp(timeout=2.0)
    rtts = []
    for i in range(20):
        token = struct.pack('>Q', 0xAD00 + i)
        t0 = time.time()
        s.sendto(frame(PING, 0, token), node)
        while True:
            try:
                d, _ = s.recvfrom(4096)
            except socket.timeout:
                rtts.append(2000.0)   # no PONG within 2 s
                break
            if is_frame(d) and parse(d)[0] == PONG and parse(d)[2][:8] == token:
                rtts.append((time.time() - t0) * 1000)
                break
        time.sleep(0.02)
    if min(rtts) >= 2000.0:
        raise RuntimeError('no PONG to any of 20 plain PINGs (links = optional): cannot measure')
    t0 = time.time()
    r = subprocess.run(cmd, capture_output=True, timeout=10)
    status_ms = (time.time() - t0) * 1000
    if r.returncode != 0 and status_ms < LIMIT_MS:
        raise RuntimeError('status failed at once: %r' % r.stderr[-200:])
    for c in idle:
        c.close()
    rtts.sort()
    ok = not mode & 0o002 and rtts[-1] < LIMIT_MS and status_ms < LIMIT_MS and r.returncode == 0
    result(ok, 'status socket mode %04o (%s); with 8 idle connections: PING RTT median %.2f ms, max %.2f ms; '
               '`wisp status` answered in %.0f ms%s (limit %d ms)'
           % (mode, 'world-writable' if mode & 0o002 else 'not world-writable', rtts[len(rtts) // 2], rtts[-1],
              status_ms, '' if r.returncode == 0 else ' (failed)', LIMIT_MS))


main(run)
