/* common.h — shared helpers for the wisp benchmark tools (gen, sink, baseline_relay).
 * Wire protocol v2: 8-byte header [0xD2, type, len_hi, len_lo, id(4, big-endian)] + body.
 * Every tool only ever talks to 127.0.0.1. */
#ifndef WISP_BENCH_COMMON_H
#define WISP_BENCH_COMMON_H
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#ifndef WISP_VERSION
#define WISP_VERSION 0xD2  /* -DWISP_VERSION=0xD1: frames for a v1 build (bench.sh, WISP_START_BIN) */
#endif
#define T_DATA 0x01
#define T_CREATE 0x02
#define T_CREATED 0x03
#define T_DESTROY 0x04
#define T_PING 0x05
#define T_PONG 0x06
#define T_REFUSED 0x08
#define HDR 8
#define MAX_DGRAM 1472
#define MAX_BODY (MAX_DGRAM - HDR)
#define MAX_BATCH 64

static inline double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static inline void put_u16(uint8_t *p, uint16_t v) { p[0] = v >> 8; p[1] = v & 0xff; }
static inline void put_u32(uint8_t *p, uint32_t v) {
  p[0] = v >> 24; p[1] = (v >> 16) & 0xff; p[2] = (v >> 8) & 0xff; p[3] = v & 0xff;
}
static inline uint16_t get_u16(const uint8_t *p) { return (uint16_t)((p[0] << 8) | p[1]); }
static inline uint32_t get_u32(const uint8_t *p) {
  return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

/* Writes a frame header; returns the datagram length. */
static inline size_t frame_hdr(uint8_t *buf, uint8_t type, uint16_t body_len, uint32_t id) {
  buf[0] = WISP_VERSION; buf[1] = type; put_u16(buf + 2, body_len); put_u32(buf + 4, id);
  return HDR + (size_t)body_len;
}

/* Validates a v1 frame; returns its type or -1. */
static inline int frame_type(const uint8_t *buf, size_t len) {
  if (len < HDR || buf[0] != WISP_VERSION) return -1;
  if ((size_t)get_u16(buf + 2) != len - HDR) return -1;
  return buf[1];
}

static inline struct sockaddr_in loopback(uint16_t port) {
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK); /* 127.0.0.1 only, by construction */
  return a;
}

static inline void die(const char *what) { perror(what); exit(2); }

/* UDP socket bound to 127.0.0.1:port (0 = ephemeral), big buffers, receive timeout in ms. */
static inline int udp_socket(uint16_t port, int bufbytes, int rcvtimeo_ms) {
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  if (fd < 0) die("socket");
  /* FORCE variants exceed rmem_max when run as root; fall back silently otherwise. */
  if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &bufbytes, sizeof bufbytes) != 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &bufbytes, sizeof bufbytes);
  if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &bufbytes, sizeof bufbytes) != 0)
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &bufbytes, sizeof bufbytes);
  if (rcvtimeo_ms > 0) {
    struct timeval tv = { rcvtimeo_ms / 1000, (rcvtimeo_ms % 1000) * 1000 };
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  }
  struct sockaddr_in a = loopback(port);
  if (bind(fd, (struct sockaddr *)&a, sizeof a) != 0) die("bind 127.0.0.1");
  return fd;
}

/* Strict numeric parsing for options. */
static inline long arg_long(const char *opt, const char *v, long lo, long hi) {
  char *end = NULL;
  errno = 0;
  long x = strtol(v ? v : "", &end, 10);
  if (!v || errno || *end || x < lo || x > hi) {
    fprintf(stderr, "bad value for %s: '%s' (want %ld..%ld)\n", opt, v ? v : "", lo, hi);
    exit(2);
  }
  return x;
}
static inline double arg_double(const char *opt, const char *v, double lo, double hi) {
  char *end = NULL;
  double x = strtod(v ? v : "", &end);
  if (!v || *end || !(x >= lo && x <= hi)) {
    fprintf(stderr, "bad value for %s: '%s' (want %g..%g)\n", opt, v ? v : "", lo, hi);
    exit(2);
  }
  return x;
}
#endif
