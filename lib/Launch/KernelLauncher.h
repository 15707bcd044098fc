//===- KernelLauncher.h - launching one kernel of a kernel set --*- C++ -*-===//
//
// Part of attnc. Private to the launch library (lib/Launch): one launcher
// per kernel kind of the ABI (attention, linear, elementwise), each running
// the kernel's launch sequence from its abi::Kernel record.
//
//===----------------------------------------------------------------------===//
#ifndef ATTNC_LAUNCH_KERNELLAUNCHER_H
#define ATTNC_LAUNCH_KERNELLAUNCHER_H

#include "attnc/Abi/TensorChecks.h"

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
std::unique_ptr<KernelLauncher> makeElementwiseLauncher(KernelSignature sig,
                                                        abi::Kernel kernel,
                                                        KernelImages images,
                                                        InputChecks checks);

} // namespace attnc::rt

#endif // ATTNC_LAUNCH_KERNELLAUNCHER_H
