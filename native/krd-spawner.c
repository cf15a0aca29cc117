/*
 * krd-spawner: starts krd-shim processes on krd's behalf. krd keeps one spawner as a child and
 * sends it requests on stdin; the spawner forks (a small process forks in microseconds, while
 * node's spawn() forks the whole daemon and blocks its event loop until the exec: ~3 ms idle,
 * far more on a busy machine) and answers on stdout with the shim's ready line.
 *
 * Request (stdin): u32 big-endian length, then NUL-terminated strings:
 *   <request id> <argc> <argv[0]=program> … <argv[argc-1]> <env entries…>
 * Answer (stdout), one line per request, in whatever order the shims get ready:
 *   "<request id> <the shim's first line>"        e.g. "7 ok 1234", "7 error mount: …"
 *   "<request id> exited <what it printed>"        when it ended without a line
 * Pooled shims (krd-shim --pool, see native/krd-shim-pool.h): a request whose argc is preceded
 * by "pool" starts one with a pipe on its stdin; its "ready <pid>" line is answered and the shim
 * parked. "<request id> claim <pool request id> <argc> <argv…> <env…>" hands it a container;
 * it answers for the claim's id as a plain start does. "<request id> drop <pool request id>"
 * ends a parked shim (no answer). A parked shim that ends is answered "exited". Closing the pipe (the spawner ends with krd) makes it leave without a container.
 * Each shim runs in its own session, with stdout and stderr on a pipe the spawner reads until
 * the first newline or EOF. The spawner is the shims' parent and reaps them (this machine's PID 1
 * leaves orphans as zombies), as node did when krd spawned them itself. EOF on stdin (krd gone)
 * ends the spawner; shims are not affected (they are orphaned, as they were when krd died).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAXPENDING 256
#define MAXSTRINGS 4096

struct pending {
  int fd;
  int in_fd;  /* a pooled shim's stdin, where its claim goes; -1 for the others */
  int parked; /* a pooled shim that said "ready": waits for a claim (its EOF: it is gone) */
  char id[32];
  char buf[2048];
  size_t len;
};

static struct pending pend[MAXPENDING];
static int npend;

static void reply(struct pending *p, const char *prefix, const char *text, size_t n) {
  char line[2200];
  int l = snprintf(line, sizeof line, "%s %s%.*s", p->id, prefix, (int)n, text);
  if (l < 0) return;
  if ((size_t)l >= sizeof line - 1) l = (int)sizeof line - 2;
  for (int i = 0; i < l; i++) if (line[i] == '\n') line[i] = ' ';
  line[l++] = '\n';
  for (int off = 0; off < l;) {
    ssize_t w = write(1, line + off, (size_t)(l - off));
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) exit(0); /* krd is gone */
    off += (int)w;
  }
}

static void fail_request(struct pending *p, const char *what, const char *why) {
  char text[512];
  int n = snprintf(text, sizeof text, "error %s%s", what, why);
  reply(p, "", text, n < 0 ? 0 : (size_t)n);
}

/* A claim: its command line and environment go to the parked shim, which answers as a start. */
static void claim(struct pending *req, const char *slot, const char *rest, size_t n) {
  struct pending *p = NULL;
  for (int i = 0; i < npend && !p; i++)
    if (pend[i].parked && strcmp(pend[i].id, slot) == 0) p = &pend[i];
  if (!p) {
    fail_request(req, "krd-spawner: ", "no such pooled shim");
    return;
  }
  unsigned char h[4] = {(unsigned char)(n >> 24), (unsigned char)(n >> 16), (unsigned char)(n >> 8), (unsigned char)n};
  int ok = write(p->in_fd, h, 4) == 4;
  for (size_t off = 0; ok && off < n;) {
    ssize_t w = write(p->in_fd, rest + off, n - off);
    if (w < 0 && errno == EINTR) continue;
    ok = w > 0;
    if (ok) off += (size_t)w;
  }
  close(p->in_fd);
  p->in_fd = -1;
  p->parked = 0;
  p->len = 0;
  snprintf(p->id, sizeof p->id, "%s", req->id);
  if (!ok) fail_request(req, "claim: ", strerror(errno)); /* the shim's EOF answers too: dropped, unseen */
}

static void start(char *payload, size_t n) {
  static char *s[MAXSTRINGS], *argv[MAXSTRINGS];
  int ns = 0;
  for (size_t i = 0; i < n && ns < MAXSTRINGS - 1;) {
    s[ns++] = payload + i;
    i += strnlen(payload + i, n - i) + 1;
  }
  s[ns] = NULL; /* ends the env entries */
  struct pending overflow = {0};
  struct pending *p = npend < MAXPENDING ? &pend[npend] : &overflow;
  snprintf(p->id, sizeof p->id, "%s", ns > 0 ? s[0] : "?");
  if (ns > 2 && strcmp(s[1], "drop") == 0) {
    /* its stdin closed, the shim ends its child and itself; its EOF is answered "exited" */
    for (int i = 0; i < npend; i++)
      if (pend[i].parked && strcmp(pend[i].id, s[2]) == 0) close(pend[i].in_fd), pend[i].in_fd = -1, pend[i].parked = 0;
    return;
  }
  if (ns > 3 && strcmp(s[1], "claim") == 0) {
    claim(p, s[2], s[3], n - (size_t)(s[3] - payload));
    return;
  }
  /* "pool": a pooled shim, with a pipe on its stdin for the claim */
  int pooled = ns > 1 && strcmp(s[1], "pool") == 0;
  int first = pooled ? 2 : 1;
  int argc = ns > first ? atoi(s[first]) : 0;
  if (p == &overflow || argc < 1 || first + 1 + argc > ns) {
    fail_request(p, "krd-spawner: ", p == &overflow ? "too many shims starting at once" : "bad request");
    return;
  }
  for (int i = 0; i < argc; i++) argv[i] = s[first + 1 + i];
  argv[argc] = NULL;
  char **envp = &s[first + 1 + argc];
  int fds[2], in[2] = {-1, -1};
  if (pipe2(fds, O_CLOEXEC) != 0 || (pooled && pipe2(in, O_CLOEXEC) != 0)) {
    fail_request(p, "pipe: ", strerror(errno));
    return;
  }
  pid_t child = fork();
  if (child == 0) {
    setsid();
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    signal(SIGCHLD, SIG_DFL);
    int stdin_fd = pooled ? in[0] : open("/dev/null", O_RDONLY);
    dup2(stdin_fd, 0);
    dup2(fds[1], 1);
    dup2(fds[1], 2);
    signal(SIGPIPE, SIG_DFL);
    execve(argv[0], argv, envp);
    dprintf(1, "error exec %s: %s\n", argv[0], strerror(errno));
    _exit(127);
  }
  close(fds[1]);
  if (pooled) close(in[0]);
  if (child < 0) {
    close(fds[0]);
    if (pooled) close(in[1]);
    fail_request(p, "fork: ", strerror(errno));
    return;
  }
  p->fd = fds[0];
  p->in_fd = pooled ? in[1] : -1;
  p->parked = 0;
  p->len = 0;
  npend++;
}

/* Reads what the shim printed; answers and forgets it at the first newline or at EOF. A pooled
   shim's "ready" line parks it instead, until its claim. */
static int drain(struct pending *p) {
  ssize_t r = read(p->fd, p->buf + p->len, sizeof p->buf - 1 - p->len);
  if (r < 0 && errno == EINTR) return 0;
  if (r > 0) {
    p->len += (size_t)r;
    char *nl = memchr(p->buf, '\n', p->len);
    if (nl) {
      reply(p, "", p->buf, (size_t)(nl - p->buf));
      if (p->in_fd >= 0 && !p->parked && strncmp(p->buf, "ready ", 6) == 0) {
        p->parked = 1;
        p->len = 0;
        return 0;
      }
      return 1;
    }
    if (p->len < sizeof p->buf - 1) return 0;
  }
  reply(p, "exited ", p->buf, p->len);
  return 1;
}

static int chld_pipe[2];
static void on_chld(int sig) {
  (void)sig;
  int e = errno;
  if (write(chld_pipe[1], "c", 1) < 0) {}
  errno = e;
}

int main(void) {
  signal(SIGPIPE, SIG_IGN);
  /* SIGCHLD wakes the poll through a pipe; the loop reaps whoever exited */
  if (pipe2(chld_pipe, O_CLOEXEC | O_NONBLOCK) != 0) return 1;
  struct sigaction sa = {.sa_handler = on_chld, .sa_flags = SA_RESTART | SA_NOCLDSTOP};
  sigemptyset(&sa.sa_mask);
  sigaction(SIGCHLD, &sa, NULL);
  static char in[1 << 20];
  size_t inlen = 0;
  for (;;) {
    struct pollfd pfd[MAXPENDING + 2];
    pfd[0] = (struct pollfd){.fd = 0, .events = POLLIN};
    pfd[1] = (struct pollfd){.fd = chld_pipe[0], .events = POLLIN};
    for (int i = 0; i < npend; i++) pfd[i + 2] = (struct pollfd){.fd = pend[i].fd, .events = POLLIN};
    if (poll(pfd, (nfds_t)npend + 2, -1) < 0) {
      if (errno == EINTR) continue;
      return 1;
    }
    if (pfd[1].revents) {
      char b[64];
      while (read(chld_pipe[0], b, sizeof b) > 0) {}
      while (waitpid(-1, NULL, WNOHANG) > 0) {}
    }
    for (int i = npend - 1; i >= 0; i--) {
      if (!pfd[i + 2].revents) continue;
      if (drain(&pend[i])) {
        close(pend[i].fd);
        if (pend[i].in_fd >= 0) close(pend[i].in_fd);
        pend[i] = pend[--npend];
      }
    }
    if (pfd[0].revents) {
      ssize_t r = read(0, in + inlen, sizeof in - inlen);
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) return 0; /* krd is gone (or sent more than fits: not ours) */
      inlen += (size_t)r;
      while (inlen >= 4) {
        uint32_t n = ((uint32_t)(uint8_t)in[0] << 24) | ((uint32_t)(uint8_t)in[1] << 16) | ((uint32_t)(uint8_t)in[2] << 8) | (uint8_t)in[3];
        if (n > sizeof in - 4) return 1;
        if (inlen < 4 + n) break;
        start(in + 4, n);
        memmove(in, in + 4 + n, inlen - 4 - n);
        inlen -= 4 + n;
      }
    }
  }
}
