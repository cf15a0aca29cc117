/* krd-shim's options, parsed from its command line (krd-shim.c has the usage), and how it fails
 * before its ready line. */
#ifndef KRD_SHIM_ARGS_H
#define KRD_SHIM_ARGS_H

#define MAXLIST 64

struct shim_options {
  const char *dir, *lower, *upper, *work, *hostname, *cwd, *groups, *net, *init;
  long uid, gid, join;
  unsigned long long caps;
  int tty, stdin_open, readonly;
  const char *cgroups[MAXLIST], *mounts[MAXLIST], *sysctls[MAXLIST];
  char mount_kind[MAXLIST]; /* 'b' bind, 't' tmpfs */
  int ncgroups, nmounts, nsysctls;
  char **command;
};
extern struct shim_options opt;

extern int report_fd; /* the shim's stdout until the ready line is written */

/* Before the ready line: tell the caller and quit. */
__attribute__((noreturn)) void fail(const char *what, const char *detail);
/* The options (DIR first, then flags, then -- COMMAND); fail() names what is wrong. */
void parse_args(int argc, char **argv);

#endif
