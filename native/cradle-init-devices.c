/* The VM's devices (cradle-init-devices.h). */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "cradle-init-devices.h"
#include "cradle-init-host.h"
#include "cradle-init-plan.h"

static const char *modules[] = {"virtio_ring", "virtio", "virtio_mmio", "virtio_blk", "failover", "net_failover",
                                "virtio_net", "virtio_console", "libcrc32c", "erofs", "overlay"};

static void load_module(const char *name) {
  char p[128];
  snprintf(p, sizeof p, "/lib/modules/%s.ko", name);
  int fd = open(p, O_RDONLY | O_CLOEXEC);
  if (fd < 0) die(p);
  if (syscall(SYS_finit_module, fd, "", 0) != 0 && errno != EEXIST) die(p);
  close(fd);
}

void load_modules(void) {
  for (size_t i = 0; i < sizeof modules / sizeof *modules; i++) load_module(modules[i]);
}

static int read_file(const char *path, char *buf, size_t size) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  ssize_t n = read(fd, buf, size - 1);
  close(fd);
  if (n < 0) return -1;
  while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' ')) n--;
  buf[n] = '\0';
  return (int)n;
}

int find_disk(const char *serial, char *dev, size_t size) {
  DIR *d = opendir("/sys/block");
  if (!d) return -1;
  struct dirent *e;
  int found = -1;
  while ((e = readdir(d))) {
    if (strncmp(e->d_name, "vd", 2) != 0) continue;
    char p[300], s[64];
    snprintf(p, sizeof p, "/sys/block/%s/serial", e->d_name);
    if (read_file(p, s, sizeof s) >= 0 && strcmp(s, serial) == 0) {
      snprintf(dev, size, "/dev/%s", e->d_name);
      found = 0;
      break;
    }
  }
  closedir(d);
  return found;
}

int open_port(const char *name) {
  for (int tries = 0; tries < 2000; tries++) {
    DIR *d = opendir("/sys/class/virtio-ports");
    struct dirent *e;
    while (d && (e = readdir(d))) {
      if (e->d_name[0] == '.') continue;
      char p[300], s[64];
      snprintf(p, sizeof p, "/sys/class/virtio-ports/%s/name", e->d_name);
      if (read_file(p, s, sizeof s) >= 0 && strcmp(s, name) == 0) {
        snprintf(p, sizeof p, "/dev/%s", e->d_name);
        closedir(d);
        return open(p, O_RDWR | O_CLOEXEC);
      }
    }
    if (d) closedir(d);
    usleep(1000);
  }
  return -1;
}

void mount_images(void) {
  mkdir(RUN "/img", 0755);
  for (int i = 0; i < pod.nimages; i++) {
    char serial[32], dev[64], dir[64];
    snprintf(serial, sizeof serial, "kraud-img%d", i);
    if (find_disk(serial, dev, sizeof dev) != 0) {
      errno = ENODEV;
      die(serial);
    }
    snprintf(dir, sizeof dir, RUN "/img/%d", i);
    mkdir(dir, 0755);
    if (mount(dev, dir, "erofs", MS_RDONLY, NULL) != 0) die(dir);
  }
  char dev[300];
  if (find_disk("kraud-tools", dev, sizeof dev) == 0) {
    mkdir(RUN "/tools", 0755);
    if (mount(dev, RUN "/tools", "erofs", MS_RDONLY, NULL) != 0) die("tools disk");
  }
}

void mount_shares(void) {
  if (pod.nshares == 0) return;
  load_module("fuse");
  load_module("virtiofs");
  mkdir(RUN "/shares", 0755);
  for (int i = 0; i < pod.nshares; i++) {
    char tag[64], dir[128];
    snprintf(tag, sizeof tag, "%s", pod.shares[i]);
    char *ro = strstr(tag, ":ro");
    if (ro) *ro = '\0';
    snprintf(dir, sizeof dir, RUN "/shares/%s", tag);
    mkdir(dir, 0755);
    if (mount(tag, dir, "virtiofs", MS_NOSUID | MS_NODEV | (ro ? MS_RDONLY : 0), NULL) != 0) die(dir);
  }
}
