/* The container (or exec) process (krd-shim-child.h): its namespaces, network, stdio, identity and
 * capabilities, the start handshake with the supervisor, and the exec. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "krd-shim-args.h"
#include "krd-shim-child.h"
#include "krd-shim-rootfs.h"

extern char **environ;

int child_err = -1;
void child_fail(const char *what, const char *detail) {
  dprintf(child_err, "E%s%s%s: %s", what, detail ? " " : "", detail ? detail : "", strerror(errno));
  _exit(125);
}

static void loopback_up(void) {
  int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  struct ifreq ifr = {0};
  strcpy(ifr.ifr_name, "lo");
  if (s < 0 || ioctl(s, SIOCGIFFLAGS, &ifr) != 0) child_fail("lo flags", NULL);
  ifr.ifr_flags |= IFF_UP;
  if (ioctl(s, SIOCSIFFLAGS, &ifr) != 0) child_fail("lo up", NULL);
  close(s);
}

/* Bounding set and the root process's sets to the mask; a non-root user keeps none (setuid
 * clears them), as in docker. */
/* /proc/sys/net/… (and the ipc and uts keys) resolve to the writer's own namespaces, so the
   host's /proc serves, once this process is in the container's (and before it pivots away). */
static void apply_sysctls(void) {
  for (int i = 0; i < opt.nsysctls; i++) {
    char path[512];
    const char *eq = strchr(opt.sysctls[i], '=');
    int n = snprintf(path, sizeof path, "/proc/sys/%.*s", (int)(eq - opt.sysctls[i]), opt.sysctls[i]);
    if (n < 0 || (size_t)n >= sizeof path) child_fail("sysctl name too long", opt.sysctls[i]);
    for (char *p = path + strlen("/proc/sys/"); *p; p++)
      if (*p == '.') *p = '/';
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    size_t len = strlen(eq + 1);
    if (fd < 0 || write(fd, eq + 1, len) != (ssize_t)len) child_fail("sysctl", opt.sysctls[i]);
    close(fd);
  }
}

static void apply_identity_and_caps(void) {
  for (int c = 0; c <= 63; c++)
    if (!(opt.caps & (1ULL << c)) && prctl(PR_CAPBSET_DROP, c, 0, 0, 0) != 0 && errno != EINVAL) child_fail("drop cap", NULL);
  if (opt.groups || opt.gid >= 0 || opt.uid >= 0) {
    gid_t list[MAXLIST];
    int n = 0;
    if (opt.groups && *opt.groups) {
      char *copy = strdup(opt.groups);
      for (char *tok = strtok(copy, ","); tok && n < MAXLIST; tok = strtok(NULL, ",")) list[n++] = (gid_t)strtol(tok, NULL, 10);
      free(copy);
    }
    if (setgroups((size_t)n, list) != 0) child_fail("setgroups", NULL);
    if (opt.gid >= 0 && setgid((gid_t)opt.gid) != 0) child_fail("setgid", NULL);
    if (opt.uid >= 0 && setuid((uid_t)opt.uid) != 0) child_fail("setuid", NULL);
  }
  if (opt.uid <= 0) {
    /* only caps this kernel knows: asking for more is EPERM */
    int last = 40;
    FILE *f = fopen("/proc/sys/kernel/cap_last_cap", "r");
    if (f) {
      if (fscanf(f, "%d", &last) != 1) last = 40;
      fclose(f);
    }
    if (last < 63) opt.caps &= (1ULL << (last + 1)) - 1;
    struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct d[2];
    /* and only caps we hold: root here may lack some (e.g. CAP_SYS_RESOURCE) */
    if (syscall(SYS_capget, &h, d) != 0) child_fail("capget", NULL);
    for (int k = 0; k < 2; k++) {
      uint32_t m = (uint32_t)(opt.caps >> (32 * k)) & d[k].permitted;
      d[k].effective = d[k].permitted = d[k].inheritable = m;
    }
    if (syscall(SYS_capset, &h, d) != 0) child_fail("capset", NULL);
  }
}

void child_main(int sync_fd, int in_fd, int out_fd, int err_fd, int tty_slave) {
  char c;
  if (opt.join < 0) {
    if (strcmp(opt.net, "new") == 0) loopback_up();
    else if (strcmp(opt.net, "host") != 0) {
      int fd = open(opt.net, O_RDONLY | O_CLOEXEC);
      if (fd < 0 || setns(fd, CLONE_NEWNET) != 0) child_fail("join network namespace", opt.net);
      close(fd);
    }
    if (opt.hostname && sethostname(opt.hostname, strlen(opt.hostname)) != 0) child_fail("sethostname", NULL);
    apply_sysctls();
    setup_rootfs();
  } else {
    const char *kinds[] = {"ipc", "uts", "net", "mnt"};
    int types[] = {CLONE_NEWIPC, CLONE_NEWUTS, CLONE_NEWNET, CLONE_NEWNS};
    for (int i = 0; i < 4; i++) {
      char p[64];
      snprintf(p, sizeof p, "/proc/%ld/ns/%s", opt.join, kinds[i]);
      int fd = open(p, O_RDONLY | O_CLOEXEC);
      if (fd < 0 || setns(fd, types[i]) != 0) child_fail("setns", p);
      close(fd);
    }
  }
  if (setsid() < 0) child_fail("setsid", NULL);
  if (tty_slave >= 0 && ioctl(tty_slave, TIOCSCTTY, 0) != 0) child_fail("TIOCSCTTY", NULL);
  if (dup2(in_fd, 0) < 0 || dup2(out_fd, 1) < 0 || dup2(err_fd, 2) < 0) child_fail("dup2", NULL);
  /* docker creates a missing working directory (as root, before the user switch) */
  if (chdir(opt.cwd) != 0) {
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", opt.cwd);
    for (char *p = buf + 1; *p; p++)
      if (*p == '/') {
        *p = '\0';
        mkdir(buf, 0755);
        *p = '/';
      }
    mkdir(buf, 0755);
  }
  apply_identity_and_caps();
  if (chdir(opt.cwd) != 0) child_fail("chdir", opt.cwd);
  /* the setup above ran while the shim moved us into the cgroups (the first cgroup.procs write
     waits for an RCU grace period, ~10 ms: overlapping the two saves the setup's time); the
     command itself never runs outside them */
  if (read(sync_fd, &c, 1) != 1) _exit(125); /* cgroups joined by the shim */
  if (write(sync_fd, "r", 1) != 1) _exit(125); /* ready */
  if (read(sync_fd, &c, 1) != 1) _exit(125); /* "start" */
  close(sync_fd);
  signal(SIGPIPE, SIG_DFL);
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, NULL);
  if (opt.init) {
    /* tini-static as PID 1: -s in case it is not, -- then the command */
    int n = 0;
    while (opt.command[n]) n++;
    char **argv = calloc((size_t)n + 4, sizeof *argv);
    argv[0] = "/dev/init";
    argv[1] = "-s";
    argv[2] = "--";
    memcpy(argv + 3, opt.command, (size_t)n * sizeof *argv);
    execve("/dev/init", argv, environ);
  } else
    execvpe(opt.command[0], opt.command, environ);
  int e = errno;
  dprintf(child_err, "X%d %s: %s", e == ENOENT ? 127 : 126, opt.command[0], strerror(e));
  _exit(e == ENOENT ? 127 : 126);
}
