/* Shared helpers of the kata-ts native addon (vsock.c, terminal.c, kata-native.c). */
#ifndef KATA_NATIVE_H
#define KATA_NATIVE_H
#include <node_api.h>

#define CHECK(call)                                                   \
  do {                                                                \
    if ((call) != napi_ok) {                                          \
      napi_throw_error(env, NULL, "kata_native: N-API call failed");  \
      return NULL;                                                    \
    }                                                                 \
  } while (0)

/* Throws an Error "<what>: <strerror>" with an errno property; returns NULL. */
napi_value throw_errno(napi_env env, const char *what, int err);
/* An Error value (not thrown) of the same shape, for promise rejections. */
napi_value errno_error(napi_env env, const char *what, int err);
/* Reads argument `index` as uint32; -1 when missing or not a number. */
int uint32_arg(napi_env env, napi_callback_info info, size_t index, uint32_t *out);

void register_vsock(napi_env env, napi_value exports);
void register_terminal(napi_env env, napi_value exports);
#endif
