/*
 * krd-tapfd NETNS IFNAME PROGRAM [ARGS…]: opens the tap device IFNAME of the network namespace NETNS
 * (a namespace file: a bind mount or /proc/PID/ns/net), returns to its own namespace and execs
 * PROGRAM with the tap on fd 3. krd's vm runtime starts qemu through it: the guest's NIC is the tap
 * in the container's namespace (krd's bridge networking), while qemu itself stays in krd's
 * namespace, where the port forward of its control NIC listens on loopback. Node cannot do this
 * itself (no setns, no TUNSETIFF).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

static int fail(const char *what) {
  fprintf(stderr, "krd-tapfd: %s: %s\n", what, strerror(errno));
  return 1;
}

int main(int argc, char **argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: krd-tapfd NETNS IFNAME PROGRAM [ARGS...]\n");
    return 2;
  }
  if (strlen(argv[2]) >= IFNAMSIZ) {
    errno = ENAMETOOLONG;
    return fail(argv[2]);
  }
  int home = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
  if (home < 0) return fail("/proc/self/ns/net");
  int target = open(argv[1], O_RDONLY | O_CLOEXEC);
  if (target < 0) return fail(argv[1]);
  if (setns(target, CLONE_NEWNET) != 0) return fail("setns into the pod's namespace");
  /* a tun fd belongs to the namespace it was opened in: opened after the setns */
  int tun = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
  if (tun < 0) return fail("/dev/net/tun");
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  snprintf(ifr.ifr_name, IFNAMSIZ, "%s", argv[2]);
  /* IFF_TUN_EXCL is not set: the tap exists already (the caller set it up), it is attached, not made */
  ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
  if (ioctl(tun, TUNSETIFF, &ifr) != 0) return fail(argv[2]);
  if (setns(home, CLONE_NEWNET) != 0) return fail("setns back");
  close(home);
  close(target);
  if (tun != 3) {
    if (dup2(tun, 3) != 3) return fail("dup2");
    close(tun);
  } else if (fcntl(3, F_SETFD, 0) != 0) return fail("fcntl");
  execvp(argv[3], argv + 3);
  return fail(argv[3]);
}
