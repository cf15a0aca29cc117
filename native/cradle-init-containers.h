/* The pod's containers, each under /bin/krd-shim (the ns runtime's supervisor, so vdocker can
 * reattach with NsRuntime): their start, output and exit on to the host, restart policies, stop. */
#ifndef CRADLE_INIT_CONTAINERS_H
#define CRADLE_INIT_CONTAINERS_H

extern int stopping;
extern long long stop_at; /* ms of boottime when stragglers get SIGKILL */

/* Starts (or restarts) container i under a krd-shim and sends it the start frame. */
int start_ctr(int i);
/* What container i's shim sent: output and its exit go on to the host. */
void read_shim(int i);
void signal_all(int sig);
void begin_stop(int sig);

#endif
