/*
 * krd-shim: the per-container supervisor of the namespace runtime (src/runtime/ns). One small
 * process per container (or per exec) that outlives krd: it creates the namespaces, holds the
 * stdio (pipes or a pty), writes the log, reports the exit status to a file, and serves a unix
 * socket for attach/start/kill/resize. Written instead of conmon+crun after measuring both
 * (src/runtime/README.md): one process and no OCI JSON round trip, and crun 1.8 refuses this
 * machine's hybrid cgroup layout without a mount-namespace workaround per call.
 *
 *   krd-shim DIR [options] -- COMMAND ARGS...     (environment = the container's)
 *     --lower L --upper U --work W   overlay rootfs, mounted at DIR/rootfs in the new mount ns
 *     --join PID                     exec mode: join PID's namespaces instead of making new ones
 *     --hostname H  --cwd D  --uid N --gid N --groups a,b  --caps HEXMASK
 *     --tty  --stdin  --readonly  --net new|host|PATH  --cgroup DIR (repeatable)
 *     --bind SRC:DST[:ro] (repeatable)  --tmpfs DST[:OPT,OPT…] (repeatable)  --init PATH
 *       binds and tmpfs are mounted in the order given; tmpfs OPTs are mount(8) words: flags
 *       (ro, noexec, nosuid, nodev, exec…) and tmpfs's own (size=64m, mode=1777…)
 *
 * Files in DIR: sock (attach socket), log (one line per chunk: "<RFC3339 nanos> <stdout|stderr>
 * <F|P> <bytes>", F = line ended by \n, P = partial, like CRI's log format), pid, exit
 * ("<code> <signal> <finished unix ms>", written atomically). The shim writes "ok <pid>\n" or
 * "error <message>\n" on its stdout once the process is ready to start, then detaches.
 *
 * Socket frames both ways: [type u8][length u32 BE][payload]. Client → shim: 0 stdin data,
 * 4 close stdin, 5 resize (rows u16, cols u16), 6 signal (u8), 8 start. Shim → client: 1 stdout,
 * 2 stderr, 3 exit (payload = the exit file's text), 9 started (to the client that sent 8, once
 * the command is exec'd or failed to be); a client gets output from when it connects.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <linux/openat2.h>
#include <net/if.h>
#include <poll.h>
#include <pty.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "krd-shim-pool.h"

extern char **environ;

#define MAXLIST 64
#define MAXCLIENTS 32

static struct {
  const char *dir, *lower, *upper, *work, *hostname, *cwd, *groups, *net, *init;
  long uid, gid, join;
  unsigned long long caps;
  int tty, stdin_open, readonly;
  const char *cgroups[MAXLIST], *mounts[MAXLIST];
  char mount_kind[MAXLIST]; /* 'b' bind, 't' tmpfs */
  int ncgroups, nmounts;
  char **command;
} opt = {.uid = -1, .gid = -1, .join = -1, .cwd = "/", .net = "new", .caps = ~0ULL};

static int report_fd = 1; /* the shim's stdout until the ready line is written */

/* Before the ready line: tell the caller and quit. */
static void fail(const char *what, const char *detail) {
  dprintf(report_fd, "error %s%s%s: %s\n", what, detail ? " " : "", detail ? detail : "", strerror(errno));
  _exit(125);
}

/* In the container child: a message on the error pipe, read by the shim. */
static int child_err = -1;
static void child_fail(const char *what, const char *detail) {
  dprintf(child_err, "E%s%s%s: %s", what, detail ? " " : "", detail ? detail : "", strerror(errno));
  _exit(125);
}

static void must_mount(const char *src, const char *dst, const char *type, unsigned long flags, const char *data) {
  if (mount(src, dst, type, flags, data) != 0) child_fail("mount", dst);
}

/* Opens (creating missing directories, and the last component as a file if asked) a path inside
 * root without ever leaving it: RESOLVE_IN_ROOT makes symlinks and ".." resolve as if chrooted. */
static int open_in_root(int rootfd, const char *path, int as_file) {
  char buf[4096];
  snprintf(buf, sizeof buf, "%s", path);
  struct open_how how = {.flags = O_PATH | O_CLOEXEC, .resolve = RESOLVE_IN_ROOT};
  for (char *p = buf + 1;; p++) {
    int last = (*p == '\0');
    if (*p != '/' && !last) continue;
    char saved = *p;
    *p = '\0';
    if (p > buf && (p[-1] != '/')) {
      int fd = (int)syscall(SYS_openat2, rootfd, buf, &how, sizeof how);
      if (fd < 0 && errno == ENOENT) {
        char *slash = strrchr(buf, '/');
        *slash = '\0';
        int parent = (int)syscall(SYS_openat2, rootfd, buf[0] ? buf : "/", &how, sizeof how);
        *slash = '/';
        if (parent < 0) return -1;
        if (last && as_file) {
          int f = openat(parent, slash + 1, O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
          if (f >= 0) close(f);
        } else if (mkdirat(parent, slash + 1, 0755) != 0 && errno != EEXIST) {
          close(parent);
          return -1;
        }
        close(parent);
        fd = (int)syscall(SYS_openat2, rootfd, buf, &how, sizeof how);
      }
      if (fd < 0) return -1;
      if (last) return fd;
      close(fd);
    }
    *p = saved;
    if (last) break;
  }
  return (int)syscall(SYS_openat2, rootfd, "/", &how, sizeof how);
}

static void fdpath(char *out, size_t n, int fd) { snprintf(out, n, "/proc/self/fd/%d", fd); }

/* Docker's /dev: a tmpfs with the usual nodes bound from the host, its own devpts and shm. */
static void setup_dev(const char *root) {
  char path[8192];
  snprintf(path, sizeof path, "%s/dev", root);
  mkdir(path, 0755);
  must_mount("tmpfs", path, "tmpfs", MS_NOSUID | MS_STRICTATIME, "mode=755,size=65536k");
  const char *nodes[] = {"null", "zero", "full", "random", "urandom", "tty"};
  for (size_t i = 0; i < sizeof nodes / sizeof *nodes; i++) {
    char src[64];
    snprintf(src, sizeof src, "/dev/%s", nodes[i]);
    snprintf(path, sizeof path, "%s/dev/%s", root, nodes[i]);
    int f = open(path, O_CREAT | O_WRONLY | O_CLOEXEC, 0666);
    if (f >= 0) close(f);
    must_mount(src, path, NULL, MS_BIND, NULL);
  }
  snprintf(path, sizeof path, "%s/dev/pts", root);
  mkdir(path, 0755);
  must_mount("devpts", path, "devpts", MS_NOSUID | MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620");
  snprintf(path, sizeof path, "%s/dev/shm", root);
  mkdir(path, 01777);
  must_mount("shm", path, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=1777,size=65536k");
  const char *links[][2] = {{"pts/ptmx", "ptmx"}, {"/proc/self/fd", "fd"}, {"/proc/self/fd/0", "stdin"},
                            {"/proc/self/fd/1", "stdout"}, {"/proc/self/fd/2", "stderr"}};
  for (size_t i = 0; i < sizeof links / sizeof *links; i++) {
    snprintf(path, sizeof path, "%s/dev/%s", root, links[i][1]);
    if (symlink(links[i][0], path) != 0) child_fail("symlink", path);
  }
  if (opt.init) {
    snprintf(path, sizeof path, "%s/dev/init", root);
    int f = open(path, O_CREAT | O_WRONLY | O_CLOEXEC, 0755);
    if (f >= 0) close(f);
    must_mount(opt.init, path, NULL, MS_BIND | MS_RDONLY, NULL);
    must_mount(NULL, path, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY, NULL);
  }
}

/* DST[:OPTS]: a tmpfs; OPTS split into mount flags and the tmpfs data string (mode=1777 unless given). */
static void mount_tmpfs(int rootfd, const char *arg) {
  static const struct { const char *word; unsigned long set, clear; } flags[] = {
      {"ro", MS_RDONLY, 0},          {"rw", 0, MS_RDONLY},           {"noexec", MS_NOEXEC, 0},
      {"exec", 0, MS_NOEXEC},        {"nosuid", MS_NOSUID, 0},       {"suid", 0, MS_NOSUID},
      {"nodev", MS_NODEV, 0},        {"dev", 0, MS_NODEV},           {"noatime", MS_NOATIME, 0},
      {"atime", 0, MS_NOATIME},      {"relatime", MS_RELATIME, 0},   {"strictatime", MS_STRICTATIME, 0},
      {"sync", MS_SYNCHRONOUS, 0},   {"async", 0, MS_SYNCHRONOUS},   {"dirsync", MS_DIRSYNC, 0}};
  char spec[4096], data[4096] = "", fp[64];
  snprintf(spec, sizeof spec, "%s", arg);
  char *opts = strchr(spec, ':');
  unsigned long mflags = MS_NOSUID | MS_NODEV;
  int have_mode = 0;
  if (opts) {
    *opts++ = '\0';
    mflags = 0;
    for (char *save = NULL, *w = strtok_r(opts, ",", &save); w; w = strtok_r(NULL, ",", &save)) {
      size_t f = 0;
      for (; f < sizeof flags / sizeof *flags && strcmp(flags[f].word, w) != 0; f++) {}
      if (f < sizeof flags / sizeof *flags) {
        mflags = (mflags | flags[f].set) & ~flags[f].clear;
        continue;
      }
      if (!strncmp(w, "mode=", 5)) have_mode = 1;
      size_t n = strlen(data);
      snprintf(data + n, sizeof data - n, "%s%s", n ? "," : "", w);
    }
  }
  if (!have_mode) {
    size_t n = strlen(data);
    snprintf(data + n, sizeof data - n, "%smode=1777", n ? "," : "");
  }
  int fd = open_in_root(rootfd, spec, 0);
  if (fd < 0) child_fail("mount point", spec);
  fdpath(fp, sizeof fp, fd);
  must_mount("tmpfs", fp, "tmpfs", mflags, data);
  close(fd);
}

/* SRC:DST[:ro]: a bind (recursive) of a host path; the mount point is made like the source. */
static void mount_bind(int rootfd, const char *arg) {
  char spec[4096], fp[64];
  snprintf(spec, sizeof spec, "%s", arg);
  char *dst = strchr(spec, ':');
  if (!dst) {
    errno = EINVAL;
    child_fail("bad --bind", spec);
  }
  *dst++ = '\0';
  char *ro = strchr(dst, ':');
  if (ro) *ro++ = '\0';
  struct stat st;
  if (stat(spec, &st) != 0) child_fail("bind source", spec);
  int fd = open_in_root(rootfd, dst, !S_ISDIR(st.st_mode));
  if (fd < 0) child_fail("mount point", dst);
  fdpath(fp, sizeof fp, fd);
  must_mount(spec, fp, NULL, MS_BIND | MS_REC, NULL);
  if (ro && strcmp(ro, "ro") == 0) {
    /* the fd names the old (covered) inode; reopen so the remount hits the bind itself */
    close(fd);
    if ((fd = open_in_root(rootfd, dst, 0)) < 0) child_fail("mount point", dst);
    fdpath(fp, sizeof fp, fd);
    must_mount(NULL, fp, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_REC, NULL);
  }
  close(fd);
}

static void setup_rootfs(void) {
  char root[3900], data[8192];
  snprintf(root, sizeof root, "%s/rootfs", opt.dir);
  /* Nothing we mount may propagate back to the host. */
  must_mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL);
  snprintf(data, sizeof data, "lowerdir=%s,upperdir=%s,workdir=%s", opt.lower, opt.upper, opt.work);
  must_mount("overlay", root, "overlay", 0, data);
  int rootfd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (rootfd < 0) child_fail("open", root);
  char path[4096], fp[64];
  int fd;
  if ((fd = open_in_root(rootfd, "/proc", 0)) < 0) child_fail("mount point", "/proc");
  fdpath(fp, sizeof fp, fd);
  must_mount("proc", fp, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
  close(fd);
  if ((fd = open_in_root(rootfd, "/sys", 0)) < 0) child_fail("mount point", "/sys");
  fdpath(fp, sizeof fp, fd);
  if (strcmp(opt.net, "host") == 0) must_mount("/sys", fp, NULL, MS_BIND | MS_REC, NULL);
  else must_mount("sysfs", fp, "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_RDONLY, NULL);
  close(fd);
  setup_dev(root);
  for (int i = 0; i < opt.nmounts; i++) {
    if (opt.mount_kind[i] == 't') mount_tmpfs(rootfd, opt.mounts[i]);
    else mount_bind(rootfd, opt.mounts[i]);
  }
  close(rootfd);
  /* pivot_root(".", ".") stacks the old root under the new one; detaching it leaves only ROOT. */
  if (chdir(root) != 0) child_fail("chdir", root);
  if (syscall(SYS_pivot_root, ".", ".") != 0) child_fail("pivot_root", root);
  if (umount2(".", MNT_DETACH) != 0) child_fail("detach old root", NULL);
  if (chdir("/") != 0) child_fail("chdir", "/");
  if (opt.readonly) must_mount(NULL, "/", NULL, MS_BIND | MS_REMOUNT | MS_RDONLY, NULL);
  (void)path;
}

static void loopback_up(void) {
  int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  struct ifreq ifr = {0};
  strcpy(ifr.ifr_name, "lo");
  if (s < 0 || ioctl(s, SIOCGIFFLAGS, &ifr) != 0) child_fail("lo flags", NULL);
  ifr.ifr_flags |= IFF_UP;
  if (ioctl(s, SIOCSIFFLAGS, &ifr) != 0) child_fail("lo up", NULL);
  close(s);
}

/* Bounding set and the root process's sets to the mask; a non-root user keeps none (setuid
 * clears them), as in docker. */
static void apply_identity_and_caps(void) {
  for (int c = 0; c <= 63; c++)
    if (!(opt.caps & (1ULL << c)) && prctl(PR_CAPBSET_DROP, c, 0, 0, 0) != 0 && errno != EINVAL) child_fail("drop cap", NULL);
  if (opt.groups || opt.gid >= 0 || opt.uid >= 0) {
    gid_t list[MAXLIST];
    int n = 0;
    if (opt.groups && *opt.groups) {
      char *copy = strdup(opt.groups);
      for (char *tok = strtok(copy, ","); tok && n < MAXLIST; tok = strtok(NULL, ",")) list[n++] = (gid_t)strtol(tok, NULL, 10);
      free(copy);
    }
    if (setgroups((size_t)n, list) != 0) child_fail("setgroups", NULL);
    if (opt.gid >= 0 && setgid((gid_t)opt.gid) != 0) child_fail("setgid", NULL);
    if (opt.uid >= 0 && setuid((uid_t)opt.uid) != 0) child_fail("setuid", NULL);
  }
  if (opt.uid <= 0) {
    /* only caps this kernel knows: asking for more is EPERM */
    int last = 40;
    FILE *f = fopen("/proc/sys/kernel/cap_last_cap", "r");
    if (f) {
      if (fscanf(f, "%d", &last) != 1) last = 40;
      fclose(f);
    }
    if (last < 63) opt.caps &= (1ULL << (last + 1)) - 1;
    struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct d[2];
    /* and only caps we hold: root here may lack some (e.g. CAP_SYS_RESOURCE) */
    if (syscall(SYS_capget, &h, d) != 0) child_fail("capget", NULL);
    for (int k = 0; k < 2; k++) {
      uint32_t m = (uint32_t)(opt.caps >> (32 * k)) & d[k].permitted;
      d[k].effective = d[k].permitted = d[k].inheritable = m;
    }
    if (syscall(SYS_capset, &h, d) != 0) child_fail("capset", NULL);
  }
}

/* Where the container (or exec) process starts: setup, wait for "start", exec. */
static int child_main(int sync_fd, int in_fd, int out_fd, int err_fd, int tty_slave) {
  char c;
  if (opt.join < 0) {
    if (strcmp(opt.net, "new") == 0) loopback_up();
    else if (strcmp(opt.net, "host") != 0) {
      int fd = open(opt.net, O_RDONLY | O_CLOEXEC);
      if (fd < 0 || setns(fd, CLONE_NEWNET) != 0) child_fail("join network namespace", opt.net);
      close(fd);
    }
    if (opt.hostname && sethostname(opt.hostname, strlen(opt.hostname)) != 0) child_fail("sethostname", NULL);
    setup_rootfs();
  } else {
    const char *kinds[] = {"ipc", "uts", "net", "mnt"};
    int types[] = {CLONE_NEWIPC, CLONE_NEWUTS, CLONE_NEWNET, CLONE_NEWNS};
    for (int i = 0; i < 4; i++) {
      char p[64];
      snprintf(p, sizeof p, "/proc/%ld/ns/%s", opt.join, kinds[i]);
      int fd = open(p, O_RDONLY | O_CLOEXEC);
      if (fd < 0 || setns(fd, types[i]) != 0) child_fail("setns", p);
      close(fd);
    }
  }
  if (setsid() < 0) child_fail("setsid", NULL);
  if (tty_slave >= 0 && ioctl(tty_slave, TIOCSCTTY, 0) != 0) child_fail("TIOCSCTTY", NULL);
  if (dup2(in_fd, 0) < 0 || dup2(out_fd, 1) < 0 || dup2(err_fd, 2) < 0) child_fail("dup2", NULL);
  /* docker creates a missing working directory (as root, before the user switch) */
  if (chdir(opt.cwd) != 0) {
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", opt.cwd);
    for (char *p = buf + 1; *p; p++)
      if (*p == '/') {
        *p = '\0';
        mkdir(buf, 0755);
        *p = '/';
      }
    mkdir(buf, 0755);
  }
  apply_identity_and_caps();
  if (chdir(opt.cwd) != 0) child_fail("chdir", opt.cwd);
  /* the setup above ran while the shim moved us into the cgroups (the first cgroup.procs write
     waits for an RCU grace period, ~10 ms: overlapping the two saves the setup's time); the
     command itself never runs outside them */
  if (read(sync_fd, &c, 1) != 1) _exit(125); /* cgroups joined by the shim */
  if (write(sync_fd, "r", 1) != 1) _exit(125); /* ready */
  if (read(sync_fd, &c, 1) != 1) _exit(125); /* "start" */
  close(sync_fd);
  signal(SIGPIPE, SIG_DFL);
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, NULL);
  if (opt.init) {
    /* tini-static as PID 1: -s in case it is not, -- then the command */
    int n = 0;
    while (opt.command[n]) n++;
    char **argv = calloc((size_t)n + 4, sizeof *argv);
    argv[0] = "/dev/init";
    argv[1] = "-s";
    argv[2] = "--";
    memcpy(argv + 3, opt.command, (size_t)n * sizeof *argv);
    execve("/dev/init", argv, environ);
  } else
    execvpe(opt.command[0], opt.command, environ);
  int e = errno;
  dprintf(child_err, "X%d %s: %s", e == ENOENT ? 127 : 126, opt.command[0], strerror(e));
  _exit(e == ENOENT ? 127 : 126);
}

/* ---- the supervisor side ---- */

static int logfd = -1;
static int clients[MAXCLIENTS];
static int nclients;

static void send_frame(int fd, uint8_t type, const void *data, uint32_t len) {
  uint8_t h[5] = {type, (uint8_t)(len >> 24), (uint8_t)(len >> 16), (uint8_t)(len >> 8), (uint8_t)len};
  struct iovec iov[2] = {{h, 5}, {(void *)data, len}};
  struct msghdr m = {.msg_iov = iov, .msg_iovlen = 2};
  size_t want = 5 + len;
  ssize_t n = sendmsg(fd, &m, MSG_NOSIGNAL);
  if (n >= 0 && (size_t)n < want) {
    /* rare short write on a stream socket: finish it plainly */
    size_t done = (size_t)n;
    while (done < want) {
      const uint8_t *src = done < 5 ? h + done : (const uint8_t *)data + (done - 5);
      size_t chunk = done < 5 ? 5 - done : want - done;
      ssize_t k = write(fd, src, chunk);
      if (k <= 0) break;
      done += (size_t)k;
    }
  }
}

static void log_chunk(uint8_t stream, const char *buf, size_t len) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  struct tm tm;
  gmtime_r(&ts.tv_sec, &tm);
  char stamp[64];
  size_t sl = strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf(stamp + sl, sizeof stamp - sl, ".%09ldZ %s ", ts.tv_nsec, stream == 1 ? "stdout" : "stderr");
  size_t start = 0;
  while (start < len) {
    const char *nl = memchr(buf + start, '\n', len - start);
    size_t end = nl ? (size_t)(nl - buf) : len;
    struct iovec iov[4] = {{stamp, strlen(stamp)}, {nl ? "F " : "P ", 2}, {(void *)(buf + start), end - start}, {"\n", 1}};
    if (writev(logfd, iov, 4) < 0) { /* a full disk must not stop the container */ }
    start = end + (nl ? 1 : 0);
  }
}

static void output(uint8_t stream, const char *buf, size_t len) {
  log_chunk(stream, buf, len);
  for (int i = 0; i < nclients; i++) send_frame(clients[i], stream, buf, (uint32_t)len);
}

static int drain(int fd, uint8_t stream) {
  char buf[32768];
  ssize_t n = read(fd, buf, sizeof buf);
  if (n > 0) output(stream, buf, (size_t)n);
  return (int)n;
}

/* The child's "CODE reason" when its exec failed: docker puts the reason on stderr (exit 126/127). */
static void relay_exec_error(int fd) {
  char msg[1024];
  ssize_t k = read(fd, msg, sizeof msg - 1);
  if (k <= 0) return;
  msg[k] = '\0';
  char *space = strchr(msg, ' ');
  if (space) output(2, space + 1, strlen(space + 1)), output(2, "\n", 1);
}

static int sigpipe_fds[2];
static void on_chld(int s) {
  (void)s;
  int e = errno;
  if (write(sigpipe_fds[1], "c", 1) < 0) {}
  errno = e;
}

/* The options (DIR first, then flags, then -- COMMAND); fail() names what is wrong. */
static void parse_args(int argc, char **argv) {
  if (argc < 4) {
    errno = EINVAL;
    fail("usage: krd-shim DIR [options] -- COMMAND ARGS...", NULL);
  }
  opt.dir = argv[1];
  int i = 2;
  for (; i < argc && strcmp(argv[i], "--") != 0; i++) {
    const char *a = argv[i];
    if (!strcmp(a, "--tty")) opt.tty = 1;
    else if (!strcmp(a, "--stdin")) opt.stdin_open = 1;
    else if (!strcmp(a, "--readonly")) opt.readonly = 1;
    else {
      if (i + 1 >= argc) {
        errno = EINVAL;
        fail("missing value for", a);
      }
      const char *v = argv[++i];
      if (!strcmp(a, "--lower")) opt.lower = v;
      else if (!strcmp(a, "--upper")) opt.upper = v;
      else if (!strcmp(a, "--work")) opt.work = v;
      else if (!strcmp(a, "--join")) opt.join = strtol(v, NULL, 10);
      else if (!strcmp(a, "--hostname")) opt.hostname = v;
      else if (!strcmp(a, "--cwd")) opt.cwd = v;
      else if (!strcmp(a, "--uid")) opt.uid = strtol(v, NULL, 10);
      else if (!strcmp(a, "--gid")) opt.gid = strtol(v, NULL, 10);
      else if (!strcmp(a, "--groups")) opt.groups = v;
      else if (!strcmp(a, "--caps")) opt.caps = strtoull(v, NULL, 16);
      else if (!strcmp(a, "--net")) opt.net = v;
      else if (!strcmp(a, "--init")) opt.init = v;
      else if (!strcmp(a, "--cgroup") && opt.ncgroups < MAXLIST) opt.cgroups[opt.ncgroups++] = v;
      else if ((!strcmp(a, "--bind") || !strcmp(a, "--tmpfs")) && opt.nmounts < MAXLIST) {
        opt.mount_kind[opt.nmounts] = a[2];
        opt.mounts[opt.nmounts++] = v;
      }
      else {
        errno = EINVAL;
        fail("unknown option", a);
      }
    }
  }
  if (i + 1 >= argc) {
    errno = EINVAL;
    fail("no command", NULL);
  }
  opt.command = argv + i + 1;
  if (opt.join < 0 && (!opt.lower || !opt.upper || !opt.work)) {
    errno = EINVAL;
    fail("--lower, --upper and --work are required", NULL);
  }
}

/* Moves the child into the container's cgroups. The first cgroup.procs write of a process waits
   for an RCU grace period (~10 ms per v1 controller here): what the pool (--pool) takes off the
   path of a create. On failure, the child's own reason wins if its setup failed meanwhile. */
static void join_cgroups(pid_t child, int errfd) {
  char path[4096];
  for (int k = 0; k < opt.ncgroups; k++) {
    snprintf(path, sizeof path, "%s/cgroup.procs", opt.cgroups[k]);
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0 || dprintf(fd, "%d\n", child) < 0) {
      int e = errno;
      kill(child, SIGKILL);
      waitpid(child, NULL, 0);
      char msg[1024];
      ssize_t n = read(errfd, msg, sizeof msg - 1);
      if (n > 1) {
        msg[n] = '\0';
        dprintf(report_fd, "error %s\n", msg + 1);
        _exit(125);
      }
      errno = e;
      fail("join cgroup", opt.cgroups[k]);
    }
    close(fd);
  }
}

/* The groups made for an unclaimed pooled shim's child, and their parent once empty (as krd's
   own removal does); a group whose last task is still being released is asked again. */
static void pool_remove_cgroups(void) {
  for (int k = 0; k < opt.ncgroups; k++) {
    for (int tries = 0; rmdir(opt.cgroups[k]) != 0 && errno == EBUSY && tries < 100; tries++) usleep(2000);
    char parent[4096];
    snprintf(parent, sizeof parent, "%s", opt.cgroups[k]);
    char *slash = strrchr(parent, '/');
    if (slash) *slash = '\0', rmdir(parent);
  }
}

/*
 * krd-shim --pool --cgroup DIR...: a supervisor started before its container is known. It forks
 * the child (PID 1 of a new pid namespace), moves it into the cgroups (the slow part), prints
 * "ready <pid>" and waits on stdin for a claim: the normal command line and environment
 * (krd-shim-pool.h has the format), after which it goes on as a shim started with them would.
 */
static pid_t pool_start(int argc, char **argv, int sync[2], int errp[2]) {
  for (int i = 2; i < argc; i += 2) {
    if (strcmp(argv[i], "--cgroup") != 0 || i + 1 >= argc || opt.ncgroups >= MAXLIST) {
      errno = EINVAL;
      fail("usage: krd-shim --pool [--cgroup DIR]...", NULL);
    }
    opt.cgroups[opt.ncgroups++] = argv[i + 1];
  }
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sync) != 0 || pipe2(errp, O_CLOEXEC) != 0) fail("pipe", NULL);
  if (unshare(CLONE_NEWPID) != 0) fail("unshare(CLONE_NEWPID)", NULL);
  pid_t child = fork();
  if (child < 0) fail("fork", NULL);
  if (child == 0) {
    close(sync[0]);
    close(errp[0]);
    child_err = errp[1];
    uint32_t len;
    int fds[3], tty;
    char *spec = pool_recv_spec(sync[1], &len, fds, &tty);
    if (!spec) _exit(0); /* the supervisor went away unclaimed */
    int ac;
    char **envp, **av = pool_split(spec, len, &ac, &envp);
    environ = envp;
    report_fd = child_err; /* the supervisor parsed the same lines first: nothing left to fail */
    parse_args(ac, av);
    if (chdir(opt.dir) != 0) child_fail("chdir", opt.dir);
    int flags = CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWUTS | (strcmp(opt.net, "new") == 0 ? CLONE_NEWNET : 0);
    if (unshare(flags) != 0) child_fail("unshare", NULL);
    child_main(sync[1], fds[0], fds[1], fds[2], tty ? fds[0] : -1);
  }
  join_cgroups(child, errp[0]);
  dprintf(report_fd, "ready %d\n", child);
  return child;
}

int main(int argc, char **argv) {
  /* fds a caller leaked must not keep its pipes open for the container's whole life */
  closefrom(3);
  int sync[2], errp[2];
  pid_t child = -1;
  char *claim = NULL;
  uint32_t claim_len = 0;
  if (argc >= 2 && strcmp(argv[1], "--pool") == 0) {
    /* a pooled supervisor: its child waits in the cgroups until a container claims it */
    child = pool_start(argc, argv, sync, errp);
    claim = pool_read_claim(0, &claim_len);
    if (!claim) {
      /* nobody will claim it (krd gone or done with the pool): nothing to leave behind */
      kill(child, SIGKILL);
      waitpid(child, NULL, 0);
      pool_remove_cgroups();
      return 0;
    }
    char **envp;
    argv = pool_split(claim, claim_len, &argc, &envp);
    environ = envp;
  }
  parse_args(argc, argv);
  if (child > 0) {
    if (opt.join >= 0) {
      errno = EINVAL;
      fail("a pooled shim runs containers, not execs", NULL);
    }
    opt.ncgroups = 0; /* the child is in them already */
  }
  if (chdir(opt.dir) != 0) fail("chdir", opt.dir);
  char path[4096];

  /* The attach socket exists before the process, so a client can see all of its output. */
  int lsock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  snprintf(sa.sun_path, sizeof sa.sun_path, "sock"); /* relative: DIR may be long */
  unlink("sock");
  if (lsock < 0 || bind(lsock, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(lsock, 16) != 0) fail("attach socket", NULL);
  logfd = open("log", O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
  if (logfd < 0) fail("open", "log");
  unlink("exit");

  /* stdio: a pty (one stream) or pipes; the shim keeps the far ends. */
  int in_child = -1, out_child = -1, err_child = -1, tty_slave = -1;
  int in_w = -1, out_r = -1, err_r = -1;
  if (opt.tty) {
    int master;
    struct winsize ws = {.ws_row = 24, .ws_col = 80};
    if (openpty(&master, &tty_slave, NULL, NULL, &ws) != 0) fail("openpty", NULL);
    fcntl(master, F_SETFD, FD_CLOEXEC);
    in_child = out_child = err_child = tty_slave;
    out_r = master;
    in_w = opt.stdin_open ? master : -1;
  } else {
    int p[2];
    if (opt.stdin_open) {
      if (pipe2(p, O_CLOEXEC) != 0) fail("pipe", NULL);
      in_child = p[0];
      in_w = p[1];
    } else if ((in_child = open("/dev/null", O_RDONLY | O_CLOEXEC)) < 0) fail("open", "/dev/null");
    if (pipe2(p, O_CLOEXEC) != 0) fail("pipe", NULL);
    out_r = p[0];
    out_child = p[1];
    if (pipe2(p, O_CLOEXEC) != 0) fail("pipe", NULL);
    err_r = p[0];
    err_child = p[1];
  }
  if (child < 0 && (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sync) != 0 || pipe2(errp, O_CLOEXEC) != 0)) fail("pipe", NULL);
  if (pipe2(sigpipe_fds, O_CLOEXEC | O_NONBLOCK) != 0) fail("pipe", NULL);
  struct sigaction act = {.sa_handler = on_chld, .sa_flags = SA_RESTART | SA_NOCLDSTOP};
  sigaction(SIGCHLD, &act, NULL);
  signal(SIGPIPE, SIG_IGN);

  if (child > 0) {
    /* pooled: the waiting child gets the command line, the environment and its stdio */
    int fds[3] = {in_child, out_child, err_child};
    if (pool_send_spec(sync[0], claim, claim_len, fds, opt.tty) != 0) fail("hand over to the pooled child", NULL);
  } else if (opt.join >= 0) {
    /* exec: the new process is born into the container's pid namespace */
    snprintf(path, sizeof path, "/proc/%ld/ns/pid", opt.join);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || setns(fd, CLONE_NEWPID) != 0) fail("setns", path);
    close(fd);
  } else {
    /* the child is born PID 1 of a new pid ns; the shim itself stays in the host's namespaces */
    if (unshare(CLONE_NEWPID) != 0) fail("unshare(CLONE_NEWPID)", NULL);
  }
  if (child < 0) child = fork();
  if (child < 0) fail("fork", NULL);
  if (child == 0) {
    close(sync[0]);
    close(errp[0]);
    child_err = errp[1];
    int flags = CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWUTS | (strcmp(opt.net, "new") == 0 ? CLONE_NEWNET : 0);
    if (opt.join < 0 && unshare(flags) != 0) child_fail("unshare", NULL);
    child_main(sync[1], in_child, out_child, err_child, tty_slave);
  }
  close(sync[1]);
  close(errp[1]);
  if (in_child >= 0 && in_child != tty_slave) close(in_child);
  if (out_child >= 0 && out_child != tty_slave) close(out_child);
  if (err_child >= 0 && err_child != tty_slave) close(err_child);

  /* cgroups before the child goes on from its setup, so its command is accounted and limited */
  join_cgroups(child, errp[0]);
  if (write(sync[0], "g", 1) != 1) fail("sync", NULL);
  /* setup done ("r" on the sync socket) or failed (a message on the error pipe, then EOF) */
  {
    char c;
    if (read(sync[0], &c, 1) != 1) {
      char msg[1024];
      ssize_t n = read(errp[0], msg, sizeof msg - 1);
      msg[n > 0 ? n : 0] = '\0';
      dprintf(report_fd, "error %s\n", n > 1 ? msg + 1 : "container setup failed");
      waitpid(child, NULL, 0);
      _exit(125);
    }
  }
  snprintf(path, sizeof path, "pid.tmp");
  FILE *pf = fopen(path, "w");
  if (!pf) fail("open", "pid");
  fprintf(pf, "%d\n", child);
  fclose(pf);
  rename("pid.tmp", "pid");
  dprintf(report_fd, "ok %d\n", child);
  /* detach from the caller: it may die, we stay */
  int devnull = open("/dev/null", O_RDWR);
  dup2(devnull, 0);
  dup2(devnull, 1);
  dup2(devnull, 2);
  if (devnull > 2) close(devnull);
  setsid();

  int started = 0, exited = 0, status = 0, out_eof = 0, start_client = -1;
  struct pollfd pfd[6 + MAXCLIENTS];
  while (!exited) {
    int n = 0;
    pfd[n++] = (struct pollfd){sigpipe_fds[0], POLLIN, 0};
    pfd[n++] = (struct pollfd){lsock, POLLIN, 0};
    pfd[n++] = (struct pollfd){out_r, out_r >= 0 && !out_eof ? POLLIN : 0, 0};
    pfd[n++] = (struct pollfd){err_r, err_r >= 0 ? POLLIN : 0, 0};
    pfd[n++] = (struct pollfd){errp[0], errp[0] >= 0 ? POLLIN : 0, 0};
    for (int k = 0; k < nclients; k++) pfd[n++] = (struct pollfd){clients[k], POLLIN, 0};
    if (poll(pfd, (nfds_t)n, -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (pfd[2].revents && drain(out_r, 1) <= 0) {
      if (opt.tty) out_eof = 1; /* EIO once the slave side is gone; the master stays for resize */
      else out_r = (close(out_r), -1);
    }
    if (pfd[3].revents && drain(err_r, 2) <= 0) err_r = (close(err_r), -1);
    if (pfd[4].revents) {
      relay_exec_error(errp[0]);
      close(errp[0]);
      errp[0] = -1;
      if (start_client >= 0) send_frame(start_client, 9, NULL, 0);
      start_client = -1;
    }
    if (pfd[1].revents) {
      int c = accept4(lsock, NULL, NULL, SOCK_CLOEXEC);
      if (c >= 0 && nclients < MAXCLIENTS) {
        struct timeval tv = {5, 0}; /* a stuck client must not stall the container for long */
        setsockopt(c, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
        clients[nclients++] = c;
      } else if (c >= 0) close(c);
    }
    for (int k = 5; k < n; k++) {
      if (!pfd[k].revents) continue;
      int c = pfd[k].fd;
      uint8_t h[5];
      ssize_t r = recv(c, h, 5, MSG_WAITALL);
      uint32_t len = r == 5 ? ((uint32_t)h[1] << 24 | (uint32_t)h[2] << 16 | (uint32_t)h[3] << 8 | h[4]) : 0;
      char body[65536];
      if (r == 5 && len <= sizeof body && (len == 0 || recv(c, body, len, MSG_WAITALL) == (ssize_t)len)) {
        if (h[0] == 0 && in_w >= 0) {
          for (uint32_t done = 0; done < len;) {
            ssize_t w = write(in_w, body + done, len - done);
            if (w <= 0) break;
            done += (uint32_t)w;
          }
        } else if (h[0] == 4 && in_w >= 0) {
          if (opt.tty) {
            if (write(in_w, "\x04", 1) < 0) {} /* EOF on a terminal is ^D */
          } else close(in_w);
          if (!opt.tty) in_w = -1;
        } else if (h[0] == 5 && len == 4) {
          struct winsize ws = {.ws_row = (unsigned short)(((uint8_t)body[0] << 8) | (uint8_t)body[1]), .ws_col = (unsigned short)(((uint8_t)body[2] << 8) | (uint8_t)body[3])};
          if (opt.tty) ioctl(out_r, TIOCSWINSZ, &ws);
        } else if (h[0] == 6 && len == 1) {
          kill(child, (uint8_t)body[0]);
        } else if (h[0] == 8 && !started) {
          started = 1;
          start_client = c; /* answered with a 9 frame once exec has happened (or failed) */
          if (write(sync[0], "s", 1) != 1) {}
        }
        continue;
      }
      close(c);
      if (c == start_client) start_client = -1;
      for (int j = 0; j < nclients; j++)
        if (clients[j] == c) clients[j] = clients[--nclients];
    }
    if (pfd[0].revents) {
      char b[64];
      while (read(sigpipe_fds[0], b, sizeof b) > 0) {}
      pid_t w;
      while ((w = waitpid(-1, &status, WNOHANG)) > 0)
        if (w == child) exited = 1;
    }
  }
  /* What the process wrote just before exiting is still in the pipes: drain without blocking. */
  if (out_r >= 0) fcntl(out_r, F_SETFL, O_NONBLOCK);
  if (err_r >= 0) fcntl(err_r, F_SETFL, O_NONBLOCK);
  while (out_r >= 0 && !out_eof && drain(out_r, 1) > 0) {}
  while (err_r >= 0 && drain(err_r, 2) > 0) {}
  if (errp[0] >= 0) relay_exec_error(errp[0]);
  int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  int sig = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
  struct timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  char text[128];
  int tl = snprintf(text, sizeof text, "%d %d %lld", code, sig, (long long)now.tv_sec * 1000 + now.tv_nsec / 1000000);
  int ef = open("exit.tmp", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (ef >= 0) {
    if (write(ef, text, (size_t)tl) < 0) {}
    /* no fsync: the rename is atomic for krd reading it; after a machine crash there is no
       container left to report on (krd records those as exited), and an fsync here sits
       between the exit and everyone waiting for it (~1 ms, far more on a busy disk) */
    close(ef);
    rename("exit.tmp", "exit");
  }
  unlink("sock");
  for (int k = 0; k < nclients; k++) {
    send_frame(clients[k], 3, text, (uint32_t)tl);
    shutdown(clients[k], SHUT_WR);
    close(clients[k]);
  }
  return 0;
}
