/* The init plan: what the host asks of this VM, from the config disk (KEY\0VALUE\0 pairs written by
 * src/vm/config-disk.ts; parse_plan has the keys), and the state of the containers it lists. */
#ifndef CRADLE_INIT_PLAN_H
#define CRADLE_INIT_PLAN_H
#include <stddef.h>
#include <sys/types.h>

#define MAXC 16
#define MAXV 256
#define RUN "/run/cradle"

struct ctr {
  const char *name, *cwd, *uid, *gid, *groups, *caps, *host, *restart;
  int image, tty, in, ro, retries, restarts;
  const char *args[MAXV], *env[MAXV], *tmpfs[MAXV], *binds[MAXV];
  int nargs, nenv, ntmpfs, nbinds;
  pid_t shim, pid;
  int sock; /* attach socket, -1 when not running */
  unsigned char buf[65536 + 5];
  size_t have;
  int done, code;
};

struct pod {
  const char *hostname, *net, *mac, *addr, *gw, *ctlmac, *ctladdr, *hosts_text, *resolv_text;
  const char *dns[8], *vdocker[MAXV], *shares[MAXC];
  int ndns, nvdocker, nshares, nimages;
};

extern struct pod pod;
extern struct ctr ctrs[MAXC];
extern int nctrs;

/* The config disk (serial kraud-config): its launch.json to RUN/launch.json, the plan kept. */
void read_config(void);
void parse_plan(void);

#endif
