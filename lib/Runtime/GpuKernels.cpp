//===- GpuKernels.cpp - signature checks and GPU kernel launches ----------===//
//
// Part of attnc. Every launch checks shapes, dtypes and strides against the
// kernel's signature before anything runs. Nothing here needs MLIR at run
// time: this file, CudaDriver.cpp and LLVMSupport make a launcher for
// attn-aot directories (bench/gpu_launch_check.cpp links exactly these).
//
//===----------------------------------------------------------------------===//

#include "CudaDriver.h"
#include "Kernels.h"

#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/FormatVariadic.h"

#include <cstdlib>
#include <cstring>

using namespace attnc;
using llvm::ArrayRef;
using llvm::StringRef;

Kernel::~Kernel() = default;

llvm::Error attnc::makeError(const llvm::Twine &msg) {
  return llvm::createStringError(llvm::inconvertibleErrorCode(), msg);
}

StringRef attnc::dtypeName(DType t) {
  switch (t) {
  case DType::F32:
    return "f32";
  case DType::F16:
    return "f16";
  case DType::BF16:
    return "bf16";
  case DType::I1:
    return "i1";
  case DType::I8:
    return "i8";
  case DType::I32:
    return "i32";
  case DType::I64:
    return "i64";
  }
  return "?";
}

int64_t attnc::dtypeSize(DType t) {
  switch (t) {
  case DType::F32:
  case DType::I32:
    return 4;
  case DType::F16:
  case DType::BF16:
    return 2;
  case DType::I1:
  case DType::I8:
    return 1;
  case DType::I64:
    return 8;
  }
  return 0;
}

llvm::Expected<DType> attnc::dtypeFromName(StringRef name) {
  for (DType t : {DType::F32, DType::F16, DType::BF16, DType::I1, DType::I8,
                  DType::I32, DType::I64})
    if (dtypeName(t) == name)
      return t;
  return makeError("unsupported element type '" + name + "'");
}

llvm::json::Array attnc::paramsJson(ArrayRef<ParamInfo> params) {
  llvm::json::Array a;
  for (const ParamInfo &p : params) {
    llvm::json::Array shape;
    for (int64_t d : p.shape)
      shape.push_back(d);
    a.push_back(llvm::json::Object{{"name", p.name},
                                   {"dtype", dtypeName(p.dtype)},
                                   {"shape", std::move(shape)}});
  }
  return a;
}

std::string attnc::shapeStr(ArrayRef<int64_t> shape) {
  std::string s = "[";
  for (auto [i, d] : llvm::enumerate(shape))
    s += (i ? ", " : "") + (d < 0 ? std::string("?") : std::to_string(d));
  return s + "]";
}

llvm::SmallVector<int64_t, 4>
attnc::contiguousStrides(ArrayRef<int64_t> shape) {
  llvm::SmallVector<int64_t, 4> st(shape.size(), 1);
  for (int i = int(shape.size()) - 2; i >= 0; --i)
    st[i] = st[i + 1] * std::max<int64_t>(shape[i + 1], 1);
  return st;
}

llvm::SmallVector<int64_t, 4> attnc::stridesOf(const TensorRef &t) {
  return t.strides.empty() ? contiguousStrides(t.shape) : t.strides;
}

/// Checks `t` against `p`: dtype, rank, static dims, non-negative sizes,
/// strides of the right rank.
llvm::Error attnc::checkParam(StringRef kernel, StringRef role,
                              const ParamInfo &p, const TensorRef &t) {
  std::string what = (kernel + ": " + role + " '" + p.name + "'").str();
  if (t.dtype != p.dtype)
    return makeError(what + " must be " + dtypeName(p.dtype) + ", got " +
                     dtypeName(t.dtype));
  if (t.shape.size() != p.shape.size())
    return makeError(what + " must have rank " + llvm::Twine(p.shape.size()) +
                     " " + shapeStr(p.shape) + ", got " + shapeStr(t.shape));
  for (auto [want, got] : llvm::zip(p.shape, t.shape)) {
    if (got < 0)
      return makeError(what + " has a negative size: " + shapeStr(t.shape));
    if (want >= 0 && want != got)
      return makeError(what + " must have shape " + shapeStr(p.shape) +
                       ", got " + shapeStr(t.shape));
  }
  if (!t.strides.empty() && t.strides.size() != t.shape.size())
    return makeError(what + " has " + llvm::Twine(t.strides.size()) +
                     " strides for rank " + llvm::Twine(t.shape.size()));
  bool empty = llvm::any_of(t.shape, [](int64_t d) { return d == 0; });
  if (!t.data && !empty)
    return makeError(what + " is a null pointer");
  return llvm::Error::success();
}

llvm::Error attnc::checkCounts(const KernelSignature &sig, size_t nin,
                               size_t nout) {
  if (nin != sig.inputs.size() || nout != sig.outputs.size())
    return makeError(sig.name + ": expected " + llvm::Twine(sig.inputs.size()) +
                     " input(s) and " + llvm::Twine(sig.outputs.size()) +
                     " output(s), got " + llvm::Twine(nin) + " and " +
                     llvm::Twine(nout));
  return llvm::Error::success();
}

llvm::Error attnc::checkSignature(const KernelSignature &sig,
                                  ArrayRef<TensorRef> inputs,
                                  ArrayRef<TensorRef> outputs) {
  if (llvm::Error e = checkCounts(sig, inputs.size(), outputs.size()))
    return e;
  for (auto [p, t] : llvm::zip(sig.inputs, inputs))
    if (llvm::Error e = checkParam(sig.name, "input", p, t))
      return e;
  for (auto [p, t] : llvm::zip(sig.outputs, outputs))
    if (llvm::Error e = checkParam(sig.name, "output", p, t))
      return e;
  return llvm::Error::success();
}

llvm::Expected<void *> attnc::currentContext(StringRef kernel) {
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

/// For q, k, v, o (and lse): equal batch sizes, equal k/v lengths, o of
/// shape [B, Hq, Nq, Dv].
llvm::Error attnc::checkAttentionShapes(const KernelSignature &sig,
                                        ArrayRef<TensorRef> in,
                                        ArrayRef<TensorRef> out) {
  const auto &q = in[0].shape, &k = in[1].shape, &v = in[2].shape;
  if (q.size() != 4 || k.size() != 4 || v.size() != 4)
    return llvm::Error::success();
  if (k[0] != q[0] || v[0] != q[0])
    return makeError(sig.name + ": batch sizes differ: q " + llvm::Twine(q[0]) +
                     ", k " + llvm::Twine(k[0]) + ", v " + llvm::Twine(v[0]));
  if (v[2] != k[2])
    return makeError(sig.name + ": k and v sequence lengths differ: " +
                     llvm::Twine(k[2]) + " vs " + llvm::Twine(v[2]));
  llvm::SmallVector<int64_t, 4> oShape = {q[0], q[1], q[2], v[3]};
  if (out[0].shape != ArrayRef<int64_t>(oShape))
    return makeError(sig.name + ": o must have shape " + shapeStr(oShape) +
                     ", got " + shapeStr(out[0].shape));
  if (out.size() > 1) {
    llvm::SmallVector<int64_t, 3> lShape = {q[0], q[1], q[2]};
    if (out[1].shape != ArrayRef<int64_t>(lShape))
      return makeError(sig.name + ": lse must have shape " + shapeStr(lShape) +
                       ", got " + shapeStr(out[1].shape));
  }
  return llvm::Error::success();
}

llvm::Error attnc::checkInputValues(const KernelSignature &sig,
                                    const InputChecks &checks,
                                    ArrayRef<TensorRef> inputs, bool host) {
  for (const std::array<unsigned, 4> &eq : checks.equalDims) {
    int64_t x = inputs[eq[0]].shape[eq[1]], y = inputs[eq[2]].shape[eq[3]];
    if (x != y)
      return makeError(sig.name + ": input '" + sig.inputs[eq[0]].name +
                       "' has size " + llvm::Twine(x) + " in dim " +
                       llvm::Twine(eq[1]) + " but input '" +
                       sig.inputs[eq[2]].name + "' has " + llvm::Twine(y) +
                       " in dim " + llvm::Twine(eq[3]) + "; they must match");
  }
  for (const InputChecks::MinExtent &m : checks.minExtents) {
    int64_t ref = inputs[m.refInput].shape[m.refDim];
    int64_t need = (ref + m.divisor - 1) / m.divisor;
    int64_t have = inputs[m.input].shape[m.dim];
    if (have < need)
      return makeError(
          sig.name + ": input '" + sig.inputs[m.input].name + "' has " +
          llvm::Twine(have) + " elements in dim " + llvm::Twine(m.dim) +
          ", but the spec indexes it up to " + llvm::Twine(need - 1) +
          " (from input '" + sig.inputs[m.refInput].name + "' dim " +
          llvm::Twine(m.refDim) + " = " + llvm::Twine(ref) +
          (m.divisor > 1 ? " / " + std::to_string(m.divisor) : std::string()) +
          ")");
  }
  for (auto [in, dim, len] : checks.lengths)
    if (inputs[in].shape[dim] != len)
      return makeError(sig.name + ": the token order of '" + sig.name +
                       "' is for sequences of " + llvm::Twine(len) +
                       " tokens, got " + llvm::Twine(inputs[in].shape[dim]));
  if (!host)
    return llvm::Error::success();
  for (unsigned in : checks.logGates) {
    const TensorRef &t = inputs[in];
    if (t.dtype != DType::F32)
      continue;
    int64_t n = 1;
    for (int64_t d : t.shape)
      n *= d;
    const float *g = static_cast<const float *>(t.data);
    for (int64_t i = 0; i < n; ++i)
      if (!(g[i] <= 0.0f) || !std::isfinite(g[i]))
        return makeError(sig.name + ": input '" + sig.inputs[in].name +
                         "' holds log-gates of a decay, which must be finite "
                         "and <= 0 (the decay is exp(g)); element " +
                         llvm::Twine(i) + " is " + std::to_string(g[i]));
  }
  return llvm::Error::success();
}

abi::ValueChecks attnc::abiChecks(const InputChecks &c) {
  abi::ValueChecks out;
  for (unsigned g : c.logGates)
    out.logGates.push_back(g);
  for (auto [in, dim, len] : c.lengths)
    out.lengths.push_back({in, dim, len});
  for (const std::array<unsigned, 4> &eq : c.equalDims)
    out.equalDims.push_back({eq[0], eq[1], eq[2], eq[3]});
  for (const InputChecks::MinExtent &m : c.minExtents)
    out.minExtents.push_back({m.input, m.dim, m.refInput, m.refDim, m.divisor});
  return out;
}

/// The ABI's reader has checked that every index names an input and dim.
InputChecks attnc::inputChecksOf(const abi::ValueChecks &c) {
  InputChecks out;
  for (int64_t g : c.logGates)
    out.logGates.push_back(unsigned(g));
  for (const std::array<int64_t, 3> &l : c.lengths)
    out.lengths.push_back({unsigned(l[0]), unsigned(l[1]), l[2]});
  for (const std::array<int64_t, 4> &eq : c.equalDims)
    out.equalDims.push_back(
        {unsigned(eq[0]), unsigned(eq[1]), unsigned(eq[2]), unsigned(eq[3])});
  for (const std::array<int64_t, 5> &m : c.minExtents)
    out.minExtents.push_back(
        {unsigned(m[0]), unsigned(m[1]), unsigned(m[2]), unsigned(m[3]), m[4]});
  return out;
}

abi::Signature attnc::abiSignature(const KernelSignature &sig,
                                   ArrayRef<std::string> inputNames,
                                   ArrayRef<float> constDecay,
                                   const InputChecks &checks) {
  abi::Signature s;
  auto params = [](ArrayRef<ParamInfo> ps, std::vector<abi::Param> &dst) {
    for (const ParamInfo &p : ps)
      dst.push_back({p.name, dtypeName(p.dtype).str(),
                     std::vector<int64_t>(p.shape.begin(), p.shape.end())});
  };
  params(sig.inputs, s.inputs);
  params(sig.outputs, s.outputs);
  s.inputNames.assign(inputNames.begin(), inputNames.end());
  s.constDecay.assign(constDecay.begin(), constDecay.end());
  s.checks = abiChecks(checks);
  return s;
}

llvm::Expected<KernelSignature> attnc::kernelSignature(const abi::Signature &s,
                                                       StringRef name,
                                                       StringRef target) {
  KernelSignature sig;
  sig.name = name.str();
  sig.target = target.str();
  auto params = [](ArrayRef<abi::Param> ps,
                   llvm::SmallVectorImpl<ParamInfo> &dst) -> llvm::Error {
    for (const abi::Param &p : ps) {
      auto dtype = dtypeFromName(p.dtype);
      if (!dtype)
        return dtype.takeError();
      dst.push_back({p.name, *dtype, {p.shape.begin(), p.shape.end()}});
    }
    return llvm::Error::success();
  };
  if (llvm::Error e = params(s.inputs, sig.inputs))
    return std::move(e);
  if (llvm::Error e = params(s.outputs, sig.outputs))
    return std::move(e);
  return sig;
}

//===----------------------------------------------------------------------===//
// GPU
//===----------------------------------------------------------------------===//

KernelSignature attnc::gpuSignature(const abi::Kernel &kernel,
                                    StringRef target) {
  const abi::AttentionKernel &a = kernel.attention;
  KernelSignature s;
  s.name = kernel.name;
  s.target = target.str();
  DType dt = a.dtype == "bf16" ? DType::BF16 : DType::F16;
  s.inputs.push_back({"q", dt, {-1, a.headsQ, -1, a.headDim}});
  s.inputs.push_back({"k", dt, {-1, a.headsKv, -1, a.headDim}});
  s.inputs.push_back({"v", dt, {-1, a.headsKv, -1, a.valueDim}});
  s.outputs.push_back({"o", dt, {-1, a.headsQ, -1, a.valueDim}});
  if (a.lse)
    s.outputs.push_back({"lse", DType::F32, {-1, a.headsQ, -1}});
  for (const abi::Arg &arg : a.main.args)
    if (abi::argRole(arg.name) == abi::ArgRole::Capture) {
      ParamInfo p;
      p.name = arg.name;
      p.dtype = llvm::cantFail(dtypeFromName(arg.elem));
      p.shape.assign(arg.rank, -1);
      s.inputs.push_back(p);
    }
  return s;
}

GpuKernelImpl::GpuKernelImpl(KernelSignature signature, abi::Kernel kernel,
                             std::string cubin, std::string ptx,
                             std::string directory, InputChecks checks)
    : kernel(std::move(kernel)), cubin(std::move(cubin)), ptx(std::move(ptx)),
      checks(std::move(checks)) {
  sig = std::move(signature);
  dir = std::move(directory);
  this->ptx.push_back('\0');
}

/// Opts `fn` in to more than 48 KB of dynamic shared memory.
static llvm::Error allowDynamicShared(const cuda::Driver &drv, void *fn,
                                      int64_t bytes, StringRef kernel) {
  if (bytes <= 48 * 1024)
    return llvm::Error::success();
  return cuda::check(drv.cuFuncSetAttribute(
                         fn, /*MAX_DYNAMIC_SHARED_SIZE_BYTES=*/8, int(bytes)),
                     (kernel + ": opting in to dynamic shared memory").str());
}

llvm::Expected<GpuKernelImpl::Functions> GpuKernelImpl::functions() {
  return perContext.get(sig.name, [&]() -> llvm::Expected<Functions> {
    // currentContext has loaded the driver.
    const cuda::Driver *drv = &llvm::cantFail(cuda::driver());
    Functions f;
    // CUDA_ERROR_NO_BINARY_FOR_GPU (209): the cubin is for another
    // architecture (sm_80 on Hopper); the driver JIT-compiles the PTX.
    cuda::CUresult r =
        cubin.empty() ? 209 : drv->cuModuleLoadData(&f.module, cubin.data());
    if (r == 209)
      r = drv->cuModuleLoadData(&f.module, ptx.data());
    if (llvm::Error e = cuda::check(r, sig.name + ": loading the kernel"))
      return std::move(e);
    const abi::AttentionKernel &a = kernel.attention;
    if (llvm::Error e = cuda::check(
            drv->cuModuleGetFunction(&f.fn, f.module, a.main.kernel.c_str()),
            sig.name + ": cuModuleGetFunction"))
      return std::move(e);
    // Only wgmma kernels take their shared memory dynamically.
    if (llvm::Error e =
            allowDynamicShared(*drv, f.fn, a.main.dynamicSharedBytes, sig.name))
      return std::move(e);
    if (a.blockMap)
      if (llvm::Error e = cuda::check(
              drv->cuModuleGetFunction(&f.mapFn, f.module,
                                       a.blockMap->launch.kernel.c_str()),
              sig.name + ": cuModuleGetFunction (block map)"))
        return std::move(e);
    return f;
  });
}

namespace {
/// Kernel parameters: values live in `words`, `ptrs` points at them.
struct Params {
  std::vector<int64_t> words;
  /// Where each parameter starts in `words` (a tensor map takes 16 words).
  std::vector<size_t> starts;
  std::vector<void *> ptrs;
  Params() { words.reserve(256); }
  void push(int64_t w) {
    starts.push_back(words.size());
    words.push_back(w);
  }
  /// A 128-byte CUtensorMap, by value.
  void pushMap(const uint64_t (&map)[16]) {
    starts.push_back(words.size());
    for (uint64_t w : map)
      words.push_back(int64_t(w));
  }
  /// A memref argument for a view: 1-D over its extent, or with the view's
  /// sizes and strides.
  void mem(const TensorRef &t, bool flat) {
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
    } else {
      for (int64_t d : t.shape)
        push(d);
      for (int64_t s : st)
        push(s);
    }
  }
  void **finish() {
    ptrs.clear();
    for (size_t i : starts)
      ptrs.push_back(&words[i]);
    return ptrs.data();
  }
};
} // namespace

llvm::Error GpuKernelImpl::launch(ArrayRef<TensorRef> inputs,
                                  ArrayRef<TensorRef> outputs, void *stream) {
  if (llvm::Error e = checkSignature(sig, inputs, outputs))
    return e;
  if (llvm::Error e = checkAttentionShapes(sig, inputs, outputs))
    return e;
  if (llvm::Error e = checkInputValues(sig, checks, inputs, /*host=*/false))
    return e;
  const TensorRef *qkvo[] = {&inputs[0], &inputs[1], &inputs[2], &outputs[0]};
  const char *names[] = {"q", "k", "v", "o"};
  for (int i = 0; i < 4; ++i) {
    auto st = stridesOf(*qkvo[i]);
    if (st[3] != 1 || st[0] % 8 || st[1] % 8 || st[2] % 8 ||
        reinterpret_cast<uintptr_t>(qkvo[i]->data) % 16)
      return makeError(sig.name + ": " + names[i] +
                       " needs a contiguous head dim, strides that are "
                       "multiples of 8 and 16-byte alignment (strides " +
                       shapeStr(st) + ")");
  }
  const abi::AttentionKernel &ak = kernel.attention;
  if (ak.lse && stridesOf(outputs[1]) != contiguousStrides(outputs[1].shape))
    return makeError(sig.name + ": lse must be contiguous");
  int64_t B = inputs[0].shape[0], Nq = inputs[0].shape[2],
          Nk = inputs[1].shape[2];
  if (B == 0 || Nq == 0)
    return llvm::Error::success();

  auto fns = functions();
  if (!fns)
    return fns.takeError();
  const cuda::Driver &drv = *cuda::driver();
  auto *s = static_cast<cuda::CUstream>(stream);
  ArrayRef<TensorRef> captures = inputs.drop_front(3);

  Params params;
  bool wgmma = ak.variant == abi::Variant::Wgmma;
  for (int i = 0; i < 4; ++i) {
    if (!wgmma || i == 3) {
      params.mem(*qkvo[i], /*flat=*/true);
      continue;
    }
    // sm_90a: a TMA map over the [B, H, N, D] view (64 x box_rows boxes,
    // 128-byte swizzle, zero fill).
    if (!drv.cuTensorMapEncodeTiled)
      return makeError(sig.name + ": the CUDA driver has no "
                                  "cuTensorMapEncodeTiled (sm_90a kernels "
                                  "need a CUDA 12 driver)");
    const TensorRef &t = *qkvo[i];
    auto st = stridesOf(t);
    alignas(64) uint64_t map[16] = {};
    uint64_t dims[4] = {uint64_t(t.shape[3]), uint64_t(t.shape[2]),
                        uint64_t(t.shape[1]), uint64_t(t.shape[0])};
    uint64_t strides[3] = {uint64_t(st[2]) * 2, uint64_t(st[1]) * 2,
                           uint64_t(st[0]) * 2};
    unsigned box[4] = {64, unsigned(ak.main.args[i].boxRows), 1, 1};
    unsigned ones[4] = {1, 1, 1, 1};
    if (llvm::Error e = cuda::check(
            drv.cuTensorMapEncodeTiled(map, ak.dtype == "bf16" ? 9 : 6, 4,
                                       qkvo[i]->data, dims, strides, box, ones,
                                       0, 3, 0, 0),
            sig.name + ": cuTensorMapEncodeTiled(" + names[i] + ")"))
      return e;
    params.pushMap(map);
  }
  if (ak.lse)
    params.mem(outputs[1], /*flat=*/true);
  for (const TensorRef &c : captures)
    params.mem(c, /*flat=*/false);

  cuda::CUdeviceptr work = 0;
  if (fns->mapFn) {
    const abi::BlockMap &bm = *ak.blockMap;
    int64_t Hq = ak.headsQ;
    int64_t slices = bm.slices == abi::MapSlices::BatchHeads ? B * Hq
                     : bm.slices == abi::MapSlices::Heads    ? Hq
                     : bm.slices == abi::MapSlices::Batch    ? B
                                                             : 1;
    int64_t nqt = (Nq + ak.blockQ - 1) / ak.blockQ;
    int64_t nkt = (Nk + ak.blockKv - 1) / ak.blockKv;
    int64_t bytes = std::max<int64_t>(slices * nqt * nkt, 1);
    if (llvm::Error e = cuda::check(drv.cuMemAllocAsync(&work, bytes, s),
                                    sig.name + ": allocating the block map"))
      return e;
    TensorRef w;
    w.data = reinterpret_cast<void *>(work);
    w.dtype = DType::I8;
    w.shape = {bytes};
    Params mp;
    for (const TensorRef &c : captures)
      mp.mem(c, /*flat=*/false);
    mp.mem(w, /*flat=*/true);
    mp.push(slices);
    mp.push(Nq);
    mp.push(Nk);
    llvm::Error e = cuda::check(
        drv.cuLaunchKernel(fns->mapFn, unsigned(nqt), unsigned(nkt),
                           unsigned(slices), unsigned(bm.launch.block[0]), 1, 1,
                           0, s, mp.finish(), nullptr),
        sig.name + ": launching the block-map kernel");
    if (e) {
      (void)drv.cuMemFreeAsync(work, s);
      return e;
    }
    params.mem(w, /*flat=*/true);
  }
  params.push(B);
  params.push(Nq);
  params.push(Nk);
  for (int i = 0; i < 4; ++i) {
    auto st = stridesOf(*qkvo[i]);
    params.push(st[0]);
    params.push(st[1]);
    params.push(st[2]);
  }
  unsigned gridX = unsigned((Nq + ak.blockQ - 1) / ak.blockQ);
  llvm::Error e =
      cuda::check(drv.cuLaunchKernel(fns->fn, gridX, unsigned(ak.headsQ),
                                     unsigned(B), unsigned(ak.main.block[0]), 1,
                                     1, unsigned(ak.main.dynamicSharedBytes), s,
                                     params.finish(), nullptr),
                  sig.name + ": cuLaunchKernel");
  if (work)
    if (llvm::Error fe = cuda::check(drv.cuMemFreeAsync(work, s),
                                     sig.name + ": freeing the block map"))
      return llvm::joinErrors(std::move(e), std::move(fe));
  return e;
}

//===----------------------------------------------------------------------===//
// Linear attention and scans
//===----------------------------------------------------------------------===//

GpuLinearKernelImpl::GpuLinearKernelImpl(KernelSignature signature,
                                         abi::LinearKernel abi,
                                         const abi::Signature &abiSig,
                                         std::string ptx, std::string directory)
    : abi(std::move(abi)), ptx(std::move(ptx)), inputNames(abiSig.inputNames),
      constDecay(abiSig.constDecay.begin(), abiSig.constDecay.end()),
      checks(inputChecksOf(abiSig.checks)) {
  sig = std::move(signature);
  dir = std::move(directory);
  this->ptx.push_back('\0');
}

llvm::Expected<GpuLinearKernelImpl::Functions>
GpuLinearKernelImpl::functions() {
  return perContext.get(sig.name, [&]() -> llvm::Expected<Functions> {
    // currentContext has loaded the driver.
    const cuda::Driver *drv = &llvm::cantFail(cuda::driver());
    Functions f;
    // The driver compiles the PTX for the device (mma.sync kernels: any
    // sm_80 or newer GPU).
    if (llvm::Error e =
            cuda::check(drv->cuModuleLoadData(&f.module, ptx.data()),
                        sig.name + ": loading the kernel"))
      return std::move(e);
    if (llvm::Error e = cuda::check(
            drv->cuModuleGetFunction(&f.fn, f.module, abi.main.kernel.c_str()),
            sig.name + ": cuModuleGetFunction"))
      return std::move(e);
    if (llvm::Error e = allowDynamicShared(
            *drv, f.fn, abi.main.dynamicSharedBytes, sig.name))
      return std::move(e);
    if (abi.featureKernel)
      if (llvm::Error e = cuda::check(
              drv->cuModuleGetFunction(&f.phiFn, f.module,
                                       abi.featureKernel->kernel.c_str()),
              sig.name + ": cuModuleGetFunction (feature kernel)"))
        return std::move(e);
    if (!constDecay.empty()) {
      cuda::CUdeviceptr p = 0;
      size_t bytes = constDecay.size() * sizeof(float);
      if (llvm::Error e = cuda::check(drv->cuMemAlloc(&p, bytes),
                                      sig.name + ": allocating the decays"))
        return std::move(e);
      if (llvm::Error e =
              cuda::check(drv->cuMemcpyHtoD(p, constDecay.data(), bytes),
                          sig.name + ": copying the decays"))
        return std::move(e);
      f.decay = reinterpret_cast<void *>(p);
    }
    return f;
  });
}

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
} // namespace

/// Allocates the workspaces and the scratch of `abi` in stream order (into
/// `byName`, recorded in `temps`).
static llvm::Error
allocateTemps(const abi::LinearKernel &abi, const LinearVars &vars,
              StringRef kernel, cuda::CUstream s,
              std::map<std::string, TensorRef> &byName,
              llvm::SmallVectorImpl<cuda::CUdeviceptr> &temps) {
  const cuda::Driver &drv = *cuda::driver();
  auto alloc = [&](const abi::Buffer &buf) -> llvm::Error {
    int64_t bytes = dtypeSize(llvm::cantFail(dtypeFromName(buf.dtype)));
    for (const abi::SizeExpr &d : buf.shape)
      bytes *= vars(d);
    cuda::CUdeviceptr p = 0;
    if (llvm::Error e =
            cuda::check(drv.cuMemAllocAsync(&p, size_t(bytes), s),
                        (kernel + ": allocating '" + buf.name + "'").str()))
      return e;
    temps.push_back(p);
    TensorRef t;
    t.data = reinterpret_cast<void *>(p);
    t.dtype = DType::I8;
    t.shape = {bytes};
    byName[buf.name] = t;
    return llvm::Error::success();
  };
  for (const abi::Buffer &w : abi.workspace)
    if (llvm::Error e = alloc(w))
      return e;
  if (abi.scratch)
    return alloc(*abi.scratch);
  return llvm::Error::success();
}

llvm::Error GpuLinearKernelImpl::launch(ArrayRef<TensorRef> inputs,
                                        ArrayRef<TensorRef> outputs,
                                        void *stream) {
  if (llvm::Error e = checkSignature(sig, inputs, outputs))
    return e;
  if (llvm::Error e = checkInputValues(sig, checks, inputs, /*host=*/false))
    return e;
  std::map<std::string, TensorRef> byName;
  for (auto [n, t] : llvm::zip(inputNames, inputs))
    byName[n] = t;
  byName["o"] = outputs[0];
  if (outputs.size() > 1)
    byName["final_state"] = outputs[1];
  // States are read and written flat.
  for (const char *n : {"initial_state", "final_state"}) {
    auto it = byName.find(n);
    if (it != byName.end() &&
        stridesOf(it->second) != contiguousStrides(it->second.shape))
      return makeError(sig.name + ": '" + n + "' must be contiguous");
  }
  const TensorRef &q = byName["q"];
  int64_t B = q.shape[0], N = q.shape[2];
  // Token and per-feature gates are read through (b, h, n) strides; the
  // other tensors are read flat with these strides (a contiguous last dim).
  std::map<std::string, int64_t> scalars = {{"B", B}, {"N", N}};
  for (const char *n : {"q", "k", "v", "o", "decay"}) {
    auto it = byName.find(n);
    if (it == byName.end())
      continue;
    auto st = stridesOf(it->second);
    if (it->second.shape.size() < 3)
      continue;
    if (it->second.shape.size() == 4 && st[3] != 1)
      return makeError(sig.name + ": '" + n +
                       "' needs a contiguous last dimension");
    std::string p = std::string(n) == "decay" ? "g" : n;
    scalars[p + "_stride_b"] = st[0];
    scalars[p + "_stride_h"] = st[1];
    scalars[p + "_stride_n"] = st[2];
  }
  auto fns = functions();
  if (!fns)
    return fns.takeError();
  const cuda::Driver &drv = *cuda::driver();
  auto s = static_cast<cuda::CUstream>(stream);
  if (fns->decay) {
    TensorRef d;
    d.data = fns->decay;
    d.dtype = DType::F32;
    d.shape = {int64_t(constDecay.size())};
    byName["decay"] = d;
  }
  // Workspaces (phi_q, phi_k) and the bidirectional scratch, in stream
  // order: freed after the launches that use them.
  llvm::SmallVector<cuda::CUdeviceptr> temps;
  auto freeTemps = [&](llvm::Error e) {
    for (cuda::CUdeviceptr p : temps)
      if (llvm::Error fe = cuda::check(drv.cuMemFreeAsync(p, s),
                                       sig.name + ": freeing a workspace"))
        e = llvm::joinErrors(std::move(e), std::move(fe));
    return e;
  };
  LinearVars vars{B, abi.heads, N};
  if (llvm::Error e = allocateTemps(abi, vars, sig.name, s, byName, temps))
    return freeTemps(std::move(e));
  auto launchOne = [&](void *fn, const abi::Launch &l) -> llvm::Error {
    Params params;
    for (const abi::Arg &a : l.args) {
      if (a.kind == abi::ArgKind::Memref || a.kind == abi::ArgKind::MemrefF32) {
        auto it = byName.find(a.name);
        if (it == byName.end())
          return makeError(sig.name + ": no tensor for kernel argument '" +
                           a.name + "'");
        params.mem(it->second, /*flat=*/true);
      } else {
        auto it = scalars.find(a.name);
        if (it == scalars.end())
          return makeError(sig.name + ": no value for kernel argument '" +
                           a.name + "'");
        params.push(it->second);
      }
    }
    return cuda::check(
        drv.cuLaunchKernel(fn, unsigned(vars(l.grid[0])),
                           unsigned(vars(l.grid[1])), unsigned(vars(l.grid[2])),
                           unsigned(l.block[0]), unsigned(l.block[1]),
                           unsigned(l.block[2]), unsigned(l.dynamicSharedBytes),
                           s, params.finish(), nullptr),
        sig.name + ": cuLaunchKernel");
  };
  if (abi.featureKernel)
    if (llvm::Error e = launchOne(fns->phiFn, *abi.featureKernel))
      return freeTemps(std::move(e));
  return freeTemps(launchOne(fns->fn, abi.main));
}

//===----------------------------------------------------------------------===//
// Programs of several attn ops
//===----------------------------------------------------------------------===//

GpuProgramImpl::GpuProgramImpl(KernelSignature signature, GpuProgram program)
    : program(std::move(program)) {
  sig = std::move(signature);
}

llvm::Error GpuProgramImpl::launch(ArrayRef<TensorRef> inputs,
                                   ArrayRef<TensorRef> outputs, void *stream) {
  if (llvm::Error e = checkSignature(sig, inputs, outputs))
    return e;
  auto current = currentContext(sig.name);
  if (!current)
    return current.takeError();
  void *ctx = *current;
  // currentContext has loaded the driver.
  const cuda::Driver *drv = &llvm::cantFail(cuda::driver());
  auto s = static_cast<cuda::CUstream>(stream);
  // Temporaries: contiguous, in stream order.
  llvm::SmallVector<TensorRef, 4> temps;
  llvm::SmallVector<cuda::CUdeviceptr, 4> allocs;
  auto finish = [&](llvm::Error e) {
    for (cuda::CUdeviceptr p : allocs)
      if (llvm::Error fe = cuda::check(drv->cuMemFreeAsync(p, s),
                                       sig.name + ": freeing a temporary"))
        e = llvm::joinErrors(std::move(e), std::move(fe));
    return e;
  };
  for (const GpuProgram::Temp &t : program.temps) {
    TensorRef r;
    r.dtype = t.dtype;
    const TensorRef &like = inputs[t.like];
    for (auto [d, n] : llvm::enumerate(t.shape))
      r.shape.push_back(n >= 0 ? n : like.shape[d == 0 ? 0 : 2]);
    int64_t bytes = dtypeSize(t.dtype);
    for (int64_t n : r.shape)
      bytes *= n;
    cuda::CUdeviceptr p = 0;
    if (llvm::Error e = cuda::check(drv->cuMemAllocAsync(&p, size_t(bytes), s),
                                    sig.name + ": allocating a temporary"))
      return finish(std::move(e));
    allocs.push_back(p);
    r.data = reinterpret_cast<void *>(p);
    temps.push_back(std::move(r));
  }
  auto ref = [&](GpuProgram::Ref r) -> const TensorRef & {
    return r.kind == GpuProgram::Ref::Input    ? inputs[r.index]
           : r.kind == GpuProgram::Ref::Output ? outputs[r.index]
                                               : temps[r.index];
  };
  for (auto [i, step] : llvm::enumerate(program.steps)) {
    llvm::SmallVector<TensorRef, 4> ins, outs;
    for (GpuProgram::Ref r : step.ins)
      ins.push_back(ref(r));
    for (GpuProgram::Ref r : step.outs)
      outs.push_back(ref(r));
    if (step.kernel) {
      if (llvm::Error e = step.kernel->launch(ins, outs, stream))
        return finish(std::move(e));
      continue;
    }
    // Elementwise: flat over contiguous tensors of one shape.
    for (const TensorRef &t : llvm::concat<const TensorRef>(ins, outs)) {
      if (t.shape != outs[0].shape)
        return finish(makeError(sig.name + ": elementwise operands of shapes " +
                                shapeStr(t.shape) + " and " +
                                shapeStr(outs[0].shape)));
      if (stridesOf(t) != contiguousStrides(t.shape))
        return finish(makeError(sig.name + ": the outputs of a program of "
                                           "several attn ops must be "
                                           "contiguous"));
    }
    void *fn = nullptr;
    {
      std::lock_guard<std::mutex> lock(mu);
      auto it = functions.find({ctx, i});
      if (it != functions.end()) {
        fn = it->second;
      } else {
        void *module = nullptr;
        if (llvm::Error e =
                cuda::check(drv->cuModuleLoadData(&module, step.ptx.data()),
                            sig.name + ": loading the elementwise kernel"))
          return finish(std::move(e));
        if (llvm::Error e = cuda::check(
                drv->cuModuleGetFunction(&fn, module, step.name.c_str()),
                sig.name + ": cuModuleGetFunction (elementwise)"))
          return finish(std::move(e));
        functions[{ctx, i}] = fn;
      }
    }
    int64_t n = 1;
    for (int64_t d : outs[0].shape)
      n *= d;
    Params params;
    params.mem(ins[0], /*flat=*/true);
    params.mem(ins[1], /*flat=*/true);
    params.mem(outs[0], /*flat=*/true);
    params.push(n);
    if (llvm::Error e = cuda::check(
            drv->cuLaunchKernel(fn, unsigned((n + 255) / 256), 1, 1, 256, 1, 1,
                                0, s, params.finish(), nullptr),
            sig.name + ": launching an elementwise kernel"))
      return finish(std::move(e));
  }
  return finish(llvm::Error::success());
}
