/* The container's cgroups (--cgroup DIR…), from the supervisor's side. */
#ifndef KRD_SHIM_CGROUPS_H
#define KRD_SHIM_CGROUPS_H
#include <sys/types.h>

/* Moves the child into the container's cgroups. The first cgroup.procs write of a process waits
   for an RCU grace period (~10 ms per v1 controller here): what the pool (--pool) takes off the
   path of a create. On failure, the child's own reason wins if its setup failed meanwhile. */
void join_cgroups(pid_t child, int errfd);
/* The groups made for an unclaimed pooled shim's child, and their parent once empty (as krd's
   own removal does); a group whose last task is still being released is asked again. */
void pool_remove_cgroups(void);

#endif
