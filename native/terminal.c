/*
 * Terminals for OCI console sockets: a pseudo-terminal pair, its window size,
 * making it the controlling terminal, and passing a pty master over a unix
 * socket with SCM_RIGHTS (the console-socket protocol of runc and crun).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <termios.h>
#include <unistd.h>
#include "kata-native.h"

static int set_blocking(int fd) {
  int flags = fcntl(fd, F_GETFL);
  return flags < 0 ? -1 : fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
}

/* openPty() -> { master, slave, name }: both ends close on exec. */
static napi_value OpenPty(napi_env env, napi_callback_info info) {
  (void)info;
  int master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (master < 0) return throw_errno(env, "posix_openpt", errno);
  char name[128];
  if (grantpt(master) < 0 || unlockpt(master) < 0 || ptsname_r(master, name, sizeof name) != 0) {
    int err = errno;
    close(master);
    return throw_errno(env, "grantpt/unlockpt/ptsname", err);
  }
  int slave = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (slave < 0) {
    int err = errno;
    close(master);
    return throw_errno(env, name, err);
  }
  napi_value result, m, s, n;
  CHECK(napi_create_object(env, &result));
  CHECK(napi_create_int32(env, master, &m));
  CHECK(napi_create_int32(env, slave, &s));
  CHECK(napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &n));
  napi_set_named_property(env, result, "master", m);
  napi_set_named_property(env, result, "slave", s);
  napi_set_named_property(env, result, "name", n);
  return result;
}

/* getWindowSize(fd) -> { rows, columns } */
static napi_value GetWindowSize(napi_env env, napi_callback_info info) {
  uint32_t fd;
  if (numeric_args(env, info, "getWindowSize(fd): fd must be a number", &fd, 1) != 0) return NULL;
  struct winsize ws;
  if (ioctl((int)fd, TIOCGWINSZ, &ws) < 0) return throw_errno(env, "TIOCGWINSZ", errno);
  napi_value result, rows, columns;
  CHECK(napi_create_object(env, &result));
  CHECK(napi_create_uint32(env, ws.ws_row, &rows));
  CHECK(napi_create_uint32(env, ws.ws_col, &columns));
  napi_set_named_property(env, result, "rows", rows);
  napi_set_named_property(env, result, "columns", columns);
  return result;
}

/* setWindowSize(fd, rows, columns): the foreground process group gets SIGWINCH. */
static napi_value SetWindowSize(napi_env env, napi_callback_info info) {
  uint32_t fd, rows, columns;
  if (uint32_arg(env, info, 0, &fd) != 0 || uint32_arg(env, info, 1, &rows) != 0 || uint32_arg(env, info, 2, &columns) != 0) {
    napi_throw_type_error(env, NULL, "setWindowSize(fd, rows, columns): numbers expected");
    return NULL;
  }
  struct winsize ws = {.ws_row = (unsigned short)rows, .ws_col = (unsigned short)columns};
  if (ioctl((int)fd, TIOCSWINSZ, &ws) < 0) return throw_errno(env, "TIOCSWINSZ", errno);
  return NULL;
}

/* setControllingTerminal(fd): for a session leader, so that it receives SIGWINCH. */
static napi_value SetControllingTerminal(napi_env env, napi_callback_info info) {
  uint32_t fd;
  if (numeric_args(env, info, "setControllingTerminal(fd): fd must be a number", &fd, 1) != 0) return NULL;
  if (ioctl((int)fd, TIOCSCTTY, 0) < 0) return throw_errno(env, "TIOCSCTTY", errno);
  return NULL;
}

/* makeRaw(fd) -> Buffer with the previous termios: cfmakeraw, output processing off too (no \n -> \r\n). */
static napi_value MakeRaw(napi_env env, napi_callback_info info) {
  uint32_t fd;
  if (numeric_args(env, info, "makeRaw(fd): fd must be a number", &fd, 1) != 0) return NULL;
  struct termios old, raw;
  if (tcgetattr((int)fd, &old) < 0) return throw_errno(env, "tcgetattr", errno);
  raw = old;
  cfmakeraw(&raw);
  if (tcsetattr((int)fd, TCSANOW, &raw) < 0) return throw_errno(env, "tcsetattr", errno);
  napi_value saved;
  void *data;
  CHECK(napi_create_buffer_copy(env, sizeof old, &old, &data, &saved));
  return saved;
}

/* restoreTermios(fd, saved): undoes makeRaw. */
static napi_value RestoreTermios(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  uint32_t fd;
  void *data;
  size_t length;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 2 || napi_get_value_uint32(env, argv[0], &fd) != napi_ok || napi_get_buffer_info(env, argv[1], &data, &length) != napi_ok ||
      length != sizeof(struct termios)) {
    napi_throw_type_error(env, NULL, "restoreTermios(fd, saved): bad arguments");
    return NULL;
  }
  if (tcsetattr((int)fd, TCSANOW, (struct termios *)data) < 0) return throw_errno(env, "tcsetattr", errno);
  return NULL;
}

static int unix_address(napi_env env, napi_value value, struct sockaddr_un *addr) {
  memset(addr, 0, sizeof *addr);
  addr->sun_family = AF_UNIX;
  size_t length;
  if (napi_get_value_string_utf8(env, value, addr->sun_path, sizeof addr->sun_path, &length) != napi_ok) return -1;
  return length + 1 >= sizeof addr->sun_path ? -1 : 0;
}

/* listenUnix(path) -> fd of a listening unix stream socket. */
static napi_value ListenUnix(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  struct sockaddr_un addr;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1 || unix_address(env, argv[0], &addr) != 0) {
    napi_throw_type_error(env, NULL, "listenUnix(path): a socket path shorter than 108 bytes expected");
    return NULL;
  }
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return throw_errno(env, "socket(AF_UNIX)", errno);
  if (bind(fd, (struct sockaddr *)&addr, sizeof addr) < 0 || listen(fd, 4) < 0) {
    int err = errno;
    close(fd);
    return throw_errno(env, addr.sun_path, err);
  }
  napi_value result;
  CHECK(napi_create_int32(env, fd, &result));
  return result;
}

typedef struct {
  napi_async_work work;
  napi_deferred deferred;
  int listen_fd;
  int timeout_ms;
  int result;
  int err;
  const char *what;
} ReceiveJob;

/* Waits for one connection on the listening socket and takes the fd it sends. */
static void receive_execute(napi_env env, void *data) {
  (void)env;
  ReceiveJob *job = data;
  job->result = -1;
  struct pollfd pfd = {.fd = job->listen_fd, .events = POLLIN};
  int ready = poll(&pfd, 1, job->timeout_ms);
  if (ready <= 0 || !(pfd.revents & POLLIN)) {
    job->err = ready == 0 ? ETIMEDOUT : (ready < 0 ? errno : ECONNABORTED);
    job->what = "waiting for the console socket connection";
    return;
  }
  int conn = accept4(job->listen_fd, NULL, NULL, SOCK_CLOEXEC);
  if (conn < 0) {
    job->err = errno;
    job->what = "accept(console socket)";
    return;
  }
  struct pollfd cfd = {.fd = conn, .events = POLLIN};
  if (poll(&cfd, 1, job->timeout_ms) <= 0) {
    job->err = ETIMEDOUT;
    job->what = "waiting for the terminal fd";
    close(conn);
    return;
  }
  char name[256];
  struct iovec iov = {.iov_base = name, .iov_len = sizeof name};
  union {
    char buffer[CMSG_SPACE(sizeof(int))];
    struct cmsghdr align;
  } control;
  struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buffer, .msg_controllen = sizeof control.buffer};
  ssize_t n = recvmsg(conn, &msg, MSG_CMSG_CLOEXEC);
  int err = errno;
  close(conn);
  struct cmsghdr *cmsg = n >= 0 ? CMSG_FIRSTHDR(&msg) : NULL;
  if (!cmsg || cmsg->cmsg_level != SOL_SOCKET || cmsg->cmsg_type != SCM_RIGHTS) {
    job->err = n < 0 ? err : EBADMSG;
    job->what = "recvmsg(SCM_RIGHTS)";
    return;
  }
  memcpy(&job->result, CMSG_DATA(cmsg), sizeof(int));
  set_blocking(job->result);
}

static void receive_complete(napi_env env, napi_status status, void *data) {
  (void)status;
  ReceiveJob *job = data;
  if (job->result >= 0) {
    napi_value value;
    napi_create_int32(env, job->result, &value);
    napi_resolve_deferred(env, job->deferred, value);
  } else {
    napi_reject_deferred(env, job->deferred, errno_error(env, job->what, job->err));
  }
  napi_delete_async_work(env, job->work);
  free(job);
}

/* receiveFd(listenFd, timeoutMs) -> Promise<fd>; shutdown(listenFd) makes it give up. */
static napi_value ReceiveFd(napi_env env, napi_callback_info info) {
  uint32_t fd, timeout;
  if (uint32_arg(env, info, 0, &fd) != 0 || uint32_arg(env, info, 1, &timeout) != 0) {
    napi_throw_type_error(env, NULL, "receiveFd(listenFd, timeoutMs): numbers expected");
    return NULL;
  }
  ReceiveJob *job = calloc(1, sizeof *job);
  job->listen_fd = (int)fd;
  job->timeout_ms = (int)timeout;
  napi_value promise, resource_name;
  CHECK(napi_create_promise(env, &job->deferred, &promise));
  CHECK(napi_create_string_utf8(env, "kata_native.receiveFd", NAPI_AUTO_LENGTH, &resource_name));
  CHECK(napi_create_async_work(env, NULL, resource_name, receive_execute, receive_complete, job, &job->work));
  CHECK(napi_queue_async_work(env, job->work));
  return promise;
}

/* sendFd(socketPath, fd, name): connects to a console socket and sends fd with SCM_RIGHTS. */
static napi_value SendFd(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  struct sockaddr_un addr;
  uint32_t fd;
  char name[256] = "";
  size_t name_length = 0;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 3 || unix_address(env, argv[0], &addr) != 0 || napi_get_value_uint32(env, argv[1], &fd) != napi_ok ||
      napi_get_value_string_utf8(env, argv[2], name, sizeof name, &name_length) != napi_ok) {
    napi_throw_type_error(env, NULL, "sendFd(socketPath, fd, name): bad arguments");
    return NULL;
  }
  int sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (sock < 0) return throw_errno(env, "socket(AF_UNIX)", errno);
  if (connect(sock, (struct sockaddr *)&addr, sizeof addr) < 0) {
    int err = errno;
    close(sock);
    return throw_errno(env, addr.sun_path, err);
  }
  struct iovec iov = {.iov_base = name, .iov_len = name_length > 0 ? name_length : 1};
  union {
    char buffer[CMSG_SPACE(sizeof(int))];
    struct cmsghdr align;
  } control;
  memset(&control, 0, sizeof control);
  struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buffer, .msg_controllen = sizeof control.buffer};
  struct cmsghdr *cmsg = CMSG_FIRSTHDR(&msg);
  cmsg->cmsg_level = SOL_SOCKET;
  cmsg->cmsg_type = SCM_RIGHTS;
  cmsg->cmsg_len = CMSG_LEN(sizeof(int));
  int sent_fd = (int)fd;
  memcpy(CMSG_DATA(cmsg), &sent_fd, sizeof(int));
  ssize_t n;
  do {
    n = sendmsg(sock, &msg, MSG_NOSIGNAL);
  } while (n < 0 && errno == EINTR);
  int err = errno;
  close(sock);
  if (n < 0) return throw_errno(env, "sendmsg(SCM_RIGHTS)", err);
  return NULL;
}

void register_terminal(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
    METHOD("openPty", OpenPty),
    METHOD("getWindowSize", GetWindowSize),
    METHOD("setWindowSize", SetWindowSize),
    METHOD("makeRaw", MakeRaw),
    METHOD("restoreTermios", RestoreTermios),
    METHOD("setControllingTerminal", SetControllingTerminal),
    METHOD("listenUnix", ListenUnix),
    METHOD("receiveFd", ReceiveFd),
    METHOD("sendFd", SendFd),
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
}
