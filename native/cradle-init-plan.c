/* The init plan (cradle-init-plan.h). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cradle-init-devices.h"
#include "cradle-init-host.h"
#include "cradle-init-plan.h"

struct pod pod = {.hostname = "cradle", .net = "none"};
struct ctr ctrs[MAXC];
int nctrs;

static char *plan;
static size_t plan_len;

void read_config(void) {
  char dev[300];
  for (int tries = 0; find_disk("kraud-config", dev, sizeof dev) != 0; tries++) {
    if (tries > 2000) die("no config disk (serial kraud-config)");
    usleep(1000);
  }
  int fd = open(dev, O_RDONLY | O_CLOEXEC);
  if (fd < 0) die(dev);
  static char buf[4 << 20];
  size_t got = 0;
  for (ssize_t n; got < sizeof buf && (n = read(fd, buf + got, sizeof buf - got)) > 0;) got += (size_t)n;
  close(fd);
  size_t jlen, plen;
  int hdr;
  if (got < 16 || memcmp(buf, "kraud-launch 1\n", 15) != 0 || sscanf(buf + 15, "%zu %zu\n%n", &jlen, &plen, &hdr) != 2) {
    errno = EINVAL;
    die("config disk header");
  }
  char *json = buf + 15 + hdr;
  if (15 + (size_t)hdr + jlen + plen > got) {
    errno = EINVAL;
    die("config disk length");
  }
  mkdir(RUN, 0700);
  int out = open(RUN "/launch.json", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (out < 0 || write(out, json, jlen) != (ssize_t)jlen) die("launch.json");
  close(out);
  plan = json + jlen;
  plan_len = plen;
}

void parse_plan(void) {
  struct ctr *c = NULL;
  for (size_t off = 0; off < plan_len;) {
    const char *k = plan + off;
    off += strlen(k) + 1;
    if (off >= plan_len) break;
    const char *v = plan + off;
    off += strlen(v) + 1;
    if (!strcmp(k, "hostname")) pod.hostname = v;
    else if (!strcmp(k, "net")) pod.net = v;
    else if (!strcmp(k, "addr")) pod.addr = v;
    else if (!strcmp(k, "mac")) pod.mac = v;
    else if (!strcmp(k, "ctlmac")) pod.ctlmac = v;
    else if (!strcmp(k, "ctladdr")) pod.ctladdr = v;
    else if (!strcmp(k, "hosts")) pod.hosts_text = v;
    else if (!strcmp(k, "resolv")) pod.resolv_text = v;
    else if (!strcmp(k, "gw")) pod.gw = v;
    else if (!strcmp(k, "dns") && pod.ndns < 8) pod.dns[pod.ndns++] = v;
    else if (!strcmp(k, "images")) pod.nimages = atoi(v);
    else if (!strcmp(k, "vdocker") && pod.nvdocker < MAXV - 1) pod.vdocker[pod.nvdocker++] = v;
    else if (!strcmp(k, "share") && pod.nshares < MAXC) pod.shares[pod.nshares++] = v;
    else if (!strcmp(k, "ctr") && nctrs < MAXC) {
      c = &ctrs[nctrs++];
      c->name = v;
      c->cwd = "/";
      c->uid = c->gid = "0";
      c->groups = "0";
      c->caps = "0";
      c->restart = "no";
      c->sock = -1;
    } else if (!c) continue;
    else if (!strcmp(k, "image")) c->image = atoi(v);
    else if (!strcmp(k, "arg") && c->nargs < MAXV - 1) c->args[c->nargs++] = v;
    else if (!strcmp(k, "env") && c->nenv < MAXV - 1) c->env[c->nenv++] = v;
    else if (!strcmp(k, "cwd")) c->cwd = v;
    else if (!strcmp(k, "uid")) c->uid = v;
    else if (!strcmp(k, "gid")) c->gid = v;
    else if (!strcmp(k, "groups")) c->groups = v;
    else if (!strcmp(k, "caps")) c->caps = v;
    else if (!strcmp(k, "chost")) c->host = v;
    else if (!strcmp(k, "tty")) c->tty = 1;
    else if (!strcmp(k, "stdin")) c->in = 1;
    else if (!strcmp(k, "readonly")) c->ro = 1;
    else if (!strcmp(k, "restart")) c->restart = v;
    else if (!strcmp(k, "retries")) c->retries = atoi(v);
    else if (!strcmp(k, "tmpfs") && c->ntmpfs < MAXV) c->tmpfs[c->ntmpfs++] = v;
    else if (!strcmp(k, "bind") && c->nbinds < MAXV) c->binds[c->nbinds++] = v;
  }
}
