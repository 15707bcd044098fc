//===- LinearLaunch.cpp - launching linear-attention and scan kernels -----===//
//
// Part of attnc. The launch sequence of a kernel of
// convert-attn-linear-to-gpu (docs/linear-gpu.md): the feature kernel first
// when the spec has one, workspaces and scratch allocated in stream order
// per launch, arguments found by name in the kernel's ABI.
//
//===----------------------------------------------------------------------===//

#include "Context.h"
#include "CudaDriver.h"
#include "KernelLauncher.h"

using namespace attnc;
using namespace attnc::rt;
using llvm::ArrayRef;
using llvm::StringRef;

namespace {
/// The launch variables of a linear kernel (B, H, N).
struct LinearVars {
  int64_t B, H, N;

  /// `e` at these values (the reader admits no other variables in a linear
  /// kernel's sizes).
  int64_t operator()(const abi::SizeExpr &e) const {
    if (e.var.empty())
      return e.value;
    int64_t v = e.var == "B" ? B : e.var == "H" ? H : N;
    return (v + e.value - 1) / e.value;
  }
};

/// A launch's tensors and scalars by argument name, and the stream-ordered
/// temporaries it allocated (freed by `release`).
struct LaunchState : NamedArgs {
  llvm::SmallVector<cuda::CUdeviceptr> temps;
};

class LinearLauncher : public KernelLauncher {
public:
  using KernelLauncher::KernelLauncher;
  llvm::Error launch(ArrayRef<TensorRef> inputs, ArrayRef<TensorRef> outputs,
                     void *stream) override;

private:
  struct Functions {
    void *module = nullptr, *fn = nullptr, *phiFn = nullptr;
    /// Device copy of the constant per-head decays.
    void *decay = nullptr;
  };
  llvm::Expected<Functions> functions();
  llvm::Expected<void *> uploadDecays();
  llvm::Error bindTensors(ArrayRef<TensorRef> inputs,
                          ArrayRef<TensorRef> outputs, LaunchState &st) const;
  llvm::Error allocateTemps(const LinearVars &vars, void *stream,
                            LaunchState &st) const;
  llvm::Error launchOne(void *fn, const abi::Launch &l, const LinearVars &vars,
                        const LaunchState &st, void *stream) const;
  llvm::Error release(llvm::Error e, LaunchState &st, void *stream) const;

  PerContext<Functions> perContext;
};
} // namespace

/// The spec's constant per-head decays, on the device (once per context).
llvm::Expected<void *> LinearLauncher::uploadDecays() {
  const cuda::Driver &drv = llvm::cantFail(cuda::driver());
  std::vector<float> decays(kernel.signature->constDecay.begin(),
                            kernel.signature->constDecay.end());
  cuda::CUdeviceptr p = 0;
  size_t bytes = decays.size() * sizeof(float);
  if (llvm::Error e = cuda::check(drv.cuMemAlloc(&p, bytes),
                                  sig.name + ": allocating the decays"))
    return std::move(e);
  if (llvm::Error e = cuda::check(drv.cuMemcpyHtoD(p, decays.data(), bytes),
                                  sig.name + ": copying the decays"))
    return std::move(e);
  return reinterpret_cast<void *>(p);
}

llvm::Expected<LinearLauncher::Functions> LinearLauncher::functions() {
  return perContext.get(sig.name, [&]() -> llvm::Expected<Functions> {
    Functions f;
    const abi::LinearKernel &lk = kernel.linear;
    if (llvm::Error e = loadFunction(f.module, f.fn, lk.main.kernel,
                                     lk.main.dynamicSharedBytes))
      return std::move(e);
    if (lk.featureKernel)
      if (llvm::Error e =
              loadFunction(f.module, f.phiFn, lk.featureKernel->kernel, 0))
        return std::move(e);
    if (!kernel.signature->constDecay.empty()) {
      auto d = uploadDecays();
      if (!d)
        return d.takeError();
      f.decay = *d;
    }
    return f;
  });
}

/// The inputs and outputs by argument name, and B, N and the (b, h, n)
/// strides of q, k, v, o and the gates (read with a contiguous last dim;
/// the states are read flat).
llvm::Error LinearLauncher::bindTensors(ArrayRef<TensorRef> inputs,
                                        ArrayRef<TensorRef> outputs,
                                        LaunchState &st) const {
  for (auto [n, t] : llvm::zip(kernel.signature->inputNames, inputs))
    st.tensors[n] = t;
  st.tensors["o"] = outputs[0];
  if (outputs.size() > 1)
    st.tensors["final_state"] = outputs[1];
  for (const char *n : {"initial_state", "final_state"}) {
    auto it = st.tensors.find(n);
    if (it != st.tensors.end() &&
        stridesOf(it->second) != contiguousStrides(it->second.shape))
      return makeError(sig.name + ": '" + n + "' must be contiguous");
  }
  const TensorRef &q = st.tensors["q"];
  st.scalars = {{"B", q.shape[0]}, {"N", q.shape[2]}};
  for (const char *n : {"q", "k", "v", "o", "decay"}) {
    auto it = st.tensors.find(n);
    if (it == st.tensors.end() || it->second.shape.size() < 3)
      continue;
    auto strides = stridesOf(it->second);
    if (it->second.shape.size() == 4 && strides[3] != 1)
      return makeError(sig.name + ": '" + n +
                       "' needs a contiguous last dimension");
    std::string p = StringRef(n) == "decay" ? "g" : n;
    st.scalars[p + "_stride_b"] = strides[0];
    st.scalars[p + "_stride_h"] = strides[1];
    st.scalars[p + "_stride_n"] = strides[2];
  }
  return llvm::Error::success();
}

/// The workspaces (phi_q, phi_k) and the bidirectional scratch, allocated
/// in stream order.
llvm::Error LinearLauncher::allocateTemps(const LinearVars &vars, void *stream,
                                          LaunchState &st) const {
  const cuda::Driver &drv = *cuda::driver();
  auto alloc = [&](const abi::Buffer &buf) -> llvm::Error {
    int64_t bytes = dtypeSize(llvm::cantFail(dtypeFromName(buf.dtype)));
    for (const abi::SizeExpr &d : buf.shape)
      bytes *= vars(d);
    cuda::CUdeviceptr p = 0;
    if (llvm::Error e = cuda::check(
            drv.cuMemAllocAsync(&p, size_t(bytes),
                                static_cast<cuda::CUstream>(stream)),
            sig.name + ": allocating '" + buf.name + "'"))
      return e;
    st.temps.push_back(p);
    TensorRef t;
    t.data = reinterpret_cast<void *>(p);
    t.dtype = DType::I8;
    t.shape = {bytes};
    st.tensors[buf.name] = t;
    return llvm::Error::success();
  };
  for (const abi::Buffer &w : kernel.linear.workspace)
    if (llvm::Error e = alloc(w))
      return e;
  if (kernel.linear.scratch)
    return alloc(*kernel.linear.scratch);
  return llvm::Error::success();
}

llvm::Error LinearLauncher::launchOne(void *fn, const abi::Launch &l,
                                      const LinearVars &vars,
                                      const LaunchState &st,
                                      void *stream) const {
  return launchByName(sig.name, fn, l, st, vars, /*shapedCaptures=*/false,
                      stream);
}

/// Frees the temporaries after the launches that use them (stream order).
llvm::Error LinearLauncher::release(llvm::Error e, LaunchState &st,
                                    void *stream) const {
  const cuda::Driver &drv = *cuda::driver();
  for (cuda::CUdeviceptr p : st.temps)
    if (llvm::Error fe = cuda::check(
            drv.cuMemFreeAsync(p, static_cast<cuda::CUstream>(stream)),
            sig.name + ": freeing a workspace"))
      e = llvm::joinErrors(std::move(e), std::move(fe));
  return e;
}

llvm::Error LinearLauncher::launch(ArrayRef<TensorRef> inputs,
                                   ArrayRef<TensorRef> outputs, void *stream) {
  if (llvm::Error e = checkSignature(sig, inputs, outputs))
    return e;
  if (llvm::Error e = checkInputValues(sig, checks, inputs, /*host=*/false))
    return e;
  LaunchState st;
  if (llvm::Error e = bindTensors(inputs, outputs, st))
    return e;
  auto fns = functions();
  if (!fns)
    return fns.takeError();
  if (fns->decay) {
    TensorRef d;
    d.data = fns->decay;
    d.dtype = DType::F32;
    d.shape = {int64_t(kernel.signature->constDecay.size())};
    st.tensors["decay"] = d;
  }
  LinearVars vars{st.scalars["B"], kernel.linear.heads, st.scalars["N"]};
  if (llvm::Error e = allocateTemps(vars, stream, st))
    return release(std::move(e), st, stream);
  if (kernel.linear.featureKernel)
    if (llvm::Error e = launchOne(fns->phiFn, *kernel.linear.featureKernel,
                                  vars, st, stream))
      return release(std::move(e), st, stream);
  return release(launchOne(fns->fn, kernel.linear.main, vars, st, stream), st,
                 stream);
}

std::unique_ptr<KernelLauncher>
attnc::rt::makeLinearLauncher(KernelSignature sig, abi::Kernel kernel,
                              KernelImages images, InputChecks checks) {
  return std::unique_ptr<KernelLauncher>(new LinearLauncher(
      std::move(sig), std::move(kernel), std::move(images), std::move(checks)));
}
