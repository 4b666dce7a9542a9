// CGpiod — Debian's libgpiod: 1.6 (bookworm, v1 API) or 2.x (trixie, v2 API), told apart
// at build time: the v1 header defines GPIOD_API, the v2 header does not. WispGPIO sees
// only the `wisp_gpio_*` calls below, the same for both:
//   open a chip by label (else by name, path or number), find lines by name, request every
//   LED line as an output in one call (off, active-low if asked, consumer "wisp"), set a
//   line, and close (everything off, lines released, chip closed).
// What v2 changed: no chip iterator (scan /dev for gpiochip devices); chip name and label
// through a chip-info object; line settings → line config → request config → one request
// for all lines, values set through the request; closing the chip does not release it.
#include <gpiod.h>
#include <errno.h>
#include <string.h>
#include <stdlib.h>
#include <stdio.h>
#include <dirent.h>

#ifndef GPIOD_API
#define WISP_GPIOD_V2 1
#endif

/// errno after a failed libgpiod call (errno is a macro, not importable).
static inline int wisp_gpiod_errno(void) { return errno; }

/// The most LED lines one chip holds for wisp.
#define WISP_GPIO_MAX_LINES 8

/// One opened chip and the lines requested on it.
typedef struct wisp_gpio {
  struct gpiod_chip *chip;
  char name[64], label[64];
  unsigned int numLines;
  unsigned int count;  // lines requested
  unsigned int offsets[WISP_GPIO_MAX_LINES];
#ifdef WISP_GPIOD_V2
  struct gpiod_line_request *request;
#else
  struct gpiod_line *lines[WISP_GPIO_MAX_LINES];
#endif
} wisp_gpio;

static inline void wisp_gpio_copy(char *dst, size_t cap, const char *src) {
  snprintf(dst, cap, "%s", src ? src : "?");
}

#ifdef WISP_GPIOD_V2
/// Fills the chip's name, label and line count; 0 or -1 (errno).
static inline int wisp_gpio_describe(wisp_gpio *g) {
  struct gpiod_chip_info *info = gpiod_chip_get_info(g->chip);
  if (!info) return -1;
  wisp_gpio_copy(g->name, sizeof g->name, gpiod_chip_info_get_name(info));
  wisp_gpio_copy(g->label, sizeof g->label, gpiod_chip_info_get_label(info));
  g->numLines = (unsigned int)gpiod_chip_info_get_num_lines(info);
  gpiod_chip_info_free(info);
  return 0;
}

/// The GPIO chip device at path, opened; NULL (errno set) if it is none or cannot be opened.
static inline struct gpiod_chip *wisp_gpio_open_path(const char *path) {
  if (!gpiod_is_gpiochip_device(path)) return NULL;
  return gpiod_chip_open(path);
}
#endif

/// Opens the chip whose label is `label`, else the chip named, pathed or numbered so
/// ("gpiochip0", "/dev/gpiochip0", "0"). NULL with errno set when there is none.
static inline wisp_gpio *wisp_gpio_open(const char *label) {
  wisp_gpio *g = (wisp_gpio *)calloc(1, sizeof *g);
  if (!g) return NULL;
#ifdef WISP_GPIOD_V2
  // 1. by label: every GPIO chip device in /dev (on a Pi 5 the number changed across kernels).
  int denied = 0;
  DIR *dir = opendir("/dev");
  if (dir) {
    struct dirent *e;
    char path[300];
    while (!g->chip && (e = readdir(dir)) != NULL) {
      if (strncmp(e->d_name, "gpiochip", 8) != 0) continue;
      snprintf(path, sizeof path, "/dev/%s", e->d_name);
      struct gpiod_chip *c = wisp_gpio_open_path(path);
      if (!c) { if (errno == EACCES || errno == EPERM) denied = 1; continue; }
      g->chip = c;
      if (wisp_gpio_describe(g) != 0 || strcmp(g->label, label) != 0) { gpiod_chip_close(c); g->chip = NULL; }
    }
    closedir(dir);
  }
  // 2. by path, name or number.
  if (!g->chip) {
    char path[300];
    if (label[0] == '/') snprintf(path, sizeof path, "%s", label);
    else if (label[0] >= '0' && label[0] <= '9') snprintf(path, sizeof path, "/dev/gpiochip%s", label);
    else snprintf(path, sizeof path, "/dev/%s", label);
    if (strchr(label, '/') == NULL || label[0] == '/') g->chip = wisp_gpio_open_path(path);
    if (g->chip && wisp_gpio_describe(g) != 0) { gpiod_chip_close(g->chip); g->chip = NULL; }
  }
  if (!g->chip) {
    free(g);
    errno = denied ? EACCES : ENOENT;
    return NULL;
  }
#else
  struct gpiod_chip_iter *iter = gpiod_chip_iter_new();
  if (iter) {
    struct gpiod_chip *c;
    while ((c = gpiod_chip_iter_next_noclose(iter)) != NULL) {
      const char *l = gpiod_chip_label(c);
      if (l && strcmp(l, label) == 0) { g->chip = c; break; }
      gpiod_chip_close(c);
    }
    gpiod_chip_iter_free_noclose(iter);
  }
  if (!g->chip) g->chip = gpiod_chip_open_lookup(label);
  if (!g->chip) { int e = errno; free(g); errno = e; return NULL; }
  wisp_gpio_copy(g->name, sizeof g->name, gpiod_chip_name(g->chip));
  wisp_gpio_copy(g->label, sizeof g->label, gpiod_chip_label(g->chip));
  g->numLines = gpiod_chip_num_lines(g->chip);
#endif
  return g;
}

static inline const char *wisp_gpio_chip_name(const wisp_gpio *g) { return g->name; }
static inline const char *wisp_gpio_chip_label(const wisp_gpio *g) { return g->label; }
static inline unsigned int wisp_gpio_num_lines(const wisp_gpio *g) { return g->numLines; }

/// The offset of the line named `name` on the chip, or -1 (errno ENOENT) when it has none.
static inline int wisp_gpio_line_offset(wisp_gpio *g, const char *name) {
#ifdef WISP_GPIOD_V2
  return gpiod_chip_get_line_offset_from_name(g->chip, name);
#else
  struct gpiod_line *line = gpiod_chip_find_line(g->chip, name);
  if (!line) { if (errno == 0) errno = ENOENT; return -1; }
  return (int)gpiod_line_offset(line);
#endif
}

/// Requests the lines at `offsets` as outputs, inactive (LED off), active-low if asked,
/// consumer "wisp". 0, or -1 with errno (EBUSY: held by someone else; EACCES/EPERM;
/// EINVAL: an offset the chip does not have). Nothing stays requested after a failure.
static inline int wisp_gpio_request_outputs(wisp_gpio *g, const unsigned int *offsets, unsigned int n, int activeLow) {
  if (n > WISP_GPIO_MAX_LINES || g->count != 0) { errno = EINVAL; return -1; }
  for (unsigned int i = 0; i < n; i++) if (offsets[i] >= g->numLines) { errno = EINVAL; return -1; }
#ifdef WISP_GPIOD_V2
  struct gpiod_line_settings *s = gpiod_line_settings_new();
  struct gpiod_line_config *lc = gpiod_line_config_new();
  struct gpiod_request_config *rc = gpiod_request_config_new();
  int r = (s && lc && rc) ? 0 : -1;
  if (r == 0) r = gpiod_line_settings_set_direction(s, GPIOD_LINE_DIRECTION_OUTPUT);
  if (r == 0) r = gpiod_line_settings_set_output_value(s, GPIOD_LINE_VALUE_INACTIVE);
  if (r == 0) gpiod_line_settings_set_active_low(s, activeLow != 0);
  if (r == 0) r = gpiod_line_config_add_line_settings(lc, offsets, n, s);
  if (r == 0) gpiod_request_config_set_consumer(rc, "wisp");
  if (r == 0) {
    g->request = gpiod_chip_request_lines(g->chip, rc, lc);
    if (!g->request) r = -1;
  }
  int e = errno;
  if (rc) gpiod_request_config_free(rc);
  if (lc) gpiod_line_config_free(lc);
  if (s) gpiod_line_settings_free(s);
  errno = e;
  if (r != 0) return -1;
#else
  int flags = activeLow ? GPIOD_LINE_REQUEST_FLAG_ACTIVE_LOW : 0;
  for (unsigned int i = 0; i < n; i++) {
    struct gpiod_line *line = gpiod_chip_get_line(g->chip, offsets[i]);
    if (!line || gpiod_line_request_output_flags(line, "wisp", flags, 0) != 0) {
      int e = errno;
      for (unsigned int j = 0; j < i; j++) gpiod_line_release(g->lines[j]);
      errno = e;
      return -1;
    }
    g->lines[i] = line;
  }
#endif
  for (unsigned int i = 0; i < n; i++) g->offsets[i] = offsets[i];
  g->count = n;
  return 0;
}

/// Switches requested line `index` on (active) or off; 0 or -1.
static inline int wisp_gpio_set(wisp_gpio *g, unsigned int index, int on) {
  if (index >= g->count) return -1;
#ifdef WISP_GPIOD_V2
  return gpiod_line_request_set_value(g->request, g->offsets[index],
                                      on ? GPIOD_LINE_VALUE_ACTIVE : GPIOD_LINE_VALUE_INACTIVE);
#else
  return gpiod_line_set_value(g->lines[index], on ? 1 : 0);
#endif
}

/// Switches every requested line off, releases them, closes the chip and frees g.
static inline void wisp_gpio_close(wisp_gpio *g) {
  if (!g) return;
  for (unsigned int i = 0; i < g->count; i++) (void)wisp_gpio_set(g, i, 0);
#ifdef WISP_GPIOD_V2
  if (g->request) gpiod_line_request_release(g->request);
#else
  for (unsigned int i = 0; i < g->count; i++) gpiod_line_release(g->lines[i]);
#endif
  if (g->chip) gpiod_chip_close(g->chip);
  free(g);
}

/// libgpiod's version string as linked ("1.6.3", "2.2.1").
static inline const char *wisp_gpiod_version(void) {
#ifdef WISP_GPIOD_V2
  return gpiod_api_version();
#else
  return gpiod_version_string();
#endif
}
