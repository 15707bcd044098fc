//===- attnc.h - the attnc C++ JIT API ------------------------------------===//
//
// Part of attnc. Compile an attention spec (the `attn` dialect) for the CPU or
// a GPU target and launch it:
//
//   attnc::Compiler compiler;                      // cache:
//   $XDG_CACHE_HOME/attnc attnc::CompileOptions opts; opts.target = "sm_90a";
//   // or "sm_80", "cpu" auto kernel = compiler.compileFile("causal.mlir",
//   opts); if (!kernel) { llvm::errs() << toString(kernel.takeError()); ... }
//   llvm::Error e = (*kernel)->launch({q, k, v}, {o}, stream);
//
// Compiled kernels are cached in memory and on disk, keyed by a hash of the
// canonical spec, the target, the tile overrides and the compiler version. The
// CUDA driver is loaded with dlopen on first use: without a driver, GPU
// launches return an error and nothing else changes.
//
//===----------------------------------------------------------------------===//
#ifndef ATTNC_ATTNC_H
#define ATTNC_ATTNC_H

#include "llvm/ADT/SmallVector.h"
#include "llvm/ADT/StringRef.h"
#include "llvm/Support/Error.h"

#include <cstdint>
#include <memory>
#include <string>

struct attnc_rt_kernel;

namespace attnc {

/// Element types of kernel parameters. The values are part of the C API.
enum class DType : int {
  F32 = 0,
  F16 = 1,
  BF16 = 2,
  I1 = 3,
  I8 = 4,
  I32 = 5,
  I64 = 6
};
llvm::StringRef dtypeName(DType t);
/// Bytes per element (i1 is stored as one byte).
int64_t dtypeSize(DType t);

/// A view of a tensor: `data` is a host pointer for CPU kernels and a device
/// pointer (CUdeviceptr) for GPU kernels. Strides count elements; empty
/// strides mean contiguous row-major.
struct TensorRef {
  void *data = nullptr;
  DType dtype = DType::F32;
  llvm::SmallVector<int64_t, 4> shape;
  llvm::SmallVector<int64_t, 4> strides;
};

/// One parameter of a kernel; -1 marks a dynamic dimension.
struct ParamInfo {
  std::string name;
  DType dtype = DType::F32;
  llvm::SmallVector<int64_t, 4> shape;
};

struct KernelSignature {
  std::string name;
  std::string target;
  /// q, k, v, then captured tensors, in the spec function's argument order.
  llvm::SmallVector<ParamInfo, 4> inputs;
  /// o, then lse when the spec returns it.
  llvm::SmallVector<ParamInfo, 2> outputs;
};

/// A compiled kernel. Thread-compatible: launches from several threads need
/// external synchronization.
class Kernel {
public:
  virtual ~Kernel();
  const KernelSignature &signature() const { return sig; }
  /// Runs the kernel. GPU kernels take device pointers and a CUstream (null:
  /// the default stream) and need a current CUDA context; they accept any
  /// strides with a contiguous head dim (multiples of 8 elements, 16-byte
  /// aligned pointers). CPU kernels take host pointers, ignore `stream` and
  /// accept contiguous inputs and any output strides. Shapes, dtypes and
  /// strides are checked first; nothing runs when they are wrong.
  virtual llvm::Error launch(llvm::ArrayRef<TensorRef> inputs,
                             llvm::ArrayRef<TensorRef> outputs,
                             void *stream = nullptr) = 0;
  /// GPU kernels: the AOT directory holding the cubin and manifest.json (in
  /// the disk cache; empty when the disk cache is off).
  llvm::StringRef directory() const { return dir; }
  /// GPU kernels: the kernel in the launch library (attnc/attnc_runtime.h)
  /// that `launch` runs, valid while this kernel lives; null for CPU
  /// kernels and programs of several attn ops.
  virtual attnc_rt_kernel *runtimeKernel() const { return nullptr; }

protected:
  KernelSignature sig;
  std::string dir;
};

struct CompileOptions {
  /// "cpu", "sm_80" or "sm_90a".
  std::string target = "cpu";
  /// Tile overrides (0: the schedule's choice).
  int64_t blockQ = 0, blockKv = 0;
  /// The spec function to compile; empty: the only one with attn.attention.
  std::string function;
};

struct CacheStats {
  unsigned memoryHits = 0, diskHits = 0, compiles = 0;
  /// Disk entries found corrupt or stale and rebuilt.
  unsigned rebuilt = 0;
};

class Compiler {
public:
  struct Options {
    /// Cache directory; empty: $ATTNC_CACHE_DIR, else $XDG_CACHE_HOME/attnc,
    /// else $HOME/.cache/attnc. It is created with mode 0700; one owned by
    /// another user or writable by group or others is refused (compile
    /// returns an error).
    std::string cacheDir;
    bool diskCache = true;
    bool memoryCache = true;
    /// Size cap of the disk cache in bytes: beyond it the least recently
    /// used entries are evicted. 0: $ATTNC_CACHE_MAX_BYTES, else 2 GiB.
    uint64_t cacheMaxBytes = 0;
    /// Kernels kept in the memory cache (least recently used dropped; a
    /// kernel a caller still holds lives on). 0:
    /// $ATTNC_MEMORY_CACHE_ENTRIES, else 64.
    unsigned memoryCacheEntries = 0;
  };
  Compiler();
  explicit Compiler(Options options);
  ~Compiler();
  Compiler(const Compiler &) = delete;
  Compiler &operator=(const Compiler &) = delete;

  /// Compiles `spec` (MLIR text). Thread-safe.
  llvm::Expected<std::shared_ptr<Kernel>>
  compile(llvm::StringRef spec, const CompileOptions &options);
  llvm::Expected<std::shared_ptr<Kernel>>
  compileFile(llvm::StringRef path, const CompileOptions &options);

  CacheStats stats() const;
  /// The disk cache directory ("" when the disk cache is off).
  std::string cacheDir() const;
  /// "attnc <version> (<revision>, MLIR <version>)": part of every cache key.
  static llvm::StringRef version();

private:
  struct Impl;
  std::unique_ptr<Impl> impl;
};

/// Whether the CUDA driver can be loaded and initialized; `why` says why not.
bool cudaAvailable(std::string *why = nullptr);

/// Minimal device helpers over the same dlopen'ed driver, for programs with
/// no CUDA runtime of their own (attn-run, tests). Programs using PyTorch or
/// the CUDA runtime should use theirs.
namespace cuda {
/// Makes the primary context of device `ordinal` current on this thread.
llvm::Error useDevice(int ordinal = 0);
/// The attnc target for the current device: "sm_90a" for compute
/// capability 9.0, "sm_80" for 8.x and newer; an error for older GPUs.
llvm::Expected<std::string> currentTarget();
llvm::Expected<void *> allocate(size_t bytes);
llvm::Error release(void *ptr);
llvm::Error copyToDevice(void *dst, const void *src, size_t bytes);
llvm::Error copyToHost(void *dst, const void *src, size_t bytes);
llvm::Error synchronize();
} // namespace cuda

} // namespace attnc

#endif // ATTNC_ATTNC_H
