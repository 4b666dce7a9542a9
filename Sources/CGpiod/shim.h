// CGpiod — Debian's libgpiod 1.6 (v1 API).
#include <gpiod.h>
#include <errno.h>
#include <string.h>

/// errno after a failed libgpiod call (errno is a macro, not importable).
static inline int wisp_gpiod_errno(void) { return errno; }
