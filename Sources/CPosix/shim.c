// CPosix — implementation of the wrappers declared in shim.h.
#define _GNU_SOURCE
#include "shim.h"
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/eventfd.h>
#include <netinet/udp.h>
#include <arpa/inet.h>
#include <dirent.h>
#include <sys/random.h>
#include <pthread.h>
#include <poll.h>
#include <sys/un.h>
#include <grp.h>
#include <linux/filter.h>
#include <sys/timex.h>

#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif
#ifndef UDP_GRO
#define UDP_GRO 104
#endif
#ifndef SOL_UDP
#define SOL_UDP 17
#endif

_Static_assert(sizeof(wisp_mmsg) == sizeof(struct mmsghdr), "wisp_mmsg must match struct mmsghdr");

static int saved_argc;
static char *const *saved_argv;

__attribute__((constructor)) static void wisp_capture_args(int argc, char **argv, char **envp) {
  (void)envp;
  saved_argc = argc;
  saved_argv = argv;
}

int wisp_argc(void) { return saved_argc; }
char *const *wisp_argv(void) { return saved_argv; }
int wisp_errno(void) { return errno; }
void wisp_set_errno(int value) { errno = value; }

int wisp_open(const char *path, int flags, unsigned int mode) { return open(path, flags, (mode_t)mode); }

uint64_t wisp_monotonic_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int64_t wisp_realtime_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec;
}

int wisp_clock_state(int *status) {
  struct timex tx;
  memset(&tx, 0, sizeof tx);  // modes 0: read only
  int rc = adjtimex(&tx);
  if (rc < 0) return -errno;
  *status = tx.status;
  return rc;
}

uint64_t wisp_thread_cpu_ns(void) {
  struct timespec ts;
  if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) != 0) return 0;
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int wisp_recvmmsg(int fd, wisp_mmsg *vec, unsigned int n, int flags) {
  return recvmmsg(fd, (struct mmsghdr *)vec, n, flags, NULL);
}

int wisp_sendmmsg(int fd, wisp_mmsg *vec, unsigned int n, int flags) {
  return sendmmsg(fd, (struct mmsghdr *)vec, n, flags);
}

/* An IPv4 socket address from host-order ip and port. */
static struct sockaddr_in sin4(uint32_t ip, uint16_t port) {
  struct sockaddr_in sa;
  memset(&sa, 0, sizeof sa);
  sa.sin_family = AF_INET;
  sa.sin_port = htons(port);
  sa.sin_addr.s_addr = htonl(ip);
  return sa;
}

int wisp_udp_open(uint32_t ip, uint16_t port, int reuseport, int bufbytes) {
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return -errno;
  int one = 1;
  if (reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0) goto fail;
  if (bufbytes > 0) {
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &bufbytes, sizeof bufbytes);
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &bufbytes, sizeof bufbytes);
  }
  struct sockaddr_in sa = sin4(ip, port);
  if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0) goto fail;
  return fd;
fail:;
  int e = errno;
  close(fd);
  return -e;
}

int wisp_nofile_limit(void) {
  struct rlimit r;
  if (getrlimit(RLIMIT_NOFILE, &r) < 0) return -errno;
  if (r.rlim_cur < r.rlim_max) {  /* the soft limit may rise to the hard one */
    r.rlim_cur = r.rlim_max > 65536 ? 65536 : r.rlim_max;
    setrlimit(RLIMIT_NOFILE, &r);
    getrlimit(RLIMIT_NOFILE, &r);
  }
  return r.rlim_cur > 1048576 ? 1048576 : (int)r.rlim_cur;
}

int wisp_udp_connect(int fd, uint32_t ip, uint16_t port) {
  struct sockaddr_in sa = sin4(ip, port);
  if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) return -errno;
  return 0;
}

long wisp_send(int fd, const void *buf, size_t len) {
  ssize_t n;
  do n = send(fd, buf, len, MSG_DONTWAIT); while (n < 0 && errno == EINTR);
  return n < 0 ? -errno : n;
}

int wisp_local_port(int fd) {
  struct sockaddr_in sa;
  socklen_t len = sizeof sa;
  if (getsockname(fd, (struct sockaddr *)&sa, &len) < 0) return -errno;
  return ntohs(sa.sin_port);
}

int wisp_udp_enable_gro(int fd) {
  int one = 1;
  if (setsockopt(fd, SOL_UDP, UDP_GRO, &one, sizeof one) < 0) return -errno;
  return 0;
}

int wisp_gro_segment_size(const struct msghdr *msg) {
  for (struct cmsghdr *c = CMSG_FIRSTHDR((struct msghdr *)msg); c; c = CMSG_NXTHDR((struct msghdr *)msg, c)) {
    if (c->cmsg_level == SOL_UDP && c->cmsg_type == UDP_GRO) {
      int v;
      memcpy(&v, CMSG_DATA(c), sizeof v);
      return v;
    }
  }
  return 0;
}

size_t wisp_put_gso_cmsg(void *control, uint16_t segment) {
  struct cmsghdr *c = (struct cmsghdr *)control;
  c->cmsg_level = SOL_UDP;
  c->cmsg_type = UDP_SEGMENT;
  c->cmsg_len = CMSG_LEN(sizeof(uint16_t));
  memcpy(CMSG_DATA(c), &segment, sizeof segment);
  return CMSG_SPACE(sizeof(uint16_t));
}

size_t wisp_cmsg_space_u16(void) { return CMSG_SPACE(sizeof(uint16_t)); }
size_t wisp_cmsg_space_int(void) { return CMSG_SPACE(sizeof(int)); }

int wisp_epoll_create(void) {
  int fd = epoll_create1(EPOLL_CLOEXEC);
  return fd < 0 ? -errno : fd;
}

int wisp_epoll_add(int epfd, int fd, uint64_t tag) {
  struct epoll_event ev;
  memset(&ev, 0, sizeof ev);
  ev.events = EPOLLIN;
  ev.data.u64 = tag;
  return epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) < 0 ? -errno : 0;
}

int wisp_epoll_watch(int epfd, int fd, uint64_t tag, int writable, int modify) {
  struct epoll_event ev;
  memset(&ev, 0, sizeof ev);
  ev.events = writable ? EPOLLOUT : EPOLLIN;
  ev.data.u64 = tag;
  return epoll_ctl(epfd, modify ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, fd, &ev) < 0 ? -errno : 0;
}

int wisp_epoll_del(int epfd, int fd) {
  struct epoll_event ev;
  memset(&ev, 0, sizeof ev);
  return epoll_ctl(epfd, EPOLL_CTL_DEL, fd, &ev) < 0 ? -errno : 0;
}

int wisp_epoll_wait(int epfd, uint64_t *tags, int max, int timeout_ms) {
  struct epoll_event evs[16];
  if (max > 16) max = 16;
  int n = epoll_wait(epfd, evs, max, timeout_ms);
  if (n < 0) return -errno;
  for (int i = 0; i < n; i++) tags[i] = evs[i].data.u64;
  return n;
}

int wisp_signalfd(void) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGHUP);
  sigaddset(&set, SIGUSR1);
  if (pthread_sigmask(SIG_BLOCK, &set, NULL) != 0) return -errno;
  int fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
  return fd < 0 ? -errno : fd;
}

int wisp_signalfd_read(int fd) {
  struct signalfd_siginfo si;
  ssize_t n = read(fd, &si, sizeof si);
  if (n != (ssize_t)sizeof si) return 0;
  return (int)si.ssi_signo;
}

void wisp_ignore_sigpipe(void) { signal(SIGPIPE, SIG_IGN); }

long wisp_peak_rss_kb(void) {
  FILE *f = fopen("/proc/self/status", "r");
  if (!f) return -1;
  char line[256];
  long kb = -1;
  while (fgets(line, sizeof line, f)) {
    if (strncmp(line, "VmHWM:", 6) == 0) { kb = strtol(line + 6, NULL, 10); break; }
  }
  fclose(f);
  return kb;
}

long wisp_list_dir(const char *path, char *out, size_t cap) {
  DIR *d = opendir(path);
  if (!d) return -errno;
  size_t used = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
    size_t n = strlen(e->d_name) + 1;
    if (used + n > cap) { closedir(d); return -ENOBUFS; }
    memcpy(out + used, e->d_name, n);
    used += n;
  }
  closedir(d);
  return (long)used;
}

int wisp_getrandom(void *buf, size_t len) {
  size_t off = 0;
  while (off < len) {
    ssize_t n = getrandom((char *)buf + off, len - off, 0);
    if (n < 0) { if (errno == EINTR) continue; return -errno; }
    off += (size_t)n;
  }
  return 0;
}

int wisp_thread_spawn(void *(*fn)(void *), void *arg, unsigned long *out) {
  pthread_t t;
  int r = pthread_create(&t, NULL, fn, arg);
  if (r != 0) return -r;
  *out = (unsigned long)t;
  return 0;
}

int wisp_thread_join(unsigned long handle) { return -pthread_join((pthread_t)handle, NULL); }

static int stop_flag;
void wisp_stop_request(void) { __atomic_store_n(&stop_flag, 1, __ATOMIC_SEQ_CST); }
int wisp_stop_requested(void) { return __atomic_load_n(&stop_flag, __ATOMIC_SEQ_CST); }

int wisp_attach_reuseport_cbpf(int fd, uint32_t mask) {
  struct sock_filter code[] = {
    { BPF_LD | BPF_B | BPF_ABS, 0, 0, 0 },     /* A = first byte of the UDP payload */
    { BPF_JMP | BPF_JEQ | BPF_K, 1, 0, 0xD2 }, /* a wisp v2 frame? skip one */
    { BPF_RET | BPF_K, 0, 0, 0 },              /* anything else (DTLS, v1): shard 0      */
    { BPF_LD | BPF_W | BPF_ABS, 0, 0, 4 },     /* A = circuit id (big-endian u32 at offset 4) */
    { BPF_ALU | BPF_AND | BPF_K, 0, 0, mask }, /* A &= shard mask */
    { BPF_RET | BPF_A, 0, 0, 0 },              /* socket index in the reuseport group */
  };
  struct sock_fprog prog = { .len = 6, .filter = code };
  if (setsockopt(fd, SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, &prog, sizeof prog) < 0) return -errno;
  return 0;
}

int wisp_reuseport_cbpf_supported(void) {
  int fd = wisp_udp_open(0x7F000001, 0, 1, 0);
  if (fd < 0) return fd;
  int r = wisp_attach_reuseport_cbpf(fd, 1);
  close(fd);
  return r;
}

long wisp_sendto(int fd, const void *buf, size_t len, uint32_t ip, uint16_t port) {
  struct sockaddr_in sa = sin4(ip, port);
  ssize_t n;
  do { n = sendto(fd, buf, len, MSG_DONTWAIT, (struct sockaddr *)&sa, sizeof sa); } while (n < 0 && errno == EINTR);
  return n < 0 ? -errno : n;
}

long wisp_recvfrom(int fd, void *buf, size_t len, uint32_t *ip, uint16_t *port) {
  struct sockaddr_in sa;
  socklen_t sl = sizeof sa;
  ssize_t n;
  do { n = recvfrom(fd, buf, len, MSG_DONTWAIT, (struct sockaddr *)&sa, &sl); } while (n < 0 && errno == EINTR);
  if (n < 0) return -errno;
  *ip = ntohl(sa.sin_addr.s_addr);
  *port = ntohs(sa.sin_port);
  return n;
}

int wisp_poll_in(int fd, int timeout_ms) {
  struct pollfd p = { .fd = fd, .events = POLLIN };
  int r;
  do { r = poll(&p, 1, timeout_ms); } while (r < 0 && errno == EINTR);
  return r < 0 ? -errno : r;
}

long wisp_cpu_count(void) { long n = sysconf(_SC_NPROCESSORS_ONLN); return n < 1 ? 1 : n; }

static int fill_sun(struct sockaddr_un *sa, const char *path, socklen_t *len) {
  size_t n = strlen(path);
  if (n == 0 || n >= sizeof sa->sun_path) return -ENAMETOOLONG;
  memset(sa, 0, sizeof *sa);
  sa->sun_family = AF_UNIX;
  memcpy(sa->sun_path, path, n);
  if (path[0] == '@') sa->sun_path[0] = 0;  /* abstract namespace */
  *len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
  return 0;
}

int wisp_unix_listen(const char *path, const char *group) {
  struct sockaddr_un sa;
  socklen_t len;
  int r = fill_sun(&sa, path, &len);
  if (r < 0) return r;
  struct stat st;
  if (path[0] != '@' && lstat(path, &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) return -EEXIST;  /* never delete a file that is not a socket */
    unlink(path);
  }
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return -errno;
  /* Created 0660 (no window with a wider mode): called before any other thread starts. */
  mode_t old = umask(0117);
  int b = bind(fd, (struct sockaddr *)&sa, len);
  int e = errno;
  umask(old);
  if (b < 0 || listen(fd, 16) < 0) { if (b >= 0) e = errno; close(fd); return -e; }
  if (path[0] != '@') {
    /* root (outside the packaged service): the socket still belongs to the service's group. */
    if (geteuid() == 0 && group != NULL && group[0] != 0) {
      struct group *g = getgrnam(group);
      if (g != NULL && chown(path, (uid_t)-1, g->gr_gid) < 0) { e = errno; close(fd); unlink(path); return -e; }
    }
    if (chmod(path, 0660) < 0) { e = errno; close(fd); unlink(path); return -e; }
  }
  return fd;
}

int wisp_unix_connect(const char *path) {
  struct sockaddr_un sa;
  socklen_t len;
  int r = fill_sun(&sa, path, &len);
  if (r < 0) return r;
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -errno;
  if (connect(fd, (struct sockaddr *)&sa, len) < 0) { int e = errno; close(fd); return -e; }
  return fd;
}

int wisp_tcp_listen(uint32_t ip, uint16_t port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return -errno;
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in sa = sin4(ip, port);
  if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(fd, 16) < 0) { int e = errno; close(fd); return -e; }
  return fd;
}

int wisp_accept(int fd) {
  int c = accept4(fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
  return c < 0 ? -errno : c;
}

long wisp_stream_read(int fd, void *buf, size_t len) {
  ssize_t n;
  do { n = recv(fd, buf, len, MSG_DONTWAIT); } while (n < 0 && errno == EINTR);
  return n < 0 ? -errno : n;
}

long wisp_stream_write(int fd, const void *buf, size_t len) {
  ssize_t n;
  do { n = send(fd, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT); } while (n < 0 && errno == EINTR);
  return n < 0 ? -errno : n;
}

long wisp_read_timeout(int fd, void *buf, size_t len, int timeout_ms) {
  int r = wisp_poll_in(fd, timeout_ms);
  if (r <= 0) return r;
  ssize_t n;
  do { n = read(fd, buf, len); } while (n < 0 && errno == EINTR);
  return n < 0 ? -errno : n;
}

int wisp_write_all(int fd, const void *buf, size_t len, int timeout_ms) {
  size_t off = 0;
  while (off < len) {
    struct pollfd p = { .fd = fd, .events = POLLOUT };
    if (poll(&p, 1, timeout_ms) <= 0) return -ETIMEDOUT;
    ssize_t n = send(fd, (const char *)buf + off, len - off, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0) { if (errno == EINTR || errno == EAGAIN) continue; return -errno; }
    off += (size_t)n;
  }
  return 0;
}

int wisp_sd_notify(const char *msg) {
  const char *path = getenv("NOTIFY_SOCKET");
  if (!path || !*path) return 0;
  struct sockaddr_un sa;
  socklen_t len;
  int r = fill_sun(&sa, path, &len);
  if (r < 0) return r;
  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -errno;
  ssize_t n = sendto(fd, msg, strlen(msg), MSG_NOSIGNAL, (struct sockaddr *)&sa, len);
  int e = errno;
  close(fd);
  return n < 0 ? -e : 1;
}

int wisp_unlink(const char *path) { return unlink(path) < 0 ? -errno : 0; }

int wisp_fdatasync(int fd) {
  int r;
  do { r = fdatasync(fd); } while (r < 0 && errno == EINTR);
  return r < 0 ? -errno : 0;
}

int wisp_fsync(int fd) {
  int r;
  do { r = fsync(fd); } while (r < 0 && errno == EINTR);
  return r < 0 ? -errno : 0;
}


int wisp_ftruncate(int fd, int64_t length) {
  int r;
  do { r = ftruncate(fd, (off_t)length); } while (r < 0 && errno == EINTR);
  return r < 0 ? -errno : 0;
}

long wisp_pread(int fd, void *buf, size_t len, int64_t offset) {
  size_t done = 0;
  while (done < len) {
    ssize_t n = pread(fd, (char *)buf + done, len - done, (off_t)(offset + (int64_t)done));
    if (n < 0) { if (errno == EINTR) continue; return -errno; }
    if (n == 0) break;
    done += (size_t)n;
  }
  return (long)done;
}

long wisp_write_file(int fd, const void *buf, size_t len) {
  size_t done = 0;
  while (done < len) {
    ssize_t n = write(fd, (const char *)buf + done, len - done);
    if (n < 0) { if (errno == EINTR) continue; return -errno; }
    done += (size_t)n;
  }
  return (long)done;
}

int wisp_mkdir(const char *path, unsigned int mode) {
  if (mkdir(path, (mode_t)mode) < 0 && errno != EEXIST) return -errno;
  return 0;
}

static pthread_mutex_t credit_mutex = PTHREAD_MUTEX_INITIALIZER;
void wisp_credit_lock(void) { pthread_mutex_lock(&credit_mutex); }
void wisp_credit_unlock(void) { pthread_mutex_unlock(&credit_mutex); }

static pthread_mutex_t log_mutex = PTHREAD_MUTEX_INITIALIZER;
void wisp_log_lock(void) { pthread_mutex_lock(&log_mutex); }
void wisp_log_unlock(void) { pthread_mutex_unlock(&log_mutex); }

void *wisp_mutex_new(void) {
  pthread_mutex_t *m = malloc(sizeof *m);
  if (m && pthread_mutex_init(m, NULL) != 0) { free(m); return NULL; }
  return m;
}
void wisp_mutex_lock(void *m) { pthread_mutex_lock((pthread_mutex_t *)m); }
void wisp_mutex_unlock(void *m) { pthread_mutex_unlock((pthread_mutex_t *)m); }
void wisp_mutex_free(void *m) { if (m) { pthread_mutex_destroy((pthread_mutex_t *)m); free(m); } }

int wisp_eventfd(void) {
  int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  return fd < 0 ? -errno : fd;
}
void wisp_eventfd_signal(int fd) {
  uint64_t one = 1;
  ssize_t n;
  do { n = write(fd, &one, sizeof one); } while (n < 0 && errno == EINTR);
}
uint64_t wisp_eventfd_drain(int fd) {
  uint64_t v = 0;
  ssize_t n;
  do { n = read(fd, &v, sizeof v); } while (n < 0 && errno == EINTR);
  return n == (ssize_t)sizeof v ? v : 0;
}
void wisp_atomic_store_u64(uint64_t *p, uint64_t v) { __atomic_store_n(p, v, __ATOMIC_RELAXED); }
uint64_t wisp_atomic_load_u64(const uint64_t *p) { return __atomic_load_n(p, __ATOMIC_RELAXED); }
