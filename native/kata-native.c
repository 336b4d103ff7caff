/*
 * kata-ts native addon: what Node lacks. AF_VSOCK sockets (vsock.c) and
 * terminals: pseudo-terminals, window sizes, and passing a pty master over a
 * unix socket with SCM_RIGHTS as OCI console sockets do (terminal.c).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include "kata-native.h"

napi_value errno_error(napi_env env, const char *what, int err) {
  char message[512];
  snprintf(message, sizeof message, "%s: %s", what, strerror(err));
  napi_value code, msg, error, errno_value;
  napi_create_string_utf8(env, strerror(err), NAPI_AUTO_LENGTH, &code);
  napi_create_string_utf8(env, message, NAPI_AUTO_LENGTH, &msg);
  napi_create_error(env, NULL, msg, &error);
  napi_create_int32(env, err, &errno_value);
  napi_set_named_property(env, error, "errno", errno_value);
  return error;
}

napi_value throw_errno(napi_env env, const char *what, int err) {
  napi_throw(env, errno_error(env, what, err));
  return NULL;
}

int uint32_arg(napi_env env, napi_callback_info info, size_t index, uint32_t *out) {
  size_t argc = 4;
  napi_value argv[4];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc <= index) return -1;
  return napi_get_value_uint32(env, argv[index], out) == napi_ok ? 0 : -1;
}

int numeric_args(napi_env env, napi_callback_info info, const char *usage, uint32_t *out, size_t count) {
  for (size_t i = 0; i < count; i++) {
    if (uint32_arg(env, info, i, &out[i]) != 0) {
      napi_throw_type_error(env, NULL, usage);
      return -1;
    }
  }
  return 0;
}

static napi_value Init(napi_env env, napi_value exports) {
  register_vsock(env, exports);
  register_terminal(env, exports);
  register_fd_message(env, exports);
  register_reap(env, exports);
  register_flock(env, exports);
  register_crng_seed(env, exports);
  register_clock(env, exports);
  register_remove_tree(env, exports);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, Init)
