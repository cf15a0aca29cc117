/*
 * krd-tapfd NETNS IFNAME PROGRAM [ARGS…]: opens the tap device IFNAME of the network namespace NETNS
 * (a namespace file: a bind mount or /proc/PID/ns/net), returns to its own namespace and execs
 * PROGRAM with the tap on fd 3. krd's vm runtime starts qemu through it: the guest's NIC is the tap
 * in the container's namespace (krd's bridge networking), while qemu itself stays in krd's
 * namespace, where the port forward of its control NIC listens on loopback. Node cannot do this
 * itself (no setns, no TUNSETIFF).
 *
 * krd-tapfd --qmp SOCKET [NETNS IFNAME] < COMMANDS: talks to a running qemu's QMP socket instead
 * (docker network connect/disconnect on a running pod: NICs hot-plugged). Each stdin line is one QMP
 * command, sent as is; the first one carries the tap (SCM_RIGHTS) when NETNS IFNAME are given —
 * that is `getfd`, the only way to hand qemu a tap it cannot open itself (Node cannot send fds).
 * A line `wait SECONDS TEXT` after a command that succeeded reads until an event line containing
 * TEXT, or SECONDS pass (device_del's DEVICE_DELETED; skipped when device_del failed). Every
 * line qemu sends after the greeting goes to stdout; the caller reads the replies from there.
 * The socket is reached from its directory (unix socket paths are short; pod dirs may be long).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static int fail(const char *what) {
  fprintf(stderr, "krd-tapfd: %s: %s\n", what, strerror(errno));
  return 1;
}

/* The tap IFNAME of namespace NETNS, opened there; the caller is back in its own namespace. */
static int open_tap(const char *netns, const char *ifname) {
  if (strlen(ifname) >= IFNAMSIZ) {
    errno = ENAMETOOLONG;
    return fail(ifname), -1;
  }
  int home = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
  if (home < 0) return fail("/proc/self/ns/net"), -1;
  int target = open(netns, O_RDONLY | O_CLOEXEC);
  if (target < 0) return fail(netns), -1;
  if (setns(target, CLONE_NEWNET) != 0) return fail("setns into the pod's namespace"), -1;
  /* a tun fd belongs to the namespace it was opened in: opened after the setns */
  int tun = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
  if (tun < 0) return fail("/dev/net/tun"), -1;
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  snprintf(ifr.ifr_name, IFNAMSIZ, "%s", ifname);
  /* IFF_TUN_EXCL is not set: the tap exists already (the caller set it up), it is attached, not made */
  ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
  if (ioctl(tun, TUNSETIFF, &ifr) != 0) return fail(ifname), -1;
  if (setns(home, CLONE_NEWNET) != 0) return fail("setns back"), -1;
  close(home);
  close(target);
  return tun;
}

static int qmp = -1;
static char buf[1 << 16];
static size_t have;

/* The next line from qemu (without its newline) into line; 0 at a timeout (ms < 0: none), -1 at EOF. */
static int read_line(char *line, size_t size, int ms) {
  struct timespec t0;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  for (;;) {
    char *nl = memchr(buf, '\n', have);
    if (nl) {
      size_t n = (size_t)(nl - buf);
      snprintf(line, size, "%.*s", (int)(n < size ? n : size - 1), buf);
      memmove(buf, nl + 1, have - n - 1);
      have -= n + 1;
      return 1;
    }
    if (have == sizeof buf) have = 0; /* a line longer than any reply of the commands krd sends */
    int left = ms;
    if (ms >= 0) {
      struct timespec t;
      clock_gettime(CLOCK_MONOTONIC, &t);
      left = ms - (int)((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000);
      if (left <= 0) return 0;
    }
    struct pollfd p = {.fd = qmp, .events = POLLIN};
    if (poll(&p, 1, left) == 0) return 0;
    ssize_t r = read(qmp, buf + have, sizeof buf - have);
    if (r <= 0) return -1;
    have += (size_t)r;
  }
}

static int last_ok;

/* Sends one command (with the tap attached when tap >= 0) and reads up to its reply (printed when echo). */
static int command(const char *cmd, int tap, int echo) {
  struct iovec iov = {.iov_base = (void *)cmd, .iov_len = strlen(cmd)};
  char control[CMSG_SPACE(sizeof(int))];
  struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
  if (tap >= 0) {
    memset(control, 0, sizeof control);
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &tap, sizeof(int));
  }
  if (sendmsg(qmp, &msg, MSG_NOSIGNAL) != (ssize_t)iov.iov_len || write(qmp, "\n", 1) != 1) return fail("QMP write");
  char line[sizeof buf];
  for (;;) {
    if (read_line(line, sizeof line, -1) < 0) return fail("QMP closed");
    if (echo) puts(line);
    last_ok = !strncmp(line, "{\"return\"", 9);
    if (last_ok || !strncmp(line, "{\"error\"", 8)) return 0;
  }
}

static int qmp_session(int argc, char **argv) {
  int tap = -1;
  if (argc == 5 && (tap = open_tap(argv[3], argv[4])) < 0) return 1;
  char dir[4096];
  snprintf(dir, sizeof dir, "%s", argv[2]);
  char *slash = strrchr(dir, '/');
  const char *name = dir;
  if (slash) {
    *slash = '\0';
    name = slash + 1;
    if (chdir(dir[0] ? dir : "/") != 0) return fail(dir);
  }
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  if (strlen(name) >= sizeof sa.sun_path) return errno = ENAMETOOLONG, fail(name);
  snprintf(sa.sun_path, sizeof sa.sun_path, "%s", name);
  qmp = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (qmp < 0 || connect(qmp, (struct sockaddr *)&sa, sizeof sa) != 0) return fail(argv[2]);
  char line[sizeof buf];
  if (read_line(line, sizeof line, 10000) <= 0 || command("{\"execute\":\"qmp_capabilities\"}", -1, 0) != 0) return fail("QMP greeting");
  fflush(stdout);
  char in[8192];
  while (fgets(in, sizeof in, stdin)) {
    in[strcspn(in, "\n")] = '\0';
    int secs, at = 0;
    if (sscanf(in, "wait %d %n", &secs, &at) == 1 && at > 0) {
      if (!last_ok) continue;
      time_t end = time(NULL) + secs;
      int got;
      while ((got = read_line(line, sizeof line, (int)(end - time(NULL)) * 1000)) > 0) {
        puts(line);
        if (strstr(line, in + at)) break;
      }
      if (got < 0) return fail("QMP closed");
    } else if (in[0] && command(in, tap, 1) != 0) {
      return 1;
    } else if (in[0] && tap >= 0) {
      close(tap);
      tap = -1;
    }
    fflush(stdout);
  }
  return 0;
}

int main(int argc, char **argv) {
  if (argc >= 2 && !strcmp(argv[1], "--qmp") && (argc == 3 || argc == 5)) return qmp_session(argc, argv);
  if (argc < 4) {
    fprintf(stderr, "usage: krd-tapfd NETNS IFNAME PROGRAM [ARGS...] | krd-tapfd --qmp SOCKET [NETNS IFNAME]\n");
    return 2;
  }
  int tun = open_tap(argv[1], argv[2]);
  if (tun < 0) return 1;
  if (tun != 3) {
    if (dup2(tun, 3) != 3) return fail("dup2");
    close(tun);
  } else if (fcntl(3, F_SETFD, 0) != 0) return fail("fcntl");
  execvp(argv[3], argv + 3);
  return fail(argv[3]);
}
