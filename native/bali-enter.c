/*
 * bali-enter: the two steps of `bali run` that Node cannot take itself, because they must act
 * on the whole process (all threads) and end in execve so the PID never changes.
 *
 *   bali-enter unshare ROOT -- PROGRAM ARGS...
 *       New private mount namespace for this process; a fresh tmpfs on ROOT (an existing
 *       directory, hidden only inside the namespace; "-" for none); then execv PROGRAM (bali
 *       run's second stage, which verifies and extracts the image into ROOT, or bali build,
 *       whose overlay mounts then vanish with the process whatever happens).
 *
 *   bali-enter enter ROOT [--bind SRC:DST[:ro]]... [--uid N] [--gid N] [--groups G,G]
 *                    [--cwd DIR] [--keep-run] -- COMMAND ARGS...
 *       Mounts /proc, /sys, /dev (the host's, recursively), /dev/shm and /run (unless
 *       --keep-run: a build step's /run belongs to the image) inside ROOT,
 *       binds the volumes (DST already resolved inside ROOT by the caller), pivot_root(2)s into
 *       ROOT, detaches the old root, drops to the user, and execvpe(3)s COMMAND with the
 *       environment it was given (the service's, computed by bali).
 *
 * Errors: one line "bali: <what>: <strerror>" on stderr, exit 125 (setup failed), 126 (command
 * not executable) or 127 (command not found), like docker run.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

extern char **environ;

static void die(int code, const char *what, const char *detail) {
  fprintf(stderr, "bali: %s%s%s: %s\n", what, detail ? " " : "", detail ? detail : "", strerror(errno));
  exit(code);
}

static void join(char *out, size_t size, const char *root, const char *rel) {
  if ((size_t)snprintf(out, size, "%s/%s", root, rel[0] == '/' ? rel + 1 : rel) >= size) {
    errno = ENAMETOOLONG;
    die(125, "path too long:", rel);
  }
}

static void must_mount(const char *src, const char *dst, const char *type, unsigned long flags, const char *data) {
  if (mount(src, dst, type, flags, data) != 0) die(125, "mount", dst);
}

static int do_unshare(int argc, char **argv) {
  if (argc < 4 || strcmp(argv[3], "--") != 0 || argc < 5) {
    fprintf(stderr, "usage: bali-enter unshare ROOT -- PROGRAM ARGS...\n");
    return 125;
  }
  const char *root = argv[2];
  if (unshare(CLONE_NEWNS) != 0) die(125, "unshare(CLONE_NEWNS)", NULL);
  /* Nothing we mount may propagate back to the host. */
  must_mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL);
  if (strcmp(root, "-") != 0) must_mount("tmpfs", root, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755");
  execv(argv[4], argv + 4);
  die(125, "exec", argv[4]);
  return 125;
}

static void bind_volume(const char *root, char *spec) {
  /* SRC:DST[:ro] — DST was created (dir or file) and resolved inside ROOT by bali. */
  char *ro = NULL;
  char *dst = strchr(spec, ':');
  if (!dst) {
    errno = EINVAL;
    die(125, "bad --bind", spec);
  }
  *dst++ = '\0';
  char *opt = strchr(dst, ':');
  if (opt) {
    *opt++ = '\0';
    ro = opt;
  }
  char target[4096];
  join(target, sizeof target, root, dst);
  must_mount(spec, target, NULL, MS_BIND | MS_REC, NULL);
  if (ro && strcmp(ro, "ro") == 0) must_mount(NULL, target, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_REC, NULL);
}

static int do_enter(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: bali-enter enter ROOT [options] -- COMMAND ARGS...\n");
    return 125;
  }
  const char *root = argv[2];
  long uid = -1, gid = -1;
  const char *groups = NULL, *cwd = "/";
  int i = 3, keep_run = 0;
  char path[4096];

  for (int k = 3; k < argc && strcmp(argv[k], "--") != 0; k++)
    if (strcmp(argv[k], "--keep-run") == 0) keep_run = 1;

  /* The standard mounts first, so volumes may be bound over parts of them (e.g. /run/x). */
  join(path, sizeof path, root, "proc");
  must_mount("proc", path, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
  join(path, sizeof path, root, "sys");
  must_mount("sysfs", path, "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_RDONLY, NULL);
  join(path, sizeof path, root, "dev");
  must_mount("/dev", path, NULL, MS_BIND | MS_REC, NULL);
  join(path, sizeof path, root, "dev/shm");
  must_mount("shm", path, "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777");
  if (!keep_run) {
    join(path, sizeof path, root, "run");
    must_mount("tmpfs", path, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755");
  }

  for (; i < argc && strcmp(argv[i], "--") != 0; i++) {
    if (strcmp(argv[i], "--keep-run") != 0 && i + 1 >= argc) {
      errno = EINVAL;
      die(125, "missing value for", argv[i]);
    }
    if (strcmp(argv[i], "--keep-run") == 0) continue;
    if (strcmp(argv[i], "--bind") == 0) bind_volume(root, argv[++i]);
    else if (strcmp(argv[i], "--uid") == 0) uid = strtol(argv[++i], NULL, 10);
    else if (strcmp(argv[i], "--gid") == 0) gid = strtol(argv[++i], NULL, 10);
    else if (strcmp(argv[i], "--groups") == 0) groups = argv[++i];
    else if (strcmp(argv[i], "--cwd") == 0) cwd = argv[++i];
    else {
      errno = EINVAL;
      die(125, "unknown option", argv[i]);
    }
  }
  if (i + 1 >= argc) {
    errno = EINVAL;
    die(125, "no command to run", NULL);
  }
  char **command = argv + i + 1;

  /* pivot_root(".", ".") stacks the old root under the new one; detaching it leaves only ROOT. */
  if (chdir(root) != 0) die(125, "chdir", root);
  if (syscall(SYS_pivot_root, ".", ".") != 0) die(125, "pivot_root", root);
  if (umount2(".", MNT_DETACH) != 0) die(125, "detach old root", NULL);
  if (chdir("/") != 0) die(125, "chdir", "/");

  if (groups || gid >= 0 || uid >= 0) {
    gid_t list[64];
    int n = 0;
    if (groups && *groups) {
      char *copy = strdup(groups);
      for (char *tok = strtok(copy, ","); tok && n < 64; tok = strtok(NULL, ",")) list[n++] = (gid_t)strtol(tok, NULL, 10);
      free(copy);
    }
    if (setgroups((size_t)n, list) != 0) die(125, "setgroups", NULL);
    if (gid >= 0 && setgid((gid_t)gid) != 0) die(125, "setgid", NULL);
    if (uid >= 0 && setuid((uid_t)uid) != 0) die(125, "setuid", NULL);
  }
  if (chdir(cwd) != 0) die(125, "chdir", cwd);

  execvpe(command[0], command, environ);
  die(errno == ENOENT ? 127 : 126, "exec", command[0]);
  return 127;
}

int main(int argc, char **argv) {
  if (argc >= 2 && strcmp(argv[1], "unshare") == 0) return do_unshare(argc, argv);
  if (argc >= 2 && strcmp(argv[1], "enter") == 0) return do_enter(argc, argv);
  fprintf(stderr, "usage: bali-enter unshare|enter ...\n");
  return 125;
}
