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
 *     --sysctl KEY=VALUE (repeatable; written in the container's namespaces)
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
#include <errno.h>
#include <fcntl.h>
#include <pty.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "krd-shim-args.h"
#include "krd-shim-cgroups.h"
#include "krd-shim-child.h"
#include "krd-shim-pool.h"
#include "krd-shim-relay.h"

extern char **environ;

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

/* stdio: a pty (one stream) or pipes; the shim keeps the far ends. */
struct stdio_ends {
  int in_child, out_child, err_child, tty_slave; /* the child's */
  int in_w, out_r, err_r;                        /* the shim's; -1 where there is none */
};

static void open_stdio(struct stdio_ends *io) {
  *io = (struct stdio_ends){-1, -1, -1, -1, -1, -1, -1};
  if (opt.tty) {
    int master;
    struct winsize ws = {.ws_row = 24, .ws_col = 80};
    if (openpty(&master, &io->tty_slave, NULL, NULL, &ws) != 0) fail("openpty", NULL);
    fcntl(master, F_SETFD, FD_CLOEXEC);
    io->in_child = io->out_child = io->err_child = io->tty_slave;
    io->out_r = master;
    io->in_w = opt.stdin_open ? master : -1;
  } else {
    int p[2];
    if (opt.stdin_open) {
      if (pipe2(p, O_CLOEXEC) != 0) fail("pipe", NULL);
      io->in_child = p[0];
      io->in_w = p[1];
    } else if ((io->in_child = open("/dev/null", O_RDONLY | O_CLOEXEC)) < 0) fail("open", "/dev/null");
    if (pipe2(p, O_CLOEXEC) != 0) fail("pipe", NULL);
    io->out_r = p[0];
    io->out_child = p[1];
    if (pipe2(p, O_CLOEXEC) != 0) fail("pipe", NULL);
    io->err_r = p[0];
    io->err_child = p[1];
  }
}

/* DIR/exit, "<code> <signal> <finished unix ms>", written atomically; returns the text's length. */
static int write_exit(int status, char *text, size_t size) {
  int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  int sig = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
  struct timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  int tl = snprintf(text, size, "%d %d %lld", code, sig, (long long)now.tv_sec * 1000 + now.tv_nsec / 1000000);
  int ef = open("exit.tmp", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (ef >= 0) {
    if (write(ef, text, (size_t)tl) < 0) {}
    /* no fsync: the rename is atomic for krd reading it; after a machine crash there is no
       container left to report on (krd records those as exited), and an fsync here sits
       between the exit and everyone waiting for it (~1 ms, far more on a busy disk) */
    close(ef);
    rename("exit.tmp", "exit");
  }
  return tl;
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
  int lsock = open_attach_and_log();
  unlink("exit");

  struct stdio_ends io;
  open_stdio(&io);
  if (child < 0 && (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sync) != 0 || pipe2(errp, O_CLOEXEC) != 0)) fail("pipe", NULL);
  watch_children();
  signal(SIGPIPE, SIG_IGN);

  if (child > 0) {
    /* pooled: the waiting child gets the command line, the environment and its stdio */
    int fds[3] = {io.in_child, io.out_child, io.err_child};
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
    child_main(sync[1], io.in_child, io.out_child, io.err_child, io.tty_slave);
  }
  close(sync[1]);
  close(errp[1]);
  if (io.in_child >= 0 && io.in_child != io.tty_slave) close(io.in_child);
  if (io.out_child >= 0 && io.out_child != io.tty_slave) close(io.out_child);
  if (io.err_child >= 0 && io.err_child != io.tty_slave) close(io.err_child);

  /* cgroups before the child goes on from its setup, so its command is accounted and limited */
  join_cgroups(child, errp[0]);
  /* setup done ("r" on the sync socket) or failed (a message on the error pipe, then EOF); a
     pooled child sets up as soon as it has its spec, so it may have failed before the "g" */
  {
    char c;
    if (write(sync[0], "g", 1) != 1 || read(sync[0], &c, 1) != 1) {
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

  struct supervised sup = {.child = child, .sync = sync[0], .errfd = errp[0], .lsock = lsock, .in_w = io.in_w, .out_r = io.out_r, .err_r = io.err_r};
  int status = supervise(&sup);
  char text[128];
  int tl = write_exit(status, text, sizeof text);
  unlink("sock");
  announce_exit(text, (uint32_t)tl);
  return 0;
}
