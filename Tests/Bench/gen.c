/* gen.c — traffic generator for `make bench`. Sends only to 127.0.0.1.
 *
 *   gen --port P --raw [--id ID]            DATA frames with a fixed circuit id, straight
 *                                           to P (the C baseline relay or socat)
 *   gen --port P --circuit --sink-port Q    CREATE/CREATED handshake through the wisp relay
 *       [--circuits N] [--create-timeout S]  at P (hop: extend to 127.0.0.1:Q, empty rest),
 *                                           then DATA round-robin over the circuits made
 *   gen --port P --ping [--timeout S]       PING until a PONG comes back (exit 0) or not (1)
 *
 * Common: --size BODY (payload bytes, 0..1464, default 64), --duration S (default 3),
 * --count N (most DATA frames to send), --batch N (sendmmsg batch, 1..64, default 32),
 * --gso (each batch leaves as one UDP GSO send of equal-size segments),
 * --sockets K (circuit mode: K source sockets/ports, circuits split evenly; lets a relay
 * that shards by SO_REUSEPORT hash spread the load; default 1).
 * Every loop is bounded by a count and by time. Prints one line on stdout:
 *
 *   gen sent N bytes B seconds T circuits K refused R failed F
 */
#include "common.h"
#include <poll.h>

static int fd; /* the socket in use (one of socks[]) */

static void usage(void) {
  fprintf(stderr, "usage: gen --port P (--raw [--id ID] | --circuit --sink-port Q [--circuits N]"
                  " [--create-timeout S] | --ping [--timeout S]) [--size B] [--duration S]"
                  " [--count N] [--batch N] [--gso]\n");
  exit(2);
}

/* Sends `n` prepared datagrams with sendmmsg, retrying a bounded number of times. */
static void send_all(struct mmsghdr *m, int n) {
  int off = 0;
  for (int tries = 0; off < n && tries < 8; tries++) {
    int r = sendmmsg(fd, m + off, (unsigned)(n - off), 0);
    if (r > 0) off += r;
  }
}

static int ping(double timeout) {
  uint8_t out[HDR + 8], in[MAX_DGRAM];
  frame_hdr(out, T_PING, 8, 0);
  uint32_t token = (uint32_t)getpid() ^ 0x9e3779b9u;
  put_u32(out + HDR, token);
  put_u32(out + HDR + 4, ~token);
  double end = now_s() + timeout;
  for (int round = 0; round < 1000 && now_s() < end; round++) {
    send(fd, out, sizeof out, 0);
    struct pollfd p = { fd, POLLIN, 0 };
    double until = now_s() + 0.05;
    for (int k = 0; k < 64 && now_s() < until; k++) {
      if (poll(&p, 1, 10) <= 0) continue;
      ssize_t n = recv(fd, in, sizeof in, MSG_DONTWAIT);
      if (n == (ssize_t)sizeof out && frame_type(in, (size_t)n) == T_PONG &&
          !memcmp(in + HDR, out + HDR, 8)) {
        printf("gen pong after %d pings\n", round + 1);
        return 0;
      }
    }
  }
  printf("gen no pong\n");
  return 1;
}

enum { UNSENT, INFLIGHT, DONE, REFUSED, FAILED };

/* CREATE/CREATED for n circuits with at most `window` in flight, retransmitting after
 * 250 ms, 6 tries each, all within `timeout` seconds. Fills fwd[] (0 = no circuit). */
static void handshake(uint16_t sink_port, int n, double timeout,
                      uint32_t *fwd, int *n_done, int *n_refused, int *n_failed) {
  uint8_t *state = calloc((size_t)n, 1);
  uint8_t *tries = calloc((size_t)n, 1);
  double *sent_at = calloc((size_t)n, sizeof(double));
  if (!state || !tries || !sent_at) die("calloc");
  const int window = 64, max_tries = 6;
  const double rto = 0.25;
  static uint8_t out[MAX_BATCH][HDR + 8];
  static uint8_t in[MAX_BATCH][MAX_DGRAM];
  struct mmsghdr m[MAX_BATCH];
  struct iovec iov[MAX_BATCH];
  int next = 0, lo = 0, inflight = 0, finished = 0, refused = 0, failed = 0;
  double end = now_s() + timeout;
  for (long iter = 0; iter < 10000000L && finished < n && now_s() < end; iter++) {
    /* 1. prepare (re)transmissions into one batch */
    int b = 0;
    double t = now_s();
    while (lo < next && state[lo] >= DONE) lo++;
    for (int i = lo; i < next && b < MAX_BATCH; i++) {
      if (state[i] != INFLIGHT || t - sent_at[i] < rto) continue;
      if (tries[i] >= max_tries) { state[i] = FAILED; failed++; finished++; inflight--; continue; }
      tries[i]++; sent_at[i] = t;
      frame_hdr(out[b++], T_CREATE, 8, (uint32_t)(i + 1));
    }
    while (inflight < window && next < n && b < MAX_BATCH) {
      int i = next++;
      state[i] = INFLIGHT; tries[i] = 1; sent_at[i] = t; inflight++;
      frame_hdr(out[b++], T_CREATE, 8, (uint32_t)(i + 1));
    }
    for (int k = 0; k < b; k++) {
      uint8_t *h = out[k] + HDR; /* hop: extend to 127.0.0.1:sink_port, empty rest */
      h[0] = 1; h[1] = 0; put_u16(h + 2, sink_port); h[4] = 127; h[5] = 0; h[6] = 0; h[7] = 1;
      iov[k].iov_base = out[k]; iov[k].iov_len = HDR + 8;
      memset(&m[k].msg_hdr, 0, sizeof m[k].msg_hdr);
      m[k].msg_hdr.msg_iov = &iov[k]; m[k].msg_hdr.msg_iovlen = 1;
    }
    if (b) send_all(m, b);
    /* 2. collect answers */
    struct pollfd p = { fd, POLLIN, 0 };
    if (poll(&p, 1, b ? 1 : 10) <= 0) continue;
    for (int drain = 0; drain < 64; drain++) {
      for (int k = 0; k < MAX_BATCH; k++) {
        iov[k].iov_base = in[k]; iov[k].iov_len = sizeof in[k];
        memset(&m[k].msg_hdr, 0, sizeof m[k].msg_hdr);
        m[k].msg_hdr.msg_iov = &iov[k]; m[k].msg_hdr.msg_iovlen = 1;
      }
      int r = recvmmsg(fd, m, MAX_BATCH, MSG_DONTWAIT, NULL);
      if (r <= 0) break;
      for (int k = 0; k < r; k++) {
        int type = frame_type(in[k], m[k].msg_len);
        uint32_t id = get_u32(in[k] + 4);
        if (id < 1 || id > (uint32_t)n || state[id - 1] != INFLIGHT) continue;
        if (type == T_CREATED && m[k].msg_len == HDR + 4 && get_u32(in[k] + HDR) != 0) {
          fwd[id - 1] = get_u32(in[k] + HDR);
          state[id - 1] = DONE; finished++; inflight--;
        } else if (type == T_REFUSED) {
          if (refused < 3) fprintf(stderr, "gen: CREATE %u refused, reason %d\n", id,
                                   m[k].msg_len > HDR ? in[k][HDR] : -1);
          state[id - 1] = REFUSED; refused++; finished++; inflight--;
        }
      }
    }
  }
  int done = 0;
  for (int i = 0; i < n; i++) done += state[i] == DONE;
  *n_done = done; *n_refused = refused; *n_failed = n - done - refused;
  free(state); free(tries); free(sent_at);
}

int main(int argc, char **argv) {
  long port = 0, sink_port = 0, size = 64, batch = 32, circuits = 1, raw_id = 1, nsock = 1;
  int gso = 0; /* --gso: send each batch as one UDP GSO datagram (exercises the relay's GRO) */
  long long count = 4000000000LL;
  double duration = 3, create_timeout = 5, timeout = 3;
  int mode = 0; /* 1 raw, 2 circuit, 3 ping */
  for (int i = 1; i < argc; i++) {
    const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(o, "--raw")) mode = 1;
    else if (!strcmp(o, "--circuit")) mode = 2;
    else if (!strcmp(o, "--ping")) mode = 3;
    else if (!strcmp(o, "--port")) port = arg_long(o, v, 1, 65535), i++;
    else if (!strcmp(o, "--sink-port")) sink_port = arg_long(o, v, 1, 65535), i++;
    else if (!strcmp(o, "--id")) raw_id = arg_long(o, v, 1, 0xffffffffL), i++;
    else if (!strcmp(o, "--size")) size = arg_long(o, v, 0, MAX_BODY), i++;
    else if (!strcmp(o, "--batch")) batch = arg_long(o, v, 1, MAX_BATCH), i++;
    else if (!strcmp(o, "--gso")) gso = 1;
    else if (!strcmp(o, "--circuits")) circuits = arg_long(o, v, 1, 1000000), i++;
    else if (!strcmp(o, "--sockets")) nsock = arg_long(o, v, 1, 16), i++;
    else if (!strcmp(o, "--count")) count = arg_long(o, v, 0, 0x7fffffffffffL), i++;
    else if (!strcmp(o, "--duration")) duration = arg_double(o, v, 0, 600), i++;
    else if (!strcmp(o, "--create-timeout")) create_timeout = arg_double(o, v, 0.1, 120), i++;
    else if (!strcmp(o, "--timeout")) timeout = arg_double(o, v, 0.05, 60), i++;
    else usage();
  }
  if (!port || !mode || (mode == 2 && !sink_port)) usage();
  if (mode != 2) nsock = 1;
  if (nsock > circuits) nsock = circuits;
  setvbuf(stdout, NULL, _IOLBF, 0);
  struct sockaddr_in to = loopback((uint16_t)port);
  int socks[16];
  for (int k = 0; k < nsock; k++) {
    socks[k] = udp_socket(0, 4 << 20, 0);
    /* A connected socket skips the per-datagram route lookup (cheaper generator) and only
     * accepts datagrams from the relay. */
    if (connect(socks[k], (struct sockaddr *)&to, sizeof to) != 0) die("connect 127.0.0.1");
  }
  fd = socks[0];
  if (mode == 3) return ping(timeout);

  /* fwd[k*per .. k*per+nc[k]) are the relay's ids for the circuits made on socks[k]. */
  long per = (circuits + nsock - 1) / nsock;
  uint32_t *fwd = calloc((size_t)(per * nsock), sizeof *fwd);
  int nc[16] = { 0 };
  if (!fwd) die("calloc");
  int total = 0, refused = 0, failed = 0;
  if (mode == 2) {
    double hs_end = now_s() + create_timeout;
    for (int k = 0; k < nsock; k++) {
      int want = (int)(k == nsock - 1 ? circuits - per * k : per), done = 0, r = 0, f = 0;
      double left = hs_end - now_s();
      if (want <= 0 || left < 0.1) break;
      fd = socks[k];
      uint32_t *mine = fwd + per * k;
      handshake((uint16_t)sink_port, want, left, mine, &done, &r, &f);
      int j = 0; /* compact to the circuits that exist */
      for (int i = 0; i < want; i++) if (mine[i]) mine[j++] = mine[i];
      nc[k] = j; total += j; refused += r; failed += f;
    }
    fprintf(stderr, "gen: %d/%ld circuits up (%d refused, %d failed)\n", total, circuits, refused, failed);
    if (!total) {
      printf("gen sent 0 bytes 0 seconds 0 circuits 0 refused %d failed %d\n", refused, failed);
      return 1;
    }
  } else {
    fwd[0] = (uint32_t)raw_id;
    nc[0] = total = 1;
  }

  static uint8_t bufs[MAX_BATCH][MAX_DGRAM];
  struct mmsghdr m[MAX_BATCH];
  struct iovec iov[MAX_BATCH];
  for (int k = 0; k < batch; k++) {
    frame_hdr(bufs[k], T_DATA, (uint16_t)size, fwd[0]);
    for (long j = 0; j < size; j++) bufs[k][HDR + j] = (uint8_t)(j * 7 + k);
    iov[k].iov_base = bufs[k]; iov[k].iov_len = HDR + (size_t)size;
    memset(&m[k].msg_hdr, 0, sizeof m[k].msg_hdr);
    m[k].msg_hdr.msg_iov = &iov[k]; m[k].msg_hdr.msg_iovlen = 1;
  }
  unsigned long long sent = 0, errs = 0, rr[16] = { 0 };
  unsigned turn = 0;
  double start = now_s(), end = start + duration;
  /* Bounded by --count and by --duration (checked every batch). */
  while (sent < (unsigned long long)count) {
    if (now_s() >= end) break;
    int n = (int)batch;
    if ((unsigned long long)n > (unsigned long long)count - sent) n = (int)(count - sent);
    int k = (int)(turn++ % (unsigned)nsock); /* sockets take turns, one batch each */
    if (!nc[k]) continue;
    if (total > 1) {
      uint32_t *mine = fwd + per * k;
      for (int j = 0; j < n; j++) put_u32(bufs[j] + 4, mine[rr[k]++ % (unsigned)nc[k]]);
    }
    int r;
    if (gso) {
      /* One sendmsg carrying the whole batch as UDP GSO segments of one size. */
      size_t seg = HDR + (size_t)size;
      if ((size_t)n * seg > 65000) n = (int)(65000 / seg);
      char ctl[CMSG_SPACE(sizeof(uint16_t))];
      struct msghdr mh;
      memset(&mh, 0, sizeof mh);
      mh.msg_iov = iov; mh.msg_iovlen = (size_t)n;
      mh.msg_control = ctl; mh.msg_controllen = sizeof ctl;
      struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
      c->cmsg_level = 17 /* SOL_UDP */; c->cmsg_type = 103 /* UDP_SEGMENT */; c->cmsg_len = CMSG_LEN(sizeof(uint16_t));
      uint16_t gs = (uint16_t)seg;
      memcpy(CMSG_DATA(c), &gs, sizeof gs);
      r = sendmsg(socks[k], &mh, 0) > 0 ? n : -1;
    } else {
      r = sendmmsg(socks[k], m, (unsigned)n, 0);
    }
    if (r > 0) sent += (unsigned long long)r;
    else if (++errs > 1000000) break;
  }
  double span = now_s() - start;
  printf("gen sent %llu bytes %llu seconds %.3f circuits %d refused %d failed %d\n", sent,
         sent * (unsigned long long)size, span, total, refused, failed);
  return 0;
}
