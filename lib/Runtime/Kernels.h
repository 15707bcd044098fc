//===- Kernels.h - CPU and GPU kernels behind attnc::Kernel ---------------===//
//
// Part of attnc. Private to lib/Runtime.
//
//===----------------------------------------------------------------------===//
#ifndef ATTNC_RUNTIME_KERNELS_H
#define ATTNC_RUNTIME_KERNELS_H

#include "attnc/Abi/TensorChecks.h"
#include "attnc/Target/CpuRunner.h"
#include "attnc/attnc.h"

#include "llvm/ADT/StringMap.h"
#include "llvm/Support/JSON.h"

#include <map>
#include <mutex>

namespace attnc {

/// `t` as a DType, or an error naming it.
llvm::Expected<DType> dtypeOf(mlir::Type t);

/// A spec function JIT-compiled for the host.
class CpuKernelImpl : public Kernel {
public:
  CpuKernelImpl(KernelSignature signature,
                std::unique_ptr<mlir::attn::CpuKernel> kernel,
                bool attentionLayout, InputChecks checks);
  llvm::Error launch(llvm::ArrayRef<TensorRef> inputs,
                     llvm::ArrayRef<TensorRef> outputs, void *stream) override;

private:
  std::unique_ptr<mlir::attn::CpuKernel> kernel;
  /// The function's arguments are q, k, v, captures and its results o (lse):
  /// batch and sequence lengths are checked across them.
  bool attentionLayout;
  InputChecks checks;
};

/// The one kernel of `set` (a JIT cache entry), loaded into the launch
/// library with its files (by name); `directory` is its disk-cache entry
/// (empty when the disk cache is off).
llvm::Expected<std::shared_ptr<Kernel>>
makeGpuKernel(const abi::KernelSet &set,
              const llvm::StringMap<std::string> &files,
              llvm::StringRef directory);

/// A function of several attn ops for a GPU (MATE's layers): each attn op
/// is its own kernel; elementwise tensor arithmetic on their results
/// (addf, subf, mulf) runs as generated elementwise kernels (kernel sets of
/// kind "elementwise"); intermediate tensors live in stream-ordered
/// workspaces.
struct GpuProgram {
  /// Where a step reads or writes: an input or output of the function, or
  /// a temporary (contiguous).
  struct Ref {
    enum Kind { Input, Output, Temp } kind;
    unsigned index;
  };
  struct Temp {
    DType dtype;
    /// -1: dynamic, taken from input `like`'s dim 0 (batch) or dim 2
    /// (sequence length).
    llvm::SmallVector<int64_t, 4> shape;
    unsigned like;
  };
  struct Step {
    /// An attn op's kernel or an elementwise kernel.
    std::shared_ptr<Kernel> kernel;
    llvm::SmallVector<Ref, 4> ins, outs;
  };
  llvm::SmallVector<Temp, 4> temps;
  llvm::SmallVector<Step, 4> steps;
};

class GpuProgramImpl : public Kernel {
public:
  GpuProgramImpl(KernelSignature signature, GpuProgram program);
  llvm::Error launch(llvm::ArrayRef<TensorRef> inputs,
                     llvm::ArrayRef<TensorRef> outputs, void *stream) override;

private:
  GpuProgram program;
};

} // namespace attnc

#endif // ATTNC_RUNTIME_KERNELS_H
