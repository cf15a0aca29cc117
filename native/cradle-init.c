/*
 * cradle-init: PID 1 of a cradle microVM (src/vm/README.md has the whole boot path). Static C, not
 * Node: node's own start-up inside the VM costs more than the kernel's whole boot (measured, see
 * src/vm/README.md), and init must be running before anything else can be.
 *
 * It loads the virtio/erofs/overlay modules, finds its disks by virtio-blk serial, reads the init plan
 * from the config disk (KEY\0VALUE\0 pairs written by src/vm/config-disk.ts), mounts the image disks,
 * configures the network, starts every container under /bin/krd-shim (the ns runtime's supervisor,
 * so vdocker can reattach with NsRuntime), forwards their output and exit codes to the host over the
 * virtio-serial port "kraud.io", applies restart policies and powers the VM off when the pod is done.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <net/route.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAXC 16
#define MAXV 256
#define RUN "/run/cradle"

enum { F_STDOUT = 1, F_STDERR = 2, F_EXIT = 3, F_TIMING = 4, F_ERROR = 5, F_DONE = 6, F_STOP = 7 };

static const char *modules[] = {"virtio_ring", "virtio", "virtio_mmio", "virtio_blk", "failover", "net_failover",
                                "virtio_net", "virtio_console", "libcrc32c", "erofs", "overlay"};

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

static struct ctr ctrs[MAXC];
static int nctrs, nimages, stopping, io = -1, console = -1;
static const char *hostname = "cradle", *net = "none", *mac, *addr, *gw, *dns[8], *vdocker[MAXV];
static const char *ctlmac, *ctladdr, *hosts_text, *resolv_text;
static const char *shares[MAXC];
static int ndns, nvdocker, nshares;
static pid_t vdocker_pid;
static long long stop_at; /* ms of boottime when stragglers get SIGKILL */

static long long now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_BOOTTIME, &ts);
  return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void send_frame(int type, int idx, const void *data, size_t len) {
  if (io < 0) return;
  unsigned char h[6] = {(unsigned char)type, (unsigned char)idx, len >> 24, len >> 16, len >> 8, len};
  struct iovec iov[2] = {{h, 6}, {(void *)data, len}};
  size_t left = 6 + len;
  while (left > 0) {
    ssize_t n = writev(io, iov, 2);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    left -= (size_t)n;
    for (int k = 0; k < 2 && n > 0; k++) {
      size_t take = (size_t)n < iov[k].iov_len ? (size_t)n : iov[k].iov_len;
      iov[k].iov_base = (char *)iov[k].iov_base + take;
      iov[k].iov_len -= take;
      n -= (ssize_t)take;
    }
  }
}

static void say(const char *fmt, ...) {
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  if (n >= (int)sizeof msg) n = sizeof msg - 1;
  if (console >= 0) dprintf(console, "cradle-init: %s\n", msg);
  send_frame(F_ERROR, 0, msg, (size_t)n);
}

static void poweroff(void) {
  sync();
  reboot(RB_POWER_OFF);
  for (;;) pause();
}

static void die(const char *what) {
  say("%s: %s", what, strerror(errno));
  poweroff();
}

/* Early phases are stamped before the host channel exists and sent once it does. */
static char pending[512];
static size_t npending;
static void timing(const char *phase) {
  char b[96];
  int n = snprintf(b, sizeof b, "%s %lld %lld", phase, now_ns(), now_ns());
  if (io >= 0) send_frame(F_TIMING, 0, b, (size_t)n);
  else if (npending + (size_t)n + 1 < sizeof pending) {
    memcpy(pending + npending, b, (size_t)n + 1);
    npending += (size_t)n + 1;
  }
}

static void flush_timings(void) {
  long long t = now_ns();
  for (size_t off = 0; off < npending;) {
    char b[128], phase[32];
    long long at;
    if (sscanf(pending + off, "%31s %lld", phase, &at) == 2) {
      int n = snprintf(b, sizeof b, "%s %lld %lld", phase, at, t);
      send_frame(F_TIMING, 0, b, (size_t)n);
    }
    off += strlen(pending + off) + 1;
  }
}

static void load_module(const char *name) {
  char p[128];
  snprintf(p, sizeof p, "/lib/modules/%s.ko", name);
  int fd = open(p, O_RDONLY | O_CLOEXEC);
  if (fd < 0) die(p);
  if (syscall(SYS_finit_module, fd, "", 0) != 0 && errno != EEXIST) die(p);
  close(fd);
}

static void load_modules(void) {
  for (size_t i = 0; i < sizeof modules / sizeof *modules; i++) load_module(modules[i]);
}

/* Host directories (virtiofs, one device per tag), mounted where krd-shim's --bind finds them. */
static void mount_shares(void) {
  if (nshares == 0) return;
  load_module("fuse");
  load_module("virtiofs");
  mkdir(RUN "/shares", 0755);
  for (int i = 0; i < nshares; i++) {
    char tag[64], dir[128];
    snprintf(tag, sizeof tag, "%s", shares[i]);
    char *ro = strstr(tag, ":ro");
    if (ro) *ro = '\0';
    snprintf(dir, sizeof dir, RUN "/shares/%s", tag);
    mkdir(dir, 0755);
    if (mount(tag, dir, "virtiofs", MS_NOSUID | MS_NODEV | (ro ? MS_RDONLY : 0), NULL) != 0) die(dir);
  }
}

static int read_file(const char *path, char *buf, size_t size) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  ssize_t n = read(fd, buf, size - 1);
  close(fd);
  if (n < 0) return -1;
  while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' ')) n--;
  buf[n] = '\0';
  return (int)n;
}

/* /dev/vdX whose virtio-blk serial is `serial`. */
static int find_disk(const char *serial, char *dev, size_t size) {
  DIR *d = opendir("/sys/block");
  if (!d) return -1;
  struct dirent *e;
  int found = -1;
  while ((e = readdir(d))) {
    if (strncmp(e->d_name, "vd", 2) != 0) continue;
    char p[300], s[64];
    snprintf(p, sizeof p, "/sys/block/%s/serial", e->d_name);
    if (read_file(p, s, sizeof s) >= 0 && strcmp(s, serial) == 0) {
      snprintf(dev, size, "/dev/%s", e->d_name);
      found = 0;
      break;
    }
  }
  closedir(d);
  return found;
}

/* The virtio-serial port named `name` (its name arrives from the host shortly after the port). */
static int open_port(const char *name) {
  for (int tries = 0; tries < 2000; tries++) {
    DIR *d = opendir("/sys/class/virtio-ports");
    struct dirent *e;
    while (d && (e = readdir(d))) {
      if (e->d_name[0] == '.') continue;
      char p[300], s[64];
      snprintf(p, sizeof p, "/sys/class/virtio-ports/%s/name", e->d_name);
      if (read_file(p, s, sizeof s) >= 0 && strcmp(s, name) == 0) {
        snprintf(p, sizeof p, "/dev/%s", e->d_name);
        closedir(d);
        return open(p, O_RDWR | O_CLOEXEC);
      }
    }
    if (d) closedir(d);
    usleep(1000);
  }
  return -1;
}

static char *plan;
static size_t plan_len;

static void read_config(void) {
  char dev[300];
  for (int tries = 0; find_disk("kraud-config", dev, sizeof dev) != 0; tries++) {
    if (tries > 2000) die("no config disk (serial kraud-config)");
    usleep(1000);
  }
  int fd = open(dev, O_RDONLY | O_CLOEXEC);
  if (fd < 0) die(dev);
  static char buf[4 << 20];
  size_t got = 0;
  for (ssize_t n; got < sizeof buf && (n = read(fd, buf + got, sizeof buf - got)) > 0;) got += (size_t)n;
  close(fd);
  size_t jlen, plen;
  int hdr;
  if (got < 16 || memcmp(buf, "kraud-launch 1\n", 15) != 0 || sscanf(buf + 15, "%zu %zu\n%n", &jlen, &plen, &hdr) != 2) {
    errno = EINVAL;
    die("config disk header");
  }
  char *json = buf + 15 + hdr;
  if (15 + (size_t)hdr + jlen + plen > got) {
    errno = EINVAL;
    die("config disk length");
  }
  mkdir(RUN, 0700);
  int out = open(RUN "/launch.json", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (out < 0 || write(out, json, jlen) != (ssize_t)jlen) die("launch.json");
  close(out);
  plan = json + jlen;
  plan_len = plen;
}

static void parse_plan(void) {
  struct ctr *c = NULL;
  for (size_t off = 0; off < plan_len;) {
    const char *k = plan + off;
    off += strlen(k) + 1;
    if (off >= plan_len) break;
    const char *v = plan + off;
    off += strlen(v) + 1;
    if (!strcmp(k, "hostname")) hostname = v;
    else if (!strcmp(k, "net")) net = v;
    else if (!strcmp(k, "addr")) addr = v;
    else if (!strcmp(k, "mac")) mac = v;
    else if (!strcmp(k, "ctlmac")) ctlmac = v;
    else if (!strcmp(k, "ctladdr")) ctladdr = v;
    else if (!strcmp(k, "hosts")) hosts_text = v;
    else if (!strcmp(k, "resolv")) resolv_text = v;
    else if (!strcmp(k, "gw")) gw = v;
    else if (!strcmp(k, "dns") && ndns < 8) dns[ndns++] = v;
    else if (!strcmp(k, "images")) nimages = atoi(v);
    else if (!strcmp(k, "vdocker") && nvdocker < MAXV - 1) vdocker[nvdocker++] = v;
    else if (!strcmp(k, "share") && nshares < MAXC) shares[nshares++] = v;
    else if (!strcmp(k, "ctr") && nctrs < MAXC) {
      c = &ctrs[nctrs++];
      c->name = v;
      c->cwd = "/";
      c->uid = c->gid = "0";
      c->groups = "0";
      c->caps = "0";
      c->restart = "no";
      c->sock = -1;
    } else if (!c) continue;
    else if (!strcmp(k, "image")) c->image = atoi(v);
    else if (!strcmp(k, "arg") && c->nargs < MAXV - 1) c->args[c->nargs++] = v;
    else if (!strcmp(k, "env") && c->nenv < MAXV - 1) c->env[c->nenv++] = v;
    else if (!strcmp(k, "cwd")) c->cwd = v;
    else if (!strcmp(k, "uid")) c->uid = v;
    else if (!strcmp(k, "gid")) c->gid = v;
    else if (!strcmp(k, "groups")) c->groups = v;
    else if (!strcmp(k, "caps")) c->caps = v;
    else if (!strcmp(k, "chost")) c->host = v;
    else if (!strcmp(k, "tty")) c->tty = 1;
    else if (!strcmp(k, "stdin")) c->in = 1;
    else if (!strcmp(k, "readonly")) c->ro = 1;
    else if (!strcmp(k, "restart")) c->restart = v;
    else if (!strcmp(k, "retries")) c->retries = atoi(v);
    else if (!strcmp(k, "tmpfs") && c->ntmpfs < MAXV) c->tmpfs[c->ntmpfs++] = v;
    else if (!strcmp(k, "bind") && c->nbinds < MAXV) c->binds[c->nbinds++] = v;
  }
}

static void mount_images(void) {
  mkdir(RUN "/img", 0755);
  for (int i = 0; i < nimages; i++) {
    char serial[32], dev[64], dir[64];
    snprintf(serial, sizeof serial, "kraud-img%d", i);
    if (find_disk(serial, dev, sizeof dev) != 0) {
      errno = ENODEV;
      die(serial);
    }
    snprintf(dir, sizeof dir, RUN "/img/%d", i);
    mkdir(dir, 0755);
    if (mount(dev, dir, "erofs", MS_RDONLY, NULL) != 0) die(dir);
  }
  char dev[300];
  if (find_disk("kraud-tools", dev, sizeof dev) == 0) {
    mkdir(RUN "/tools", 0755);
    if (mount(dev, RUN "/tools", "erofs", MS_RDONLY, NULL) != 0) die("tools disk");
  }
}

static void if_up(int s, const char *name) {
  struct ifreq ifr = {0};
  snprintf(ifr.ifr_name, IFNAMSIZ, "%s", name);
  if (ioctl(s, SIOCGIFFLAGS, &ifr) != 0) die(name);
  ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
  if (ioctl(s, SIOCSIFFLAGS, &ifr) != 0) die(name);
}

/* The NIC with this MAC gets this name (NICs are still down at boot, so a rename works). The order
 * in which virtio-mmio NICs appear is the kernel's business; the host names them by MAC. */
static void name_by_mac(int s, const char *want, const char *name) {
  struct if_nameindex *all = if_nameindex();
  if (!all) die("if_nameindex");
  for (struct if_nameindex *i = all; i->if_index; i++) {
    struct ifreq ifr = {0};
    snprintf(ifr.ifr_name, IFNAMSIZ, "%s", i->if_name);
    if (ioctl(s, SIOCGIFHWADDR, &ifr) != 0) continue;
    const unsigned char *h = (const unsigned char *)ifr.ifr_hwaddr.sa_data;
    char got[18];
    snprintf(got, sizeof got, "%02x:%02x:%02x:%02x:%02x:%02x", h[0], h[1], h[2], h[3], h[4], h[5]);
    if (strcmp(got, want)) continue;
    if (strcmp(i->if_name, name)) {
      snprintf(ifr.ifr_newname, IFNAMSIZ, "%s", name);
      if (ioctl(s, SIOCSIFNAME, &ifr) != 0) die(name);
    }
    if_freenameindex(all);
    return;
  }
  errno = ENODEV;
  die(want);
}

/* address/prefix on ifname, which is brought up; ip gets the bare address. */
static void configure(int s, const char *ifname, const char *cidr, char *ip, size_t iplen) {
  int prefix = 24;
  snprintf(ip, iplen, "%s", cidr);
  char *slash = strchr(ip, '/');
  if (slash) *slash = '\0', prefix = atoi(slash + 1);
  struct ifreq ifr = {0};
  snprintf(ifr.ifr_name, IFNAMSIZ, "%s", ifname);
  struct sockaddr_in *sin = (struct sockaddr_in *)&ifr.ifr_addr;
  sin->sin_family = AF_INET;
  inet_pton(AF_INET, ip, &sin->sin_addr);
  if (ioctl(s, SIOCSIFADDR, &ifr) != 0) die(ifname);
  sin->sin_addr.s_addr = prefix ? htonl(~0u << (32 - prefix)) : 0;
  if (ioctl(s, SIOCSIFNETMASK, &ifr) != 0) die(ifname);
  if_up(s, ifname);
}

static void write_file(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  if (!f) return;
  fputs(text, f);
  fclose(f);
}

static void setup_network(void) {
  int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0) die("socket");
  if_up(s, "lo");
  char ip[32] = "", ctlip[32];
  /* krd's pods: kraud0 carries only the host's calls to vdocker, eth0 is the pod's network */
  if (ctlmac && ctladdr) {
    name_by_mac(s, ctlmac, "kraud0");
    configure(s, "kraud0", ctladdr, ctlip, sizeof ctlip);
  }
  if (!strcmp(net, "static") && addr) {
    if (mac) name_by_mac(s, mac, "eth0");
    configure(s, "eth0", addr, ip, sizeof ip);
    if (gw) {
      struct rtentry rt = {0};
      struct sockaddr_in *g = (struct sockaddr_in *)&rt.rt_gateway, *d = (struct sockaddr_in *)&rt.rt_dst, *m = (struct sockaddr_in *)&rt.rt_genmask;
      g->sin_family = d->sin_family = m->sin_family = AF_INET;
      inet_pton(AF_INET, gw, &g->sin_addr);
      rt.rt_flags = RTF_UP | RTF_GATEWAY;
      if (ioctl(s, SIOCADDRT, &rt) != 0) die("default route");
    }
  }
  close(s);
  sethostname(hostname, strlen(hostname));
  /* the host's files when it sent them (krd: its embedded DNS, the container's own hosts entries) */
  if (hosts_text) write_file(RUN "/hosts", hosts_text);
  else {
    FILE *f = fopen(RUN "/hosts", "w");
    if (f) {
      fprintf(f, "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n");
      if (ip[0]) fprintf(f, "%s\t%s\n", ip, hostname);
      fclose(f);
    }
  }
  if (resolv_text) write_file(RUN "/resolv.conf", resolv_text);
  else {
    FILE *f = fopen(RUN "/resolv.conf", "w");
    if (f) {
      for (int i = 0; i < ndns; i++) fprintf(f, "nameserver %s\n", dns[i]);
      fclose(f);
    }
  }
  FILE *f = fopen(RUN "/hostname", "w");
  if (f) {
    fprintf(f, "%s\n", hostname);
    fclose(f);
  }
}

static int shim_frame(int fd, int type, const void *data, uint32_t len) {
  unsigned char h[5] = {(unsigned char)type, len >> 24, len >> 16, len >> 8, len};
  if (write(fd, h, 5) != 5) return -1;
  return len && write(fd, data, len) != (ssize_t)len ? -1 : 0;
}

/* Starts (or restarts) container i under a krd-shim and sends it the start frame. */
static int start_ctr(int i) {
  struct ctr *c = &ctrs[i];
  char dir[96], p[320], lower[64];
  snprintf(dir, sizeof dir, RUN "/containers/%s", c->name);
  mkdir(RUN "/containers", 0700);
  mkdir(dir, 0700);
  const char *subs[] = {"upper", "work", "rootfs"};
  for (int k = 0; k < 3; k++) {
    snprintf(p, sizeof p, "%s/%s", dir, subs[k]);
    mkdir(p, 0755);
  }
  snprintf(lower, sizeof lower, RUN "/img/%d", c->image);
  /* the ns runtime's state.json, so vdocker's NsRuntime can reattach */
  snprintf(p, sizeof p, "%s/state.json", dir);
  FILE *f = fopen(p, "w");
  if (f) {
    fprintf(f, "{\"id\":\"%s\",\"lower\":\"%s\",\"tty\":%s,\"openStdin\":%s,\"cgroups\":[],\"caps\":\"%s\"}", c->name, lower,
            c->tty ? "true" : "false", c->in ? "true" : "false", c->caps);
    fclose(f);
  }
  const char *argv[4 * MAXV + 64];
  int n = 0;
  char up[300], wk[300];
  snprintf(up, sizeof up, "%s/upper", dir);
  snprintf(wk, sizeof wk, "%s/work", dir);
  argv[n++] = "/bin/krd-shim";
  argv[n++] = dir;
  const char *fixed[] = {"--lower", lower, "--upper", up, "--work", wk, "--net", "host", "--uid", c->uid, "--gid", c->gid,
                         "--groups", c->groups, "--caps", c->caps, "--cwd", c->cwd, "--hostname", c->host ? c->host : hostname,
                         "--bind", RUN "/resolv.conf:/etc/resolv.conf", "--bind", RUN "/hosts:/etc/hosts", "--bind",
                         RUN "/hostname:/etc/hostname"};
  for (size_t k = 0; k < sizeof fixed / sizeof *fixed; k++) argv[n++] = fixed[k];
  if (c->tty) argv[n++] = "--tty";
  if (c->in) argv[n++] = "--stdin";
  if (c->ro) argv[n++] = "--readonly";
  for (int k = 0; k < c->ntmpfs; k++) argv[n++] = "--tmpfs", argv[n++] = c->tmpfs[k];
  for (int k = 0; k < c->nbinds; k++) argv[n++] = "--bind", argv[n++] = c->binds[k];
  argv[n++] = "--";
  for (int k = 0; k < c->nargs; k++) argv[n++] = c->args[k];
  argv[n] = NULL;
  c->env[c->nenv] = NULL;

  int out[2];
  if (pipe2(out, O_CLOEXEC) != 0) return -1;
  pid_t pid = fork();
  if (pid == 0) {
    dup2(out[1], 1);
    int nul = open("/dev/null", O_RDWR);
    dup2(nul, 0);
    dup2(console >= 0 ? console : nul, 2);
    setsid();
    execve(argv[0], (char **)argv, (char **)c->env);
    dprintf(1, "error exec krd-shim: %s\n", strerror(errno));
    _exit(127);
  }
  close(out[1]);
  char line[1024];
  ssize_t got = 0, r;
  while (got < (ssize_t)sizeof line - 1 && (r = read(out[0], line + got, sizeof line - 1 - got)) > 0) {
    got += r;
    if (memchr(line, '\n', (size_t)got)) break;
  }
  close(out[0]);
  line[got > 0 ? got : 0] = '\0';
  char *nl = strchr(line, '\n');
  if (nl) *nl = '\0';
  if (strncmp(line, "ok ", 3) != 0) {
    say("container %s: %s", c->name, line[0] ? line : "krd-shim failed");
    return -1;
  }
  c->shim = pid;
  c->pid = atoi(line + 3);
  int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  snprintf(sa.sun_path, sizeof sa.sun_path, "%s/sock", dir);
  if (s < 0 || connect(s, (struct sockaddr *)&sa, sizeof sa) != 0 || shim_frame(s, 8, NULL, 0) != 0) {
    say("container %s: attach: %s", c->name, strerror(errno));
    if (s >= 0) close(s);
    kill(c->pid, SIGKILL);
    return -1;
  }
  c->sock = s;
  c->have = 0;
  return 0;
}

static int wants_restart(struct ctr *c) {
  if (stopping || !strcmp(c->restart, "no")) return 0;
  if (!strcmp(c->restart, "on-failure")) return c->code != 0 && (c->retries == 0 || c->restarts < c->retries);
  return 1; /* always, unless-stopped */
}

static int first_output = 1;

/* One frame from a shim: output and exit go on to the host. 0 = keep reading, -1 = socket done. */
static int on_shim_frame(int i, int type, unsigned char *data, uint32_t len) {
  struct ctr *c = &ctrs[i];
  if (type == 1 || type == 2) {
    if (first_output) timing("output"), first_output = 0;
    send_frame(type == 1 ? F_STDOUT : F_STDERR, i, data, len);
  } else if (type == 9) {
    if (i == 0 && c->restarts == 0) timing("exec");
  } else if (type == 3) {
    char text[128];
    snprintf(text, sizeof text, "%.*s", (int)(len < 127 ? len : 127), (char *)data);
    c->code = atoi(text);
    send_frame(F_EXIT, i, data, len);
    return -1;
  }
  return 0;
}

static void on_exit_seen(int i) {
  struct ctr *c = &ctrs[i];
  close(c->sock);
  c->sock = -1;
  if (wants_restart(c)) {
    c->restarts++;
    if (start_ctr(i) == 0) return;
    c->code = 125;
  }
  c->done = 1;
}

static void read_shim(int i) {
  struct ctr *c = &ctrs[i];
  ssize_t n = read(c->sock, c->buf + c->have, sizeof c->buf - c->have);
  if (n <= 0) {
    if (n < 0 && errno == EINTR) return;
    c->code = c->code ? c->code : 137;
    on_exit_seen(i);
    return;
  }
  c->have += (size_t)n;
  size_t off = 0;
  while (c->have - off >= 5) {
    uint32_t len = (uint32_t)c->buf[off + 1] << 24 | (uint32_t)c->buf[off + 2] << 16 | (uint32_t)c->buf[off + 3] << 8 | c->buf[off + 4];
    if (len > sizeof c->buf - 5) len = sizeof c->buf - 5;
    if (c->have - off < 5 + len) break;
    if (on_shim_frame(i, c->buf[off], c->buf + off + 5, len) < 0) {
      on_exit_seen(i);
      return;
    }
    off += 5 + len;
  }
  memmove(c->buf, c->buf + off, c->have - off);
  c->have -= off;
}

static void signal_all(int sig) {
  for (int i = 0; i < nctrs; i++)
    if (!ctrs[i].done && ctrs[i].pid > 0) kill(ctrs[i].pid, sig);
}

static void begin_stop(int sig) {
  if (!stopping) stop_at = now_ns() / 1000000 + 2000;
  stopping = 1;
  signal_all(sig);
}

/* Host → guest: only the stop frame for now. */
static unsigned char hbuf[64];
static size_t hhave;
static void read_host(void) {
  ssize_t n = read(io, hbuf + hhave, sizeof hbuf - hhave);
  if (n <= 0) return;
  hhave += (size_t)n;
  while (hhave >= 6) {
    uint32_t len = (uint32_t)hbuf[2] << 24 | (uint32_t)hbuf[3] << 16 | (uint32_t)hbuf[4] << 8 | hbuf[5];
    if (len > sizeof hbuf - 6) len = 0, hhave = 6;
    if (hhave < 6 + len) break;
    if (hbuf[0] == F_STOP) begin_stop(len >= 1 && hbuf[6] > 0 && hbuf[6] < 65 ? hbuf[6] : SIGTERM);
    memmove(hbuf, hbuf + 6 + len, hhave - 6 - len);
    hhave -= 6 + len;
  }
}

/* pivot_root refuses the initramfs's own root mount (it has no parent); containers pivot_root, so
 * init first moves onto a bind mount of it, as switch_root would onto a real root. */
static void leave_rootfs(void) {
  mkdir("/newroot", 0755);
  if (mount("/", "/newroot", NULL, MS_BIND, NULL) != 0 || chdir("/newroot") != 0 || mount(".", "/", NULL, MS_MOVE, NULL) != 0 ||
      chroot(".") != 0 || chdir("/") != 0)
    die("moving off the initramfs root");
}

/* `/init settime MS`, run by vdocker (not as PID 1): the guest has no clock of its own worth the name
 * (no RTC on microvm, no kvmclock under TCG), so the host tells vdocker its wall clock and this sets it. */
static int settime(const char *ms) {
  char *end;
  long long v = strtoll(ms, &end, 10);
  if (*ms == '\0' || *end != '\0' || v <= 0) return 2;
  struct timespec ts = {.tv_sec = v / 1000, .tv_nsec = (v % 1000) * 1000000};
  return clock_settime(CLOCK_REALTIME, &ts) == 0 ? 0 : 1;
}

int main(int argc, char **argv) {
  if (getpid() != 1) return argc == 3 && !strcmp(argv[1], "settime") ? settime(argv[2]) : 2;
  timing("init");
  leave_rootfs();
  mount("devtmpfs", "/dev", "devtmpfs", MS_NOSUID, NULL);
  mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
  mount("sysfs", "/sys", "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
  mount("tmpfs", "/run", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755");
  /* ptys for containers with a tty (krd-shim opens /dev/ptmx, which needs a devpts at /dev/pts), and
   * cgroup v2 for their limits, stats, top and pause (the ns runtime's v2 layout) */
  mkdir("/dev/pts", 0755);
  mount("devpts", "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC, "ptmxmode=0666,mode=0620");
  mount("cgroup2", "/sys/fs/cgroup", "cgroup2", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
  mkdir("/tmp", 01777);
  /* the kernel found no console for fds 0-2 (hvc0 exists only once its module is in): fill them, so
   * later opens never land on 0-2 and children never inherit a random file as their stdio */
  int fd = open("/dev/null", O_RDWR);
  while (fd >= 0 && fd < 2) fd = open("/dev/null", O_RDWR);
  if (fd > 2) close(fd);
  load_modules();
  timing("modules");
  console = open("/dev/hvc0", O_WRONLY | O_CLOEXEC | O_NOCTTY);
  io = open_port("kraud.io");
  if (io < 0) die("virtio-serial port kraud.io");
  flush_timings();
  signal(SIGPIPE, SIG_IGN);
  read_config();
  parse_plan();
  mount_images();
  mount_shares();
  setup_network();
  timing("disks");
  int started = 0;
  for (int i = 0; i < nctrs; i++) {
    if (start_ctr(i) == 0) started++;
    else ctrs[i].done = 1, ctrs[i].code = 125;
  }
  if (nvdocker > 0) {
    vdocker_pid = fork();
    if (vdocker_pid == 0) {
      /* vdocker's own messages go to the virtio console (DIR/console.log on the host) */
      int nul = open("/dev/null", O_RDWR);
      dup2(nul, 0);
      dup2(console >= 0 ? console : nul, 1);
      dup2(console >= 0 ? console : nul, 2);
      setsid();
      char *env[] = {"KRAUD_LAUNCH=" RUN "/launch.json", "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root", NULL};
      vdocker[nvdocker] = NULL;
      execve(vdocker[0], (char **)vdocker, env);
      _exit(127);
    }
  }
  /* Without vdocker the pod lives as long as its first container; with it, vdocker decides. */
  for (;;) {
    struct pollfd fds[MAXC + 1];
    int map[MAXC + 1], nf = 0;
    for (int i = 0; i < nctrs; i++)
      if (ctrs[i].sock >= 0) fds[nf] = (struct pollfd){ctrs[i].sock, POLLIN, 0}, map[nf++] = i;
    fds[nf] = (struct pollfd){io, POLLIN, 0}, map[nf++] = -1;
    int r = poll(fds, (nfds_t)nf, 100);
    for (int k = 0; r > 0 && k < nf; k++) {
      if (!fds[k].revents) continue;
      if (map[k] < 0) read_host();
      else read_shim(map[k]);
    }
    while (waitpid(-1, NULL, WNOHANG) > 0) {
    }
    if (nvdocker > 0) continue;
    if (nctrs == 0 || ctrs[0].done) {
      int alive = 0;
      for (int i = 0; i < nctrs; i++) alive += !ctrs[i].done;
      if (!alive) break;
      if (!stopping) begin_stop(SIGTERM);
      else if (now_ns() / 1000000 >= stop_at) signal_all(SIGKILL);
    }
  }
  char code[16];
  int n = snprintf(code, sizeof code, "%d", nctrs ? ctrs[0].code : 0);
  send_frame(F_DONE, 0, code, (size_t)n);
  (void)started;
  poweroff();
}
