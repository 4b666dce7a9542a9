"""A dishonest client with a listed payer key (Tests/e2e/settle-live.sh, issue 15).

  dodge.py NODE_IP NODE_PORT ECHO_IP ECHO_PORT NODE_FP PAYER_KEY_PEM CIRCUITS
  dodge.py receipts NODE_PORT NEXT_PORT ECHO_PORT NODE_FP NEXT_FP PAYER_KEY_PEM COUNT
  dodge.py reuse NODE_PORT ECHO_PORT NODE_FP PAYER_KEY_PEM

For each of CIRCUITS circuits in turn: CREATE to the echo exit through the node, wait for
CREATED and the node's BIND, bind the circuit with a 0-byte receipt (v2, really signed with
the payer key, WIRE-PROTOCOL.md "Receipt"), then send DATA and never pay again; when no
echo has come back for 0.6 s the node has paused the circuit: DESTROY it and rotate. Every
loop is bounded (at most 3,000 messages and 8 s per circuit); it sends only to 127/8.

Prints `circuit I echoed N` per circuit, then `circuits N` and `echoed_total BYTES`.
With an eighth argument `nobind` it never sends a receipt: every circuit lives on the
unbound allowance its source has left (and is closed unbound).

`receipts`: one circuit through the node (on 127.0.0.1) extended to the next node and its
echo exit; bound at the node with a 0-byte receipt, it then sends COUNT RECEIPT frames that
name the next node (235 bytes each, signatures that do not verify): free carriage unless the
node charges them like DATA. Prints `receipt_frames COUNT` and `receipt_bytes BYTES`.

`reuse`: circuit 1 is bound and paid honestly (a receipt for everything it relayed), then
destroyed; circuit 2 gets only circuit 1's last receipt (a receipt of a listed payer from
another circuit) and then DATA. Prints `first_echoed N`, `second_echoed N`.
"""
import hashlib, os, socket, struct, sys, time
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), 'adversary'))
from peer import frame, parse, is_frame, hop, loopback_only, DATA, CREATE, CREATED, DESTROY, RECEIPT, REFUSED, EXIT, SPKI_PREFIX
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

BIND = 9
EXTEND = 1
if sys.argv[1] == 'receipts':
    _, _, nport, next_port, eport, nfp, next_fp, keyfile, count = sys.argv
    sys.argv = [sys.argv[0], '127.0.0.1', nport, '127.0.0.1', eport, nfp, keyfile, '1']
    mode_receipts = (int(next_port), bytes.fromhex(next_fp), int(count))
elif sys.argv[1] == 'reuse':
    _, _, nport, eport, nfp, keyfile = sys.argv
    sys.argv = [sys.argv[0], '127.0.0.1', nport, '127.0.0.1', eport, nfp, keyfile, '2']
    mode_receipts = None
    mode_reuse = True
else:
    mode_receipts = None
mode_reuse = globals().get('mode_reuse', False)
node = (sys.argv[1], int(sys.argv[2]))
echo_ip, echo_port = sys.argv[3], int(sys.argv[4])
node_fp = bytes.fromhex(sys.argv[5])
key = serialization.load_pem_private_key(open(sys.argv[6], 'rb').read(), password=None)
circuits = int(sys.argv[7])
nobind = len(sys.argv) > 8 and sys.argv[8] == 'nobind'
point = key.public_key().public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
payer_fp = hashlib.sha256(SPKI_PREFIX + point).digest()


def receipt(binding, nbytes):
    fields = node_fp + payer_fp + binding + struct.pack('>QQ', nbytes, int(time.time()))
    sig = key.sign(b'wisp-receipt-v2\x00' + fields, ec.ECDSA(hashes.SHA256()))
    return fields + bytes([len(point)]) + point + bytes([len(sig)]) + sig


s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(('127.0.0.1', 0))
total = 0
built = 0
payload = b'x' * 500
for c in range(circuits):
    cid = 0x10000 + c
    body = hop(EXIT, echo_port, echo_ip)
    if mode_receipts:
        body = hop(EXTEND, mode_receipts[0], '127.0.0.1', body)
    s.sendto(frame(CREATE, cid, body), loopback_only(node))
    fwd = binding = None
    end = time.time() + 3
    while time.time() < end and (fwd is None or binding is None):
        s.settimeout(max(0.01, end - time.time()))
        try:
            d, _ = s.recvfrom(4096)
        except socket.timeout:
            break
        if not is_frame(d):
            continue
        t, i, b = parse(d)
        if i != cid:
            continue
        if t == CREATED:
            fwd = struct.unpack('>I', b[:4])[0]
        elif t == BIND and len(b) == 48 and b[:32] == node_fp:
            binding = b[32:]
        elif t == REFUSED:
            break
    if fwd is None or binding is None:
        print(f'circuit {c} not built (created {fwd is not None}, bind {binding is not None})')
        continue
    built += 1
    if mode_reuse and c == 1:
        s.sendto(frame(RECEIPT, fwd, paid), loopback_only(node))   # circuit 1's receipt, on circuit 2
    elif not nobind:
        s.sendto(frame(RECEIPT, fwd, receipt(binding, 0)), loopback_only(node))
    time.sleep(0.05)  # the node's worker verifies the bind receipt
    if mode_receipts:
        _, next_fp, count = mode_receipts
        body = next_fp + payer_fp + bytes(16) + struct.pack('>QQ', 1 << 20, int(time.time())) \
            + bytes([len(point)]) + point + bytes([72]) + b'\x30' * 72
        for k in range(count):
            s.sendto(frame(RECEIPT, fwd, body), loopback_only(node))
            if k % 20 == 19:
                time.sleep(0.002)
        print(f'receipt_frames {count}')
        print(f'receipt_bytes {count * len(body)}')
        s.sendto(frame(DESTROY, fwd, b'\x00'), loopback_only(node))
        sys.exit(0)
    echoed = 0
    sent = 0
    last_echo = time.time()
    deadline = time.time() + 8
    s.settimeout(0)
    limit = 100 if mode_reuse and c == 0 else 3000
    while sent < limit and time.time() < deadline and time.time() - last_echo < 0.6:
        s.sendto(frame(DATA, fwd, payload), loopback_only(node))
        sent += 1
        stop = time.time() + 0.002
        while time.time() < stop:
            try:
                d, _ = s.recvfrom(4096)
            except (BlockingIOError, socket.timeout):
                time.sleep(0.0005)
                continue
            if is_frame(d):
                t, i, b = parse(d)
                if i == cid and t == DATA:
                    echoed += len(b)
                    last_echo = time.time()
    if mode_reuse and c == 0:
        time.sleep(0.3)
        while True:   # late echoes
            try:
                d, _ = s.recvfrom(4096)
            except (BlockingIOError, socket.timeout):
                break
            if is_frame(d):
                t, i, b = parse(d)
                if i == cid and t == DATA:
                    echoed += len(b)
        paid = receipt(binding, sent * len(payload) + echoed)
        s.sendto(frame(RECEIPT, fwd, paid), loopback_only(node))
        time.sleep(0.2)
        print(f'first_echoed {echoed}')
    elif mode_reuse:
        print(f'second_echoed {echoed}')
    s.sendto(frame(DESTROY, fwd, b'\x00'), loopback_only(node))
    print(f'circuit {c} echoed {echoed} of {sent * len(payload)} sent')
    sys.stdout.flush()
    total += echoed
    time.sleep(0.1)
print(f'circuits {built}')
print(f'echoed_total {total}')
sys.exit(0 if built == circuits else 1)
