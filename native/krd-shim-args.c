/* krd-shim's command line (krd-shim.c has the usage). */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "krd-shim-args.h"

struct shim_options opt = {.uid = -1, .gid = -1, .join = -1, .cwd = "/", .net = "new", .caps = ~0ULL};

int report_fd = 1;

void fail(const char *what, const char *detail) {
  dprintf(report_fd, "error %s%s%s: %s\n", what, detail ? " " : "", detail ? detail : "", strerror(errno));
  _exit(125);
}

void parse_args(int argc, char **argv) {
  if (argc < 4) {
    errno = EINVAL;
    fail("usage: krd-shim DIR [options] -- COMMAND ARGS...", NULL);
  }
  opt.dir = argv[1];
  int i = 2;
  for (; i < argc && strcmp(argv[i], "--") != 0; i++) {
    const char *a = argv[i];
    if (!strcmp(a, "--tty")) opt.tty = 1;
    else if (!strcmp(a, "--stdin")) opt.stdin_open = 1;
    else if (!strcmp(a, "--readonly")) opt.readonly = 1;
    else {
      if (i + 1 >= argc) {
        errno = EINVAL;
        fail("missing value for", a);
      }
      const char *v = argv[++i];
      if (!strcmp(a, "--lower")) opt.lower = v;
      else if (!strcmp(a, "--upper")) opt.upper = v;
      else if (!strcmp(a, "--work")) opt.work = v;
      else if (!strcmp(a, "--join")) opt.join = strtol(v, NULL, 10);
      else if (!strcmp(a, "--hostname")) opt.hostname = v;
      else if (!strcmp(a, "--cwd")) opt.cwd = v;
      else if (!strcmp(a, "--uid")) opt.uid = strtol(v, NULL, 10);
      else if (!strcmp(a, "--gid")) opt.gid = strtol(v, NULL, 10);
      else if (!strcmp(a, "--groups")) opt.groups = v;
      else if (!strcmp(a, "--caps")) opt.caps = strtoull(v, NULL, 16);
      else if (!strcmp(a, "--net")) opt.net = v;
      else if (!strcmp(a, "--init")) opt.init = v;
      else if (!strcmp(a, "--cgroup") && opt.ncgroups < MAXLIST) opt.cgroups[opt.ncgroups++] = v;
      else if (!strcmp(a, "--sysctl") && opt.nsysctls < MAXLIST && strchr(v, '=')) opt.sysctls[opt.nsysctls++] = v;
      else if ((!strcmp(a, "--bind") || !strcmp(a, "--tmpfs")) && opt.nmounts < MAXLIST) {
        opt.mount_kind[opt.nmounts] = a[2];
        opt.mounts[opt.nmounts++] = v;
      }
      else {
        errno = EINVAL;
        fail("unknown option", a);
      }
    }
  }
  if (i + 1 >= argc) {
    errno = EINVAL;
    fail("no command", NULL);
  }
  opt.command = argv + i + 1;
  if (opt.join < 0 && (!opt.lower || !opt.upper || !opt.work)) {
    errno = EINVAL;
    fail("--lower, --upper and --work are required", NULL);
  }
}
