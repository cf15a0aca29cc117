/* The two syscalls Node's fs lacks and a container rootfs needs: fsetxattr (file capabilities such as
 * ping's security.capability) and mknod (fifos and device nodes). Built as an N-API addon (ABI-stable
 * across Node versions) by native-ops.ts. Each function returns 0 or the errno; it never throws. */
#define NAPI_VERSION 8
#include <node_api.h>
#include <errno.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>

/* fsetxattr(fd: number, name: Buffer (NUL-terminated), value: Buffer) -> errno */
static napi_value js_fsetxattr(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3], out;
  int32_t fd = -1;
  void *name = NULL, *value = NULL;
  size_t name_len = 0, value_len = 0;
  int err = EINVAL;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) == napi_ok && argc == 3 &&
      napi_get_value_int32(env, argv[0], &fd) == napi_ok &&
      napi_get_buffer_info(env, argv[1], &name, &name_len) == napi_ok &&
      napi_get_buffer_info(env, argv[2], &value, &value_len) == napi_ok && name_len > 0 &&
      ((char *)name)[name_len - 1] == 0) {
    err = fsetxattr(fd, (const char *)name, value, value_len, 0) == 0 ? 0 : errno;
  }
  napi_create_int32(env, err, &out);
  return out;
}

/* mknod(path: Buffer (NUL-terminated), mode: number incl. S_IF* bits, major, minor) -> errno.
 * mknod never follows a symlink in the last component: an existing one gives EEXIST. */
static napi_value js_mknod(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4], out;
  void *path = NULL;
  size_t path_len = 0;
  uint32_t mode = 0, major_ = 0, minor_ = 0;
  int err = EINVAL;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) == napi_ok && argc == 4 &&
      napi_get_buffer_info(env, argv[0], &path, &path_len) == napi_ok &&
      napi_get_value_uint32(env, argv[1], &mode) == napi_ok &&
      napi_get_value_uint32(env, argv[2], &major_) == napi_ok &&
      napi_get_value_uint32(env, argv[3], &minor_) == napi_ok && path_len > 0 &&
      ((char *)path)[path_len - 1] == 0) {
    err = mknod((const char *)path, (mode_t)mode, makedev(major_, minor_)) == 0 ? 0 : errno;
  }
  napi_create_int32(env, err, &out);
  return out;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
    { "fsetxattr", NULL, js_fsetxattr, NULL, NULL, NULL, napi_default, NULL },
    { "mknod", NULL, js_mknod, NULL, NULL, NULL, napi_default, NULL },
  };
  napi_define_properties(env, exports, 2, props);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
