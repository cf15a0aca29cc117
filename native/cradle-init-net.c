/* The VM's network (cradle-init-net.h). */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <net/route.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <strings.h>
#include <unistd.h>

#include "cradle-init-host.h"
#include "cradle-init-net.h"
#include "cradle-init-plan.h"
#include "nic-by-mac.h"

static void if_up(int s, const char *name) {
  struct ifreq ifr = {0};
  snprintf(ifr.ifr_name, IFNAMSIZ, "%s", name);
  if (ioctl(s, SIOCGIFFLAGS, &ifr) != 0) die(name);
  ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
  if (ioctl(s, SIOCSIFFLAGS, &ifr) != 0) die(name);
}

/* The NIC with this MAC gets this name (NICs are still down at boot, so a rename works). */
static void name_by_mac(int s, const char *want, const char *name) {
  char now[IFNAMSIZ];
  if (!nic_by_mac(s, want, now)) {
    errno = ENODEV;
    die(want);
  }
  if (!strcmp(now, name)) return;
  struct ifreq ifr = {0};
  snprintf(ifr.ifr_name, IFNAMSIZ, "%s", now);
  snprintf(ifr.ifr_newname, IFNAMSIZ, "%s", name);
  if (ioctl(s, SIOCSIFNAME, &ifr) != 0) die(name);
}

/* address/prefix on ifname, which is brought up; ip gets the bare address. */
static void configure(int s, const char *ifname, const char *cidr, char *ip, size_t iplen) {
  int prefix = 24;
  snprintf(ip, iplen, "%s", cidr);
  char *slash = strchr(ip, '/');
  if (slash) *slash = '\0', prefix = atoi(slash + 1);
  struct ifreq ifr = {0};
  snprintf(ifr.ifr_name, IFNAMSIZ, "%s", ifname);
  struct sockaddr_in *sin = (struct sockaddr_in *)&ifr.ifr_addr;
  sin->sin_family = AF_INET;
  inet_pton(AF_INET, ip, &sin->sin_addr);
  if (ioctl(s, SIOCSIFADDR, &ifr) != 0) die(ifname);
  sin->sin_addr.s_addr = prefix ? htonl(~0u << (32 - prefix)) : 0;
  if (ioctl(s, SIOCSIFNETMASK, &ifr) != 0) die(ifname);
  if_up(s, ifname);
}

static void write_file(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  if (!f) return;
  fputs(text, f);
  fclose(f);
}

void setup_network(void) {
  int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0) die("socket");
  if_up(s, "lo");
  char ip[32] = "", ctlip[32];
  /* krd's pods: kraud0 carries only the host's calls to vdocker, eth0 is the pod's network */
  if (pod.ctlmac && pod.ctladdr) {
    name_by_mac(s, pod.ctlmac, "kraud0");
    configure(s, "kraud0", pod.ctladdr, ctlip, sizeof ctlip);
  }
  if (!strcmp(pod.net, "static") && pod.addr) {
    if (pod.mac) name_by_mac(s, pod.mac, "eth0");
    configure(s, "eth0", pod.addr, ip, sizeof ip);
    if (pod.gw) {
      struct rtentry rt = {0};
      struct sockaddr_in *g = (struct sockaddr_in *)&rt.rt_gateway, *d = (struct sockaddr_in *)&rt.rt_dst, *m = (struct sockaddr_in *)&rt.rt_genmask;
      g->sin_family = d->sin_family = m->sin_family = AF_INET;
      inet_pton(AF_INET, pod.gw, &g->sin_addr);
      rt.rt_flags = RTF_UP | RTF_GATEWAY;
      if (ioctl(s, SIOCADDRT, &rt) != 0) die("default route");
    }
  }
  close(s);
  sethostname(pod.hostname, strlen(pod.hostname));
  /* the host's files when it sent them (krd: its embedded DNS, the container's own hosts entries) */
  if (pod.hosts_text) write_file(RUN "/hosts", pod.hosts_text);
  else {
    FILE *f = fopen(RUN "/hosts", "w");
    if (f) {
      fprintf(f, "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n");
      if (ip[0]) fprintf(f, "%s\t%s\n", ip, pod.hostname);
      fclose(f);
    }
  }
  if (pod.resolv_text) write_file(RUN "/resolv.conf", pod.resolv_text);
  else {
    FILE *f = fopen(RUN "/resolv.conf", "w");
    if (f) {
      for (int i = 0; i < pod.ndns; i++) fprintf(f, "nameserver %s\n", pod.dns[i]);
      fclose(f);
    }
  }
  FILE *f = fopen(RUN "/hostname", "w");
  if (f) {
    fprintf(f, "%s\n", pod.hostname);
    fclose(f);
  }
}
