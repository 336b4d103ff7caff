/*
 * AF_VSOCK listen / accept / connect, returning plain file descriptors that
 * the TypeScript side wraps into streams. Blocking calls run on libuv's
 * thread pool through napi async work.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <linux/vm_sockets.h>
#include "kata-native.h"

/* listen(port[, cid]) -> fd: bound to VMADDR_CID_ANY unless a CID is given. */
static napi_value Listen(napi_env env, napi_callback_info info) {
  uint32_t port, cid = VMADDR_CID_ANY;
  size_t argc = 2;
  napi_value argv[2];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (uint32_arg(env, info, 0, &port) != 0) {
    napi_throw_type_error(env, NULL, "listen(port[, cid]): port must be a number");
    return NULL;
  }
  if (argc > 1) napi_get_value_uint32(env, argv[1], &cid);
  int fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return throw_errno(env, "socket(AF_VSOCK)", errno);
  struct sockaddr_vm addr;
  memset(&addr, 0, sizeof addr);
  addr.svm_family = AF_VSOCK;
  addr.svm_cid = cid;
  addr.svm_port = port;
  if (bind(fd, (struct sockaddr *)&addr, sizeof addr) < 0 || listen(fd, 128) < 0) {
    int err = errno;
    close(fd);
    return throw_errno(env, "bind/listen vsock", err);
  }
  napi_value result;
  CHECK(napi_create_int32(env, fd, &result));
  return result;
}

typedef struct {
  napi_async_work work;
  napi_deferred deferred;
  int fd;      /* listening fd (accept) or result fd */
  uint32_t cid;
  uint32_t port;
  int is_accept;
  int result;
  int err;
} Job;

static void execute(napi_env env, void *data) {
  (void)env;
  Job *job = data;
  if (job->is_accept) {
    do {
      job->result = accept4(job->fd, NULL, NULL, SOCK_CLOEXEC);
    } while (job->result < 0 && errno == EINTR);
  } else {
    int fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd >= 0) {
      struct sockaddr_vm addr;
      memset(&addr, 0, sizeof addr);
      addr.svm_family = AF_VSOCK;
      addr.svm_cid = job->cid;
      addr.svm_port = job->port;
      if (connect(fd, (struct sockaddr *)&addr, sizeof addr) < 0) {
        int err = errno;
        close(fd);
        fd = -1;
        errno = err;
      }
    }
    job->result = fd;
  }
  job->err = job->result < 0 ? errno : 0;
}

static void complete(napi_env env, napi_status status, void *data) {
  (void)status;
  Job *job = data;
  napi_value value;
  if (job->result >= 0) {
    napi_create_int32(env, job->result, &value);
    napi_resolve_deferred(env, job->deferred, value);
  } else {
    napi_reject_deferred(env, job->deferred, errno_error(env, job->is_accept ? "accept(vsock)" : "connect(vsock)", job->err));
  }
  napi_delete_async_work(env, job->work);
  free(job);
}

static napi_value start_job(napi_env env, Job *job, const char *name) {
  napi_value promise, resource_name;
  CHECK(napi_create_promise(env, &job->deferred, &promise));
  CHECK(napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &resource_name));
  CHECK(napi_create_async_work(env, NULL, resource_name, execute, complete, job, &job->work));
  CHECK(napi_queue_async_work(env, job->work));
  return promise;
}

/* accept(listenFd) -> Promise<fd> */
static napi_value Accept(napi_env env, napi_callback_info info) {
  uint32_t fd;
  if (numeric_args(env, info, "accept(fd): fd must be a number", &fd, 1) != 0) return NULL;
  Job *job = calloc(1, sizeof *job);
  job->fd = (int)fd;
  job->is_accept = 1;
  return start_job(env, job, "kata_vsock.accept");
}

/* connect(cid, port) -> Promise<fd> */
static napi_value Connect(napi_env env, napi_callback_info info) {
  uint32_t cid, port;
  if (uint32_arg(env, info, 0, &cid) != 0 || uint32_arg(env, info, 1, &port) != 0) {
    napi_throw_type_error(env, NULL, "connect(cid, port): numbers expected");
    return NULL;
  }
  Job *job = calloc(1, sizeof *job);
  job->cid = cid;
  job->port = port;
  return start_job(env, job, "kata_vsock.connect");
}

/* peerCid(fd) -> the CID of the other end of a connected vsock (the host is 2, this VM's own loopback 1). */
static napi_value PeerCid(napi_env env, napi_callback_info info) {
  uint32_t fd;
  if (numeric_args(env, info, "peerCid(fd): fd must be a number", &fd, 1) != 0) return NULL;
  struct sockaddr_vm addr;
  socklen_t len = sizeof addr;
  memset(&addr, 0, sizeof addr);
  if (getpeername((int)fd, (struct sockaddr *)&addr, &len) < 0) return throw_errno(env, "getpeername(vsock)", errno);
  napi_value result;
  CHECK(napi_create_uint32(env, addr.svm_cid, &result));
  return result;
}

/* shutdown(fd): wakes up a thread blocked in accept() on it. */
static napi_value Shutdown(napi_env env, napi_callback_info info) {
  uint32_t fd;
  if (numeric_args(env, info, "shutdown(fd): fd must be a number", &fd, 1) != 0) return NULL;
  shutdown((int)fd, SHUT_RDWR);
  return NULL;
}

void register_vsock(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
    METHOD("listen", Listen),
    METHOD("accept", Accept),
    METHOD("connect", Connect),
    METHOD("shutdown", Shutdown),
    METHOD("peerCid", PeerCid),
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
}
