/*
 * kata-ts-netns-exec NETNS PATH ARGV0 [ARG...]
 *
 * Runs PATH inside the network namespace NETNS (a file such as
 * /run/netns/NAME or /proc/PID/ns/net) with exactly the argv[0], arguments
 * and environment it was given: OCI hooks (docker's libnetwork-setkey
 * dispatches on argv[0]) run in the sandbox's namespace, and their own pid
 * names that namespace. nsenter cannot set argv[0].
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

extern char **environ;

int main(int argc, char **argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: kata-ts-netns-exec NETNS PATH ARGV0 [ARG...]\n");
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
