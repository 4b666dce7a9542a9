"""Userspace helpers for Tests/e2e/mesh-netns.sh, run inside the test's network namespaces.

  impair.py proxy LISTEN_ADDR:PORT UPSTREAM_ADDR:PORT DELAY_MS LOSS_PERCENT SECONDS SEED
      An impaired UDP link: datagrams from anyone but UPSTREAM go to UPSTREAM; datagrams
      from UPSTREAM go back to the latest other sender. Each direction is delayed by
      DELAY_MS and loses LOSS_PERCENT of datagrams (seeded, so runs repeat). On exit
      (SECONDS over, or SIGTERM) prints one line:
        impair: forwarded N dropped D (data D_DATA: out D_OUT back D_BACK) of which ...
  impair.py echo ADDR:PORT SECONDS
      A UDP echo service that also checks the client's numbered messages (first 8 bytes,
      big-endian sequence) arrive exactly once; on exit prints
        echo: datagrams N bytes B distinct U duplicates D

Addresses are only ever the test's own: loopback or 10.0.0.0/8 inside namespaces the
test created. Every loop is bounded by SECONDS.
"""
import heapq, random, select, signal, socket, struct, sys, time


def addr(text):
    host, port = text.rsplit(':', 1)
    assert host.startswith('127.') or host.startswith('10.'), 'test addresses only (127/8, namespaced 10/8)'
    return host, int(port)


class Stop(Exception):
    pass


def on_term(*_):
    raise Stop()


def proxy(listen, upstream, delay_ms, loss_pct, seconds, seed):
    rnd = random.Random(seed)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
    s.bind(listen)
    delay = delay_ms / 1000.0
    loss = loss_pct / 100.0
    queue, n = [], 0
    downstream = None
    fwd = dropped = 0
    data_out = data_back = 0          # dropped DATA frames (type 1) per direction
    end = time.monotonic() + seconds
    try:
        while time.monotonic() < end:
            now = time.monotonic()
            while queue and queue[0][0] <= now:
                _, _, d, to = heapq.heappop(queue)
                s.sendto(d, to)
                fwd += 1
            timeout = min(0.05, max(0.0, queue[0][0] - now)) if queue else 0.05
            r, _, _ = select.select([s], [], [], timeout)
            if not r:
                continue
            for _ in range(256):
                try:
                    d, a = s.recvfrom(2048, socket.MSG_DONTWAIT)
                except BlockingIOError:
                    break
                back = a == upstream
                if back:
                    if downstream is None:
                        continue
                    to = downstream
                else:
                    downstream = a
                    to = upstream
                if rnd.random() < loss:
                    dropped += 1
                    if len(d) >= 8 and d[0] == 0xD2 and d[1] == 1:
                        if back:
                            data_back += 1
                        else:
                            data_out += 1
                    continue
                n += 1
                heapq.heappush(queue, (time.monotonic() + delay, n, d, to))
    except Stop:
        pass
    print('impair: forwarded %d dropped %d data_dropped %d (out %d back %d) delay_ms %d loss_pct %s'
          % (fwd, dropped, data_out + data_back, data_out, data_back, delay_ms, loss_pct), flush=True)


def echo(listen, seconds):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    s.bind(listen)
    s.settimeout(0.2)
    seen = set()
    n = nbytes = dups = 0
    end = time.monotonic() + seconds
    try:
        while time.monotonic() < end:
            try:
                d, a = s.recvfrom(2048)
            except socket.timeout:
                continue
            s.sendto(d, a)
            n += 1
            nbytes += len(d)
            if len(d) >= 8:
                k = struct.unpack('>Q', d[:8])[0]
                if k in seen:
                    dups += 1
                seen.add(k)
    except Stop:
        pass
    print('echo: datagrams %d bytes %d distinct %d duplicates %d' % (n, nbytes, len(seen), dups), flush=True)


if __name__ == '__main__':
    signal.signal(signal.SIGTERM, on_term)
    if sys.argv[1] == 'proxy':
        proxy(addr(sys.argv[2]), addr(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5]), float(sys.argv[6]),
              int(sys.argv[7]))
    elif sys.argv[1] == 'echo':
        echo(addr(sys.argv[2]), float(sys.argv[3]))
    else:
        sys.exit('usage: impair.py proxy|echo ...')
