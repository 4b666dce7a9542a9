"""Test peer for wisp's end-to-end scripts: speaks wire protocol v2 (Sources/WispCore/WIRE-PROTOCOL.md).

Used as a client (builds circuits, sends numbered messages, checks each comes back
exactly once) and as the UDP echo service behind an exit. Sends only to 127.0.0.0/8;
every loop is bounded in count and time.
"""
import json, os, random, socket, struct, sys, time

HDR = struct.Struct('>BBHI')
DATA, CREATE, CREATED, DESTROY, PING, PONG, RECEIPT, REFUSED = 1, 2, 3, 4, 5, 6, 7, 8
BIND = 9  # node fingerprint (32) + the binding it drew for the circuit (16), right after CREATED
VERSION = 0xD2  # the first byte of every frame (v1 was 0xD1)


def frame(t, cid, body=b''):
    return HDR.pack(VERSION, t, len(body), cid) + body


def hop(kind, port, ip=0x7F000001):
    return struct.pack('>BBHI', kind, 0, port, ip)


def parse(d):
    v, t, l, cid = HDR.unpack(d[:8])
    return t, cid, d[8:]


def status_json(path, tries=1):
    """A running node's `wisp status --json` through its status socket (tries 100 ms apart)."""
    for attempt in range(tries):
        try:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM); s.settimeout(2); s.connect(path)
            s.sendall(b'json\n'); out = b''
            while True:
                b = s.recv(65536)
                if not b: break
                out += b
            return json.loads(out)
        except (OSError, ValueError):
            if attempt == tries - 1: raise
            time.sleep(0.1)


def loopback(addr):
    assert addr[0].startswith('127.'), 'tests send only to 127.0.0.0/8'
    return addr


class Client:
    def __init__(self, timeout=1.0):
        self.s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.s.bind(('127.0.0.1', 0))
        self.s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        self.s.settimeout(timeout)

    def take_bind(self, my, wait=0.05):
        """A node with credit sends BIND right after CREATED: take it (self.binding), so that
        callers counting echoes see only their own frames."""
        self.binding = None
        self.bindings = []  # one per hop with credit, first hop first
        old = self.s.gettimeout()
        self.s.settimeout(wait)
        try:
            for _ in range(3):  # at most one BIND per hop; nothing else comes before DATA is sent
                d, _ = self.s.recvfrom(2048)
                t, cid, b = parse(d)
                if t == BIND and cid == my and len(b) == 48:
                    self.bindings.append((b[:32], b[32:48]))
                    self.binding = self.binding or b[32:48]
        except socket.timeout:
            pass
        finally:
            self.s.settimeout(old)

    def build(self, first, body, tries=5):
        """CREATE through `first`; returns the forward circuit id or raises."""
        my = random.randrange(1, 1 << 32)
        for _ in range(tries):
            self.s.sendto(frame(CREATE, my, body), loopback(first))
            deadline = time.time() + 2
            while time.time() < deadline:
                try:
                    d, _ = self.s.recvfrom(2048)
                except socket.timeout:
                    break
                t, cid, b = parse(d)
                if cid != my:
                    continue
                if t == CREATED:
                    self.back = my
                    self.take_bind(my)
                    return struct.unpack('>I', b)[0]
                if t == REFUSED:
                    raise RuntimeError('circuit refused, reason %d' % b[0])
        raise RuntimeError('no CREATED from %s' % (first,))

    def transfer(self, first, fwd, count, size, window=64, limit_s=30):
        """Sends `count` numbered messages through the circuit; returns (received set, duplicates, seconds)."""
        got, dups, nxt = set(), 0, 0
        start = time.time()
        pad = os.urandom(max(0, size - 8))
        resent = {}
        while len(got) < count and time.time() - start < limit_s:
            while nxt < count and nxt - len(got) < window:
                self.s.sendto(frame(DATA, fwd, struct.pack('>Q', nxt) + pad), loopback(first))
                resent[nxt] = time.time()
                nxt += 1
            try:
                d, _ = self.s.recvfrom(2048)
            except socket.timeout:
                # resend what is outstanding (lossy paths)
                for k in list(resent):
                    if k not in got:
                        self.s.sendto(frame(DATA, fwd, struct.pack('>Q', k) + pad), loopback(first))
                continue
            t, cid, b = parse(d)
            if t != DATA or cid != self.back:
                continue
            k = struct.unpack('>Q', b[:8])[0]
            if b[8:] != pad:
                raise RuntimeError('payload corrupted for message %d' % k)
            if k in got:
                dups += 1
            got.add(k)
            resent.pop(k, None)
        return got, dups, time.time() - start


def echo(port, seconds):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(('127.0.0.1', port))
    s.settimeout(0.2)
    end = time.time() + seconds
    n = 0
    while time.time() < end:
        try:
            d, a = s.recvfrom(2048)
        except socket.timeout:
            continue
        s.sendto(d, loopback(a))
        n += 1
    print('echo: %d datagrams' % n)


if __name__ == '__main__':
    if sys.argv[1] == 'echo':
        echo(int(sys.argv[2]), float(sys.argv[3]))
