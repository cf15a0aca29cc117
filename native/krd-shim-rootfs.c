/* The container's root filesystem (krd-shim-rootfs.h). Runs in the container child: failures go
 * to child_fail. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "krd-shim-args.h"
#include "krd-shim-child.h"
#include "krd-shim-rootfs.h"

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

void setup_rootfs(void) {
  char root[3900], data[8192];
  snprintf(root, sizeof root, "%s/rootfs", opt.dir);
  /* Nothing we mount may propagate back to the host. */
  must_mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL);
  snprintf(data, sizeof data, "lowerdir=%s,upperdir=%s,workdir=%s", opt.lower, opt.upper, opt.work);
  must_mount("overlay", root, "overlay", 0, data);
  int rootfd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (rootfd < 0) child_fail("open", root);
  char fp[64];
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
}
