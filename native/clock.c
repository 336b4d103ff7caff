/*
 * clock_settime(CLOCK_REALTIME) for the guest agent's SetGuestDateTime: a VM
 * restored from a template wakes with the template's clock, and the host sets
 * it at once. Spawning date(1) took 0.2-0.3 s under TCG and kept whole seconds.
 */
#include <errno.h>
#include <time.h>
#include "kata-native.h"

/* setRealtime(seconds, microseconds): both as numbers (seconds may exceed 32 bits). */
static napi_value SetRealtime(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  int64_t seconds = 0;
  int64_t micros = 0;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 2 || napi_get_value_int64(env, argv[0], &seconds) != napi_ok || napi_get_value_int64(env, argv[1], &micros) != napi_ok ||
      seconds < 0 || micros < 0 || micros >= 1000000) {
    napi_throw_type_error(env, NULL, "setRealtime(seconds, microseconds): seconds >= 0, 0 <= microseconds < 1000000");
    return NULL;
  }
  struct timespec ts = { .tv_sec = (time_t)seconds, .tv_nsec = (long)(micros * 1000) };
  if (clock_settime(CLOCK_REALTIME, &ts) != 0) return throw_errno(env, "clock_settime", errno);
  return NULL;
}

void register_clock(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
    METHOD("setRealtime", SetRealtime),
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
}
