// LD_PRELOAD fault injector for the credit journal (Tests/e2e/journal-faults.sh).
//
// While the file named by $FAULT_FILE exists, write, pwrite, fdatasync, fsync,
// ftruncate and rename fail on the journal (a file whose name contains
// "credits.journal": the journal and its compaction file, found through
// /proc/self/fd/N), and so does opening it for writing when the fault is EROFS.
// The file holds the errno's name: ENOSPC, EIO or EROFS. Everything else passes through.
// Build: gcc -O2 -shared -fPIC -o faultfs.so faultfs.c -ldl
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

static int fault_errno(void) {
  const char *path = getenv("FAULT_FILE");
  if (!path) return 0;
  static ssize_t (*real_read)(int, void *, size_t);
  static int (*real_openat)(int, const char *, int, ...);
  if (!real_read) real_read = dlsym(RTLD_NEXT, "read");
  if (!real_openat) real_openat = dlsym(RTLD_NEXT, "openat");
  int fd = real_openat(AT_FDCWD, path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  char buf[16] = {0};
  ssize_t n = real_read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0) return EIO;
  if (strncmp(buf, "ENOSPC", 6) == 0) return ENOSPC;
  if (strncmp(buf, "EROFS", 5) == 0) return EROFS;
  return EIO;
}

static int is_journal_name(const char *p) { return p && strstr(p, "credits.journal") != NULL; }

static int is_journal_fd(int fd) {
  char link[64], target[4096];
  snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
  ssize_t n = readlink(link, target, sizeof target - 1);
  if (n <= 0) return 0;
  target[n] = 0;
  return is_journal_name(target);
}

// Fails the call (returns 1, errno set) when a fault is on and `fd` is the journal.
static int fault_fd(int fd) {
  if (fd <= 2) return 0;  // stdio: logs must keep flowing
  int e = fault_errno();
  if (e == 0 || !is_journal_fd(fd)) return 0;
  errno = e;
  return 1;
}

#define REAL(name) static __typeof__(name) *real; if (!real) real = dlsym(RTLD_NEXT, #name)

ssize_t write(int fd, const void *b, size_t n) { REAL(write); if (fault_fd(fd)) return -1; return real(fd, b, n); }
ssize_t pwrite(int fd, const void *b, size_t n, off_t o) { REAL(pwrite); if (fault_fd(fd)) return -1; return real(fd, b, n, o); }
ssize_t pwrite64(int fd, const void *b, size_t n, off_t o) { REAL(pwrite64); if (fault_fd(fd)) return -1; return real(fd, b, n, o); }
int fdatasync(int fd) { REAL(fdatasync); if (fault_fd(fd)) return -1; return real(fd); }
int fsync(int fd) { REAL(fsync); if (fault_fd(fd)) return -1; return real(fd); }
int ftruncate(int fd, off_t l) { REAL(ftruncate); if (fault_fd(fd)) return -1; return real(fd, l); }
int ftruncate64(int fd, off_t l) { REAL(ftruncate64); if (fault_fd(fd)) return -1; return real(fd, l); }

int rename(const char *a, const char *b) {
  REAL(rename);
  int e;
  if ((is_journal_name(a) || is_journal_name(b)) && (e = fault_errno()) != 0) { errno = e; return -1; }
  return real(a, b);
}

// A read-only file system also refuses to open the journal for writing.
static int open_fault(const char *p, int flags) {
  if (!is_journal_name(p) || (flags & (O_WRONLY | O_RDWR | O_CREAT | O_TRUNC)) == 0) return 0;
  if (fault_errno() != EROFS) return 0;
  errno = EROFS;
  return 1;
}

#define OPEN_WRAPPER(name, ...)                                                    \
  int name(__VA_ARGS__, int flags, ...) {                                          \
    mode_t mode = 0;                                                               \
    if (flags & (O_CREAT | O_TMPFILE)) { va_list ap; va_start(ap, flags); mode = va_arg(ap, mode_t); va_end(ap); }

OPEN_WRAPPER(open, const char *p)
  REAL(open); if (open_fault(p, flags)) return -1; return real(p, flags, mode); }
OPEN_WRAPPER(open64, const char *p)
  REAL(open64); if (open_fault(p, flags)) return -1; return real(p, flags, mode); }
OPEN_WRAPPER(openat, int d, const char *p)
  REAL(openat); if (open_fault(p, flags)) return -1; return real(d, p, flags, mode); }
OPEN_WRAPPER(openat64, int d, const char *p)
  REAL(openat64); if (open_fault(p, flags)) return -1; return real(d, p, flags, mode); }
