/*
 * kata-ts-netns-exec [--die-with-parent] NETNS PATH ARGV0 [ARG...]
 *
 * Runs PATH inside the network namespace NETNS (a file such as
 * /run/netns/NAME or /proc/PID/ns/net) with exactly the argv[0], arguments
 * and environment it was given: OCI hooks (docker's libnetwork-setkey
 * dispatches on argv[0]) run in the sandbox's namespace, and their own pid
 * names that namespace. nsenter cannot set argv[0]. --die-with-parent: the
 * command is killed when the process that started it ends, however it ends
 * (netmon's `ip monitor` must not outlive a pod process killed with -9).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

extern char **environ;

int main(int argc, char **argv) {
  if (argc > 1 && strcmp(argv[1], "--die-with-parent") == 0) {
    pid_t parent = getppid();
    // Kept across execve; checked after, in case the parent ended before it was set.
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent) return 127;
    argv++;
    argc--;
  }
  if (argc < 4) {
    fprintf(stderr, "usage: kata-ts-netns-exec [--die-with-parent] NETNS PATH ARGV0 [ARG...]\n");
    return 2;
  }
  int ns = open(argv[1], O_RDONLY | O_CLOEXEC);
  if (ns < 0) {
    fprintf(stderr, "kata-ts-netns-exec: cannot open network namespace %s: %s\n", argv[1], strerror(errno));
    return 127;
  }
  if (setns(ns, CLONE_NEWNET) != 0) {
    fprintf(stderr, "kata-ts-netns-exec: cannot enter network namespace %s: %s\n", argv[1], strerror(errno));
    return 127;
  }
  close(ns);
  execve(argv[2], argv + 3, environ);
  fprintf(stderr, "kata-ts-netns-exec: cannot run %s: %s\n", argv[2], strerror(errno));
  return 127;
}
