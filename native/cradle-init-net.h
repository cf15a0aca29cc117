/* The VM's network as planned: lo, kraud0 (krd's calls to vdocker), eth0 (the pod's), the default
 * route, the hostname, and the hosts, resolv.conf and hostname files containers bind. */
#ifndef CRADLE_INIT_NET_H
#define CRADLE_INIT_NET_H

void setup_network(void);

#endif
