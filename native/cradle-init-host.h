/* The host channel: frames on the virtio-serial port "kraud.io" ([type u8][container u8][length
 * u32 BE][payload], both ways), messages on the virtio console, and the end of the VM. */
#ifndef CRADLE_INIT_HOST_H
#define CRADLE_INIT_HOST_H
#include <stddef.h>

enum { F_STDOUT = 1, F_STDERR = 2, F_EXIT = 3, F_TIMING = 4, F_ERROR = 5, F_DONE = 6, F_STOP = 7 };

extern int io, console; /* the port and /dev/hvc0, -1 until open */

long long now_ns(void);
void send_frame(int type, int idx, const void *data, size_t len);
/* A message to the console and to the host. */
__attribute__((format(printf, 1, 2))) void say(const char *fmt, ...);
__attribute__((noreturn)) void poweroff(void);
__attribute__((noreturn)) void die(const char *what);
/* Early phases are stamped before the host channel exists and sent once it does. */
void timing(const char *phase);
void flush_timings(void);
/* Host → guest: only the stop frame for now. */
void read_host(void);

#endif
