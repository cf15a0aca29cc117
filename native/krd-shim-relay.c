/* The supervisor's relay (krd-shim-relay.h): log lines, attach clients, the child's exit. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "krd-shim-args.h"
#include "krd-shim-relay.h"

#define MAXCLIENTS 32

static int logfd = -1;
static int clients[MAXCLIENTS];
static int nclients;

static void send_frame(int fd, uint8_t type, const void *data, uint32_t len) {
  uint8_t h[5] = {type, (uint8_t)(len >> 24), (uint8_t)(len >> 16), (uint8_t)(len >> 8), (uint8_t)len};
  struct iovec iov[2] = {{h, 5}, {(void *)data, len}};
  struct msghdr m = {.msg_iov = iov, .msg_iovlen = 2};
  size_t want = 5 + len;
  ssize_t n = sendmsg(fd, &m, MSG_NOSIGNAL);
  if (n >= 0 && (size_t)n < want) {
    /* rare short write on a stream socket: finish it plainly */
    size_t done = (size_t)n;
    while (done < want) {
      const uint8_t *src = done < 5 ? h + done : (const uint8_t *)data + (done - 5);
      size_t chunk = done < 5 ? 5 - done : want - done;
      ssize_t k = write(fd, src, chunk);
      if (k <= 0) break;
      done += (size_t)k;
    }
  }
}

static void log_chunk(uint8_t stream, const char *buf, size_t len) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  struct tm tm;
  gmtime_r(&ts.tv_sec, &tm);
  char stamp[64];
  size_t sl = strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf(stamp + sl, sizeof stamp - sl, ".%09ldZ %s ", ts.tv_nsec, stream == 1 ? "stdout" : "stderr");
  size_t start = 0;
  while (start < len) {
    const char *nl = memchr(buf + start, '\n', len - start);
    size_t end = nl ? (size_t)(nl - buf) : len;
    struct iovec iov[4] = {{stamp, strlen(stamp)}, {nl ? "F " : "P ", 2}, {(void *)(buf + start), end - start}, {"\n", 1}};
    if (writev(logfd, iov, 4) < 0) { /* a full disk must not stop the container */ }
    start = end + (nl ? 1 : 0);
  }
}

static void output(uint8_t stream, const char *buf, size_t len) {
  log_chunk(stream, buf, len);
  for (int i = 0; i < nclients; i++) send_frame(clients[i], stream, buf, (uint32_t)len);
}

static int drain(int fd, uint8_t stream) {
  char buf[32768];
  ssize_t n = read(fd, buf, sizeof buf);
  if (n > 0) output(stream, buf, (size_t)n);
  return (int)n;
}

/* The child's "CODE reason" when its exec failed: docker puts the reason on stderr (exit 126/127). */
static void relay_exec_error(int fd) {
  char msg[1024];
  ssize_t k = read(fd, msg, sizeof msg - 1);
  if (k <= 0) return;
  msg[k] = '\0';
  char *space = strchr(msg, ' ');
  if (space) output(2, space + 1, strlen(space + 1)), output(2, "\n", 1);
}

static int sigpipe_fds[2];
static void on_chld(int s) {
  (void)s;
  int e = errno;
  if (write(sigpipe_fds[1], "c", 1) < 0) {}
  errno = e;
}

void watch_children(void) {
  if (pipe2(sigpipe_fds, O_CLOEXEC | O_NONBLOCK) != 0) fail("pipe", NULL);
  struct sigaction act = {.sa_handler = on_chld, .sa_flags = SA_RESTART | SA_NOCLDSTOP};
  sigaction(SIGCHLD, &act, NULL);
}

int open_attach_and_log(void) {
  int lsock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  snprintf(sa.sun_path, sizeof sa.sun_path, "sock"); /* relative: DIR may be long */
  unlink("sock");
  if (lsock < 0 || bind(lsock, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(lsock, 16) != 0) fail("attach socket", NULL);
  logfd = open("log", O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
  if (logfd < 0) fail("open", "log");
  return lsock;
}

int supervise(struct supervised *s) {
  int started = 0, exited = 0, status = 0, out_eof = 0, start_client = -1;
  struct pollfd pfd[6 + MAXCLIENTS];
  while (!exited) {
    int n = 0;
    pfd[n++] = (struct pollfd){sigpipe_fds[0], POLLIN, 0};
    pfd[n++] = (struct pollfd){s->lsock, POLLIN, 0};
    pfd[n++] = (struct pollfd){s->out_r, s->out_r >= 0 && !out_eof ? POLLIN : 0, 0};
    pfd[n++] = (struct pollfd){s->err_r, s->err_r >= 0 ? POLLIN : 0, 0};
    pfd[n++] = (struct pollfd){s->errfd, s->errfd >= 0 ? POLLIN : 0, 0};
    for (int k = 0; k < nclients; k++) pfd[n++] = (struct pollfd){clients[k], POLLIN, 0};
    if (poll(pfd, (nfds_t)n, -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (pfd[2].revents && drain(s->out_r, 1) <= 0) {
      if (opt.tty) out_eof = 1; /* EIO once the slave side is gone; the master stays for resize */
      else s->out_r = (close(s->out_r), -1);
    }
    if (pfd[3].revents && drain(s->err_r, 2) <= 0) s->err_r = (close(s->err_r), -1);
    if (pfd[4].revents) {
      relay_exec_error(s->errfd);
      close(s->errfd);
      s->errfd = -1;
      if (start_client >= 0) send_frame(start_client, 9, NULL, 0);
      start_client = -1;
    }
    if (pfd[1].revents) {
      int c = accept4(s->lsock, NULL, NULL, SOCK_CLOEXEC);
      if (c >= 0 && nclients < MAXCLIENTS) {
        struct timeval tv = {5, 0}; /* a stuck client must not stall the container for long */
        setsockopt(c, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
        clients[nclients++] = c;
      } else if (c >= 0) close(c);
    }
    for (int k = 5; k < n; k++) {
      if (!pfd[k].revents) continue;
      int c = pfd[k].fd;
      uint8_t h[5];
      ssize_t r = recv(c, h, 5, MSG_WAITALL);
      uint32_t len = r == 5 ? ((uint32_t)h[1] << 24 | (uint32_t)h[2] << 16 | (uint32_t)h[3] << 8 | h[4]) : 0;
      char body[65536];
      if (r == 5 && len <= sizeof body && (len == 0 || recv(c, body, len, MSG_WAITALL) == (ssize_t)len)) {
        if (h[0] == 0 && s->in_w >= 0) {
          for (uint32_t done = 0; done < len;) {
            ssize_t w = write(s->in_w, body + done, len - done);
            if (w <= 0) break;
            done += (uint32_t)w;
          }
        } else if (h[0] == 4 && s->in_w >= 0) {
          if (opt.tty) {
            if (write(s->in_w, "\x04", 1) < 0) {} /* EOF on a terminal is ^D */
          } else close(s->in_w);
          if (!opt.tty) s->in_w = -1;
        } else if (h[0] == 5 && len == 4) {
          struct winsize ws = {.ws_row = (unsigned short)(((uint8_t)body[0] << 8) | (uint8_t)body[1]), .ws_col = (unsigned short)(((uint8_t)body[2] << 8) | (uint8_t)body[3])};
          if (opt.tty) ioctl(s->out_r, TIOCSWINSZ, &ws);
        } else if (h[0] == 6 && len == 1) {
          kill(s->child, (uint8_t)body[0]);
        } else if (h[0] == 8 && !started) {
          started = 1;
          start_client = c; /* answered with a 9 frame once exec has happened (or failed) */
          if (write(s->sync, "s", 1) != 1) {}
        }
        continue;
      }
      close(c);
      if (c == start_client) start_client = -1;
      for (int j = 0; j < nclients; j++)
        if (clients[j] == c) clients[j] = clients[--nclients];
    }
    if (pfd[0].revents) {
      char b[64];
      while (read(sigpipe_fds[0], b, sizeof b) > 0) {}
      pid_t w;
      while ((w = waitpid(-1, &status, WNOHANG)) > 0)
        if (w == s->child) exited = 1;
    }
  }
  /* What the process wrote just before exiting is still in the pipes: drain without blocking. */
  if (s->out_r >= 0) fcntl(s->out_r, F_SETFL, O_NONBLOCK);
  if (s->err_r >= 0) fcntl(s->err_r, F_SETFL, O_NONBLOCK);
  while (s->out_r >= 0 && !out_eof && drain(s->out_r, 1) > 0) {}
  while (s->err_r >= 0 && drain(s->err_r, 2) > 0) {}
  if (s->errfd >= 0) relay_exec_error(s->errfd);
  return status;
}

void announce_exit(const char *text, uint32_t len) {
  for (int k = 0; k < nclients; k++) {
    send_frame(clients[k], 3, text, len);
    shutdown(clients[k], SHUT_WR);
    close(clients[k]);
  }
}
