/* The container's cgroups (krd-shim-cgroups.h). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "krd-shim-args.h"
#include "krd-shim-cgroups.h"

void join_cgroups(pid_t child, int errfd) {
  char path[4096];
  for (int k = 0; k < opt.ncgroups; k++) {
    snprintf(path, sizeof path, "%s/cgroup.procs", opt.cgroups[k]);
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0 || dprintf(fd, "%d\n", child) < 0) {
      int e = errno;
      kill(child, SIGKILL);
      waitpid(child, NULL, 0);
      char msg[1024];
      ssize_t n = read(errfd, msg, sizeof msg - 1);
      if (n > 1) {
        msg[n] = '\0';
        dprintf(report_fd, "error %s\n", msg + 1);
        _exit(125);
      }
      errno = e;
      fail("join cgroup", opt.cgroups[k]);
    }
    close(fd);
  }
}

void pool_remove_cgroups(void) {
  for (int k = 0; k < opt.ncgroups; k++) {
    for (int tries = 0; rmdir(opt.cgroups[k]) != 0 && errno == EBUSY && tries < 100; tries++) usleep(2000);
    char parent[4096];
    snprintf(parent, sizeof parent, "%s", opt.cgroups[k]);
    char *slash = strrchr(parent, '/');
    if (slash) *slash = '\0', rmdir(parent);
  }
}
