/*
 * cradle-bare-init: the baseline of bench/cradle.bench.ts — the least a guest must do before it can
 * say anything to the host: mount devtmpfs, load the same modules as cradle-init, print one line on
 * the virtio console, power off. `cradle run` to a container's first output is compared with it.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/syscall.h>
#include <unistd.h>

static const char *modules[] = {"virtio_ring", "virtio", "virtio_mmio", "virtio_blk", "failover", "net_failover",
                                "virtio_net", "virtio_console", "libcrc32c", "erofs", "overlay"};

int main(void) {
  mount("devtmpfs", "/dev", "devtmpfs", 0, NULL);
  for (size_t i = 0; i < sizeof modules / sizeof *modules; i++) {
    char p[128];
    snprintf(p, sizeof p, "/lib/modules/%s.ko", modules[i]);
    int fd = open(p, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) syscall(SYS_finit_module, fd, "", 0), close(fd);
  }
  int con = open("/dev/hvc0", O_WRONLY | O_NOCTTY);
  if (con >= 0) dprintf(con, "bare-init: up\n");
  sync();
  reboot(RB_POWER_OFF);
  return 0;
}
