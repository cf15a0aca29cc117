/* The container (or exec) process, from the supervisor's fork to its exec. */
#ifndef KRD_SHIM_CHILD_H
#define KRD_SHIM_CHILD_H

extern int child_err; /* the error pipe's write end, read by the supervisor */

/* In the container child: a message on the error pipe, read by the shim. */
__attribute__((noreturn)) void child_fail(const char *what, const char *detail);
/* Where the container (or exec) process starts: setup, wait for "start", exec. */
__attribute__((noreturn)) void child_main(int sync_fd, int in_fd, int out_fd, int err_fd, int tty_slave);

#endif
