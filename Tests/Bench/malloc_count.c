/* malloc_count.c — LD_PRELOAD allocation counter for `make bench`.
 *
 *   MALLOC_COUNT_FILE=/tmp/x LD_PRELOAD=.build-bench/malloc_count.so wisp run ...
 *
 * Counts calls to malloc, calloc, realloc, posix_memalign, aligned_alloc, memalign,
 * valloc and pvalloc (one counter for all; atomic, so thread-safe). On SIGUSR2 and at exit
 * it writes the count as one decimal line to $MALLOC_COUNT_FILE (truncating it). The
 * signal handler uses only open/write/close (async-signal-safe; no malloc, no stdio).
 *
 * Bootstrap: dlsym() may itself call calloc before the real functions are known; such
 * requests are served from a small static bump buffer and never freed to libc. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static atomic_ullong calls = 0;
static void *(*real_malloc)(size_t);
static void *(*real_calloc)(size_t, size_t);
static void *(*real_realloc)(void *, size_t);
static void (*real_free)(void *);
static int (*real_posix_memalign)(void **, size_t, size_t);
static void *(*real_aligned_alloc)(size_t, size_t);
static void *(*real_memalign)(size_t, size_t);
static void *(*real_valloc)(size_t);
static void *(*real_pvalloc)(size_t);

static _Alignas(64) unsigned char boot[64 * 1024];
static atomic_size_t boot_used = 0;
static atomic_int resolving = 0;
static const char *count_file;

static int in_boot(const void *p) {
  return (const unsigned char *)p >= boot && (const unsigned char *)p < boot + sizeof boot;
}

/* Each bootstrap block is preceded by 16 bytes holding its size (for realloc). */
static void *boot_alloc(size_t n) {
  if (n > sizeof boot) return NULL;
  size_t need = 16 + ((n + 15) & ~(size_t)15);
  size_t off = atomic_fetch_add(&boot_used, need);
  if (off + need > sizeof boot) return NULL;
  memcpy(boot + off, &n, sizeof n);
  return boot + off + 16; /* static storage: already zeroed */
}

static void resolve(void) {
  if (real_malloc) return;
  atomic_store(&resolving, 1);
  real_calloc = dlsym(RTLD_NEXT, "calloc");
  real_malloc = dlsym(RTLD_NEXT, "malloc");
  real_realloc = dlsym(RTLD_NEXT, "realloc");
  real_free = dlsym(RTLD_NEXT, "free");
  real_posix_memalign = dlsym(RTLD_NEXT, "posix_memalign");
  real_aligned_alloc = dlsym(RTLD_NEXT, "aligned_alloc");
  real_memalign = dlsym(RTLD_NEXT, "memalign");
  real_valloc = dlsym(RTLD_NEXT, "valloc");
  real_pvalloc = dlsym(RTLD_NEXT, "pvalloc");
  atomic_store(&resolving, 0);
}

static void write_count(void) {
  if (!count_file) return;
  char buf[32];
  int i = sizeof buf;
  unsigned long long v = atomic_load(&calls);
  buf[--i] = '\n';
  do { buf[--i] = (char)('0' + v % 10); v /= 10; } while (v && i > 0);
  int fd = open(count_file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return;
  ssize_t w = write(fd, buf + i, sizeof buf - (size_t)i);
  (void)w;
  close(fd);
}

static void on_usr2(int sig) {
  (void)sig;
  int saved = errno;
  write_count();
  errno = saved;
}

__attribute__((constructor)) static void init(void) {
  resolve();
  count_file = getenv("MALLOC_COUNT_FILE");
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_usr2;
  sa.sa_flags = SA_RESTART;
  sigaction(SIGUSR2, &sa, NULL);
}

__attribute__((destructor)) static void fini(void) { write_count(); }

void *malloc(size_t n) {
  if (!real_malloc) {
    if (atomic_load(&resolving)) return boot_alloc(n);
    resolve();
  }
  atomic_fetch_add_explicit(&calls, 1, memory_order_relaxed);
  return real_malloc(n);
}

void *calloc(size_t a, size_t b) {
  if (!real_calloc) {
    if (atomic_load(&resolving)) {
      if (b && a > SIZE_MAX / b) return NULL;
      return boot_alloc(a * b);
    }
    resolve();
  }
  atomic_fetch_add_explicit(&calls, 1, memory_order_relaxed);
  return real_calloc(a, b);
}

void *realloc(void *p, size_t n) {
  if (in_boot(p)) { /* move a bootstrap block into the real heap */
    size_t old;
    memcpy(&old, (unsigned char *)p - 16, sizeof old);
    void *q = malloc(n);
    if (q) memcpy(q, p, n < old ? n : old);
    return q;
  }
  if (!real_realloc) resolve();
  atomic_fetch_add_explicit(&calls, 1, memory_order_relaxed);
  return real_realloc(p, n);
}

void free(void *p) {
  if (!p || in_boot(p)) return;
  if (!real_free) resolve();
  real_free(p);
}

int posix_memalign(void **out, size_t align, size_t n) {
  if (!real_posix_memalign) resolve();
  atomic_fetch_add_explicit(&calls, 1, memory_order_relaxed);
  return real_posix_memalign(out, align, n);
}

void *aligned_alloc(size_t align, size_t n) {
  if (!real_aligned_alloc) resolve();
  atomic_fetch_add_explicit(&calls, 1, memory_order_relaxed);
  return real_aligned_alloc(align, n);
}

void *memalign(size_t align, size_t n) {
  if (!real_memalign) resolve();
  atomic_fetch_add_explicit(&calls, 1, memory_order_relaxed);
  return real_memalign(align, n);
}

void *valloc(size_t n) {
  if (!real_valloc) resolve();
  atomic_fetch_add_explicit(&calls, 1, memory_order_relaxed);
  return real_valloc(n);
}

void *pvalloc(size_t n) {
  if (!real_pvalloc) resolve();
  atomic_fetch_add_explicit(&calls, 1, memory_order_relaxed);
  return real_pvalloc(n);
}
