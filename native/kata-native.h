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

/* One entry of a property table: a JS method backed by a C function. */
#define METHOD(name, fn) {name, NULL, fn, NULL, NULL, NULL, napi_default, NULL}

/* Throws an Error "<what>: <strerror>" with an errno property; returns NULL. */
napi_value throw_errno(napi_env env, const char *what, int err);
/* An Error value (not thrown) of the same shape, for promise rejections. */
napi_value errno_error(napi_env env, const char *what, int err);
/* Reads argument `index` as uint32; -1 when missing or not a number. */
int uint32_arg(napi_env env, napi_callback_info info, size_t index, uint32_t *out);
/* Reads the first `count` arguments as uint32; on a bad one throws a TypeError with `usage` and returns -1. */
int numeric_args(napi_env env, napi_callback_info info, const char *usage, uint32_t *out, size_t count);

void register_vsock(napi_env env, napi_value exports);
void register_terminal(napi_env env, napi_value exports);
void register_fd_message(napi_env env, napi_value exports);
void register_reap(napi_env env, napi_value exports);
void register_flock(napi_env env, napi_value exports);
void register_crng_seed(napi_env env, napi_value exports);
void register_clock(napi_env env, napi_value exports);
void register_remove_tree(napi_env env, napi_value exports);
#endif
