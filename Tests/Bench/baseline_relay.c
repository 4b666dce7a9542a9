/* baseline_relay.c — the minimal C relay the wisp relay is compared against.
 *
 *   baseline_relay --listen PORT --to PORT [--duration S] [--batch N]
 *
 * One non-blocking UDP socket on 127.0.0.1:PORT, epoll; every wakeup drains the socket
 * with recvmmsg batches and forwards every datagram unchanged to 127.0.0.1:TO with
 * sendmmsg. No parsing, no table lookup, no allocation: the ceiling for a relay written
 * in the same style. Exits by itself after --duration seconds and prints
 * `baseline forwarded N`. */
#include "common.h"
#include <fcntl.h>
#include <signal.h>
#include <sys/epoll.h>

static volatile sig_atomic_t stop = 0;
static void on_term(int s) { (void)s; stop = 1; }

int main(int argc, char **argv) {
  long listen_port = 0, to_port = 0, batch = 32;
  double duration = 5;
  for (int i = 1; i < argc; i++) {
    const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(o, "--listen")) listen_port = arg_long(o, v, 1, 65535), i++;
    else if (!strcmp(o, "--to")) to_port = arg_long(o, v, 1, 65535), i++;
    else if (!strcmp(o, "--duration")) duration = arg_double(o, v, 0.1, 600), i++;
    else if (!strcmp(o, "--batch")) batch = arg_long(o, v, 1, MAX_BATCH), i++;
    else { fprintf(stderr, "usage: baseline_relay --listen P --to P [--duration S] [--batch N]\n"); return 2; }
  }
  if (!listen_port || !to_port) { fprintf(stderr, "baseline_relay: --listen and --to are required\n"); return 2; }
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_term;
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);

  int fd = udp_socket((uint16_t)listen_port, 8 << 20, 0);
  if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) != 0) die("fcntl");
  int ep = epoll_create1(0);
  if (ep < 0) die("epoll_create1");
  struct epoll_event ev = { .events = EPOLLIN, .data.fd = fd };
  if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) != 0) die("epoll_ctl");

  static uint8_t bufs[MAX_BATCH][MAX_DGRAM];
  struct mmsghdr msgs[MAX_BATCH];
  struct iovec iov[MAX_BATCH];
  struct sockaddr_in to = loopback((uint16_t)to_port);
  unsigned long long forwarded = 0, dropped = 0;
  double end = now_s() + duration;
  for (long wake = 0; wake < 100000000L && !stop && now_s() < end; wake++) {
    struct epoll_event got;
    if (epoll_wait(ep, &got, 1, 100) <= 0) continue;
    for (int drain = 0; drain < 256; drain++) { /* bounded per wakeup; epoll is level-triggered */
      for (int i = 0; i < batch; i++) {
        iov[i].iov_base = bufs[i];
        iov[i].iov_len = MAX_DGRAM;
        memset(&msgs[i].msg_hdr, 0, sizeof msgs[i].msg_hdr);
        msgs[i].msg_hdr.msg_iov = &iov[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
      }
      int n = recvmmsg(fd, msgs, (unsigned)batch, MSG_DONTWAIT, NULL);
      if (n <= 0) break;
      for (int i = 0; i < n; i++) {
        iov[i].iov_len = msgs[i].msg_len; /* forward unchanged */
        msgs[i].msg_hdr.msg_name = &to;
        msgs[i].msg_hdr.msg_namelen = sizeof to;
      }
      int off = 0;
      for (int tries = 0; off < n && tries < 4; tries++) {
        int r = sendmmsg(fd, msgs + off, (unsigned)(n - off), 0);
        if (r > 0) off += r;
      }
      forwarded += (unsigned long long)off;
      dropped += (unsigned long long)(n - off);
      if (n < batch) break;
    }
  }
  fprintf(stderr, "baseline forwarded %llu dropped %llu\n", forwarded, dropped);
  return 0;
}
