//===- KernelLauncher.cpp - what every kernel launcher shares -------------===//
//
// Part of attnc.
//
//===----------------------------------------------------------------------===//

#include "KernelLauncher.h"
#include "Context.h"
#include "CudaDriver.h"
#include "LaunchParams.h"
#include "attnc/Target/TargetDesc.h"

using namespace attnc;
using namespace attnc::rt;
using llvm::StringRef;

llvm::Expected<void *> attnc::rt::currentContext(StringRef kernel) {
  auto drv = cuda::driver();
  if (!drv)
    return drv.takeError();
  cuda::CUcontext ctx = nullptr;
  if (llvm::Error e =
          cuda::check(drv->cuCtxGetCurrent(&ctx), "cuCtxGetCurrent"))
    return std::move(e);
  if (!ctx)
    return makeError(kernel + ": no CUDA context is current (make one "
                              "current, e.g. with cuDevicePrimaryCtxRetain "
                              "and cuCtxSetCurrent, or cudaSetDevice)");
  return ctx;
}

void LaunchParams::memref(const TensorRef &t, bool flat) {
  auto st = stridesOf(t);
  int64_t p = int64_t(reinterpret_cast<intptr_t>(t.data));
  push(p);
  push(p);
  push(0);
  if (flat) {
    int64_t extent = 1;
    for (auto [d, s] : llvm::zip(t.shape, st))
      extent += (d - 1) * s;
    push(extent);
    push(1);
    return;
  }
  for (int64_t d : t.shape)
    push(d);
  for (int64_t s : st)
    push(s);
}

llvm::Error attnc::rt::checkHeadLayout(StringRef kernel, StringRef name,
                                       const TensorRef &t) {
  auto st = stridesOf(t);
  if (st.size() == 4 && st[3] == 1 && st[0] % 8 == 0 && st[1] % 8 == 0 &&
      st[2] % 8 == 0 && reinterpret_cast<uintptr_t>(t.data) % 16 == 0)
    return llvm::Error::success();
  return makeError(kernel + ": " + name +
                   " needs a contiguous head dim, strides that are multiples "
                   "of 8 and 16-byte alignment (strides " +
                   shapeStr(st) + ")");
}

llvm::Error attnc::rt::checkContiguous(StringRef kernel, StringRef name,
                                       const TensorRef &t) {
  if (stridesOf(t) == contiguousStrides(t.shape))
    return llvm::Error::success();
  return makeError(kernel + ": " + name + " must be contiguous");
}

/// Pushes the tensor for kernel argument `a` of kernel `kernel`.
static llvm::Error pushTensor(StringRef kernel, LaunchParams &params,
                              const abi::Arg &a, const NamedArgs &args,
                              bool shapedCaptures) {
  auto it = args.tensors.find(a.name);
  if (it == args.tensors.end())
    return makeError(kernel + ": no tensor for kernel argument '" + a.name +
                     "'");
  std::optional<abi::ArgRole> role = abi::argRole(a.name);
  bool shaped = shapedCaptures && (role == abi::ArgRole::Capture ||
                                   role == abi::ArgRole::CaptureGrad);
  int64_t rank = shaped ? int64_t(it->second.shape.size()) : 1;
  if (a.rank != rank)
    return makeError(kernel + ": kernel argument '" + a.name + "' has rank " +
                     llvm::Twine(a.rank) + ", but its tensor is passed with " +
                     llvm::Twine(rank));
  params.memref(it->second, /*flat=*/!shaped);
  return llvm::Error::success();
}

llvm::Error
attnc::rt::launchByName(StringRef kernel, void *fn, const abi::Launch &l,
                        const NamedArgs &args,
                        llvm::function_ref<int64_t(const abi::SizeExpr &)> size,
                        bool shapedCaptures, void *stream) {
  LaunchParams params;
  for (const abi::Arg &a : l.args) {
    if (a.kind == abi::ArgKind::Memref || a.kind == abi::ArgKind::MemrefF32) {
      if (llvm::Error e = pushTensor(kernel, params, a, args, shapedCaptures))
        return e;
      continue;
    }
    auto it = args.scalars.find(a.name);
    if (it == args.scalars.end())
      return makeError(kernel + ": no value for kernel argument '" + a.name +
                       "'");
    params.push(it->second);
  }
  const cuda::Driver &drv = *cuda::driver();
  return cuda::check(
      drv.cuLaunchKernel(
          fn, unsigned(size(l.grid[0])), unsigned(size(l.grid[1])),
          unsigned(size(l.grid[2])), unsigned(l.block[0]), unsigned(l.block[1]),
          unsigned(l.block[2]), unsigned(l.dynamicSharedBytes),
          static_cast<cuda::CUstream>(stream), params.finish(), nullptr),
      (kernel + ": cuLaunchKernel(" + l.kernel + ")").str());
}

void **LaunchParams::finish() {
  ptrs.clear();
  for (size_t i : starts)
    ptrs.push_back(&words[i]);
  return ptrs.data();
}

KernelLauncher::~KernelLauncher() = default;

KernelLauncher::KernelLauncher(KernelSignature sig, abi::Kernel kernel,
                               KernelImages images, InputChecks checks)
    : sig(std::move(sig)), kernel(std::move(kernel)), images(std::move(images)),
      checks(std::move(checks)) {
  if (this->images.ptx.empty() || this->images.ptx.back() != '\0')
    this->images.ptx.push_back('\0');
}

llvm::Error KernelLauncher::loadFunction(void *&module, void *&fn,
                                         StringRef function,
                                         int64_t sharedBytes) {
  // Called under PerContext's lock, after currentContext loaded the driver.
  const cuda::Driver &drv = llvm::cantFail(cuda::driver());
  if (!module) {
    // CUDA_ERROR_NO_BINARY_FOR_GPU (209): the cubin is for another
    // architecture (sm_80 on Hopper); the driver JIT-compiles the PTX.
    cuda::CUresult r = images.cubin.empty()
                           ? 209
                           : drv.cuModuleLoadData(&module, images.cubin.data());
    if (r == 209)
      r = drv.cuModuleLoadData(&module, images.ptx.data());
    if (llvm::Error e = cuda::check(r, sig.name + ": loading the kernel"))
      return e;
  }
  if (llvm::Error e = cuda::check(
          drv.cuModuleGetFunction(&fn, module, function.str().c_str()),
          (sig.name + ": cuModuleGetFunction(" + function + ")").str()))
    return e;
  if (sharedBytes <= mlir::attn::kStaticSharedBytes)
    return llvm::Error::success();
  return cuda::check(drv.cuFuncSetAttribute(fn,
                                            /*MAX_DYNAMIC_SHARED_SIZE_BYTES=*/8,
                                            int(sharedBytes)),
                     sig.name + ": opting in to dynamic shared memory");
}

/// The signature of a kernel with a recorded one (linear and elementwise
/// kernels; attention kernels of the JIT, whose value checks it carries).
static llvm::Expected<KernelSignature> recordedSignature(const abi::Kernel &k,
                                                         StringRef target) {
  if (!k.signature)
    return makeError(k.name + ": the manifest has no signature for this " +
                     stringify(k.kind) + " kernel");
  return kernelSignature(*k.signature, k.name, target);
}

llvm::Expected<std::unique_ptr<KernelLauncher>>
attnc::rt::makeLauncher(abi::Kernel kernel, StringRef target,
                        KernelImages images) {
  InputChecks checks;
  if (kernel.signature)
    checks = inputChecksOf(kernel.signature->checks);
  if (kernel.kind == abi::KernelKind::Attention) {
    KernelSignature sig = gpuSignature(kernel, target);
    // Recorded value checks index the signature they were written with.
    if (kernel.signature) {
      abi::Signature expected = abiSignature(sig, {}, {}, {});
      if (kernel.signature->inputs != expected.inputs ||
          kernel.signature->outputs != expected.outputs)
        return makeError(kernel.name + ": the manifest's signature does not "
                                       "match the attention kernel");
    }
    return makeAttentionLauncher(std::move(sig), std::move(kernel),
                                 std::move(images), std::move(checks));
  }
  auto sig = recordedSignature(kernel, target);
  if (!sig)
    return sig.takeError();
  if (kernel.kind == abi::KernelKind::Linear)
    return makeLinearLauncher(std::move(*sig), std::move(kernel),
                              std::move(images), std::move(checks));
  if (kernel.kind == abi::KernelKind::AttentionGrad)
    return makeAttentionGradLauncher(std::move(*sig), std::move(kernel),
                                     std::move(images), std::move(checks));
  if (sig->inputs.size() != 2 || sig->outputs.size() != 1 ||
      llvm::any_of(kernel.elementwise.args, [](const abi::Arg &a) {
        return !llvm::is_contained({"a", "b", "o", "n"}, a.name);
      }))
    return makeError(kernel.name + ": an elementwise kernel takes a, b, o "
                                   "and n (two inputs, one output)");
  return makeElementwiseLauncher(std::move(*sig), std::move(kernel),
                                 std::move(images), std::move(checks));
}
