"""Flood load for a DTLS 1.2 server with HelloVerifyRequest cookies, on loopback only.

  dtls_flood.py --target 127.0.0.1:PORT [--spoofed N --spoof-rate R]
                [--valid-rate R --valid-seconds S --valid-sources K] [--json FILE]

Two kinds of traffic, run together from one event loop:

  spoofed  N ClientHellos at R per second, each from a different forged source address in
           127.10.0.1-127.250.255.254 (never 127.0.0.1), sent through a raw IPv4 socket
           (IP_HDRINCL, so it needs root). The spoofer never answers; what the server sends
           to those addresses is counted by sniffing lo (AF_PACKET with a BPF filter: UDP
           from the target's address and port to the spoofed range), unless --no-sniff.
  valid    R handshakes per second for S seconds from K real source addresses in
           127.251.0.1-127.254.255.254 (a fresh UDP socket per handshake, bound to the next
           source in turn). Each sends a ClientHello, waits up to --hvr-wait for the
           HelloVerifyRequest, resends the ClientHello with its cookie (message_seq 1,
           record sequence 1), reads the server's flight until ServerHelloDone or
           --flight-wait, then abandons the handshake (sends nothing more).

The ClientHello is what mbedTLS 2.28 accepts: DTLS 1.2, ECDHE-ECDSA with ChaCha20-Poly1305
or AES-128-GCM, supported_groups x25519/secp256r1, uncompressed points, ecdsa_secp256r1_sha256,
extended_master_secret and session_ticket.

Sends only to the target, which must be in 127.0.0.0/8 and outside the source ranges above
(otherwise: error, exit 2). Every loop is bounded in count and time; --deadline (default 60 s)
ends the run whatever is left. Prints a summary on stderr; --json FILE writes every counter
as one JSON object. Exit 0 when it ran, 1 when a socket could not be opened, 2 on usage errors.
"""
import argparse, ctypes, heapq, ipaddress, json, random, resource, select, socket, struct, sys, time

LOOPBACK = ipaddress.ip_network('127.0.0.0/8')
SPOOF_FIRST, SPOOF_LAST = 0x7F0A0000, 0x7FFAFFFF   # 127.10.0.0 - 127.250.255.255
VALID_FIRST, VALID_LAST = 0x7FFB0000, 0x7FFEFFFF   # 127.251.0.0 - 127.254.255.255
HOSTS_PER_24 = 254                                   # .1 - .254 of each /24

# --- DTLS 1.2 ClientHello ------------------------------------------------------------------
DTLS12 = 0xFEFD
CT_ALERT, CT_HANDSHAKE = 21, 22
HS_CLIENT_HELLO, HS_SERVER_HELLO, HS_HVR, HS_CERTIFICATE, HS_SKE, HS_CERT_REQUEST, HS_SHD = 1, 2, 3, 11, 12, 13, 14
HS_NAMES = {HS_SERVER_HELLO: 'server_hello', HS_HVR: 'hello_verify_request', HS_CERTIFICATE: 'certificate',
            HS_SKE: 'server_key_exchange', HS_CERT_REQUEST: 'certificate_request', HS_SHD: 'server_hello_done'}


def _ext(kind, body=b''):
    return struct.pack('>HH', kind, len(body)) + body


CIPHER_SUITES = struct.pack('>HHH', 4, 0xCCA9, 0xC02B)   # ECDHE_ECDSA CHACHA20_POLY1305 / AES_128_GCM
COMPRESSION = b'\x01\x00'                                # null only
EXTENSIONS = b''.join([
    _ext(0x000A, struct.pack('>HHH', 4, 0x001D, 0x0017)),  # supported_groups: x25519, secp256r1
    _ext(0x000B, b'\x01\x00'),                             # ec_point_formats: uncompressed
    _ext(0x000D, struct.pack('>HH', 2, 0x0403)),           # signature_algorithms: ecdsa_secp256r1_sha256
    _ext(0x0017),                                          # extended_master_secret
    _ext(0x0023),                                          # session_ticket (empty: none to resume)
])
HELLO_TAIL = CIPHER_SUITES + COMPRESSION + struct.pack('>H', len(EXTENSIONS)) + EXTENSIONS


def client_hello(rand32, cookie=b'', msg_seq=0, rec_seq=0):
    """One DTLS record holding one unfragmented ClientHello."""
    body = struct.pack('>H', DTLS12) + rand32 + b'\x00' + bytes([len(cookie)]) + cookie + HELLO_TAIL
    n = len(body).to_bytes(3, 'big')
    hs = bytes([HS_CLIENT_HELLO]) + n + struct.pack('>H', msg_seq) + b'\x00\x00\x00' + n + body
    return struct.pack('>BHH', CT_HANDSHAKE, DTLS12, 0) + rec_seq.to_bytes(6, 'big') + struct.pack('>H', len(hs)) + hs


def records(d):
    """(content type, epoch, fragment) for each record of a datagram; stops at a torn one."""
    off = 0
    while off + 13 <= len(d):
        ct, _, epoch = struct.unpack_from('>BHH', d, off)
        ln = struct.unpack_from('>H', d, off + 11)[0]
        if off + 13 + ln > len(d):
            return
        yield ct, epoch, d[off + 13:off + 13 + ln]
        off += 13 + ln


def handshakes(frag):
    """(type, fragment_offset, body fragment) for each handshake header in an epoch-0 record."""
    off = 0
    while off + 12 <= len(frag):
        t = frag[off]
        foff = int.from_bytes(frag[off + 6:off + 9], 'big')
        flen = int.from_bytes(frag[off + 9:off + 12], 'big')
        yield t, foff, frag[off + 12:off + 12 + flen]
        off += 12 + flen


# --- addresses ----------------------------------------------------------------------------
def nth_host(first, i):
    """i-th address of a range, skipping .0 and .255 of each /24."""
    return first + (i // HOSTS_PER_24) * 256 + (i % HOSTS_PER_24) + 1


def capacity(first, last):
    return ((last - first + 1) // 256) * HOSTS_PER_24


def ip_text(n):
    return socket.inet_ntoa(struct.pack('>I', n))


def loopback_only(ip):
    """The one gate every destination passes: 127.0.0.0/8 or nothing."""
    if ipaddress.ip_address(ip) not in LOOPBACK:
        raise SystemExit(f'dtls_flood: refusing to send to {ip}: loopback (127.0.0.0/8) only')
    return ip


def parse_target(text):
    host, sep, port = text.rpartition(':')
    try:
        addr = ipaddress.IPv4Address(host)
        port = int(port)
    except ValueError:
        raise argparse.ArgumentTypeError(f'{text!r} is not IPV4:PORT')
    if not sep or not 0 < port < 65536:
        raise argparse.ArgumentTypeError(f'{text!r} is not IPV4:PORT')
    if addr not in LOOPBACK:
        raise argparse.ArgumentTypeError(f'{host} is not in 127.0.0.0/8: this tool only targets loopback')
    if SPOOF_FIRST <= int(addr) <= VALID_LAST:
        raise argparse.ArgumentTypeError(f'{host} is inside the source ranges (127.10.0.0-127.254.255.255); '
                                         'use e.g. 127.0.0.1')
    return str(addr), port


# --- spoofed sources: raw IPv4 + UDP --------------------------------------------------------
def ip_checksum(hdr):
    s = sum(struct.unpack('>10H', hdr))
    s = (s & 0xFFFF) + (s >> 16)
    s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def spoofed_datagram(src, sport, dst, dport, ident, payload):
    total = 20 + 8 + len(payload)
    hdr = struct.pack('>BBHHHBBH4s4s', 0x45, 0, total, ident, 0x4000, 64, socket.IPPROTO_UDP, 0,
                      struct.pack('>I', src), dst)
    hdr = hdr[:10] + struct.pack('>H', ip_checksum(hdr)) + hdr[12:]
    return hdr + struct.pack('>HHHH', sport, dport, 8 + len(payload), 0) + payload  # UDP checksum 0: none


def sniffer(target_ip, target_port):
    """AF_PACKET socket on lo that sees only UDP from the target to the spoofed range (received copies)."""
    s = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(0x0800))
    s.bind(('lo', 0x0800))
    dst = struct.unpack('>I', socket.inet_aton(target_ip))[0]
    # classic BPF; offsets are into the IPv4 header (SOCK_DGRAM packet socket). jt/jf: 'D' = drop.
    prog = [
        (0x20, 0, 'D', 0xFFFFF004),     # ld pkttype (SKF_AD_OFF + SKF_AD_PKTTYPE)
        (0x15, 0, 'D', 0),              # == PACKET_HOST (lo also shows each packet outgoing)
        (0x30, 0, 0, 9), (0x15, 0, 'D', 17),               # protocol UDP
        (0x20, 0, 0, 12), (0x15, 0, 'D', dst),             # from the target address
        (0x20, 0, 0, 16), (0x35, 0, 'D', SPOOF_FIRST),     # to >= 127.10.0.0
        (0x25, 'D', 0, SPOOF_LAST),                        # and <= 127.250.255.255
        (0x28, 0, 0, 6), (0x45, 'D', 0, 0x1FFF),           # first fragment only
        (0xB1, 0, 0, 0), (0x48, 0, 0, 0), (0x15, 0, 'D', target_port),  # UDP source port
        (0x06, 0, 0, 0x40000),          # accept
        (0x06, 0, 0, 0),                # D: drop
    ]
    drop = len(prog) - 1
    raw = b''.join(struct.pack('=HBBI', c, drop - i - 1 if jt == 'D' else jt, drop - i - 1 if jf == 'D' else jf, k)
                   for i, (c, jt, jf, k) in enumerate(prog))
    buf = ctypes.create_string_buffer(raw)
    fprog = struct.pack('HL', len(prog), ctypes.addressof(buf))
    s.setsockopt(socket.SOL_SOCKET, 26, fprog)  # SO_ATTACH_FILTER (copied by the kernel)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
    s.setblocking(False)
    for _ in range(100000):  # anything queued before the filter was attached
        try:
            s.recv(65536)
        except BlockingIOError:
            break
    return s


# --- cookie-valid handshakes ----------------------------------------------------------------
WAIT_HVR, FLIGHT = 0, 1


class Handshake:
    __slots__ = ('sock', 'rand', 'state', 'deadline', 'started', 'got_sh')

    def __init__(self, sock, rand, now, deadline):
        self.sock, self.rand, self.state = sock, rand, WAIT_HVR
        self.started, self.deadline, self.got_sh = now, deadline, False


def percentile(xs, p):
    if not xs:
        return None
    xs = sorted(xs)
    return round(xs[min(len(xs) - 1, int(p / 100.0 * len(xs)))] * 1000.0, 3)


def main(argv):
    ap = argparse.ArgumentParser(prog='dtls_flood.py', description=__doc__.split('\n')[0])
    ap.add_argument('--target', required=True, type=parse_target, metavar='127.x.y.z:PORT',
                    help='the DTLS server (127.0.0.0/8 only)')
    ap.add_argument('--spoofed', type=int, default=0, metavar='N', help='spoofed-source ClientHellos (default 0)')
    ap.add_argument('--spoof-rate', type=float, default=2000.0, metavar='R', help='per second (default 2000)')
    ap.add_argument('--valid-rate', type=float, default=0.0, metavar='R',
                    help='cookie-valid handshakes started per second (default 0: none)')
    ap.add_argument('--valid-seconds', type=float, default=5.0, metavar='S', help='for this long (default 5)')
    ap.add_argument('--valid-sources', type=int, default=64, metavar='K', help='distinct source addresses (default 64)')
    ap.add_argument('--hvr-wait', type=float, default=0.5, metavar='S', help='wait for a HelloVerifyRequest (default 0.5)')
    ap.add_argument('--flight-wait', type=float, default=0.5, metavar='S',
                    help='read the server flight this long at most (default 0.5)')
    ap.add_argument('--max-inflight', type=int, default=4000, metavar='N', help='open handshakes at most (default 4000)')
    ap.add_argument('--drain', type=float, default=0.5, metavar='S', help='keep counting replies after the last send (default 0.5)')
    ap.add_argument('--deadline', type=float, default=60.0, metavar='S', help='hard limit on the whole run (default 60)')
    ap.add_argument('--no-sniff', action='store_true', help='do not count replies to spoofed sources')
    ap.add_argument('--json', metavar='FILE', help='write all counters as one JSON object')
    a = ap.parse_args(argv)

    def bad(why):
        ap.error(why)  # exits 2
    if not 0 <= a.spoofed <= min(5_000_000, capacity(SPOOF_FIRST, SPOOF_LAST)):
        bad('--spoofed must be 0..5000000')
    if not 0 < a.spoof_rate <= 200_000 or not 0 <= a.valid_rate <= 50_000:
        bad('--spoof-rate must be in (0, 200000], --valid-rate in [0, 50000]')
    if not 0 < a.valid_seconds <= 3600 or not 0 < a.deadline <= 3600:
        bad('--valid-seconds and --deadline must be in (0, 3600]')
    if not 1 <= a.valid_sources <= capacity(VALID_FIRST, VALID_LAST):
        bad(f'--valid-sources must be 1..{capacity(VALID_FIRST, VALID_LAST)}')
    if not (0 < a.hvr_wait <= 10 and 0 < a.flight_wait <= 10 and 0 <= a.drain <= 10 and 1 <= a.max_inflight <= 100_000):
        bad('--hvr-wait/--flight-wait in (0, 10], --drain in [0, 10], --max-inflight 1..100000')
    if a.spoofed == 0 and a.valid_rate == 0:
        bad('nothing to do: give --spoofed N and/or --valid-rate R')
    tip, tport = a.target
    loopback_only(tip)
    dst = (tip, tport)
    dst_packed = socket.inet_aton(tip)
    valid_total = int(round(a.valid_rate * a.valid_seconds))

    raw = sniff = None
    try:
        if a.spoofed:
            raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)  # implies IP_HDRINCL
            raw.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
            raw.setblocking(False)
            if not a.no_sniff:
                try:
                    sniff = sniffer(tip, tport)
                except OSError as e:
                    print(f'dtls_flood: not counting replies to spoofed sources: {e}', file=sys.stderr)
    except OSError as e:
        print(f'dtls_flood: cannot open a raw socket (root needed for --spoofed): {e}', file=sys.stderr)
        return 1
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    max_inflight = max(1, min(a.max_inflight, hard - 64))

    c = dict.fromkeys([
        'spoof_sent', 'spoof_bytes_sent', 'spoof_send_errors',
        'spoof_replies', 'spoof_reply_bytes', 'spoof_reply_hvr', 'spoof_reply_server_hello', 'spoof_reply_other',
        'valid_started', 'valid_hellos_sent', 'valid_hello_bytes_sent', 'valid_hvr_received', 'valid_hvr_bytes',
        'valid_hvr_timeouts', 'valid_cookie_hellos_sent', 'valid_cookie_hello_bytes_sent',
        'valid_flight_datagrams', 'valid_flight_bytes', 'valid_server_hellos', 'valid_server_hello_dones',
        'valid_flight_timeouts', 'valid_no_server_hello', 'valid_alerts', 'valid_unexpected', 'valid_refused',
        'valid_send_errors', 'valid_deferred_inflight'], 0)
    hvr_sizes, cookie_lens, hvr_rtt, sh_rtt, flight_types, suites = [], set(), [], [], {}, {}
    inflight, timers, seq = {}, [], 0
    ep = select.epoll()
    if sniff:
        ep.register(sniff.fileno(), select.EPOLLIN)
    rnd = random.Random()
    spoof_hello_size = len(client_hello(bytes(32)))
    cookie_hello_size = None

    t0 = time.monotonic()
    hard_end = t0 + a.deadline
    spoof_last = valid_last = None
    spoof_step, valid_step = 1.0 / a.spoof_rate, (1.0 / a.valid_rate if a.valid_rate else 0)

    def finish(fd, hs, reason):
        if reason == 'timeout':
            c['valid_hvr_timeouts' if hs.state == WAIT_HVR else 'valid_flight_timeouts'] += 1
        if hs.state == FLIGHT and not hs.got_sh:
            c['valid_no_server_hello'] += 1
        del inflight[fd]
        hs.sock.close()  # also leaves the epoll set

    def start_handshake(now):
        nonlocal seq
        i = c['valid_started']
        c['valid_started'] += 1
        src = ip_text(nth_host(VALID_FIRST, i % a.valid_sources))
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            s.bind((src, 0))
            s.connect((loopback_only(dst[0]), dst[1]))
            s.setblocking(False)
            rand = rnd.randbytes(32)
            hello = client_hello(rand)
            s.send(hello)
        except OSError:
            c['valid_send_errors'] += 1
            s.close()
            return
        c['valid_hellos_sent'] += 1
        c['valid_hello_bytes_sent'] += len(hello)
        hs = Handshake(s, rand, now, now + a.hvr_wait)
        inflight[s.fileno()] = hs
        ep.register(s.fileno(), select.EPOLLIN)
        seq += 1
        heapq.heappush(timers, (hs.deadline, seq, s.fileno(), hs))

    def on_datagram(fd, hs, d, now):
        nonlocal seq, cookie_hello_size
        if hs.state == WAIT_HVR:
            cookie = None
            for ct, epoch, frag in records(d):
                if ct == CT_HANDSHAKE and epoch == 0:
                    for t, _, body in handshakes(frag):
                        if t == HS_HVR and len(body) >= 3 and len(body) >= 3 + body[2]:
                            cookie = body[3:3 + body[2]]
                        elif t == HS_SERVER_HELLO:  # a server without cookies: already the flight
                            hs.state = FLIGHT
                elif ct == CT_ALERT:
                    c['valid_alerts'] += 1
            if cookie is not None:
                c['valid_hvr_received'] += 1
                c['valid_hvr_bytes'] += len(d)
                hvr_sizes.append(len(d))
                cookie_lens.add(len(cookie))
                hvr_rtt.append(now - hs.started)
                hello = client_hello(hs.rand, cookie, msg_seq=1, rec_seq=1)
                cookie_hello_size = len(hello)
                try:
                    hs.sock.send(hello)
                except OSError:
                    c['valid_send_errors'] += 1
                    finish(fd, hs, 'error')
                    return
                c['valid_cookie_hellos_sent'] += 1
                c['valid_cookie_hello_bytes_sent'] += len(hello)
                hs.state, hs.deadline = FLIGHT, now + a.flight_wait
                seq += 1
                heapq.heappush(timers, (hs.deadline, seq, fd, hs))
                return
            if hs.state != FLIGHT:
                c['valid_unexpected'] += 1
                return
        # the server's flight (ServerHello ... ServerHelloDone), possibly over several datagrams
        c['valid_flight_datagrams'] += 1
        c['valid_flight_bytes'] += len(d)
        done = False
        for ct, epoch, frag in records(d):
            if ct == CT_ALERT:
                c['valid_alerts'] += 1
            elif ct == CT_HANDSHAKE and epoch == 0:
                for t, foff, body in handshakes(frag):
                    name = HS_NAMES.get(t, str(t))
                    if foff == 0:
                        flight_types[name] = flight_types.get(name, 0) + 1
                        if t == HS_SERVER_HELLO and len(body) >= 35 and len(body) >= 37 + body[34]:
                            suite = '0x%04X' % struct.unpack_from('>H', body, 35 + body[34])[0]
                            suites[suite] = suites.get(suite, 0) + 1
                    if t == HS_SERVER_HELLO and not hs.got_sh:
                        hs.got_sh = True
                        c['valid_server_hellos'] += 1
                        sh_rtt.append(now - hs.started)
                    elif t == HS_SHD:
                        done = True
        if done:
            c['valid_server_hello_dones'] += 1
            finish(fd, hs, 'done')

    def on_sniffed(now):
        for _ in range(1024):
            try:
                d, addr = sniff.recvfrom(65536)
            except BlockingIOError:
                return
            if addr[2] != socket.PACKET_HOST or len(d) < 28:
                continue
            ihl = (d[0] & 0x0F) * 4
            p = d[ihl + 8:]
            c['spoof_replies'] += 1
            c['spoof_reply_bytes'] += len(p)  # UDP payload bytes
            if len(p) >= 14 and p[0] == CT_HANDSHAKE and p[13] == HS_HVR:
                c['spoof_reply_hvr'] += 1
            elif len(p) >= 14 and p[0] == CT_HANDSHAKE and p[13] == HS_SERVER_HELLO:
                c['spoof_reply_server_hello'] += 1
            else:
                c['spoof_reply_other'] += 1

    deadline_hit = False
    drain_until = None
    while True:
        now = time.monotonic()
        if now >= hard_end:
            deadline_hit = c['spoof_sent'] < a.spoofed or c['valid_started'] < valid_total or bool(inflight)
            break
        # spoofed hellos due by now (bounded burst so replies keep being read)
        if c['spoof_sent'] < a.spoofed:
            due = min(a.spoofed, int((now - t0) * a.spoof_rate) + 1)
            for _ in range(min(256, due - c['spoof_sent'])):
                i = c['spoof_sent']
                payload = client_hello(rnd.randbytes(32))
                pkt = spoofed_datagram(nth_host(SPOOF_FIRST, i), 10000 + i % 50000, dst_packed, tport,
                                       i & 0xFFFF, payload)
                try:
                    raw.sendto(pkt, (loopback_only(tip), 0))
                    c['spoof_bytes_sent'] += len(payload)
                except OSError:
                    c['spoof_send_errors'] += 1
                c['spoof_sent'] += 1  # attempts: each source address is used once either way
            spoof_last = now
        # cookie-valid handshakes due by now
        if c['valid_started'] < valid_total:
            due = min(valid_total, int((now - t0) * a.valid_rate) + 1)
            for _ in range(min(128, due - c['valid_started'])):
                if len(inflight) >= max_inflight:
                    c['valid_deferred_inflight'] += 1
                    break
                start_handshake(now)
            valid_last = now
        # handshakes past their wait
        while timers and timers[0][0] <= now:
            _, _, fd, hs = heapq.heappop(timers)
            if inflight.get(fd) is hs and hs.deadline <= now:
                finish(fd, hs, 'timeout')
        sending = c['spoof_sent'] < a.spoofed or c['valid_started'] < valid_total
        if not sending and not inflight:
            if drain_until is None:
                drain_until = now + a.drain
            if now >= drain_until:
                break
        # sleep until the next thing is due
        nxt = hard_end
        if c['spoof_sent'] < a.spoofed:
            nxt = min(nxt, t0 + c['spoof_sent'] * spoof_step)
        if c['valid_started'] < valid_total:
            nxt = min(nxt, t0 + c['valid_started'] * valid_step)
        if timers:
            nxt = min(nxt, timers[0][0])
        if drain_until is not None:
            nxt = min(nxt, drain_until)
        events = ep.poll(min(0.05, max(0.0, nxt - time.monotonic())), 512)
        now = time.monotonic()
        for fd, _ in events:
            if sniff and fd == sniff.fileno():
                on_sniffed(now)
                continue
            for _ in range(32):
                hs = inflight.get(fd)
                if hs is None:
                    break
                try:
                    d = hs.sock.recv(65536)
                except BlockingIOError:
                    break
                except ConnectionRefusedError:
                    c['valid_refused'] += 1
                    finish(fd, hs, 'refused')
                    break
                except OSError:
                    finish(fd, hs, 'error')
                    break
                on_datagram(fd, hs, d, time.monotonic())
    if sniff:
        on_sniffed(time.monotonic())
    for fd, hs in list(inflight.items()):
        finish(fd, hs, 'deadline')
    t_end = time.monotonic()
    for s in (raw, sniff):
        if s:
            s.close()
    ep.close()

    def rate(n, last):
        return round((n - 1) / (last - t0), 1) if n > 1 and last and last > t0 else None

    out = dict(c)
    out.update({
        'target': f'{tip}:{tport}', 'duration_s': round(t_end - t0, 3), 'deadline_s': a.deadline,
        'deadline_hit': deadline_hit,
        'spoof_requested': a.spoofed, 'spoof_rate_target': a.spoof_rate,
        'spoof_rate_achieved': rate(c['spoof_sent'], spoof_last), 'spoof_hello_size': spoof_hello_size,
        'spoof_sniffing': sniff is not None,
        'spoof_reply_ratio': round(c['spoof_reply_bytes'] / c['spoof_bytes_sent'], 3) if c['spoof_bytes_sent'] else None,
        'valid_requested': valid_total, 'valid_rate_target': a.valid_rate,
        'valid_rate_achieved': rate(c['valid_started'], valid_last), 'valid_sources': a.valid_sources,
        'valid_hello_size': spoof_hello_size, 'valid_cookie_hello_size': cookie_hello_size,
        'valid_hvr_size_min': min(hvr_sizes) if hvr_sizes else None,
        'valid_hvr_size_max': max(hvr_sizes) if hvr_sizes else None,
        'valid_cookie_lengths': sorted(cookie_lens),
        'valid_flight_messages': flight_types,
        'valid_server_suites': suites,
        'valid_hvr_rtt_ms_p50': percentile(hvr_rtt, 50), 'valid_hvr_rtt_ms_p99': percentile(hvr_rtt, 99),
        'valid_server_hello_ms_p50': percentile(sh_rtt, 50), 'valid_server_hello_ms_p99': percentile(sh_rtt, 99),
    })
    e = sys.stderr
    print(f"dtls_flood: {out['target']} for {out['duration_s']} s"
          f"{' (deadline hit)' if deadline_hit else ''}", file=e)
    if a.spoofed:
        print(f"  spoofed: {c['spoof_sent']}/{a.spoofed} hellos ({c['spoof_bytes_sent']} B, {spoof_hello_size} B each) "
              f"at {out['spoof_rate_achieved']}/s (target {a.spoof_rate:g}), {c['spoof_send_errors']} send errors", file=e)
        if sniff:
            print(f"  to spoofed sources: {c['spoof_replies']} datagrams, {c['spoof_reply_bytes']} B "
                  f"(hvr {c['spoof_reply_hvr']}, server_hello {c['spoof_reply_server_hello']}, "
                  f"other {c['spoof_reply_other']}; {out['spoof_reply_ratio']} B back per B sent)", file=e)
    if valid_total:
        print(f"  valid: {c['valid_started']}/{valid_total} handshakes from {a.valid_sources} sources "
              f"at {out['valid_rate_achieved']}/s (target {a.valid_rate:g})", file=e)
        print(f"    hellos {c['valid_hellos_sent']} ({c['valid_hello_bytes_sent']} B), hvr {c['valid_hvr_received']} "
              f"({c['valid_hvr_bytes']} B, {out['valid_hvr_size_min']}-{out['valid_hvr_size_max']} B, cookie "
              f"{out['valid_cookie_lengths']} B), hvr timeouts {c['valid_hvr_timeouts']}", file=e)
        print(f"    cookie hellos {c['valid_cookie_hellos_sent']} ({c['valid_cookie_hello_bytes_sent']} B), flight "
              f"{c['valid_flight_datagrams']} datagrams {c['valid_flight_bytes']} B, server_hello "
              f"{c['valid_server_hellos']}, server_hello_done {c['valid_server_hello_dones']}, alerts "
              f"{c['valid_alerts']}, refused {c['valid_refused']}", file=e)
        print(f"    hvr rtt p50/p99 {out['valid_hvr_rtt_ms_p50']}/{out['valid_hvr_rtt_ms_p99']} ms, server_hello "
              f"p50/p99 {out['valid_server_hello_ms_p50']}/{out['valid_server_hello_ms_p99']} ms", file=e)
    if a.json:
        with open(a.json, 'w') as f:
            json.dump(out, f, indent=1, sort_keys=True)
            f.write('\n')
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
