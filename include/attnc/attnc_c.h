/*===- attnc_c.h - the attnc C API ------------------------------------------===
 *
 * Part of attnc. A C interface over the C++ JIT API (attnc/attnc.h), for
 * Python (ctypes) and other languages. libattnc.so exports it.
 *
 * Every function that can fail returns 0 on success and nonzero on failure,
 * and then writes a NUL-terminated message into `err` (at most `errlen`
 * bytes, when `err` is not NULL). No function aborts the process on bad
 * input.
 *
 *===------------------------------------------------------------------------===*/
#ifndef ATTNC_ATTNC_C_H
#define ATTNC_ATTNC_C_H

#include "attnc/attnc_runtime.h"

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct attnc_compiler attnc_compiler;
typedef struct attnc_kernel attnc_kernel;

/* Element types and attnc_tensor: attnc_runtime.h (the launch library,
 * which libattnc.so links). */

/* "attnc <version> (<revision>, MLIR <version>)". */
const char *attnc_version(void);

/* 1 when the CUDA driver loads and initializes; else 0 and why in `err`. */
int attnc_cuda_available(char *err, size_t errlen);

/* A compiler with a disk cache in `cache_dir` (NULL: the default,
 * $ATTNC_CACHE_DIR, $XDG_CACHE_HOME/attnc or ~/.cache/attnc; "": no disk
 * cache). Never fails. */
attnc_compiler *attnc_compiler_create(const char *cache_dir);
void attnc_compiler_destroy(attnc_compiler *c);

/* Compiles `spec` (MLIR text) for `target` ("cpu", "sm_80", "sm_90a").
 * `function` may be NULL (the only function with attn operations);
 * block_q/block_kv 0 keep the schedule's tiles. */
int attnc_compile(attnc_compiler *c, const char *spec, const char *target,
                  const char *function, int64_t block_q, int64_t block_kv,
                  attnc_kernel **out, char *err, size_t errlen);

/* Cache counters: memory hits, disk hits, compiles, rebuilt entries. */
void attnc_compiler_stats(attnc_compiler *c, uint64_t out[4]);

/* The kernel's signature as JSON:
 * {"name", "target", "directory", "inputs": [{"name","dtype","shape"}],
 *  "outputs": [...]} (dynamic dims are -1). Valid while the kernel lives. */
const char *attnc_kernel_signature(attnc_kernel *k);

/* Runs the kernel (see attnc::Kernel::launch). `stream` is a CUstream for
 * GPU kernels and ignored on the CPU. */
int attnc_kernel_launch(attnc_kernel *k, const attnc_tensor *inputs,
                        int32_t num_inputs, const attnc_tensor *outputs,
                        int32_t num_outputs, void *stream, char *err,
                        size_t errlen);

/* GPU kernels: the kernel in the launch library (attnc_runtime.h) that
 * attnc_kernel_launch runs, valid while `k` lives; NULL for CPU kernels and
 * programs of several attn ops. Launching it directly skips libattnc. */
attnc_rt_kernel *attnc_kernel_runtime(attnc_kernel *k);

void attnc_kernel_release(attnc_kernel *k);

#ifdef __cplusplus
}
#endif

#endif /* ATTNC_ATTNC_C_H */
