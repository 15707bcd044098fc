//===- ElementwiseLaunch.cpp - launching elementwise kernels --------------===//
//
// Part of attnc. `o[i] = a[i] <op> b[i]` over flat, contiguous tensors of
// one shape: the arithmetic on attn ops' results in a program of several
// attn ops (Compiler.cpp's GPU programs).
//
//===----------------------------------------------------------------------===//

#include "Context.h"
#include "CudaDriver.h"
#include "KernelLauncher.h"
#include "LaunchParams.h"

using namespace attnc;
using namespace attnc::rt;
using llvm::ArrayRef;

namespace {
class ElementwiseLauncher : public KernelLauncher {
public:
  using KernelLauncher::KernelLauncher;
  llvm::Error launch(ArrayRef<TensorRef> inputs, ArrayRef<TensorRef> outputs,
                     void *stream) override;

private:
  struct Functions {
    void *module = nullptr, *fn = nullptr;
  };
  PerContext<Functions> perContext;
};
} // namespace

llvm::Error ElementwiseLauncher::launch(ArrayRef<TensorRef> inputs,
                                        ArrayRef<TensorRef> outputs,
                                        void *stream) {
  if (llvm::Error e = checkSignature(sig, inputs, outputs))
    return e;
  for (const TensorRef &t : llvm::concat<const TensorRef>(inputs, outputs)) {
    if (t.shape != outputs[0].shape)
      return makeError(sig.name + ": elementwise operands of shapes " +
                       shapeStr(t.shape) + " and " +
                       shapeStr(outputs[0].shape));
    if (stridesOf(t) != contiguousStrides(t.shape))
      return makeError(sig.name + ": the operands of an elementwise kernel "
                                  "must be contiguous");
  }
  int64_t n = 1;
  for (int64_t d : outputs[0].shape)
    n *= d;
  if (n == 0)
    return llvm::Error::success();
  const abi::Launch &l = kernel.elementwise;
  auto fns = perContext.get(sig.name, [&]() -> llvm::Expected<Functions> {
    Functions f;
    if (llvm::Error e = loadFunction(f.module, f.fn, l.kernel, 0))
      return std::move(e);
    return f;
  });
  if (!fns)
    return fns.takeError();
  LaunchParams params;
  for (const abi::Arg &a : l.args) {
    if (a.name == "n")
      params.push(n);
    else
      params.memref(a.name == "o" ? outputs[0] : inputs[a.name == "a" ? 0 : 1],
                    /*flat=*/true);
  }
  auto blocks = [&](const abi::SizeExpr &e) {
    return unsigned(e.var.empty() ? e.value : (n + e.value - 1) / e.value);
  };
  const cuda::Driver &drv = *cuda::driver();
  return cuda::check(
      drv.cuLaunchKernel(
          fns->fn, blocks(l.grid[0]), blocks(l.grid[1]), blocks(l.grid[2]),
          unsigned(l.block[0]), unsigned(l.block[1]), unsigned(l.block[2]), 0,
          static_cast<cuda::CUstream>(stream), params.finish(), nullptr),
      sig.name + ": launching the elementwise kernel");
}

std::unique_ptr<KernelLauncher>
attnc::rt::makeElementwiseLauncher(KernelSignature sig, abi::Kernel kernel,
                                   KernelImages images, InputChecks checks) {
  return std::unique_ptr<KernelLauncher>(new ElementwiseLauncher(
      std::move(sig), std::move(kernel), std::move(images), std::move(checks)));
}
