/*
 * kata-ts-mountns: QEMU in a mount namespace of its own.
 *
 *   kata-ts-mountns launch VM_DIR [--proxy-9p HELPER SHARED_DIR] [--virtiofsd N DAEMON ARG1..ARGN] -- COMMAND [ARG...]
 *     A new mount namespace (private: nothing propagates either way) in which
 *     VM_DIR's parent (every sandbox's VM dir) is an empty tmpfs, with VM_DIR
 *     alone bound back in, and VM_DIR/shared a read-only view of VM_DIR/mounts
 *     (share_view); then COMMAND runs there (QEMU, or nsenter/unshare that
 *     runs QEMU). With --proxy-9p, QEMU's virtfs-proxy-helper serves
 *     SHARED_DIR in that namespace, as root, to a QEMU that runs as nobody:
 *     they talk over a socket pair whose QEMU end is fd 3 (fsdev proxy
 *     sock_fd=3), so the helper ends when QEMU does, however that happens.
 *     With --virtiofsd, DAEMON and its N arguments run there once the view
 *     exists (start_virtiofsd), and COMMAND starts once it listens.
 *   kata-ts-mountns bind PID START_TIME SOURCE TARGET ro|rw
 *     Clones SOURCE (recursively, as an rbind; read-only down to every
 *     submount with ro) in the caller's namespace, and attaches the clone at
 *     TARGET in the mount namespace of process PID, which must still be the
 *     process that started at START_TIME (/proc/PID/stat field 22).
 *   kata-ts-mountns bind-here SOURCE TARGET ro|rw
 *     The same clone, attached at TARGET in the caller's own namespace (QEMU
 *     sharing the host's).
 *   kata-ts-mountns unmount PID START_TIME TARGET
 *     Detaches TARGET (and what is under it) in PID's mount namespace.
 *
 * The share's mounts exist only in QEMU's namespace: the host has none to
 * leak, and they vanish with QEMU however it ends. A C program, because a
 * multi-threaded process (node) cannot join another mount namespace.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static void die(const char *what, const char *path) {
  fprintf(stderr, "kata-ts-mountns: %s %s: %s\n", what, path ? path : "", strerror(errno));
  exit(1);
}

static void usage(void) {
  fprintf(stderr, "usage: kata-ts-mountns launch VM_DIR [--proxy-9p HELPER SHARED_DIR] [--virtiofsd N DAEMON ARG...] -- COMMAND [ARG...] | bind PID START_TIME SOURCE TARGET ro|rw | bind-here SOURCE TARGET ro|rw | unmount PID START_TIME TARGET\n");
  exit(2);
}

/* The helper on one end of a socket pair; the other end becomes fd 3 for QEMU. */
static void start_proxy_helper(const char *helper, const char *shared_dir) {
  int pair[2];
  if (socketpair(AF_UNIX, SOCK_STREAM, 0, pair) != 0) die("socketpair", "for 9p");
  pid_t child = fork();
  if (child < 0) die("fork", helper);
  if (child == 0) {
    close(pair[0]);
    int null = open("/dev/null", O_RDWR);
    if (null >= 0) {
      dup2(null, 0);
      dup2(null, 1);
      dup2(null, 2);
    }
    char fd[16];
    snprintf(fd, sizeof fd, "%d", pair[1]);
    execl(helper, helper, "-p", shared_dir, "-f", fd, "-n", (char *)NULL);
    _exit(127);
  }
  close(pair[1]);
  if (pair[0] != 3) {
    if (dup2(pair[0], 3) < 0) die("dup2", "fd 3");
    close(pair[0]);
  }
  fcntl(3, F_SETFD, 0);
}

/*
 * The share as the guest sees it (src/share/share-view.ts does the same in the
 * host's namespace): VM_DIR/shared, which QEMU exports, is a read-only slave
 * bind of VM_DIR/mounts, where only the host makes entries. Binds attached
 * under mounts/ later (kata-ts-mountns bind) appear in shared/ with their own
 * flags; the guest cannot create or rename anything else there.
 */
static void share_view(const char *vm_dir) {
  char mounts[4200], shared[4200];
  snprintf(mounts, sizeof mounts, "%s/mounts", vm_dir);
  snprintf(shared, sizeof shared, "%s/shared", vm_dir);
  if (mount(mounts, mounts, NULL, MS_BIND, NULL) != 0) die("bind", mounts);
  if (mount(NULL, mounts, NULL, MS_SHARED, NULL) != 0) die("make shared", mounts);
  if (mount(mounts, shared, NULL, MS_BIND | MS_REC, NULL) != 0) die("bind onto", shared);
  if (mount(NULL, shared, NULL, MS_SLAVE, NULL) != 0) die("make slave", shared);
  if (mount(NULL, shared, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY, NULL) != 0) die("make read-only", shared);
}

/*
 * virtiofsd, started in this namespace once the share's view exists: its output
 * goes to VM_DIR/virtiofsd.log, its pid to VM_DIR/virtiofsd.pid, and QEMU starts
 * only once it listens on VM_DIR/virtiofsd.sock (QEMU connects at start).
 */
static void start_virtiofsd(const char *vm_dir, char **daemon_argv) {
  char socket_path[4200], pid_path[4200], log_path[4200];
  snprintf(socket_path, sizeof socket_path, "%s/virtiofsd.sock", vm_dir);
  snprintf(pid_path, sizeof pid_path, "%s/virtiofsd.pid", vm_dir);
  snprintf(log_path, sizeof log_path, "%s/virtiofsd.log", vm_dir);
  unlink(socket_path);
  pid_t child = fork();
  if (child < 0) die("fork", daemon_argv[0]);
  if (child == 0) {
    int null = open("/dev/null", O_RDONLY);
    int log = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (null >= 0) dup2(null, 0);
    if (log >= 0) {
      dup2(log, 1);
      dup2(log, 2);
    }
    setsid();
    execv(daemon_argv[0], daemon_argv);
    _exit(127);
  }
  FILE *pid_file = fopen(pid_path, "w");
  if (!pid_file) die("write", pid_path);
  fprintf(pid_file, "%d\n", (int)child);
  fclose(pid_file);
  for (int waited = 0;; waited += 10) {
    struct stat st;
    if (stat(socket_path, &st) == 0 && S_ISSOCK(st.st_mode)) return;
    int status;
    if (waitpid(child, &status, WNOHANG) == child) {
      errno = ECHILD;
      die("virtiofsd exited before it listened; see", log_path);
    }
    if (waited > 10000) {
      kill(child, SIGKILL);
      errno = ETIMEDOUT;
      die("virtiofsd did not listen on", socket_path);
    }
    usleep(10000);
  }
}

static int launch(int argc, char **argv) {
  if (argc < 1) usage();
  const char *vm_dir = argv[0];
  const char *helper = NULL, *shared_dir = NULL;
  char **daemon_argv = NULL;
  int i = 1;
  while (i < argc && strcmp(argv[i], "--") != 0) {
    if (strcmp(argv[i], "--proxy-9p") == 0 && i + 2 < argc) {
      helper = argv[i + 1];
      shared_dir = argv[i + 2];
      i += 3;
    } else if (strcmp(argv[i], "--virtiofsd") == 0 && i + 2 < argc) {
      int count = atoi(argv[i + 1]);
      if (count < 0 || i + 2 + count >= argc) usage();
      daemon_argv = calloc((size_t)count + 2, sizeof *daemon_argv);
      if (!daemon_argv) die("calloc", "virtiofsd arguments");
      for (int k = 0; k <= count; k++) daemon_argv[k] = argv[i + 2 + k];
      i += 3 + count;
    } else {
      usage();
    }
  }
  if (i + 1 >= argc) usage();
  char **command = &argv[i + 1];
  char parent[4096];
  if (vm_dir[0] != '/' || strlen(vm_dir) >= sizeof parent) usage();
  strcpy(parent, vm_dir);
  char *slash = strrchr(parent, '/');
  if (slash == parent || slash[1] == '\0') usage();
  *slash = '\0';

  if (unshare(CLONE_NEWNS) != 0) die("unshare", "mount namespace");
  if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0) die("make private", "/");
  /* Opened in the new namespace (a mount of the old one cannot be bound here), before the tmpfs hides it. */
  int keep = open(vm_dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (keep < 0) die("open", vm_dir);
  if (mount("tmpfs", parent, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=0700,size=64k") != 0) die("hide", parent);
  if (mkdir(vm_dir, 0700) != 0) die("mkdir", vm_dir);
  char from[64];
  snprintf(from, sizeof from, "/proc/self/fd/%d", keep);
  if (mount(from, vm_dir, NULL, MS_BIND | MS_REC, NULL) != 0) die("bind", vm_dir);
  close(keep);
  share_view(vm_dir);
  if (helper) start_proxy_helper(helper, shared_dir);
  if (daemon_argv) start_virtiofsd(vm_dir, daemon_argv);
  execvp(command[0], command);
  die("exec", command[0]);
  return 1;
}

/* The mount namespace of PID, if PID is still the process that started at start_time. */
static int namespace_of(const char *pid, const char *start_time) {
  char path[64];
  snprintf(path, sizeof path, "/proc/%s", pid);
  int proc = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (proc < 0) die("open", path);
  int stat_fd = openat(proc, "stat", O_RDONLY | O_CLOEXEC);
  if (stat_fd < 0) die("open", "stat");
  char buf[4096];
  ssize_t n = read(stat_fd, buf, sizeof buf - 1);
  if (n <= 0) die("read", "stat");
  buf[n] = '\0';
  close(stat_fd);
  /* Fields after the command name (which may hold spaces): state is field 3, start time 22. */
  char *p = strrchr(buf, ')');
  if (!p) die("parse", "stat");
  p += 2; /* field 3 */
  for (int field = 3; field < 22 && p; field++) {
    p = strchr(p, ' ');
    if (p) p++;
  }
  if (!p || strtoull(p, NULL, 10) != strtoull(start_time, NULL, 10)) {
    errno = ESRCH;
    die("process", pid);
  }
  int ns = openat(proc, "ns/mnt", O_RDONLY | O_CLOEXEC);
  if (ns < 0) die("open", "ns/mnt");
  close(proc);
  return ns;
}

/*
 * Clones SOURCE recursively, private and (with ro) read-only down to every
 * submount before it is attached anywhere: attached at TARGET under the share's
 * mounts/ (a shared mount), its copy in the read-only view shared/ has the same
 * flags (a remount after the fact would change the original only). ns >= 0:
 * attached in that mount namespace, else in this one.
 */
static int attach_clone(int ns, const char *source, const char *target, const char *mode, const char *who) {
  int readonly = strcmp(mode, "ro") == 0;
  if (!readonly && strcmp(mode, "rw") != 0) usage();
  int tree = open_tree(AT_FDCWD, source, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE);
  if (tree < 0) die("clone", source);
  struct mount_attr attr = { .propagation = MS_PRIVATE };
  if (readonly) attr.attr_set = MOUNT_ATTR_RDONLY;
  if (mount_setattr(tree, "", AT_EMPTY_PATH | AT_RECURSIVE, &attr, sizeof attr) != 0) die("set attributes of", source);
  if (ns >= 0 && setns(ns, CLONE_NEWNS) != 0) die("join the mount namespace of", who);
  if (move_mount(tree, "", AT_FDCWD, target, MOVE_MOUNT_F_EMPTY_PATH) != 0) die("attach at", target);
  return 0;
}

static int bind_into(int argc, char **argv) {
  if (argc != 5) usage();
  return attach_clone(namespace_of(argv[0], argv[1]), argv[2], argv[3], argv[4], argv[0]);
}

static int bind_here(int argc, char **argv) {
  if (argc != 3) usage();
  return attach_clone(-1, argv[0], argv[1], argv[2], NULL);
}

static int unmount_in(int argc, char **argv) {
  if (argc != 3) usage();
  int ns = namespace_of(argv[0], argv[1]);
  if (setns(ns, CLONE_NEWNS) != 0) die("join the mount namespace of", argv[0]);
  if (umount2(argv[2], MNT_DETACH | UMOUNT_NOFOLLOW) != 0 && errno != EINVAL && errno != ENOENT) die("unmount", argv[2]);
  return 0;
}

int main(int argc, char **argv) {
  if (argc < 2) usage();
  if (strcmp(argv[1], "launch") == 0) return launch(argc - 2, argv + 2);
  if (strcmp(argv[1], "bind") == 0) return bind_into(argc - 2, argv + 2);
  if (strcmp(argv[1], "bind-here") == 0) return bind_here(argc - 2, argv + 2);
  if (strcmp(argv[1], "unmount") == 0) return unmount_in(argc - 2, argv + 2);
  usage();
  return 2;
}
