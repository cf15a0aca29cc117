/*
 * The claim of a pooled krd-shim (krd-shim --pool): how krd-spawner hands a waiting supervisor
 * its container, and how that supervisor hands it on to its waiting child.
 *
 * A claim on the supervisor's stdin: u32 big-endian length, then NUL-terminated strings:
 *   <argc> <argv[0]> … <argv[argc-1]> <env entries…>     (argv as a plain krd-shim start's)
 * To the child, on their socketpair: the same length and bytes, with the child's stdin, stdout
 * and stderr (SCM_RIGHTS) and one byte, 1 when they are a terminal, sent along the length.
 */
#ifndef KRD_SHIM_POOL_H
#define KRD_SHIM_POOL_H
#include <stdint.h>

/* The claim from fd (blocking); NULL at EOF or on a malformed one. */
char *pool_read_claim(int fd, uint32_t *len);
/* argv (NULL-terminated, argc set) and the environment, pointing into the claim's bytes. */
char **pool_split(char *claim, uint32_t len, int *argc, char ***envp);
/* 0 when sent. */
int pool_send_spec(int sock, const char *claim, uint32_t len, const int fds[3], int tty);
/* The claim as the child receives it (its fds close on exec); NULL when the socket closed. */
char *pool_recv_spec(int sock, uint32_t *len, int fds[3], int *tty);

#endif
