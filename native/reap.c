/*
 * waitpid(pid, WNOHANG) for one given pid: the guest agent is PID 1, and
 * reaps the zombies libuv does not know (container inits reparented to it,
 * orphans of containers). Never waitpid(-1): that would steal libuv's children.
 */
#include <errno.h>
#include <sys/types.h>
#include <sys/wait.h>
#include "kata-native.h"

/* reap(pid) -> the wait status when the zombie was reaped, -1 when pid is not a zombie child of ours. */
static napi_value Reap(napi_env env, napi_callback_info info) {
  uint32_t pid;
  if (numeric_args(env, info, "reap(pid): pid must be a number", &pid, 1) != 0) return NULL;
  int status = 0;
  pid_t got;
  do {
    got = waitpid((pid_t)pid, &status, WNOHANG);
  } while (got < 0 && errno == EINTR);
  napi_value result;
  CHECK(napi_create_int32(env, got == (pid_t)pid ? status : -1, &result));
  return result;
}

void register_reap(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
    METHOD("reap", Reap),
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
}
