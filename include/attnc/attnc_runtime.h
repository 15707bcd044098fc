/*===- attnc_runtime.h - the attnc launch library's C API -------------------===
 *
 * Part of attnc. libattnc_runtime.so launches compiled kernel sets (an
 * attn-aot directory, a JIT cache entry, or a manifest and images in
 * memory): it reads manifest.json with the one ABI reader, loads the
 * PTX/cubin through the CUDA driver (dlopen'd), checks every tensor against
 * the kernel's signature, packs the arguments, encodes TMA tensor maps
 * (cached per pointer, shape and strides), allocates workspaces in stream
 * order and launches the kernel sequence (block map, feature kernel, main
 * kernel, reductions). It links neither LLVM nor MLIR dynamically.
 *
 * Users: the C++ JIT (libattnc.so), the AOT launcher attn-aot writes, the
 * Python package (ctypes) and its torch.library ops.
 *
 * Every function that can fail returns 0 on success and nonzero on failure;
 * attnc_rt_last_error() then says why (per thread, until the next failing
 * call on that thread). Nothing aborts the process on bad input.
 *
 *===------------------------------------------------------------------------===*/
#ifndef ATTNC_ATTNC_RUNTIME_H
#define ATTNC_ATTNC_RUNTIME_H

#include <stddef.h>
#include <stdint.h>

#if defined(__GNUC__)
#define ATTNC_RT_API __attribute__((visibility("default")))
#else
#define ATTNC_RT_API
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* Element types (attnc::DType). */
enum {
  ATTNC_F32 = 0,
  ATTNC_F16 = 1,
  ATTNC_BF16 = 2,
  ATTNC_I1 = 3,
  ATTNC_I8 = 4,
  ATTNC_I32 = 5,
  ATTNC_I64 = 6
};

/* A tensor view. `strides` (in elements) may be NULL for contiguous. */
typedef struct attnc_tensor {
  void *data;
  int32_t dtype;
  int32_t rank;
  const int64_t *shape;
  const int64_t *strides;
} attnc_tensor;

/* A loaded kernel set and one of its kernels (owned by the module). */
typedef struct attnc_rt_module attnc_rt_module;
typedef struct attnc_rt_kernel attnc_rt_kernel;

/* A file of a kernel set held in memory (a PTX text or a cubin). */
typedef struct attnc_rt_image {
  const char *name;
  const void *data;
  size_t size;
} attnc_rt_image;

/* "attnc_runtime <version>". */
ATTNC_RT_API const char *attnc_rt_version(void);

/* Why the last failing call on this thread failed ("" if none did). */
ATTNC_RT_API const char *attnc_rt_last_error(void);

/* 1 when the CUDA driver loads and initializes; else 0 (why: last error). */
ATTNC_RT_API int attnc_rt_cuda_available(void);

/* Loads `directory`/manifest.json and the files it names. */
ATTNC_RT_API int attnc_rt_module_load(const char *directory,
                                      attnc_rt_module **out);

/* A kernel set from memory: `manifest` is manifest.json's text, `images`
 * the files it names. `directory` (may be NULL) is only reported. */
ATTNC_RT_API int attnc_rt_module_create(const char *manifest,
                                        const attnc_rt_image *images,
                                        int32_t num_images,
                                        const char *directory,
                                        attnc_rt_module **out);

/* Frees the module and its kernels. Loaded CUDA modules stay loaded in
 * their contexts until those are destroyed. */
ATTNC_RT_API void attnc_rt_module_destroy(attnc_rt_module *m);

/* "sm_80" or "sm_90a". */
ATTNC_RT_API const char *attnc_rt_module_target(const attnc_rt_module *m);
ATTNC_RT_API int32_t attnc_rt_module_num_kernels(const attnc_rt_module *m);
/* NULL when `index` is out of range. */
ATTNC_RT_API attnc_rt_kernel *attnc_rt_module_kernel(attnc_rt_module *m,
                                                     int32_t index);

ATTNC_RT_API const char *attnc_rt_kernel_name(const attnc_rt_kernel *k);

/* The kernel as JSON: its manifest record (kind, dtype, heads, tiles,
 * variant, launches, ...) with "signature": {"inputs", "outputs"}, each
 * [{"name", "dtype", "shape"}] (-1: dynamic), and "input_names". */
ATTNC_RT_API const char *attnc_rt_kernel_info(const attnc_rt_kernel *k);

/* Runs the kernel on the current CUDA context and `stream` (a CUstream;
 * NULL: the default stream). Inputs and outputs in the signature's order;
 * shapes, dtypes, strides and alignment are checked first, and nothing runs
 * when they are wrong. Never synchronizes. */
ATTNC_RT_API int attnc_rt_kernel_launch(attnc_rt_kernel *k,
                                        const attnc_tensor *inputs,
                                        int32_t num_inputs,
                                        const attnc_tensor *outputs,
                                        int32_t num_outputs, void *stream);

/* The same with the tensors packed into one array, for callers where each
 * call into C costs (Python): for every input, then every output, in order,
 * the words  data_pointer, dtype, rank, rank sizes, rank strides. */
ATTNC_RT_API int attnc_rt_kernel_launch_packed(attnc_rt_kernel *k,
                                               const int64_t *words,
                                               int64_t num_words, void *stream);

/* Device helpers (CUDA driver API): make device `ordinal`'s primary context
 * current; the current device's attnc target ("sm_80", "sm_90a"); memory. */
ATTNC_RT_API int attnc_rt_use_device(int32_t ordinal);
ATTNC_RT_API int attnc_rt_current_target(char *buf, size_t len);
ATTNC_RT_API int attnc_rt_alloc(size_t bytes, void **out);
ATTNC_RT_API int attnc_rt_free(void *ptr);
ATTNC_RT_API int attnc_rt_alloc_async(size_t bytes, void *stream, void **out);
ATTNC_RT_API int attnc_rt_free_async(void *ptr, void *stream);
ATTNC_RT_API int attnc_rt_copy_to_device(void *dst, const void *src,
                                         size_t bytes);
ATTNC_RT_API int attnc_rt_copy_to_host(void *dst, const void *src,
                                       size_t bytes);
ATTNC_RT_API int attnc_rt_synchronize(void);

#ifdef __cplusplus
}
#endif

#endif /* ATTNC_ATTNC_RUNTIME_H */
