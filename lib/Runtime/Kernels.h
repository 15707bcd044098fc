//===- Kernels.h - CPU and GPU kernels behind attnc::Kernel ---------------===//
//
// Part of attnc. Private to lib/Runtime.
//
//===----------------------------------------------------------------------===//
#ifndef ATTNC_RUNTIME_KERNELS_H
#define ATTNC_RUNTIME_KERNELS_H

#include "attnc/Abi/KernelSet.h"
#include "attnc/Target/CpuRunner.h"
#include "attnc/attnc.h"

#include "llvm/Support/JSON.h"

#include <map>
#include <mutex>

namespace attnc {

llvm::Error makeError(const llvm::Twine &msg);

/// Shape and signature checks shared by the CPU and GPU launches.
std::string shapeStr(llvm::ArrayRef<int64_t> shape);
llvm::SmallVector<int64_t, 4> contiguousStrides(llvm::ArrayRef<int64_t> shape);
llvm::SmallVector<int64_t, 4> stridesOf(const TensorRef &t);
llvm::Error checkParam(llvm::StringRef kernel, llvm::StringRef role,
                       const ParamInfo &p, const TensorRef &t);
llvm::Error checkCounts(const KernelSignature &sig, size_t nin, size_t nout);
/// checkCounts, then checkParam for every input and output.
llvm::Error checkSignature(const KernelSignature &sig,
                           llvm::ArrayRef<TensorRef> inputs,
                           llvm::ArrayRef<TensorRef> outputs);
/// The current CUDA context of this thread; an error naming `kernel` when
/// there is none.
llvm::Expected<void *> currentContext(llvm::StringRef kernel);
/// State a GPU kernel builds once per CUDA context (its loaded module and
/// functions), kept under a lock.
template <typename T> class PerContext {
public:
  /// The state of the current context (an error naming `kernel` when there
  /// is none); `make` builds it the first time. A failure is not kept.
  llvm::Expected<T> get(llvm::StringRef kernel,
                        llvm::function_ref<llvm::Expected<T>()> make) {
    auto ctx = currentContext(kernel);
    if (!ctx)
      return ctx.takeError();
    std::lock_guard<std::mutex> lock(mu);
    auto it = values.find(*ctx);
    if (it != values.end())
      return it->second;
    llvm::Expected<T> v = make();
    if (v)
      values[*ctx] = *v;
    return v;
  }

private:
  std::mutex mu;
  std::map<void *, T> values;
};
llvm::Error checkAttentionShapes(const KernelSignature &sig,
                                 llvm::ArrayRef<TensorRef> inputs,
                                 llvm::ArrayRef<TensorRef> outputs);

/// `t` as a DType, or an error naming it.
llvm::Expected<DType> dtypeOf(mlir::Type t);
llvm::Expected<DType> dtypeFromName(llvm::StringRef name);

/// Checks on input values and lengths that the types cannot express.
struct InputChecks {
  /// Inputs holding log-gates of a decay: every value must be <= 0.
  llvm::SmallVector<unsigned> logGates;
  /// (input, dim, length): a token order fixes a sequence length.
  llvm::SmallVector<std::tuple<unsigned, unsigned, int64_t>> lengths;
  /// (input, dim, input, dim): sizes the op's semantics ties together
  /// (batch and sequence lengths of q, k, v, gates and states).
  llvm::SmallVector<std::array<unsigned, 4>> equalDims;
  /// A captured tensor indexed by the spec with i, j, b or h (possibly
  /// divided by a constant): dim `dim` of `input` needs at least
  /// ceil(size(refInput, refDim) / divisor) elements.
  struct MinExtent {
    unsigned input, dim, refInput, refDim;
    int64_t divisor;
  };
  llvm::SmallVector<MinExtent> minExtents;
};

/// The checks as the ABI writes them, and back.
abi::ValueChecks abiChecks(const InputChecks &c);
InputChecks inputChecksOf(const abi::ValueChecks &c);
/// `sig` in the ABI with its input names (the kernel-argument names),
/// constant decays and value checks.
abi::Signature abiSignature(const KernelSignature &sig,
                            llvm::ArrayRef<std::string> inputNames,
                            llvm::ArrayRef<float> constDecay,
                            const InputChecks &checks);
/// The parameters of an ABI signature as the signature of kernel `name`.
llvm::Expected<KernelSignature> kernelSignature(const abi::Signature &s,
                                                llvm::StringRef name,
                                                llvm::StringRef target);

/// The checks above, on the launch's inputs (value checks only with host
/// data).
llvm::Error checkInputValues(const KernelSignature &sig,
                             const InputChecks &checks,
                             llvm::ArrayRef<TensorRef> inputs, bool host);

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

/// A generated GPU kernel: cubin (or PTX) plus what the manifest says.
class GpuKernelImpl : public Kernel {
public:
  /// `cubin` may be empty; the PTX is loaded where the cubin does not run.
  GpuKernelImpl(KernelSignature signature, abi::Kernel kernel,
                std::string cubin, std::string ptx, std::string directory,
                InputChecks checks);
  llvm::Error launch(llvm::ArrayRef<TensorRef> inputs,
                     llvm::ArrayRef<TensorRef> outputs, void *stream) override;

private:
  struct Functions {
    void *module = nullptr, *fn = nullptr, *mapFn = nullptr;
  };
  llvm::Expected<Functions> functions();

  /// An attention kernel.
  abi::Kernel kernel;
  std::string cubin;
  std::string ptx; // NUL-terminated
  InputChecks checks;
  PerContext<Functions> perContext;
};

/// A linear-attention / scan kernel of convert-attn-linear-to-gpu, launched
/// from its ABI (docs/linear-gpu.md): the feature kernel first when the spec
/// has one, workspaces and scratch allocated in stream order per launch.
class GpuLinearKernelImpl : public Kernel {
public:
  /// `abiSig`: the kernel-argument name of each input, the per-head decays
  /// when the spec's decay is a constant (uploaded once per context) and the
  /// value checks; `directory`: its disk-cache entry, which `attnc.load`
  /// reads (empty when the disk cache is off).
  GpuLinearKernelImpl(KernelSignature signature, abi::LinearKernel abi,
                      const abi::Signature &abiSig, std::string ptx,
                      std::string directory);
  llvm::Error launch(llvm::ArrayRef<TensorRef> inputs,
                     llvm::ArrayRef<TensorRef> outputs, void *stream) override;

private:
  struct Functions {
    void *module = nullptr, *fn = nullptr, *phiFn = nullptr;
    /// Device copy of constDecay.
    void *decay = nullptr;
  };
  llvm::Expected<Functions> functions();

  abi::LinearKernel abi;
  std::string ptx; // NUL-terminated
  std::vector<std::string> inputNames;
  std::vector<float> constDecay;
  InputChecks checks;
  PerContext<Functions> perContext;
};

/// A function of several attn ops for a GPU (MATE's layers): each attn op
/// is its own kernel; elementwise tensor arithmetic on their results
/// (addf, subf, mulf) runs as generated elementwise kernels; intermediate
/// tensors live in stream-ordered workspaces.
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
    /// An attn op's kernel, or (null) an elementwise step.
    std::shared_ptr<Kernel> kernel;
    /// Elementwise: the kernel's PTX (NUL-terminated) and name.
    std::string ptx, name;
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
  std::mutex mu;
  /// (context, step) -> elementwise function.
  std::map<std::pair<void *, size_t>, void *> functions;
};

/// Parameters as JSON: [{"name", "dtype", "shape"}] (the C API's signature
/// and the disk cache's CPU entries).
llvm::json::Array paramsJson(llvm::ArrayRef<ParamInfo> params);

/// The signature of an attention kernel.
KernelSignature gpuSignature(const abi::Kernel &kernel, llvm::StringRef target);

} // namespace attnc

#endif // ATTNC_RUNTIME_KERNELS_H
