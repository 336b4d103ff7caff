/*
 * kata-ts-carrier: the pid that callers wait on for a container process or an
 * exec (the contract of runc with containerd's shim and with conmon: they are
 * subreapers, they wait on the pid in --pid-file and read its exit status).
 *
 * It hands its stdio (for a terminal: the pty slave) to the sandbox's pod
 * process by SCM_RIGHTS over the pod's unix socket, forwards the signals it
 * receives, and exits with the process's status when the pod reports it. If
 * the pod process goes away, the carrier starts it again (the command after
 * `--`) and attaches anew; the process and its output wait in the guest. If the
 * carrier is SIGKILLed, the pod sees its connection close and kills the process.
 *
 * usage: kata-ts-carrier --socket PATH --container ID --exec ID [--tty]
 *                        [--ready-fd N] [--log FILE] [--log-format text|json]
 *                        [--attach-timeout MS]
 *                        -- POD-COMMAND [ARGS...]
 *
 * Messages are JSON lines. Carrier to pod: attach (with fds 0, 1, 2), signal,
 * resize. Pod to carrier: attached, exit {status}, error {message}.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const char *socket_path, *container_id, *exec_id, *log_path;
static int tty = 0, ready_fd = -1, log_json = 0;
static long attach_timeout_ms = 60000;
static char **pod_command;

/* Writes text as the body of a JSON string. */
static void json_escape(FILE *f, const char *text) {
  for (const unsigned char *c = (const unsigned char *)text; *c; c++) {
    if (*c == '"' || *c == '\\') fprintf(f, "\\%c", *c);
    else if (*c < 0x20) fprintf(f, "\\u%04x", *c);
    else fputc(*c, f);
  }
}

/* One log entry in the caller's format: runc's (logrus) JSON keys, or the text form kata-ts writes. */
static void logf_(const char *fmt, ...) {
  if (!log_path) return;
  FILE *f = fopen(log_path, "a");
  if (!f) return;
  char msg[2048];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  struct tm tm;
  gmtime_r(&ts.tv_sec, &tm);
  char time_text[64];
  snprintf(time_text, sizeof time_text, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
           tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000);
  if (log_json) {
    fprintf(f, "{\"level\":\"info\",\"msg\":\"");
    json_escape(f, msg);
    fprintf(f, "\",\"time\":\"%s\",\"carrier\":%d,\"container\":\"", time_text, getpid());
    json_escape(f, container_id);
    fprintf(f, "\",\"exec\":\"");
    json_escape(f, exec_id);
    fprintf(f, "\"}\n");
  } else {
    fprintf(f, "time=\"%s\" level=info msg=\"", time_text);
    json_escape(f, msg);
    fprintf(f, "\" carrier=%d container=\"", getpid());
    json_escape(f, container_id);
    fprintf(f, "\" exec=\"");
    json_escape(f, exec_id);
    fprintf(f, "\"\n");
  }
  fclose(f);
}

static long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
  while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
  }
}

static void report_ready(const char *line) {
  if (ready_fd < 0) return;
  if (write(ready_fd, line, strlen(line)) < 0) logf_("cannot report: %s", strerror(errno));
  close(ready_fd);
  ready_fd = -1;
}

static int send_all(int sock, const char *text) {
  size_t len = strlen(text);
  while (len > 0) {
    ssize_t n = send(sock, text, len, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    text += n;
    len -= (size_t)n;
  }
  return 0;
}

/* The attach message carries fds 0, 1 and 2 (the pod relays the process's I/O through them).
 * Sized from the ids (up to 1024 characters each, more once escaped), never cut short. */
static int send_attach(int sock) {
  size_t escaped_ids = 0;
  for (const char *id = container_id; *id; id++) escaped_ids += 6; /* the most one byte can take escaped: \u00XX */
  for (const char *id = exec_id; *id; id++) escaped_ids += 6;
  size_t size = escaped_ids + 128;
  char *text = malloc(size);
  if (!text) return -1;
  FILE *line = fmemopen(text, size, "w");
  if (!line) {
    free(text);
    return -1;
  }
  fprintf(line, "{\"type\":\"attach\",\"container\":\"");
  json_escape(line, container_id);
  fprintf(line, "\",\"exec\":\"");
  json_escape(line, exec_id);
  fprintf(line, "\",\"tty\":%s,\"pid\":%d}\n", tty ? "true" : "false", getpid());
  fclose(line);
  int fds[3] = {0, 1, 2};
  char control[CMSG_SPACE(sizeof fds)];
  memset(control, 0, sizeof control);
  struct iovec iov = {text, strlen(text)};
  struct msghdr msg = {0};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  struct cmsghdr *cmsg = CMSG_FIRSTHDR(&msg);
  cmsg->cmsg_level = SOL_SOCKET;
  cmsg->cmsg_type = SCM_RIGHTS;
  cmsg->cmsg_len = CMSG_LEN(sizeof fds);
  memcpy(CMSG_DATA(cmsg), fds, sizeof fds);
  ssize_t n;
  do n = sendmsg(sock, &msg, MSG_NOSIGNAL);
  while (n < 0 && errno == EINTR);
  /* The fds went with the first bytes; whatever a full socket buffer left over follows. */
  int ok = n > 0 && send_all(sock, text + n) == 0;
  free(text);
  return ok ? 0 : -1;
}

static int try_connect(void) {
  int sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (sock < 0) return -1;
  struct sockaddr_un addr = {.sun_family = AF_UNIX};
  if (strlen(socket_path) >= sizeof addr.sun_path) {
    close(sock);
    errno = ENAMETOOLONG;
    return -1;
  }
  strcpy(addr.sun_path, socket_path);
  if (connect(sock, (struct sockaddr *)&addr, sizeof addr) < 0) {
    int err = errno;
    close(sock);
    errno = err;
    return -1;
  }
  return sock;
}

/* Starts the pod process again, in a session of its own, not as our child. */
static void restart_pod(void) {
  if (!pod_command || !pod_command[0]) return;
  pid_t child = fork();
  if (child < 0) return;
  if (child == 0) {
    if (fork() != 0) _exit(0);
    setsid();
    int null = open("/dev/null", O_RDWR);
    if (null >= 0) {
      dup2(null, 0);
      dup2(null, 1);
      dup2(null, 2);
    }
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    execv(pod_command[0], pod_command);
    _exit(127);
  }
  while (waitpid(child, NULL, 0) < 0 && errno == EINTR) {
  }
}

/* Connects and attaches, starting the pod process when nobody listens; gives up after --attach-timeout (a minute). */
static int attach(void) {
  long deadline = now_ms() + attach_timeout_ms, last_restart = 0;
  for (;;) {
    int sock = try_connect();
    if (sock >= 0) {
      if (send_attach(sock) == 0) return sock;
      close(sock);
    } else if ((errno == ECONNREFUSED || errno == ENOENT) && now_ms() - last_restart > 5000) {
      logf_("no pod process at %s: starting one", socket_path);
      restart_pod();
      last_restart = now_ms();
    }
    if (now_ms() > deadline) return -1;
    sleep_ms(50);
  }
}

static void send_resize(int sock) {
  struct winsize ws;
  if (ioctl(0, TIOCGWINSZ, &ws) < 0) return;
  char text[128];
  snprintf(text, sizeof text, "{\"type\":\"resize\",\"rows\":%u,\"columns\":%u}\n", ws.ws_row, ws.ws_col);
  send_all(sock, text);
}

/* Handles one line from the pod; returns the exit status when the process is done, or -1. */
static int handle_line(const char *line, int sock) {
  if (strstr(line, "\"type\":\"attached\"")) {
    report_ready("ready\n");
    if (tty) send_resize(sock);
    return -1;
  }
  const char *status = strstr(line, "\"status\":");
  if (strstr(line, "\"type\":\"exit\"") && status) return atoi(status + 9) & 0xff;
  if (strstr(line, "\"type\":\"error\"")) {
    logf_("pod: %s", line);
    char report[1024];
    snprintf(report, sizeof report, "%s\n", line);
    report_ready(report);
    return 255;
  }
  return -1;
}

static int parse_args(int argc, char **argv) {
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (!strcmp(a, "--") ) {
      pod_command = &argv[i + 1];
      break;
    }
    if (!strcmp(a, "--tty")) tty = 1;
    else if (i + 1 >= argc) return -1;
    else if (!strcmp(a, "--socket")) socket_path = argv[++i];
    else if (!strcmp(a, "--container")) container_id = argv[++i];
    else if (!strcmp(a, "--exec")) exec_id = argv[++i];
    else if (!strcmp(a, "--ready-fd")) ready_fd = atoi(argv[++i]);
    else if (!strcmp(a, "--log")) log_path = argv[++i];
    else if (!strcmp(a, "--log-format")) log_json = !strcmp(argv[++i], "json");
    else if (!strcmp(a, "--attach-timeout")) attach_timeout_ms = atol(argv[++i]);
    else return -1;
  }
  return socket_path && container_id && exec_id ? 0 : -1;
}

int main(int argc, char **argv) {
  if (parse_args(argc, argv) < 0) {
    fprintf(stderr, "usage: kata-ts-carrier --socket PATH --container ID --exec ID [--tty] [--ready-fd N] [--log FILE] [--log-format text|json] -- POD-COMMAND...\n");
    return 2;
  }
  if (ready_fd >= 0) fcntl(ready_fd, F_SETFD, FD_CLOEXEC);
  /* A console's pty slave becomes our controlling terminal, so resizes of its master reach us as SIGWINCH. */
  if (tty && getsid(0) == getpid()) ioctl(0, TIOCSCTTY, 0);
  /* Every signal that can be caught is the process's, not ours: forward it. */
  sigset_t forwarded;
  sigfillset(&forwarded);
  sigdelset(&forwarded, SIGKILL);
  sigdelset(&forwarded, SIGSTOP);
  sigdelset(&forwarded, SIGSEGV);
  sigdelset(&forwarded, SIGBUS);
  sigdelset(&forwarded, SIGILL);
  sigdelset(&forwarded, SIGFPE);
  sigprocmask(SIG_BLOCK, &forwarded, NULL);
  int sigfd = signalfd(-1, &forwarded, SFD_CLOEXEC);
  if (sigfd < 0) {
    logf_("signalfd: %s", strerror(errno));
    report_ready("error: signalfd failed\n");
    return 255;
  }

  char buffer[8192];
  size_t used = 0;
  int sock = attach();
  if (sock < 0) {
    logf_("cannot attach to the pod process at %s", socket_path);
    report_ready("error: cannot reach the pod process\n");
    return 255;
  }
  for (;;) {
    struct pollfd fds[2] = {{sock, POLLIN, 0}, {sigfd, POLLIN, 0}};
    if (poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      return 255;
    }
    if (fds[1].revents & POLLIN) {
      struct signalfd_siginfo info;
      if (read(sigfd, &info, sizeof info) == sizeof info) {
        int sig = (int)info.ssi_signo;
        if (sig == SIGWINCH) {
          if (tty) send_resize(sock);
        } else if (sig != SIGCHLD && sig != SIGPIPE && sig != SIGURG) {
          char text[64];
          snprintf(text, sizeof text, "{\"type\":\"signal\",\"signal\":%d}\n", sig);
          send_all(sock, text);
        }
      }
    }
    if (fds[0].revents & (POLLIN | POLLHUP | POLLERR)) {
      ssize_t n = recv(sock, buffer + used, sizeof buffer - used - 1, 0);
      if (n > 0) {
        used += (size_t)n;
        buffer[used] = '\0';
        char *start = buffer, *nl;
        while ((nl = strchr(start, '\n'))) {
          *nl = '\0';
          int status = handle_line(start, sock);
          if (status >= 0) {
            logf_("the process exited: status %d", status);
            return status;
          }
          start = nl + 1;
        }
        used = strlen(start);
        memmove(buffer, start, used);
        if (used == sizeof buffer - 1) used = 0; /* a line that long is not ours */
      } else if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
        /* The pod process went away: the process goes on in the guest. Attach again. */
        close(sock);
        used = 0;
        logf_("lost the pod process; attaching again");
        sock = attach();
        if (sock < 0) {
          logf_("cannot attach again: giving up");
          return 255;
        }
      }
    }
  }
}
