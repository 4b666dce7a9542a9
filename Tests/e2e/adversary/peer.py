"""Shared pieces of the adversary suite's Python peers (Tests/e2e/adversary.sh).

Plain Python 3 stdlib; `cryptography` only to make fresh P-256 points when it is
installed (else the curve's generator, a valid point, is used). Frames follow
Sources/WispCore/WIRE-PROTOCOL.md; the protocol version byte is VERSION below, the one
place to change it (WISP_FRAME_VERSION=0xD1 in the environment for a v1 build).

Every peer sends only to 127.0.0.0/8 (or to addresses inside a network namespace the
suite created) and every loop is bounded in count and time. A peer ends with one line
`RESULT PASS|FAIL <figure>` and exit status 0; anything else (an exception, exit status
2) is a harness error, which the suite reports as FAILED, not as a finding.
"""
import hashlib, os, random, socket, struct, sys, time, traceback

VERSION = int(os.environ.get('WISP_FRAME_VERSION', '0xD2'), 0)   # wire protocol v2 (v1: 0xD1)

HDR = struct.Struct('>BBHI')
DATA, CREATE, CREATED, DESTROY, PING, PONG, RECEIPT, REFUSED = 1, 2, 3, 4, 5, 6, 7, 8
EXTEND, EXIT, SEALED_EXIT = 1, 2, 3
SPKI_PREFIX = bytes.fromhex('3059301306072a8648ce3d020106082a8648ce3d030107034200')
# The P-256 generator, uncompressed: a valid point whatever else is installed.
P256_G = bytes.fromhex('04'
                       '6b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c296'
                       '4fe342e2fe1a7f9b8ee7eb4a7c0f9e162bce33576b315ececbb6406837bf51f5')


def frame(t, cid, body=b''):
    return HDR.pack(VERSION, t, len(body), cid) + body


def is_frame(d):
    return len(d) >= 8 and 0xD0 <= d[0] <= 0xDF


def parse(d):
    v, t, l, cid = HDR.unpack(d[:8])
    return t, cid, d[8:]


def ip4(text):
    return struct.unpack('>I', socket.inet_aton(text))[0]


def hop(kind, port, ip='127.0.0.1', rest=b''):
    return struct.pack('>BBHI', kind, 0, port, ip4(ip)) + rest


def points(n):
    """n valid uncompressed P-256 points (fresh keys when `cryptography` is installed)."""
    try:
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.hazmat.primitives import serialization
        fmt = serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        return [ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(*fmt) for _ in range(n)]
    except ImportError:
        return [P256_G] * n


def fingerprint(point):
    return hashlib.sha256(SPKI_PREFIX + point).digest()


def garbage_receipt(node_fp, point, serial, nbytes, epoch=None):
    """A well-formed receipt naming `node_fp` whose DER signature does not verify."""
    r = lambda: bytes([random.randrange(1, 0x80)]) + os.urandom(31)
    sig = b'\x30\x44\x02\x20' + r() + b'\x02\x20' + r()
    epoch = int(time.time()) if epoch is None else epoch
    return (node_fp + fingerprint(point) + struct.pack('>QQQ', serial, nbytes, epoch)
            + bytes([len(point)]) + point + bytes([len(sig)]) + sig)


def loopback_only(addr):
    assert addr[0].startswith('127.') or os.environ.get('WISP_NETNS') == '1', \
        'adversary peers send only to 127.0.0.0/8 outside a namespace of their own'
    return addr


def udp(ip='127.0.0.1', port=0, timeout=None, rcvbuf=4 << 20):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.bind((ip, port))
    s.settimeout(timeout)
    return s


def drain(s, seconds, limit=100000):
    """Everything `s` receives within `seconds` (bounded count)."""
    out, end = [], time.time() + seconds
    while len(out) < limit:
        left = end - time.time()
        if left <= 0:
            break
        s.settimeout(left)
        try:
            out.append(s.recvfrom(4096))
        except socket.timeout:
            break
    return out


def create(s, node, body, cid=None, wait=2.0):
    """Sends CREATE; returns ('created', forward id, body) / ('refused', reason, b'') / (None, 0, b'')."""
    cid = cid or random.randrange(1, 1 << 32)
    s.sendto(frame(CREATE, cid, body), loopback_only(node))
    end = time.time() + wait
    while time.time() < end:
        s.settimeout(max(0.01, end - time.time()))
        try:
            d, _ = s.recvfrom(4096)
        except socket.timeout:
            break
        if not is_frame(d):
            continue
        t, c, b = parse(d)
        if c != cid:
            continue
        if t == CREATED:
            return 'created', struct.unpack('>I', b[:4])[0], b
        if t == REFUSED:
            return 'refused', b[0] if b else -1, b''
    return None, 0, b''


def cpu_seconds(pid):
    """User + system CPU seconds of process `pid` (all its threads), from /proc."""
    with open('/proc/%d/stat' % pid) as f:
        fields = f.read().rsplit(')', 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf('SC_CLK_TCK')


def rss_kb(pid):
    with open('/proc/%d/status' % pid) as f:
        for line in f:
            if line.startswith('VmRSS:'):
                return int(line.split()[1])
    raise RuntimeError('no VmRSS for pid %d' % pid)


def result(ok, figure):
    print('RESULT %s %s' % ('PASS' if ok else 'FAIL', figure))
    sys.stdout.flush()
    sys.exit(0)


def main(fn):
    """Runs fn(); an exception is a harness error (exit 2), never a finding."""
    try:
        fn()
    except SystemExit:
        raise
    except BaseException:
        traceback.print_exc()
        print('HARNESS %s' % traceback.format_exc().strip().splitlines()[-1])
        sys.exit(2)
