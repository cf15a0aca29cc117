/* The supervisor's side of a running container: its output to the log and to attach clients, the
 * clients' frames (krd-shim.c has the protocol) to it, until it exits. */
#ifndef KRD_SHIM_RELAY_H
#define KRD_SHIM_RELAY_H
#include <stdint.h>
#include <sys/types.h>

struct supervised {
  pid_t child;
  int sync;               /* the start handshake's socket: "s" lets the child exec */
  int errfd;              /* the child's error pipe: a message if its exec failed, EOF once it succeeded */
  int lsock;              /* the attach socket, listening */
  int in_w, out_r, err_r; /* the far ends of its stdio, -1 where there is none; with a tty, out_r is the master */
};

/* DIR/sock (listening; returned) and DIR/log (opened for appending), in the current directory. */
int open_attach_and_log(void);
/* SIGCHLD wakes supervise()'s poll through a pipe. */
void watch_children(void);
/* Relays until the child has exited and its last output is out; returns its wait status. */
int supervise(struct supervised *s);
/* The exit frame (the exit file's text) to every client, then their sockets closed. */
void announce_exit(const char *text, uint32_t len);

#endif
