/* The guest's NICs are found by MAC (cradle-init at boot, cradle-nic for hot-plugged ones): the order
 * in which the kernel names them is its business; the host knows them by MAC. Needs <net/if.h>,
 * <stdio.h>, <strings.h>, <sys/ioctl.h>. */
#ifndef NIC_BY_MAC_H
#define NIC_BY_MAC_H

/* The current name of the NIC with this MAC (s: any AF_INET datagram socket); 0 when there is none. */
static int nic_by_mac(int s, const char *mac, char name[IFNAMSIZ]) {
  struct if_nameindex *all = if_nameindex();
  if (!all) return 0;
  int found = 0;
  for (struct if_nameindex *i = all; i->if_index && !found; i++) {
    struct ifreq ifr = {0};
    snprintf(ifr.ifr_name, IFNAMSIZ, "%s", i->if_name);
    if (ioctl(s, SIOCGIFHWADDR, &ifr) != 0) continue;
    const unsigned char *h = (const unsigned char *)ifr.ifr_hwaddr.sa_data;
    char got[18];
    snprintf(got, sizeof got, "%02x:%02x:%02x:%02x:%02x:%02x", h[0], h[1], h[2], h[3], h[4], h[5]);
    if (!strcasecmp(got, mac)) found = 1, snprintf(name, IFNAMSIZ, "%s", i->if_name);
  }
  if_freenameindex(all);
  return found;
}

#endif
