/*
 * removeTree(path): rm -r that cannot be steered. Every directory is opened
 * relative to its parent's fd with O_NOFOLLOW, so an entry swapped for a
 * symlink (renameat2 RENAME_EXCHANGE by whoever can write the tree) is
 * removed as the link it is, never followed; and no mount point below is
 * entered (a bind still mounted there is reported, not emptied). Node's
 * recursive rm works on path names and follows such a swap out of the tree.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "kata-native.h"

/* Deep enough for any tree kata-ts makes; a deeper one is refused rather than recursed without bound. */
#define MAX_DEPTH 64

static int mount_id_of(int fd, unsigned long long *id) {
  struct statx stx;
  if (statx(fd, "", AT_EMPTY_PATH, STATX_MNT_ID, &stx) != 0) return -1;
  *id = stx.stx_mnt_id;
  return 0;
}

/* Removes `name` in the directory dirfd: a directory with all it holds, anything else as the entry it is. */
static int remove_entry(int dirfd, const char *name, unsigned long long mount_id, int depth) {
  if (depth > MAX_DEPTH) {
    errno = ELOOP;
    return -1;
  }
  int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return 0;
    if (errno != ENOTDIR && errno != ELOOP) return -1;
    /* Not a directory (a file, or a symlink wherever it points): the entry itself goes. */
    if (unlinkat(dirfd, name, 0) == 0 || errno == ENOENT) return 0;
    return -1;
  }
  unsigned long long here;
  if (mount_id_of(fd, &here) != 0) {
    close(fd);
    return -1;
  }
  if (here != mount_id) {
    close(fd);
    errno = EBUSY;
    return -1;
  }
  DIR *dir = fdopendir(fd);
  if (!dir) {
    close(fd);
    return -1;
  }
  int here_fd = fd;
  int failed = 0, saved = 0;
  struct dirent *entry;
  while ((entry = readdir(dir)) != NULL) {
    if (strcmp(entry->d_name, ".") == 0 || strcmp(entry->d_name, "..") == 0) continue;
    if (remove_entry(here_fd, entry->d_name, mount_id, depth + 1) != 0 && !failed) {
      failed = 1;
      saved = errno;
    }
  }
  closedir(dir);
  if (failed) {
    errno = saved;
    return -1;
  }
  if (unlinkat(dirfd, name, AT_REMOVEDIR) == 0 || errno == ENOENT) return 0;
  /* Swapped for a non-directory since we opened it: that entry goes as what it is now. */
  if (errno == ENOTDIR && unlinkat(dirfd, name, 0) == 0) return 0;
  return -1;
}

static napi_value RemoveTree(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  char path[PATH_MAX];
  size_t length = 0;
  if (argc < 1 || napi_get_value_string_utf8(env, argv[0], path, sizeof path, &length) != napi_ok || length == 0 || length >= sizeof path - 1 || path[0] != '/') {
    napi_throw_type_error(env, NULL, "removeTree(path): an absolute path expected");
    return NULL;
  }
  char parent_buf[PATH_MAX], name_buf[PATH_MAX];
  strcpy(parent_buf, path);
  strcpy(name_buf, path);
  const char *parent = dirname(parent_buf);
  const char *name = basename(name_buf);
  if (strcmp(name, "/") == 0 || strcmp(name, ".") == 0 || strcmp(name, "..") == 0) {
    napi_throw_type_error(env, NULL, "removeTree(path): a path naming an entry expected");
    return NULL;
  }
  int parent_fd = open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (parent_fd < 0) {
    if (errno == ENOENT) return NULL;
    return throw_errno(env, parent, errno);
  }
  /* The parent's mount: the tree must be on it, so a mount point is never entered, the top included. */
  unsigned long long mount_id = 0;
  int rc = mount_id_of(parent_fd, &mount_id);
  if (rc == 0) rc = remove_entry(parent_fd, name, mount_id, 0);
  int err = errno;
  close(parent_fd);
  if (rc != 0) return throw_errno(env, path, err);
  return NULL;
}

void register_remove_tree(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
    METHOD("removeTree", RemoveTree),
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
}
