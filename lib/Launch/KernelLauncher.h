//===- KernelLauncher.h - launching one kernel of a kernel set --*- C++ -*-===//
//
// Part of attnc. Private to the launch library (lib/Launch): one launcher
// per kernel kind of the ABI (attention, its backward, linear, elementwise),
// each running the kernel's launch sequence from its abi::Kernel record.
//
//===----------------------------------------------------------------------===//
#ifndef ATTNC_LAUNCH_KERNELLAUNCHER_H
#define ATTNC_LAUNCH_KERNELLAUNCHER_H

#include "attnc/Abi/TensorChecks.h"

#include <map>
#include <memory>

namespace attnc::rt {

/// The files of a kernel: the PTX (NUL-terminated) and the cubin (may be
/// empty; the PTX is loaded where it does not run).
struct KernelImages {
  std::string ptx, cubin;
};

class KernelLauncher {
public:
  KernelLauncher(KernelSignature sig, abi::Kernel kernel, KernelImages images,
                 InputChecks checks);
  virtual ~KernelLauncher();
  const KernelSignature &signature() const { return sig; }
  const abi::Kernel &record() const { return kernel; }
  /// Checks `inputs` and `outputs` against the signature and runs the
  /// launch sequence on `stream` in the current context.
  virtual llvm::Error launch(llvm::ArrayRef<TensorRef> inputs,
                             llvm::ArrayRef<TensorRef> outputs,
                             void *stream) = 0;

protected:
  /// Loads the module into the current context (cubin, else PTX) and looks
  /// up `function`, opting it in to `sharedBytes` of dynamic shared memory.
  llvm::Error loadFunction(void *&module, void *&fn, llvm::StringRef function,
                           int64_t sharedBytes);

  KernelSignature sig;
  abi::Kernel kernel;
  KernelImages images;
  InputChecks checks;
};

/// A launch's tensors and scalars by kernel-argument name.
struct NamedArgs {
  std::map<std::string, TensorRef> tensors;
  std::map<std::string, int64_t> scalars;
};

/// Packs the arguments of `l` found by name in `args` and launches `fn` on
/// `stream` over the grid `size` evaluates. Tensors are flat 1-D memrefs,
/// except captures and their gradients with `shapedCaptures` (passed with
/// the view's sizes and strides). Errors name `kernel`.
llvm::Error
launchByName(llvm::StringRef kernel, void *fn, const abi::Launch &l,
             const NamedArgs &args,
             llvm::function_ref<int64_t(const abi::SizeExpr &)> size,
             bool shapedCaptures, void *stream);

/// A [B, H, N, D] operand of an attention kernel: a contiguous head dim,
/// strides that are multiples of 8 elements and 16-byte alignment (16-byte
/// vector loads and TMA). Errors name `kernel` and `name`.
llvm::Error checkHeadLayout(llvm::StringRef kernel, llvm::StringRef name,
                            const TensorRef &t);
/// `t` is contiguous.
llvm::Error checkContiguous(llvm::StringRef kernel, llvm::StringRef name,
                            const TensorRef &t);

/// The launcher of `kernel` (of a kernel set for `target`); an error when
/// its record lacks what the kind needs (a linear kernel's signature).
llvm::Expected<std::unique_ptr<KernelLauncher>>
makeLauncher(abi::Kernel kernel, llvm::StringRef target, KernelImages images);

std::unique_ptr<KernelLauncher> makeAttentionLauncher(KernelSignature sig,
                                                      abi::Kernel kernel,
                                                      KernelImages images,
                                                      InputChecks checks);
std::unique_ptr<KernelLauncher> makeLinearLauncher(KernelSignature sig,
                                                   abi::Kernel kernel,
                                                   KernelImages images,
                                                   InputChecks checks);
/// The backward's launcher; an error when the signature does not list the
/// kernel's tensors (q, k, v, captures, o, lse, do; dq, dk, dv, capture
/// gradients).
llvm::Expected<std::unique_ptr<KernelLauncher>>
makeAttentionGradLauncher(KernelSignature sig, abi::Kernel kernel,
                          KernelImages images, InputChecks checks);
std::unique_ptr<KernelLauncher> makeElementwiseLauncher(KernelSignature sig,
                                                        abi::Kernel kernel,
                                                        KernelImages images,
                                                        InputChecks checks);

} // namespace attnc::rt

#endif // ATTNC_LAUNCH_KERNELLAUNCHER_H
