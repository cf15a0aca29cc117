/*
 * cradle-nic: a NIC hot-plugged into a running pod VM (docker network connect), run by vdocker in the
 * guest. Static, in the initramfs beside /init (the guest has no ip(8)).
 *
 *   cradle-nic add NAME MAC ADDRESS/PREFIX MTU   waits for the NIC with MAC (the host has just
 *       plugged a virtio-net-pci device into a PCIe root port), names it NAME, sets its MTU and
 *       address and brings it up. No route but the subnet's: the default route stays eth0's.
 *   cradle-nic del NAME                          powers off the NIC's hot-plug slot: the guest lets
 *       go of the device and qemu unplugs it at once (no 5 s attention-button wait).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <strings.h>
#include <unistd.h>

#include "nic-by-mac.h"

/* virtio-net-pci's transport: not loaded at boot (pods that never connect do not pay for it) */
static const char *modules[] = {"virtio_pci_legacy_dev", "virtio_pci_modern_dev", "virtio_pci"};

static int fail(const char *what) {
  fprintf(stderr, "cradle-nic: %s: %s\n", what, strerror(errno));
  return 1;
}

static int load_modules(void) {
  for (size_t i = 0; i < sizeof modules / sizeof *modules; i++) {
    char p[128];
    snprintf(p, sizeof p, "/lib/modules/%s.ko", modules[i]);
    int fd = open(p, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return fail(p);
    int r = (int)syscall(SYS_finit_module, fd, "", 0);
    close(fd);
    if (r != 0 && errno != EEXIST) return fail(p);
  }
  return 0;
}

static int add(const char *name, const char *mac, const char *cidr, int mtu) {
  if (strlen(name) >= IFNAMSIZ) return errno = ENAMETOOLONG, fail(name);
  if (load_modules()) return 1;
  int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0) return fail("socket");
  char now[IFNAMSIZ];
  /* PCIe hot-plug, enumeration and the driver's probe take a while under TCG on a loaded host */
  struct timespec pause = {0, 50 * 1000 * 1000};
  int tries = 60 * 20;
  while (!nic_by_mac(s, mac, now) && --tries) nanosleep(&pause, NULL);
  if (!tries) return errno = ENODEV, fail(mac);
  struct ifreq ifr = {0};
  snprintf(ifr.ifr_name, IFNAMSIZ, "%s", now);
  if (strcmp(now, name)) {
    snprintf(ifr.ifr_newname, IFNAMSIZ, "%s", name);
    if (ioctl(s, SIOCSIFNAME, &ifr) != 0) return fail(name);
    snprintf(ifr.ifr_name, IFNAMSIZ, "%s", name);
  }
  ifr.ifr_mtu = mtu;
  if (ioctl(s, SIOCSIFMTU, &ifr) != 0) return fail("mtu");
  char ip[64];
  snprintf(ip, sizeof ip, "%s", cidr);
  char *slash = strchr(ip, '/');
  int prefix = slash ? atoi(slash + 1) : 32;
  if (slash) *slash = '\0';
  struct sockaddr_in *sin = (struct sockaddr_in *)&ifr.ifr_addr;
  memset(&ifr.ifr_ifru, 0, sizeof ifr.ifr_ifru);
  sin->sin_family = AF_INET;
  if (inet_pton(AF_INET, ip, &sin->sin_addr) != 1 || prefix < 0 || prefix > 32) return errno = EINVAL, fail(cidr);
  if (ioctl(s, SIOCSIFADDR, &ifr) != 0) return fail("address");
  sin->sin_addr.s_addr = prefix ? htonl(~0u << (32 - prefix)) : 0;
  if (ioctl(s, SIOCSIFNETMASK, &ifr) != 0) return fail("netmask");
  if (ioctl(s, SIOCGIFFLAGS, &ifr) != 0) return fail("flags");
  ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
  if (ioctl(s, SIOCSIFFLAGS, &ifr) != 0) return fail("up");
  return 0;
}

/* /sys/bus/pci/slots/N/power of the slot whose address (domain:bus:device) is the NIC's. */
static int del(const char *name) {
  /* the NIC's device is the virtio device; its parent the PCI function (0000:01:00.0) */
  char link[512], target[PATH_MAX];
  snprintf(link, sizeof link, "/sys/class/net/%s/device/..", name);
  if (!realpath(link, target)) return errno == ENOENT ? 0 : fail(link); /* gone already */
  char *dev = basename(target);
  char *fn = strrchr(dev, '.');
  if (fn) *fn = '\0';
  DIR *d = opendir("/sys/bus/pci/slots");
  if (!d) return fail("/sys/bus/pci/slots");
  struct dirent *e;
  int done = 0;
  while (!done && (e = readdir(d))) {
    if (e->d_name[0] == '.') continue;
    char p[512], addr[64] = "";
    snprintf(p, sizeof p, "/sys/bus/pci/slots/%s/address", e->d_name);
    FILE *f = fopen(p, "r");
    if (!f) continue;
    if (fgets(addr, sizeof addr, f)) addr[strcspn(addr, "\n")] = '\0';
    fclose(f);
    if (strcmp(addr, dev)) continue;
    snprintf(p, sizeof p, "/sys/bus/pci/slots/%s/power", e->d_name);
    int fd = open(p, O_WRONLY | O_CLOEXEC);
    if (fd < 0 || write(fd, "0", 1) != 1) return fail(p);
    close(fd);
    done = 1;
  }
  closedir(d);
  if (!done) return errno = ENODEV, fail(name);
  return 0;
}

int main(int argc, char **argv) {
  if (argc == 6 && !strcmp(argv[1], "add")) return add(argv[2], argv[3], argv[4], atoi(argv[5]));
  if (argc == 3 && !strcmp(argv[1], "del")) return del(argv[2]);
  fprintf(stderr, "usage: cradle-nic add NAME MAC ADDRESS/PREFIX MTU | cradle-nic del NAME\n");
  return 2;
}
