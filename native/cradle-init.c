/*
 * cradle-init: PID 1 of a cradle microVM (src/vm/README.md has the whole boot path). Static C, not
 * Node: node's own start-up inside the VM costs more than the kernel's whole boot (measured, see
 * src/vm/README.md), and init must be running before anything else can be.
 *
 * It loads the virtio/erofs/overlay modules, finds its disks by virtio-blk serial, reads the init plan
 * from the config disk (KEY\0VALUE\0 pairs written by src/vm/config-disk.ts), mounts the image disks,
 * configures the network, starts every container under /bin/krd-shim (the ns runtime's supervisor,
 * so vdocker can reattach with NsRuntime), forwards their output and exit codes to the host over the
 * virtio-serial port "kraud.io", applies restart policies and powers the VM off when the pod is done.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cradle-init-containers.h"
#include "cradle-init-devices.h"
#include "cradle-init-host.h"
#include "cradle-init-net.h"
#include "cradle-init-plan.h"

/* pivot_root refuses the initramfs's own root mount (it has no parent); containers pivot_root, so
 * init first moves onto a bind mount of it, as switch_root would onto a real root. */
static void leave_rootfs(void) {
  mkdir("/newroot", 0755);
  if (mount("/", "/newroot", NULL, MS_BIND, NULL) != 0 || chdir("/newroot") != 0 || mount(".", "/", NULL, MS_MOVE, NULL) != 0 ||
      chroot(".") != 0 || chdir("/") != 0)
    die("moving off the initramfs root");
}

/* `/init settime MS`, run by vdocker (not as PID 1): the guest has no clock of its own worth the name
 * (no RTC on microvm, no kvmclock under TCG), so the host tells vdocker its wall clock and this sets it. */
static int settime(const char *ms) {
  char *end;
  long long v = strtoll(ms, &end, 10);
  if (*ms == '\0' || *end != '\0' || v <= 0) return 2;
  struct timespec ts = {.tv_sec = v / 1000, .tv_nsec = (v % 1000) * 1000000};
  return clock_settime(CLOCK_REALTIME, &ts) == 0 ? 0 : 1;
}

/* vdocker (the pod's Docker API), when the plan names it; it runs as long as the pod does. */
static void start_vdocker(void) {
  if (fork() != 0) return;
  /* vdocker's own messages go to the virtio console (DIR/console.log on the host) */
  int nul = open("/dev/null", O_RDWR);
  dup2(nul, 0);
  dup2(console >= 0 ? console : nul, 1);
  dup2(console >= 0 ? console : nul, 2);
  setsid();
  char *env[] = {"KRAUD_LAUNCH=" RUN "/launch.json", "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root", NULL};
  pod.vdocker[pod.nvdocker] = NULL;
  execve(pod.vdocker[0], (char **)pod.vdocker, env);
  _exit(127);
}

int main(int argc, char **argv) {
  if (getpid() != 1) return argc == 3 && !strcmp(argv[1], "settime") ? settime(argv[2]) : 2;
  timing("init");
  leave_rootfs();
  mount("devtmpfs", "/dev", "devtmpfs", MS_NOSUID, NULL);
  mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
  mount("sysfs", "/sys", "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
  mount("tmpfs", "/run", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755");
  /* ptys for containers with a tty (krd-shim opens /dev/ptmx, which needs a devpts at /dev/pts), and
   * cgroup v2 for their limits, stats, top and pause (the ns runtime's v2 layout) */
  mkdir("/dev/pts", 0755);
  mount("devpts", "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC, "ptmxmode=0666,mode=0620");
  mount("cgroup2", "/sys/fs/cgroup", "cgroup2", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
  mkdir("/tmp", 01777);
  /* the kernel found no console for fds 0-2 (hvc0 exists only once its module is in): fill them, so
   * later opens never land on 0-2 and children never inherit a random file as their stdio */
  int fd = open("/dev/null", O_RDWR);
  while (fd >= 0 && fd < 2) fd = open("/dev/null", O_RDWR);
  if (fd > 2) close(fd);
  load_modules();
  timing("modules");
  console = open("/dev/hvc0", O_WRONLY | O_CLOEXEC | O_NOCTTY);
  io = open_port("kraud.io");
  if (io < 0) die("virtio-serial port kraud.io");
  flush_timings();
  signal(SIGPIPE, SIG_IGN);
  read_config();
  parse_plan();
  mount_images();
  mount_shares();
  setup_network();
  timing("disks");
  for (int i = 0; i < nctrs; i++)
    if (start_ctr(i) != 0) ctrs[i].done = 1, ctrs[i].code = 125;
  if (pod.nvdocker > 0) start_vdocker();
  /* Without vdocker the pod lives as long as its first container; with it, vdocker decides. */
  for (;;) {
    struct pollfd fds[MAXC + 1];
    int map[MAXC + 1], nf = 0;
    for (int i = 0; i < nctrs; i++)
      if (ctrs[i].sock >= 0) fds[nf] = (struct pollfd){ctrs[i].sock, POLLIN, 0}, map[nf++] = i;
    fds[nf] = (struct pollfd){io, POLLIN, 0}, map[nf++] = -1;
    int r = poll(fds, (nfds_t)nf, 100);
    for (int k = 0; r > 0 && k < nf; k++) {
      if (!fds[k].revents) continue;
      if (map[k] < 0) read_host();
      else read_shim(map[k]);
    }
    while (waitpid(-1, NULL, WNOHANG) > 0) {
    }
    if (pod.nvdocker > 0) continue;
    if (nctrs == 0 || ctrs[0].done) {
      int alive = 0;
      for (int i = 0; i < nctrs; i++) alive += !ctrs[i].done;
      if (!alive) break;
      if (!stopping) begin_stop(SIGTERM);
      else if (now_ns() / 1000000 >= stop_at) signal_all(SIGKILL);
    }
  }
  char code[16];
  int n = snprintf(code, sizeof code, "%d", nctrs ? ctrs[0].code : 0);
  send_frame(F_DONE, 0, code, (size_t)n);
  poweroff();
}
