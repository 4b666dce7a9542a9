// CGpiod — Debian's libgpiod 1.6 (v1 API).
#include <gpiod.h>
