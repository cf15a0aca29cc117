/* The host channel (cradle-init-host.h). */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/reboot.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "cradle-init-containers.h"
#include "cradle-init-host.h"

int io = -1, console = -1;

long long now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_BOOTTIME, &ts);
  return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

void send_frame(int type, int idx, const void *data, size_t len) {
  if (io < 0) return;
  unsigned char h[6] = {(unsigned char)type, (unsigned char)idx, len >> 24, len >> 16, len >> 8, len};
  struct iovec iov[2] = {{h, 6}, {(void *)data, len}};
  size_t left = 6 + len;
  while (left > 0) {
    ssize_t n = writev(io, iov, 2);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    left -= (size_t)n;
    for (int k = 0; k < 2 && n > 0; k++) {
      size_t take = (size_t)n < iov[k].iov_len ? (size_t)n : iov[k].iov_len;
      iov[k].iov_base = (char *)iov[k].iov_base + take;
      iov[k].iov_len -= take;
      n -= (ssize_t)take;
    }
  }
}

void say(const char *fmt, ...) {
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  if (n >= (int)sizeof msg) n = sizeof msg - 1;
  if (console >= 0) dprintf(console, "cradle-init: %s\n", msg);
  send_frame(F_ERROR, 0, msg, (size_t)n);
}

void poweroff(void) {
  sync();
  reboot(RB_POWER_OFF);
  for (;;) pause();
}

void die(const char *what) {
  say("%s: %s", what, strerror(errno));
  poweroff();
}

static char pending[512];
static size_t npending;
void timing(const char *phase) {
  char b[96];
  int n = snprintf(b, sizeof b, "%s %lld %lld", phase, now_ns(), now_ns());
  if (io >= 0) send_frame(F_TIMING, 0, b, (size_t)n);
  else if (npending + (size_t)n + 1 < sizeof pending) {
    memcpy(pending + npending, b, (size_t)n + 1);
    npending += (size_t)n + 1;
  }
}

void flush_timings(void) {
  long long t = now_ns();
  for (size_t off = 0; off < npending;) {
    char b[128], phase[32];
    long long at;
    if (sscanf(pending + off, "%31s %lld", phase, &at) == 2) {
      int n = snprintf(b, sizeof b, "%s %lld %lld", phase, at, t);
      send_frame(F_TIMING, 0, b, (size_t)n);
    }
    off += strlen(pending + off) + 1;
  }
}

static unsigned char hbuf[64];
static size_t hhave;
void read_host(void) {
  ssize_t n = read(io, hbuf + hhave, sizeof hbuf - hhave);
  if (n <= 0) return;
  hhave += (size_t)n;
  while (hhave >= 6) {
    uint32_t len = (uint32_t)hbuf[2] << 24 | (uint32_t)hbuf[3] << 16 | (uint32_t)hbuf[4] << 8 | hbuf[5];
    if (len > sizeof hbuf - 6) len = 0, hhave = 6;
    if (hhave < 6 + len) break;
    if (hbuf[0] == F_STOP) begin_stop(len >= 1 && hbuf[6] > 0 && hbuf[6] < 65 ? hbuf[6] : SIGTERM);
    memmove(hbuf, hbuf + 6 + len, hhave - 6 - len);
    hhave -= 6 + len;
  }
}
