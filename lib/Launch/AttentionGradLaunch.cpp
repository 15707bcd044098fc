//===- AttentionGradLaunch.cpp - launching attention backward kernels -----===//
//
// Part of attnc. The launch sequence of an attention backward
// (docs/backward.md, "GPU kernels"): the capture gradients zeroed (they
// accumulate by atomics), the delta workspace allocated in stream order,
// then the dq kernel over (q tiles, Hq, B), which writes delta, and the dkdv
// kernel over (kv tiles, Hkv, B), which reads it.
//
//===----------------------------------------------------------------------===//

#include "Context.h"
#include "CudaDriver.h"
#include "KernelLauncher.h"

#include "llvm/ADT/StringExtras.h"

using namespace attnc;
using namespace attnc::rt;
using llvm::ArrayRef;
using llvm::StringRef;

namespace {
/// The tensors of the 16-bit [B, H, N, D] operands, in the order of their
/// stride arguments.
constexpr const char *kOperands[] = {"q",  "k",  "v",  "o",
                                     "do", "dq", "dk", "dv"};

class AttentionGradLauncher : public KernelLauncher {
public:
  using KernelLauncher::KernelLauncher;
  llvm::Error launch(ArrayRef<TensorRef> inputs, ArrayRef<TensorRef> outputs,
                     void *stream) override;

private:
  struct Functions {
    void *module = nullptr, *dq = nullptr, *dkdv = nullptr, *map = nullptr;
  };
  llvm::Expected<Functions> functions();
  NamedArgs bind(ArrayRef<TensorRef> inputs, ArrayRef<TensorRef> outputs) const;
  llvm::Error checkShapes(const NamedArgs &args) const;
  llvm::Error checkLayout(const NamedArgs &args) const;
  llvm::Error zero(const NamedArgs &args, bool gradients, void *stream) const;
  llvm::Error run(const Functions &fns, NamedArgs &args, void *stream) const;

  PerContext<Functions> perContext;
};
} // namespace

llvm::Expected<AttentionGradLauncher::Functions>
AttentionGradLauncher::functions() {
  return perContext.get(sig.name, [&]() -> llvm::Expected<Functions> {
    Functions f;
    const abi::AttentionGradKernel &g = kernel.attentionGrad;
    if (llvm::Error e =
            loadFunction(f.module, f.dq, g.dq.kernel, g.dq.dynamicSharedBytes))
      return std::move(e);
    if (llvm::Error e = loadFunction(f.module, f.dkdv, g.dkdv.kernel,
                                     g.dkdv.dynamicSharedBytes))
      return std::move(e);
    if (g.blockMap)
      if (llvm::Error e =
              loadFunction(f.module, f.map, g.blockMap->launch.kernel, 0))
        return std::move(e);
    return f;
  });
}

/// The inputs by their recorded names (q, k, v, capture<i>, o, lse, do),
/// the outputs as dq, dk, dv, dcapture<i>; B, Nq, Nk and the strides.
NamedArgs AttentionGradLauncher::bind(ArrayRef<TensorRef> inputs,
                                      ArrayRef<TensorRef> outputs) const {
  NamedArgs args;
  for (auto [n, t] : llvm::zip(kernel.signature->inputNames, inputs))
    args.tensors[n] = t;
  for (auto [i, t] : llvm::enumerate(outputs))
    args.tensors[i < 3 ? std::string(kOperands[5 + i])
                       : "dcapture" + std::to_string(i - 3)] = t;
  const TensorRef &q = args.tensors["q"], &k = args.tensors["k"];
  args.scalars = {{"B", q.shape[0]}, {"Nq", q.shape[2]}, {"Nk", k.shape[2]}};
  for (const char *n : kOperands) {
    auto st = stridesOf(args.tensors[n]);
    const char *dims[] = {"b", "h", "n"};
    for (int i = 0; i < 3; ++i)
      args.scalars[(n + llvm::Twine("_stride_") + dims[i]).str()] = st[i];
  }
  return args;
}

/// q, k, v, o and lse as the forward's; dO like o; dq, dk, dv like q, k, v.
llvm::Error AttentionGradLauncher::checkShapes(const NamedArgs &args) const {
  auto t = [&](const char *n) -> const TensorRef & {
    return args.tensors.at(n);
  };
  if (llvm::Error e = checkAttentionShapes(sig, {t("q"), t("k"), t("v")},
                                           {t("o"), t("lse")}))
    return e;
  for (auto [grad, like] :
       {std::pair{"do", "o"}, {"dq", "q"}, {"dk", "k"}, {"dv", "v"}})
    if (t(grad).shape != t(like).shape)
      return makeError(sig.name + ": " + grad + " must have the shape of " +
                       like + ", " + shapeStr(t(like).shape) + ", got " +
                       shapeStr(t(grad).shape));
  return llvm::Error::success();
}

/// The 16-bit operands as the forward's; lse and the capture gradients
/// (zeroed as one block) contiguous.
llvm::Error AttentionGradLauncher::checkLayout(const NamedArgs &args) const {
  for (const char *n : kOperands)
    if (llvm::Error e = checkHeadLayout(sig.name, n, args.tensors.at(n)))
      return e;
  if (llvm::Error e = checkContiguous(sig.name, "lse", args.tensors.at("lse")))
    return e;
  for (int64_t i = 0; i < kernel.attentionGrad.captureGrads; ++i) {
    std::string n = "dcapture" + std::to_string(i);
    if (llvm::Error e = checkContiguous(sig.name, n, args.tensors.at(n)))
      return e;
  }
  return llvm::Error::success();
}

static int64_t numElements(const TensorRef &t) {
  int64_t n = 1;
  for (int64_t d : t.shape)
    n *= d;
  return n;
}

/// Zeroes the capture gradients (f32, contiguous) and, with `gradients`,
/// dq, dk and dv (16-bit [B, H, N, D] views: one pitched region per (b, h)).
llvm::Error AttentionGradLauncher::zero(const NamedArgs &args, bool gradients,
                                        void *stream) const {
  const cuda::Driver &drv = *cuda::driver();
  auto *s = static_cast<cuda::CUstream>(stream);
  for (int64_t i = 0; i < kernel.attentionGrad.captureGrads; ++i) {
    const TensorRef &t = args.tensors.at("dcapture" + std::to_string(i));
    if (int64_t n = numElements(t))
      if (llvm::Error e = cuda::check(
              drv.cuMemsetD32Async(cuda::CUdeviceptr(t.data), 0, size_t(n), s),
              sig.name + ": zeroing dcapture" + std::to_string(i)))
        return e;
  }
  if (!gradients)
    return llvm::Error::success();
  for (const char *n : {"dq", "dk", "dv"}) {
    const TensorRef &t = args.tensors.at(n);
    auto st = stridesOf(t);
    int64_t rows = t.shape[2], width = t.shape[3];
    size_t pitch = size_t(rows > 1 ? st[2] : width) * 2;
    for (int64_t b = 0; numElements(t) && b < t.shape[0]; ++b)
      for (int64_t h = 0; h < t.shape[1]; ++h) {
        auto p = cuda::CUdeviceptr(t.data) + (b * st[0] + h * st[1]) * 2;
        if (llvm::Error e =
                cuda::check(drv.cuMemsetD2D16Async(p, pitch, 0, size_t(width),
                                                   size_t(rows), s),
                            sig.name + ": zeroing " + n))
          return e;
      }
  }
  return llvm::Error::success();
}

/// A stream-ordered workspace of `elements` of `dtype` bound as `name`.
static llvm::Error allocate(NamedArgs &args, StringRef name, DType dtype,
                            int64_t elements, int64_t elementBytes,
                            const std::string &kernel, void *stream) {
  const cuda::Driver &drv = *cuda::driver();
  cuda::CUdeviceptr work = 0;
  if (llvm::Error e = cuda::check(
          drv.cuMemAllocAsync(
              &work, size_t(std::max<int64_t>(elements, 1)) * elementBytes,
              static_cast<cuda::CUstream>(stream)),
          kernel + ": allocating " + name.str()))
    return e;
  TensorRef t;
  t.dtype = dtype;
  t.shape = {elements};
  t.data = reinterpret_cast<void *>(work);
  args.tensors[name.str()] = t;
  return llvm::Error::success();
}

/// The block map's (b, h) slices.
static int64_t sliceCount(abi::MapSlices s, int64_t B, int64_t Hq) {
  switch (s) {
  case abi::MapSlices::BatchHeads:
    return B * Hq;
  case abi::MapSlices::Heads:
    return Hq;
  case abi::MapSlices::Batch:
    return B;
  case abi::MapSlices::One:
    return 1;
  }
  return 1;
}

/// The workspaces (delta; the block map) in stream order around the map,
/// dq and dkdv launches.
llvm::Error AttentionGradLauncher::run(const Functions &fns, NamedArgs &args,
                                       void *stream) const {
  const cuda::Driver &drv = *cuda::driver();
  auto *s = static_cast<cuda::CUstream>(stream);
  const abi::AttentionGradKernel &g = kernel.attentionGrad;
  int64_t B = args.scalars["B"], Nq = args.scalars["Nq"];
  args.scalars["slices"] =
      g.blockMap ? sliceCount(g.blockMap->slices, B, g.headsQ) : 1;
  auto size = [&](const abi::SizeExpr &e) -> int64_t {
    if (e.var.empty())
      return e.value;
    int64_t v = args.scalars[e.var];
    return (v + e.value - 1) / e.value;
  };
  llvm::SmallVector<StringRef, 2> workspaces = {"delta"};
  llvm::Error e =
      allocate(args, "delta", DType::F32, B * g.headsQ * Nq, 4, sig.name, s);
  if (!e && g.blockMap) {
    const abi::Launch &m = g.blockMap->launch;
    workspaces.push_back("block_map");
    e = allocate(args, "block_map", DType::I8,
                 size(m.grid[0]) * size(m.grid[1]) * size(m.grid[2]), 1,
                 sig.name, s);
    if (!e)
      e = launchByName(sig.name, fns.map, m, args, size, true, stream);
  }
  if (!e)
    e = launchByName(sig.name, fns.dq, g.dq, args, size, true, stream);
  if (!e)
    e = launchByName(sig.name, fns.dkdv, g.dkdv, args, size, true, stream);
  for (StringRef w : workspaces) {
    auto it = args.tensors.find(w.str());
    if (it == args.tensors.end())
      continue;
    if (llvm::Error fe = cuda::check(
            drv.cuMemFreeAsync(cuda::CUdeviceptr(it->second.data), s),
            sig.name + ": freeing " + w.str()))
      e = llvm::joinErrors(std::move(e), std::move(fe));
  }
  return e;
}

llvm::Error AttentionGradLauncher::launch(ArrayRef<TensorRef> inputs,
                                          ArrayRef<TensorRef> outputs,
                                          void *stream) {
  if (llvm::Error e = checkSignature(sig, inputs, outputs))
    return e;
  NamedArgs args = bind(inputs, outputs);
  if (llvm::Error e = checkShapes(args))
    return e;
  if (llvm::Error e = checkInputValues(sig, checks, inputs, /*host=*/false))
    return e;
  if (llvm::Error e = checkLayout(args))
    return e;
  auto fns = functions();
  if (!fns)
    return fns.takeError();
  bool empty = !args.scalars["B"] || !args.scalars["Nq"] || !args.scalars["Nk"];
  if (llvm::Error e = zero(args, /*gradients=*/empty, stream))
    return e;
  if (empty)
    return llvm::Error::success();
  return run(*fns, args, stream);
}

/// Why the record does not fit the launcher ("": it does): the signature's
/// inputs named q, k, v, capture<i>, o, lse, do; 3 + capture-gradient
/// outputs; grids over B, Nq, Nk and constants.
static std::string gradRecordProblem(const KernelSignature &sig,
                                     const abi::Kernel &k) {
  const abi::AttentionGradKernel &g = k.attentionGrad;
  std::vector<std::string> want = {"q", "k", "v"};
  for (int64_t i = 0; i < g.captures; ++i)
    want.push_back("capture" + std::to_string(i));
  llvm::append_range(want, std::vector<std::string>{"o", "lse", "do"});
  if (k.signature->inputNames != want)
    return "its inputs must be named " + llvm::join(want, ", ");
  if (int64_t(sig.outputs.size()) != 3 + g.captureGrads)
    return "it must have " + std::to_string(3 + g.captureGrads) +
           " outputs (dq, dk, dv and the capture gradients)";
  for (const abi::Launch *l : {&g.dq, &g.dkdv})
    for (const abi::SizeExpr &e : l->grid)
      if (!e.var.empty() && !llvm::is_contained({"B", "Nq", "Nk"}, e.var))
        return "the grid of " + l->kernel + " uses '" + e.var +
               "' (expected B, Nq, Nk or constants)";
  if (g.blockMap)
    for (const abi::SizeExpr &e : g.blockMap->launch.grid)
      if (!e.var.empty() &&
          !llvm::is_contained({"B", "Nq", "Nk", "slices"}, e.var))
        return "the grid of " + g.blockMap->launch.kernel + " uses '" + e.var +
               "' (expected B, Nq, Nk, slices or constants)";
  return "";
}

llvm::Expected<std::unique_ptr<KernelLauncher>>
attnc::rt::makeAttentionGradLauncher(KernelSignature sig, abi::Kernel kernel,
                                     KernelImages images, InputChecks checks) {
  if (std::string p = gradRecordProblem(sig, kernel); !p.empty())
    return makeError(kernel.name +
                     ": the manifest's attention_grad kernel "
                     "does not fit its launcher: " +
                     p);
  return std::unique_ptr<KernelLauncher>(new AttentionGradLauncher(
      std::move(sig), std::move(kernel), std::move(images), std::move(checks)));
}
