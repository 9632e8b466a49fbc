// glibc's malloc_trim(0) for Node: hands the free pages inside every malloc arena back to
// the system (madvise MADV_DONTNEED), which free()'s own trimming cannot: it only shrinks
// an arena from its top. Memory that native code (sharp/libvips, onnxruntime, Node's
// buffers) freed after a burst then leaves RSS instead of staying with the process.
// N-API only (node_api.h), so one build serves every Node version. Built at install by
// bin/build-native.mjs; src/server/memory/release.ts runs without it when it is absent.
#include <malloc.h>
#include <node_api.h>
#include <stdlib.h>

typedef struct {
  napi_async_work work;
  napi_deferred deferred;
  int released;
} TrimJob;

// On a libuv threadpool thread: trimming walks every arena and can take a while when there
// is much to give back (tens of ms for 100 MB), which must not stall the event loop.
static void Execute(napi_env env, void* data) {
  TrimJob* job = (TrimJob*)data;
  job->released = malloc_trim(0);
}

static void Complete(napi_env env, napi_status status, void* data) {
  TrimJob* job = (TrimJob*)data;
  napi_value out;
  napi_get_boolean(env, status == napi_ok && job->released != 0, &out);
  napi_resolve_deferred(env, job->deferred, out);
  napi_delete_async_work(env, job->work);
  free(job);
}

// trim(): a promise of whether any memory was returned to the system.
static napi_value Trim(napi_env env, napi_callback_info info) {
  napi_value promise, name;
  TrimJob* job = (TrimJob*)calloc(1, sizeof(TrimJob));
  if (job == NULL) {
    napi_throw_error(env, NULL, "malloc-trim: out of memory");
    return NULL;
  }
  napi_create_promise(env, &job->deferred, &promise);
  napi_create_string_utf8(env, "mallocTrim", NAPI_AUTO_LENGTH, &name);
  napi_create_async_work(env, NULL, name, Execute, Complete, job, &job->work);
  napi_queue_async_work(env, job->work);
  return promise;
}

NAPI_MODULE_INIT() {
  napi_value fn;
  napi_create_function(env, "trim", NAPI_AUTO_LENGTH, Trim, NULL, &fn);
  napi_set_named_property(env, exports, "trim", fn);
  return exports;
}
