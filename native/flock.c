/*
 * flock(2) without blocking: the state and sandbox locks of kata-ts. A kernel
 * lock dies with the process holding it, so a killed command never leaves a
 * lock behind for others to wait out or to guess stale.
 */
#include <errno.h>
#include <sys/file.h>
#include "kata-native.h"

/* tryLock(fd) -> 0 when the exclusive lock is ours, else the errno (EWOULDBLOCK while another holds it). */
static napi_value TryLock(napi_env env, napi_callback_info info) {
  uint32_t fd;
  if (numeric_args(env, info, "tryLock(fd): fd must be a number", &fd, 1) != 0) return NULL;
  int rc;
  do {
    rc = flock((int)fd, LOCK_EX | LOCK_NB);
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
