/*
 * flock(2) without blocking: the state and sandbox locks of kata-ts. A kernel
 * lock dies with the process holding it, so a killed command never leaves a
 * lock behind for others to wait out or to guess stale.
 */
#include <errno.h>
#include <stdbool.h>
#include <sys/file.h>
#include "kata-native.h"

/* tryLock(fd, shared) -> 0 when the lock is ours (exclusive, or shared when shared is 1), else the errno (EWOULDBLOCK while another holds it). */
static napi_value TryLock(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  uint32_t fd, shared = 0;
  if (argc < 1 || napi_get_value_uint32(env, argv[0], &fd) != napi_ok) {
    napi_throw_type_error(env, NULL, "tryLock(fd, shared): fd must be a number");
    return NULL;
  }
  if (argc > 1) {
    bool flag = false;
    if (napi_get_value_bool(env, argv[1], &flag) != napi_ok) {
      napi_throw_type_error(env, NULL, "tryLock(fd, shared): shared must be a boolean");
      return NULL;
    }
    shared = flag;
  }
  int rc;
  do {
    rc = flock((int)fd, (shared ? LOCK_SH : LOCK_EX) | LOCK_NB);
  } while (rc < 0 && errno == EINTR);
  napi_value result;
  CHECK(napi_create_int32(env, rc == 0 ? 0 : errno, &result));
  return result;
}

void register_flock(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
    METHOD("tryLock", TryLock),
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
}
