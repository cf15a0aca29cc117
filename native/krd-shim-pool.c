/* The transport of a pooled krd-shim's claim (krd-shim-pool.h has the format). */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "krd-shim-pool.h"

#define MAX_CLAIM (1u << 20)
#define MAX_STRINGS 4096

static int read_full(int fd, void *buf, size_t n) {
  for (size_t done = 0; done < n;) {
    ssize_t r = read(fd, (char *)buf + done, n - done);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return -1;
    done += (size_t)r;
  }
  return 0;
}

static int write_full(int fd, const void *buf, size_t n) {
  for (size_t done = 0; done < n;) {
    ssize_t w = write(fd, (const char *)buf + done, n - done);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return -1;
    done += (size_t)w;
  }
  return 0;
}

static uint32_t be32(const unsigned char b[4]) { return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3]; }

static char *read_body(int fd, uint32_t len) {
  if (len == 0 || len > MAX_CLAIM) return NULL;
  char *buf = malloc(len + 1);
  if (!buf || read_full(fd, buf, len) != 0) return free(buf), NULL;
  buf[len] = '\0'; /* a last string without its NUL still ends */
  return buf;
}

char *pool_read_claim(int fd, uint32_t *len) {
  unsigned char h[4];
  if (read_full(fd, h, 4) != 0) return NULL;
  *len = be32(h);
  return read_body(fd, *len);
}

char **pool_split(char *claim, uint32_t len, int *argc, char ***envp) {
  static char *s[MAX_STRINGS + 1];
  int n = 0;
  for (uint32_t i = 0; i < len && n < MAX_STRINGS;) {
    s[n++] = claim + i;
    i += (uint32_t)strnlen(claim + i, len - i) + 1;
  }
  s[n] = NULL;
  int ac = n > 0 ? atoi(s[0]) : 0;
  if (ac < 0 || ac > n - 1) ac = n > 0 ? n - 1 : 0;
  /* argv ends where the environment starts: move it one slot down to make room for its NULL */
  static char *argv[MAX_STRINGS + 1];
  for (int i = 0; i < ac; i++) argv[i] = s[1 + i];
  argv[ac] = NULL;
  *argc = ac;
  *envp = &s[1 + ac];
  return argv;
}

int pool_send_spec(int sock, const char *claim, uint32_t len, const int fds[3], int tty) {
  unsigned char head[5] = {(unsigned char)(len >> 24), (unsigned char)(len >> 16), (unsigned char)(len >> 8), (unsigned char)len, (unsigned char)(tty ? 1 : 0)};
  struct iovec iov = {head, sizeof head};
  union {
    char buf[CMSG_SPACE(3 * sizeof(int))];
    struct cmsghdr align;
  } ctl;
  memset(&ctl, 0, sizeof ctl);
  struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf, .msg_controllen = sizeof ctl.buf};
  struct cmsghdr *c = CMSG_FIRSTHDR(&m);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(3 * sizeof(int));
  memcpy(CMSG_DATA(c), fds, 3 * sizeof(int));
  ssize_t n;
  do n = sendmsg(sock, &m, MSG_NOSIGNAL);
  while (n < 0 && errno == EINTR);
  if (n != (ssize_t)sizeof head) return -1;
  return write_full(sock, claim, len);
}

char *pool_recv_spec(int sock, uint32_t *len, int fds[3], int *tty) {
  unsigned char head[5];
  struct iovec iov = {head, sizeof head};
  union {
    char buf[CMSG_SPACE(3 * sizeof(int))];
    struct cmsghdr align;
  } ctl;
  struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf, .msg_controllen = sizeof ctl.buf};
  ssize_t n;
  do n = recvmsg(sock, &m, MSG_WAITALL | MSG_CMSG_CLOEXEC);
  while (n < 0 && errno == EINTR);
  struct cmsghdr *c = CMSG_FIRSTHDR(&m);
  if (n != (ssize_t)sizeof head || !c || c->cmsg_type != SCM_RIGHTS || c->cmsg_len != CMSG_LEN(3 * sizeof(int))) return NULL;
  memcpy(fds, CMSG_DATA(c), 3 * sizeof(int));
  *tty = head[4];
  *len = be32(head);
  return read_body(sock, *len);
}
