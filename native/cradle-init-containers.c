/* The pod's containers (cradle-init-containers.h). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "cradle-init-containers.h"
#include "cradle-init-host.h"
#include "cradle-init-plan.h"

int stopping;
long long stop_at;

static int shim_frame(int fd, int type, const void *data, uint32_t len) {
  unsigned char h[5] = {(unsigned char)type, len >> 24, len >> 16, len >> 8, len};
  if (write(fd, h, 5) != 5) return -1;
  return len && write(fd, data, len) != (ssize_t)len ? -1 : 0;
}

int start_ctr(int i) {
  struct ctr *c = &ctrs[i];
  char dir[96], p[320], lower[64];
  snprintf(dir, sizeof dir, RUN "/containers/%s", c->name);
  mkdir(RUN "/containers", 0700);
  mkdir(dir, 0700);
  const char *subs[] = {"upper", "work", "rootfs"};
  for (int k = 0; k < 3; k++) {
    snprintf(p, sizeof p, "%s/%s", dir, subs[k]);
    mkdir(p, 0755);
  }
  snprintf(lower, sizeof lower, RUN "/img/%d", c->image);
  /* the ns runtime's state.json, so vdocker's NsRuntime can reattach */
  snprintf(p, sizeof p, "%s/state.json", dir);
  FILE *f = fopen(p, "w");
  if (f) {
    fprintf(f, "{\"id\":\"%s\",\"lower\":\"%s\",\"tty\":%s,\"openStdin\":%s,\"cgroups\":[],\"caps\":\"%s\"}", c->name, lower,
            c->tty ? "true" : "false", c->in ? "true" : "false", c->caps);
    fclose(f);
  }
  const char *argv[4 * MAXV + 64];
  int n = 0;
  char up[300], wk[300];
  snprintf(up, sizeof up, "%s/upper", dir);
  snprintf(wk, sizeof wk, "%s/work", dir);
  argv[n++] = "/bin/krd-shim";
  argv[n++] = dir;
  const char *fixed[] = {"--lower", lower, "--upper", up, "--work", wk, "--net", "host", "--uid", c->uid, "--gid", c->gid,
                         "--groups", c->groups, "--caps", c->caps, "--cwd", c->cwd, "--hostname", c->host ? c->host : pod.hostname,
                         "--bind", RUN "/resolv.conf:/etc/resolv.conf", "--bind", RUN "/hosts:/etc/hosts", "--bind",
                         RUN "/hostname:/etc/hostname"};
  for (size_t k = 0; k < sizeof fixed / sizeof *fixed; k++) argv[n++] = fixed[k];
  if (c->tty) argv[n++] = "--tty";
  if (c->in) argv[n++] = "--stdin";
  if (c->ro) argv[n++] = "--readonly";
  for (int k = 0; k < c->ntmpfs; k++) argv[n++] = "--tmpfs", argv[n++] = c->tmpfs[k];
  for (int k = 0; k < c->nbinds; k++) argv[n++] = "--bind", argv[n++] = c->binds[k];
  argv[n++] = "--";
  for (int k = 0; k < c->nargs; k++) argv[n++] = c->args[k];
  argv[n] = NULL;
  c->env[c->nenv] = NULL;

  int out[2];
  if (pipe2(out, O_CLOEXEC) != 0) return -1;
  pid_t pid = fork();
  if (pid == 0) {
    dup2(out[1], 1);
    int nul = open("/dev/null", O_RDWR);
    dup2(nul, 0);
    dup2(console >= 0 ? console : nul, 2);
    setsid();
    execve(argv[0], (char **)argv, (char **)c->env);
    dprintf(1, "error exec krd-shim: %s\n", strerror(errno));
    _exit(127);
  }
  close(out[1]);
  char line[1024];
  ssize_t got = 0, r;
  while (got < (ssize_t)sizeof line - 1 && (r = read(out[0], line + got, sizeof line - 1 - got)) > 0) {
    got += r;
    if (memchr(line, '\n', (size_t)got)) break;
  }
  close(out[0]);
  line[got > 0 ? got : 0] = '\0';
  char *nl = strchr(line, '\n');
  if (nl) *nl = '\0';
  if (strncmp(line, "ok ", 3) != 0) {
    say("container %s: %s", c->name, line[0] ? line : "krd-shim failed");
    return -1;
  }
  c->shim = pid;
  c->pid = atoi(line + 3);
  int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  snprintf(sa.sun_path, sizeof sa.sun_path, "%s/sock", dir);
  if (s < 0 || connect(s, (struct sockaddr *)&sa, sizeof sa) != 0 || shim_frame(s, 8, NULL, 0) != 0) {
    say("container %s: attach: %s", c->name, strerror(errno));
    if (s >= 0) close(s);
    kill(c->pid, SIGKILL);
    return -1;
  }
  c->sock = s;
  c->have = 0;
  return 0;
}

static int wants_restart(struct ctr *c) {
  if (stopping || !strcmp(c->restart, "no")) return 0;
  if (!strcmp(c->restart, "on-failure")) return c->code != 0 && (c->retries == 0 || c->restarts < c->retries);
  return 1; /* always, unless-stopped */
}

static int first_output = 1;

/* One frame from a shim: output and exit go on to the host. 0 = keep reading, -1 = socket done. */
static int on_shim_frame(int i, int type, unsigned char *data, uint32_t len) {
  struct ctr *c = &ctrs[i];
  if (type == 1 || type == 2) {
    if (first_output) timing("output"), first_output = 0;
    send_frame(type == 1 ? F_STDOUT : F_STDERR, i, data, len);
  } else if (type == 9) {
    if (i == 0 && c->restarts == 0) timing("exec");
  } else if (type == 3) {
    char text[128];
    snprintf(text, sizeof text, "%.*s", (int)(len < 127 ? len : 127), (char *)data);
    c->code = atoi(text);
    send_frame(F_EXIT, i, data, len);
    return -1;
  }
  return 0;
}

static void on_exit_seen(int i) {
  struct ctr *c = &ctrs[i];
  close(c->sock);
  c->sock = -1;
  if (wants_restart(c)) {
    c->restarts++;
    if (start_ctr(i) == 0) return;
    c->code = 125;
  }
  c->done = 1;
}

void read_shim(int i) {
  struct ctr *c = &ctrs[i];
  ssize_t n = read(c->sock, c->buf + c->have, sizeof c->buf - c->have);
  if (n <= 0) {
    if (n < 0 && errno == EINTR) return;
    c->code = c->code ? c->code : 137;
    on_exit_seen(i);
    return;
  }
  c->have += (size_t)n;
  size_t off = 0;
  while (c->have - off >= 5) {
    uint32_t len = (uint32_t)c->buf[off + 1] << 24 | (uint32_t)c->buf[off + 2] << 16 | (uint32_t)c->buf[off + 3] << 8 | c->buf[off + 4];
    if (len > sizeof c->buf - 5) len = sizeof c->buf - 5;
    if (c->have - off < 5 + len) break;
    if (on_shim_frame(i, c->buf[off], c->buf + off + 5, len) < 0) {
      on_exit_seen(i);
      return;
    }
    off += 5 + len;
  }
  memmove(c->buf, c->buf + off, c->have - off);
  c->have -= off;
}

void signal_all(int sig) {
  for (int i = 0; i < nctrs; i++)
    if (!ctrs[i].done && ctrs[i].pid > 0) kill(ctrs[i].pid, sig);
}

void begin_stop(int sig) {
  if (!stopping) stop_at = now_ns() / 1000000 + 2000;
  stopping = 1;
  signal_all(sig);
}
