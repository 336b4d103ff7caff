/*
 * Reseeds the guest kernel's random number generator from bytes the host
 * sends (Kata's ReseedRandomDev): VMs restored from one template start with
 * the same generator state, which must not stay the same. The bytes are
 * credited as entropy (RNDADDENTROPY) and the generator reseeds at once
 * (RNDRESEEDCRNG) instead of at its next interval.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/random.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>
#include "kata-native.h"

static napi_value ReseedCrng(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  bool is_buffer = false;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1 || napi_is_buffer(env, argv[0], &is_buffer) != napi_ok || !is_buffer) {
    napi_throw_type_error(env, NULL, "reseedCrng(data): data must be a Buffer");
    return NULL;
  }
  void *data;
  size_t length;
  CHECK(napi_get_buffer_info(env, argv[0], &data, &length));
  if (length == 0 || length > 4096) {
    napi_throw_range_error(env, NULL, "reseedCrng(data): 1 to 4096 bytes");
    return NULL;
  }
  struct rand_pool_info *pool = malloc(sizeof *pool + length);
  if (pool == NULL) return throw_errno(env, "reseedCrng", ENOMEM);
  pool->entropy_count = (int)(length * 8);
  pool->buf_size = (int)length;
  memcpy(pool->buf, data, length);
  int fd = open("/dev/random", O_WRONLY | O_CLOEXEC);
  int err = 0;
  if (fd < 0) err = errno;
  else if (ioctl(fd, RNDADDENTROPY, pool) != 0 || ioctl(fd, RNDRESEEDCRNG) != 0) err = errno;
  if (fd >= 0) close(fd);
  explicit_bzero(pool->buf, length);
  free(pool);
  if (err != 0) return throw_errno(env, "reseedCrng: /dev/random", err);
  return NULL;
}

void register_crng_seed(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
    METHOD("reseedCrng", ReseedCrng),
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
}
