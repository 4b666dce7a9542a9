// CPosix — the small C shim through which wisp reaches POSIX and Linux.
//
// Compiles for the x86_64 host (next to Glibc), and for the Embedded
// aarch64/armv7 builds where Glibc cannot be imported. Everything that is a
// macro in C (errno), gated behind _GNU_SOURCE (recvmmsg, sendmmsg) or awkward
// from Swift (sockaddr juggling, argv capture) is wrapped here as a plain
// function with fixed-width types.
#ifndef WISP_SHIM_H
#define WISP_SHIM_H

#include <stdint.h>
#include <stddef.h>
#include <errno.h>
#include <unistd.h>
#include <fcntl.h>
#include <string.h>
#include <stdlib.h>
#include <stdio.h>
#include <time.h>
#include <signal.h>
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <netinet/in.h>

/// argc/argv as glibc passed them to the constructor (Embedded Swift has no CommandLine).
int wisp_argc(void);
char *const *wisp_argv(void);

/// errno, which is a macro in C.
int wisp_errno(void);
void wisp_set_errno(int value);

/// open(2) with a fixed argument list (Swift cannot call variadic C).
int wisp_open(const char *path, int flags, unsigned int mode);

/// Names in a directory (without . and ..), NUL-separated into `out`; returns bytes used or -errno.
long wisp_list_dir(const char *path, char *out, size_t cap);

/// getrandom(2): fills buf from the kernel CSPRNG; 0 or -errno.
int wisp_getrandom(void *buf, size_t len);

/// Starts a thread running fn(arg); returns 0 and the handle in *out, or -errno.
int wisp_thread_spawn(void *(*fn)(void *), void *arg, unsigned long *out);
int wisp_thread_join(unsigned long handle);

/// A process-wide stop flag that every shard's loop polls (atomic).
void wisp_stop_request(void);
int wisp_stop_requested(void);

/// Attaches a classic BPF SO_REUSEPORT program choosing socket (circuit id & mask):
/// the u32 at UDP payload offset 4. 0 or -errno.
int wisp_attach_reuseport_cbpf(int fd, uint32_t mask);
/// Whether this kernel takes the steering program (0), else -errno (ENOPROTOOPT under qemu-user).
int wisp_reuseport_cbpf_supported(void);

/// sendto(2) to an IPv4 address (host order); bytes sent or -errno.
long wisp_sendto(int fd, const void *buf, size_t len, uint32_t ip, uint16_t port);
/// recvfrom(2) from IPv4, non-blocking; bytes or -errno; source in *ip/*port (host order).
long wisp_recvfrom(int fd, void *buf, size_t len, uint32_t *ip, uint16_t *port);
/// poll(2) one fd for input; 1 ready, 0 timeout, -errno.
int wisp_poll_in(int fd, int timeout_ms);

/// Online CPU cores (at least 1).
long wisp_cpu_count(void);

/// A listening UNIX stream socket at `path` (a stale socket file is replaced), non-blocking,
/// mode 0660: the process's user and group only. Run as root, the file's group becomes
/// `group` when that group exists (NULL or "": the process's group). fd or -errno.
int wisp_unix_listen(const char *path, const char *group);
/// Connects to a UNIX stream socket; fd or -errno.
int wisp_unix_connect(const char *path);
/// A listening TCP socket on ip:port (host order), non-blocking; fd or -errno.
int wisp_tcp_listen(uint32_t ip, uint16_t port);
/// accept4: a non-blocking connection (fd) or -errno (-EAGAIN: none waiting).
int wisp_accept(int fd);
/// One non-blocking recv(2) on a stream socket: bytes (0 = closed) or -errno (-EAGAIN: nothing yet).
long wisp_stream_read(int fd, void *buf, size_t len);
/// One non-blocking send(2) without SIGPIPE: bytes written or -errno (-EAGAIN: buffer full).
long wisp_stream_write(int fd, const void *buf, size_t len);
/// Reads up to len bytes, waiting at most timeout_ms; bytes or -errno (0 = closed/timeout).
long wisp_read_timeout(int fd, void *buf, size_t len, int timeout_ms);
/// Writes all bytes (blocking up to timeout_ms per chunk); 0 or -errno.
int wisp_write_all(int fd, const void *buf, size_t len, int timeout_ms);
/// sd_notify(3) without libsystemd: sends `msg` to $NOTIFY_SOCKET. 1 sent, 0 no socket, -errno.
int wisp_sd_notify(const char *msg);
/// unlink(2); 0 or -errno.
int wisp_unlink(const char *path);

/// A process-wide mutex for state shared by shards (the credit journal): lock/unlock.
void wisp_credit_lock(void);
/// The log's lock: one line at a time from any thread.
void wisp_log_lock(void);
void wisp_log_unlock(void);
/// A heap-allocated pthread mutex (mailboxes): new returns NULL when out of memory.
void *wisp_mutex_new(void);
void wisp_mutex_lock(void *m);
void wisp_mutex_unlock(void *m);
void wisp_mutex_free(void *m);
/// An eventfd (non-blocking, close-on-exec): -errno on failure.
int wisp_eventfd(void);
/// Adds 1 to the eventfd's counter (a wake-up); never blocks.
void wisp_eventfd_signal(int fd);
/// Reads and resets the counter; 0 when nothing was signalled.
uint64_t wisp_eventfd_drain(int fd);
/// A 64-bit value one thread publishes and others read (relaxed).
void wisp_atomic_store_u64(uint64_t *p, uint64_t v);
uint64_t wisp_atomic_load_u64(const uint64_t *p);
void wisp_credit_unlock(void);

/// CLOCK_MONOTONIC in nanoseconds.
uint64_t wisp_monotonic_ns(void);
/// CLOCK_REALTIME in seconds since the epoch.
int64_t wisp_realtime_s(void);
/// The kernel's clock discipline, read only: adjtimex(2) with modes 0 (no privilege
/// needed, changes nothing). Returns the clock state (TIME_OK 0 .. TIME_ERROR 5) and
/// stores the status bits (STA_UNSYNC is 0x40) in *status, or -errno.
int wisp_clock_state(int *status);
/// CLOCK_THREAD_CPUTIME_ID in nanoseconds: CPU time of the calling thread (benchmarks).
uint64_t wisp_thread_cpu_ns(void);

/// One datagram slot of a batch: the layout of struct mmsghdr without _GNU_SOURCE.
typedef struct wisp_mmsg {
  struct msghdr hdr;
  unsigned int len;
} wisp_mmsg;

/// recvmmsg(2)/sendmmsg(2) without a timeout; MSG_DONTWAIT is set by the caller's flags.
int wisp_recvmmsg(int fd, wisp_mmsg *vec, unsigned int n, int flags);
int wisp_sendmmsg(int fd, wisp_mmsg *vec, unsigned int n, int flags);

/// A non-blocking UDP/IPv4 socket bound to ip:port (host byte order). Returns fd or -errno.
/// `reuseport` sets SO_REUSEPORT; `bufbytes` > 0 sets SO_RCVBUF and SO_SNDBUF.
int wisp_udp_open(uint32_t ip, uint16_t port, int reuseport, int bufbytes);
/// The open-file limit (soft; raised to the hard limit first, at most 65,536), or -errno.
int wisp_nofile_limit(void);
/// Connects a UDP socket to ip:port (the kernel then drops datagrams from anyone else); 0 or -errno.
int wisp_udp_connect(int fd, uint32_t ip, uint16_t port);
/// send() without blocking, EINTR retried: bytes sent or -errno.
long wisp_send(int fd, const void *buf, size_t len);
/// The port a socket is bound to (host byte order), or -errno.
int wisp_local_port(int fd);
/// UDP GSO (UDP_SEGMENT) and GRO (UDP_GRO) socket options; 0 or -errno.
int wisp_udp_enable_gro(int fd);
/// Size of the GRO segment reported in a received message's control data, or 0.
int wisp_gro_segment_size(const struct msghdr *msg);
/// Writes a UDP_SEGMENT control message into `control` (room for CMSG_SPACE(2)); returns its length.
size_t wisp_put_gso_cmsg(void *control, uint16_t segment);
/// CMSG_SPACE(sizeof(uint16_t)) and CMSG_SPACE(sizeof(int)).
size_t wisp_cmsg_space_u16(void);
size_t wisp_cmsg_space_int(void);

/// epoll: create (close-on-exec), add fd for EPOLLIN with a 64-bit tag, wait.
int wisp_epoll_create(void);
int wisp_epoll_add(int epfd, int fd, uint64_t tag);
/// Adds (`modify` 0) or changes (1) fd's entry: readiness for reading, or for writing when
/// `writable`, reported under `tag`. 0 or -errno.
int wisp_epoll_watch(int epfd, int fd, uint64_t tag, int writable, int modify);
/// Removes fd from the set; 0 or -errno.
int wisp_epoll_del(int epfd, int fd);
/// Waits; writes up to `max` tags into `tags`; returns count or -errno.
int wisp_epoll_wait(int epfd, uint64_t *tags, int max, int timeout_ms);

/// Blocks SIGINT, SIGTERM, SIGHUP, SIGUSR1 in this thread and returns a non-blocking signalfd.
int wisp_signalfd(void);
/// Reads one pending signal number from a signalfd, or 0 when none.
int wisp_signalfd_read(int fd);
/// Ignores SIGPIPE.
void wisp_ignore_sigpipe(void);

/// Durable files (credit journal). Each returns 0 (or a byte count) or -errno, retrying EINTR.
/// fdatasync(2) / fsync(2) of an open file.
int wisp_fdatasync(int fd);
int wisp_fsync(int fd);
/// ftruncate(2) with a 64-bit length.
int wisp_ftruncate(int fd, int64_t length);
/// pread(2) / write(2) of a whole buffer (short transfers continued); bytes or -errno.
long wisp_pread(int fd, void *buf, size_t len, int64_t offset);
long wisp_write_file(int fd, const void *buf, size_t len);
/// mkdir(2) that succeeds if the directory exists.
int wisp_mkdir(const char *path, unsigned int mode);

/// Peak resident set size (VmHWM) of this process in KiB, or -1.
long wisp_peak_rss_kb(void);

#endif
