/*
 * Reading one message with file descriptors from a connected unix socket: the
 * pod process receives a carrier's stdio this way (SCM_RIGHTS), which Node's
 * net module cannot do. The socket stays Node's: it is read here only until
 * the first newline, while Node has it paused.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include "kata-native.h"

#define MAX_MESSAGE (1024 * 1024)
#define MAX_FDS 8

typedef struct {
  napi_async_work work;
  napi_deferred deferred;
  int fd;
  int timeout_ms;
  char *data;
  size_t length;
  int fds[MAX_FDS];
  int nfds;
  int err;
  const char *what;
} MessageJob;

static long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void message_execute(napi_env env, void *data) {
  (void)env;
  MessageJob *job = data;
  long deadline = now_ms() + job->timeout_ms;
  job->data = malloc(MAX_MESSAGE);
  if (!job->data) {
    job->err = ENOMEM;
    job->what = "malloc";
    return;
  }
  while (job->length == 0 || !memchr(job->data, '\n', job->length)) {
    long left = deadline - now_ms();
    struct pollfd pfd = {.fd = job->fd, .events = POLLIN};
    int ready = left > 0 ? poll(&pfd, 1, (int)left) : 0;
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) {
      job->err = ready == 0 ? ETIMEDOUT : errno;
      job->what = "waiting for a message";
      return;
    }
    if (job->length >= MAX_MESSAGE) {
      job->err = EMSGSIZE;
      job->what = "reading a message";
      return;
    }
    struct iovec iov = {.iov_base = job->data + job->length, .iov_len = MAX_MESSAGE - job->length};
    union {
      char buffer[CMSG_SPACE(sizeof(int) * MAX_FDS)];
      struct cmsghdr align;
    } control;
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buffer, .msg_controllen = sizeof control.buffer};
    ssize_t n = recvmsg(job->fd, &msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR) continue;
      job->err = errno;
      job->what = "recvmsg";
      return;
    }
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
      if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
      int count = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
      int *passed = (int *)CMSG_DATA(c);
      for (int i = 0; i < count; i++) {
        if (job->nfds < MAX_FDS) job->fds[job->nfds++] = passed[i];
        else close(passed[i]);
      }
    }
    if (n == 0) {
      job->err = ECONNRESET;
      job->what = "the peer closed before a whole message";
      return;
    }
    job->length += (size_t)n;
  }
}

static void message_complete(napi_env env, napi_status status, void *data) {
  (void)status;
  MessageJob *job = data;
  if (job->err == 0) {
    napi_value result, buffer, fds, fd;
    void *copy;
    napi_create_object(env, &result);
    napi_create_buffer_copy(env, job->length, job->data, &copy, &buffer);
    napi_create_array_with_length(env, (size_t)job->nfds, &fds);
    for (int i = 0; i < job->nfds; i++) {
      napi_create_int32(env, job->fds[i], &fd);
      napi_set_element(env, fds, (uint32_t)i, fd);
    }
    napi_set_named_property(env, result, "data", buffer);
    napi_set_named_property(env, result, "fds", fds);
    napi_resolve_deferred(env, job->deferred, result);
  } else {
    for (int i = 0; i < job->nfds; i++) close(job->fds[i]);
    napi_reject_deferred(env, job->deferred, errno_error(env, job->what, job->err));
  }
  free(job->data);
  napi_delete_async_work(env, job->work);
  free(job);
}

/* receiveMessage(fd, timeoutMs) -> Promise<{ data, fds }>: bytes up to and including the first newline (maybe more), and the fds sent with them. */
static napi_value ReceiveMessage(napi_env env, napi_callback_info info) {
  uint32_t args[2];
  if (numeric_args(env, info, "receiveMessage(fd, timeoutMs): numbers expected", args, 2) != 0) return NULL;
  MessageJob *job = calloc(1, sizeof *job);
  job->fd = (int)args[0];
  job->timeout_ms = (int)args[1];
  napi_value promise, resource_name;
  CHECK(napi_create_promise(env, &job->deferred, &promise));
  CHECK(napi_create_string_utf8(env, "kata_native.receiveMessage", NAPI_AUTO_LENGTH, &resource_name));
  CHECK(napi_create_async_work(env, NULL, resource_name, message_execute, message_complete, job, &job->work));
  CHECK(napi_queue_async_work(env, job->work));
  return promise;
}

void register_fd_message(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
    METHOD("receiveMessage", ReceiveMessage),
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
}
