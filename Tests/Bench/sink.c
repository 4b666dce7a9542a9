/* sink.c — the circuit's end for `make bench`.
 *
 *   sink --port P [--duration S] [--idle S] [--batch N]
 *
 * Binds 127.0.0.1:P. Answers every CREATE with CREATED (circuit id = the CREATE's id,
 * body = a nonzero u32 id of its own) and every PING with PONG. Counts DATA frames and
 * their body (payload) bytes with recvmmsg batches. Exits by itself after --duration
 * seconds in total, or --idle seconds after the last DATA once DATA has started,
 * whichever comes first, and prints one line:
 *
 *   sink packets N bytes B seconds T pps X gbps Y creates C other O
 *
 * where T is the time between the first and the last DATA batch received, pps = N/T and
 * gbps = B*8/T/1e9 (payload bits only, no headers). SIGUSR1 makes it print
 * `snap N B` (the counts so far) — bench.sh uses it to bracket the malloc counter. */
#include "common.h"
#include <signal.h>

static volatile sig_atomic_t want_snap = 0, want_stop = 0;
static void on_usr1(int s) { (void)s; want_snap = 1; }
static void on_term(int s) { (void)s; want_stop = 1; }

int main(int argc, char **argv) {
  long port = 0, batch = 64;
  double duration = 10, idle = 1.0;
  for (int i = 1; i < argc; i++) {
    const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(o, "--port")) port = arg_long(o, v, 1, 65535), i++;
    else if (!strcmp(o, "--duration")) duration = arg_double(o, v, 0.1, 600), i++;
    else if (!strcmp(o, "--idle")) idle = arg_double(o, v, 0.05, 60), i++;
    else if (!strcmp(o, "--batch")) batch = arg_long(o, v, 1, MAX_BATCH), i++;
    else { fprintf(stderr, "usage: sink --port P [--duration S] [--idle S] [--batch N]\n"); return 2; }
  }
  if (!port) { fprintf(stderr, "sink: --port is required\n"); return 2; }

  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_usr1; /* no SA_RESTART: recvmmsg returns EINTR promptly */
  sigaction(SIGUSR1, &sa, NULL);
  sa.sa_handler = on_term;
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);

  int fd = udp_socket((uint16_t)port, 8 << 20, 50);
  static uint8_t bufs[MAX_BATCH][MAX_DGRAM + 64];
  struct mmsghdr msgs[MAX_BATCH];
  struct iovec iov[MAX_BATCH];
  struct sockaddr_in from[MAX_BATCH];

  uint64_t packets = 0, bytes = 0, creates = 0, other = 0;
  uint32_t next_id = 1;
  double start = now_s(), first = 0, last = 0;
  setvbuf(stdout, NULL, _IOLBF, 0);

  /* Bounded by time: the loop ends at start+duration at the latest (50 ms receive timeout). */
  for (uint64_t iter = 0; iter < 2000000000ULL && !want_stop; iter++) {
    double t = now_s();
    if (t - start > duration) break;
    if (packets && t - last > idle) break;
    if (want_snap) {
      want_snap = 0;
      printf("snap %llu %llu\n", (unsigned long long)packets, (unsigned long long)bytes);
    }
    for (int i = 0; i < batch; i++) {
      iov[i].iov_base = bufs[i];
      iov[i].iov_len = sizeof bufs[i];
      memset(&msgs[i].msg_hdr, 0, sizeof msgs[i].msg_hdr);
      msgs[i].msg_hdr.msg_iov = &iov[i];
      msgs[i].msg_hdr.msg_iovlen = 1;
      msgs[i].msg_hdr.msg_name = &from[i];
      msgs[i].msg_hdr.msg_namelen = sizeof from[i];
    }
    int n = recvmmsg(fd, msgs, (unsigned)batch, MSG_WAITFORONE, NULL);
    if (n <= 0) continue; /* timeout (EAGAIN) or EINTR */
    t = now_s();
    for (int i = 0; i < n; i++) {
      uint8_t *b = bufs[i];
      size_t len = msgs[i].msg_len;
      int type = frame_type(b, len);
      if (type == T_DATA) {
        if (!packets) first = t;
        packets++;
        bytes += len - HDR;
        last = t;
      } else if (type == T_CREATE) {
        uint8_t out[HDR + 4];
        frame_hdr(out, T_CREATED, 4, get_u32(b + 4));
        uint32_t sid = 0x53000000u | (next_id++ & 0x00ffffffu); /* never 0 */
        put_u32(out + HDR, sid);
        creates++;
        if (from[i].sin_addr.s_addr == htonl(INADDR_LOOPBACK))
          sendto(fd, out, sizeof out, 0, (struct sockaddr *)&from[i], sizeof from[i]);
      } else if (type == T_PING && len >= HDR + 8 && len <= HDR + 64) {
        b[1] = T_PONG;
        if (from[i].sin_addr.s_addr == htonl(INADDR_LOOPBACK))
          sendto(fd, b, len, 0, (struct sockaddr *)&from[i], sizeof from[i]);
      } else {
        other++;
      }
    }
  }
  double span = last - first;
  double pps = span > 0 ? (double)packets / span : 0;
  double gbps = span > 0 ? (double)bytes * 8.0 / span / 1e9 : 0;
  printf("sink packets %llu bytes %llu seconds %.3f pps %.0f gbps %.4f creates %llu other %llu\n",
         (unsigned long long)packets, (unsigned long long)bytes, span, pps, gbps,
         (unsigned long long)creates, (unsigned long long)other);
  close(fd);
  return 0;
}
