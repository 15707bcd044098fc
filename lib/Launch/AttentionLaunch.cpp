//===- AttentionLaunch.cpp - launching FlashAttention kernels -------------===//
//
// Part of attnc. The launch sequence of an attention kernel (docs/gpu.md):
// the block-map kernel when the mask reads captured data, then the main
// kernel over a (q tiles, Hq, B) grid.
//
//===----------------------------------------------------------------------===//

#include "Context.h"
#include "CudaDriver.h"
#include "KernelLauncher.h"
#include "LaunchParams.h"
#include "TensorMapCache.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>

using namespace attnc;
using namespace attnc::rt;
using llvm::ArrayRef;

namespace {
class AttentionLauncher : public KernelLauncher {
public:
  using KernelLauncher::KernelLauncher;
  llvm::Error launch(ArrayRef<TensorRef> inputs, ArrayRef<TensorRef> outputs,
                     void *stream) override;

private:
  struct Functions {
    void *module = nullptr, *fn = nullptr, *mapFn = nullptr;
  };
  /// The split-KV kernels, loaded on their first use, and the device's
  /// multiprocessor count.
  struct SplitFunctions {
    void *module = nullptr, *partialFn = nullptr, *combineFn = nullptr;
    int smCount = 1;
  };
  llvm::Expected<Functions> functions();
  llvm::Expected<SplitFunctions> splitFunctions();
  /// The block table of a paged kernel.
  PagedKv paged() const;
  /// Whether (B, Nq) take the split-KV form.
  bool useSplitKv(int64_t B, int64_t Nq) const;
  llvm::Error launchSplitKv(ArrayRef<TensorRef> inputs,
                            ArrayRef<TensorRef> outputs, int64_t B, int64_t Nq,
                            int64_t Nk, void *stream);
  llvm::Error checkLayout(ArrayRef<TensorRef> inputs,
                          ArrayRef<TensorRef> outputs) const;
  llvm::Error pushOperands(LaunchParams &params,
                           ArrayRef<const TensorRef *> qkvo);
  llvm::Expected<TensorRef> launchBlockMap(void *mapFn,
                                           ArrayRef<TensorRef> captures,
                                           int64_t B, int64_t Nq, int64_t Nk,
                                           void *stream);

  PerContext<Functions> perContext;
  PerContext<SplitFunctions> perContextSplit;
  TensorMapCache maps[3];
};
} // namespace

llvm::Expected<AttentionLauncher::Functions> AttentionLauncher::functions() {
  return perContext.get(sig.name, [&]() -> llvm::Expected<Functions> {
    Functions f;
    const abi::AttentionKernel &a = kernel.attention;
    // Only wgmma kernels take their shared memory dynamically.
    if (llvm::Error e = loadFunction(f.module, f.fn, a.main.kernel,
                                     a.main.dynamicSharedBytes))
      return std::move(e);
    if (a.blockMap)
      if (llvm::Error e =
              loadFunction(f.module, f.mapFn, a.blockMap->launch.kernel, 0))
        return std::move(e);
    return f;
  });
}

llvm::Expected<AttentionLauncher::SplitFunctions>
AttentionLauncher::splitFunctions() {
  return perContextSplit.get(sig.name, [&]() -> llvm::Expected<SplitFunctions> {
    // The main kernel's module (loaded once per context).
    auto main = functions();
    if (!main)
      return main.takeError();
    SplitFunctions f;
    f.module = main->module;
    const abi::SplitKv &sk = *kernel.attention.splitKv;
    if (llvm::Error e =
            loadFunction(f.module, f.partialFn, sk.partial.kernel, 0))
      return std::move(e);
    if (llvm::Error e =
            loadFunction(f.module, f.combineFn, sk.combine.kernel, 0))
      return std::move(e);
    const cuda::Driver &drv = *cuda::driver();
    int dev = 0, sms = 0;
    if (llvm::Error e = cuda::check(drv.cuCtxGetDevice(&dev),
                                    sig.name + ": cuCtxGetDevice"))
      return std::move(e);
    // CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT
    if (llvm::Error e = cuda::check(drv.cuDeviceGetAttribute(&sms, 16, dev),
                                    sig.name + ": cuDeviceGetAttribute"))
      return std::move(e);
    f.smCount = std::max(sms, 1);
    return f;
  });
}

/// The (b, h, n) strides of a [B, H, N, D] tensor.
static void pushStrides(LaunchParams &params, const TensorRef &t) {
  auto st = stridesOf(t);
  for (int i = 0; i < 3; ++i)
    params.push(st[i]);
}

/// ATTNC_SPLIT_KV=0 turns the split-KV form off (for comparisons; read on
/// every call).
static bool splitKvEnabled() {
  const char *v = std::getenv("ATTNC_SPLIT_KV");
  return !v || std::strcmp(v, "0") != 0;
}

/// The launch input of kernel argument "capture<i>": 3 + i (-1: another
/// name).
static int captureInput(llvm::StringRef arg) {
  unsigned capture = 0;
  if (!arg.consume_front("capture") || arg.getAsInteger(10, capture))
    return -1;
  return int(3 + capture);
}

PagedKv AttentionLauncher::paged() const {
  const abi::AttentionKernel &ak = kernel.attention;
  int input = captureInput(ak.pageTable);
  if (!ak.pageSize || input < 0)
    return {};
  return {input, ak.pageSize};
}

bool AttentionLauncher::useSplitKv(int64_t B, int64_t Nq) const {
  const abi::AttentionKernel &ak = kernel.attention;
  // Grid limits of y and z (65535) on the combine's and the partial's grid.
  return ak.splitKv && Nq <= ak.splitKv->maxQueries && B * ak.headsQ <= 65535 &&
         splitKvEnabled();
}

/// q, k, v and o: a contiguous head dim, strides that are multiples of 8,
/// 16-byte alignment (16-byte vector loads and TMA); a contiguous lse.
llvm::Error AttentionLauncher::checkLayout(ArrayRef<TensorRef> inputs,
                                           ArrayRef<TensorRef> outputs) const {
  const TensorRef *qkvo[] = {&inputs[0], &inputs[1], &inputs[2], &outputs[0]};
  const char *names[] = {"q", "k", "v", "o"};
  for (int i = 0; i < 4; ++i)
    if (llvm::Error e = checkHeadLayout(sig.name, names[i], *qkvo[i]))
      return e;
  if (kernel.attention.lse)
    return checkContiguous(sig.name, "lse", outputs[1]);
  return llvm::Error::success();
}

/// q, k, v (TMA maps for wgmma kernels, memrefs otherwise) and o.
llvm::Error AttentionLauncher::pushOperands(LaunchParams &params,
                                            ArrayRef<const TensorRef *> qkvo) {
  const abi::AttentionKernel &ak = kernel.attention;
  bool wgmma = ak.variant == abi::Variant::Wgmma;
  const char *names[] = {"q", "k", "v"};
  for (int i = 0; i < 3; ++i) {
    if (!wgmma) {
      params.memref(*qkvo[i], /*flat=*/true);
      continue;
    }
    auto map = maps[i].get(*qkvo[i], ak.main.args[i].boxRows,
                           sig.name + " (" + names[i] + ")");
    if (!map)
      return map.takeError();
    uint64_t words[16];
    std::copy(map->begin(), map->end(), words);
    params.pushMap(words);
  }
  params.memref(*qkvo[3], /*flat=*/true);
  return llvm::Error::success();
}

/// Launches the map kernel into a stream-ordered workspace of one i8 class
/// per (slice, q tile, kv tile); the caller frees it after the main kernel.
llvm::Expected<TensorRef>
AttentionLauncher::launchBlockMap(void *mapFn, ArrayRef<TensorRef> captures,
                                  int64_t B, int64_t Nq, int64_t Nk,
                                  void *stream) {
  const abi::AttentionKernel &ak = kernel.attention;
  const abi::BlockMap &bm = *ak.blockMap;
  const cuda::Driver &drv = *cuda::driver();
  auto *s = static_cast<cuda::CUstream>(stream);
  int64_t Hq = ak.headsQ;
  int64_t slices = bm.slices == abi::MapSlices::BatchHeads ? B * Hq
                   : bm.slices == abi::MapSlices::Heads    ? Hq
                   : bm.slices == abi::MapSlices::Batch    ? B
                                                           : 1;
  int64_t nqt = (Nq + ak.blockQ - 1) / ak.blockQ;
  int64_t nkt = (Nk + ak.blockKv - 1) / ak.blockKv;
  int64_t bytes = std::max<int64_t>(slices * nqt * nkt, 1);
  cuda::CUdeviceptr work = 0;
  if (llvm::Error e = cuda::check(drv.cuMemAllocAsync(&work, bytes, s),
                                  sig.name + ": allocating the block map"))
    return std::move(e);
  TensorRef w;
  w.data = reinterpret_cast<void *>(work);
  w.dtype = DType::I8;
  w.shape = {bytes};
  LaunchParams mp;
  for (const TensorRef &c : captures)
    mp.memref(c, /*flat=*/false);
  mp.memref(w, /*flat=*/true);
  mp.push(slices);
  mp.push(Nq);
  mp.push(Nk);
  if (llvm::Error e = cuda::check(
          drv.cuLaunchKernel(mapFn, unsigned(nqt), unsigned(nkt),
                             unsigned(slices), unsigned(bm.launch.block[0]), 1,
                             1, 0, s, mp.finish(), nullptr),
          sig.name + ": launching the block-map kernel")) {
    (void)drv.cuMemFreeAsync(work, s);
    return std::move(e);
  }
  return w;
}

llvm::Error AttentionLauncher::launch(ArrayRef<TensorRef> inputs,
                                      ArrayRef<TensorRef> outputs,
                                      void *stream) {
  if (llvm::Error e = checkSignature(sig, inputs, outputs))
    return e;
  if (llvm::Error e = checkAttentionShapes(sig, inputs, outputs, paged()))
    return e;
  if (llvm::Error e = checkInputValues(sig, checks, inputs, /*host=*/false))
    return e;
  if (llvm::Error e = checkLayout(inputs, outputs))
    return e;
  const abi::AttentionKernel &ak = kernel.attention;
  int64_t B = inputs[0].shape[0], Nq = inputs[0].shape[2],
          Nk = attentionKeys(inputs, paged());
  // Packed sequences: B counts them (cu_seqlens_q holds B + 1 offsets).
  if (ak.varlen())
    B = inputs[captureInput(ak.cuSeqlensQ)].shape[0] - 1;
  if (B <= 0 || Nq == 0)
    return llvm::Error::success();
  if (!ak.varlen() && useSplitKv(B, Nq))
    return launchSplitKv(inputs, outputs, B, Nq, Nk, stream);
  auto fns = functions();
  if (!fns)
    return fns.takeError();
  const TensorRef *qkvo[] = {&inputs[0], &inputs[1], &inputs[2], &outputs[0]};
  LaunchParams params;
  if (llvm::Error e = pushOperands(params, qkvo))
    return e;
  if (ak.lse)
    params.memref(outputs[1], /*flat=*/true);
  ArrayRef<TensorRef> captures = inputs.drop_front(3);
  for (const TensorRef &c : captures)
    params.memref(c, /*flat=*/false);
  cuda::CUdeviceptr work = 0;
  if (fns->mapFn) {
    auto w = launchBlockMap(fns->mapFn, captures, B, Nq, Nk, stream);
    if (!w)
      return w.takeError();
    work = reinterpret_cast<cuda::CUdeviceptr>(w->data);
    params.memref(*w, /*flat=*/true);
  }
  params.push(B);
  params.push(Nq);
  params.push(Nk);
  for (const TensorRef *t : qkvo)
    pushStrides(params, *t);
  const cuda::Driver &drv = *cuda::driver();
  auto *s = static_cast<cuda::CUstream>(stream);
  // Packed sequences: at most ceil(Nq / blockQ) + B q tiles in all, one
  // grid row.
  int64_t qTiles = (Nq + ak.blockQ - 1) / ak.blockQ;
  unsigned gridX = unsigned(ak.varlen() ? qTiles + B : qTiles);
  unsigned gridZ = unsigned(ak.varlen() ? 1 : B);
  llvm::Error e =
      cuda::check(drv.cuLaunchKernel(fns->fn, gridX, unsigned(ak.headsQ),
                                     gridZ, unsigned(ak.main.block[0]), 1,
                                     1, unsigned(ak.main.dynamicSharedBytes), s,
                                     params.finish(), nullptr),
                  sig.name + ": cuLaunchKernel");
  if (work)
    if (llvm::Error fe = cuda::check(drv.cuMemFreeAsync(work, s),
                                     sig.name + ": freeing the block map"))
      return llvm::joinErrors(std::move(e), std::move(fe));
  return e;
}

/// The kv slices of a split-KV launch: enough blocks for two per
/// multiprocessor, each slice at least two kv tiles (ATTNC_SPLITS=n forces
/// n, for measurements).
static int64_t chooseSplits(int64_t blocksPerSplit, int64_t numKT,
                            int64_t smCount) {
  int64_t splits = (2 * smCount + blocksPerSplit - 1) / blocksPerSplit;
  if (const char *v = std::getenv("ATTNC_SPLITS"))
    splits = std::atoll(v);
  splits = std::min(splits, (numKT + 1) / 2);
  return std::clamp<int64_t>(splits, 1, 65535);
}

llvm::Error AttentionLauncher::launchSplitKv(ArrayRef<TensorRef> inputs,
                                             ArrayRef<TensorRef> outputs,
                                             int64_t B, int64_t Nq, int64_t Nk,
                                             void *stream) {
  auto fns = splitFunctions();
  if (!fns)
    return fns.takeError();
  const abi::AttentionKernel &ak = kernel.attention;
  const abi::SplitKv &sk = *ak.splitKv;
  int64_t G = ak.headsQ / ak.headsKv;
  int64_t qTiles = (Nq * G + sk.blockRows - 1) / sk.blockRows;
  int64_t numKT = (Nk + sk.blockKv - 1) / sk.blockKv;
  int64_t splits = chooseSplits(qTiles * B * ak.headsKv, numKT, fns->smCount);
  // The partial results: f32 o [splits, B, Hq, Nq, Dv], then lse.
  int64_t rows = splits * B * ak.headsQ * Nq;
  const cuda::Driver &drv = *cuda::driver();
  auto *s = static_cast<cuda::CUstream>(stream);
  cuda::CUdeviceptr work = 0;
  size_t bytes = size_t(rows) * size_t(ak.valueDim + 1) * sizeof(float);
  if (llvm::Error e = cuda::check(drv.cuMemAllocAsync(&work, bytes, s),
                                  sig.name + ": allocating the split-KV "
                                             "partial results"))
    return e;
  TensorRef oPart, lsePart;
  oPart.data = reinterpret_cast<void *>(work);
  oPart.shape = {rows * ak.valueDim};
  lsePart.data = reinterpret_cast<float *>(oPart.data) + rows * ak.valueDim;
  lsePart.shape = {rows};

  LaunchParams pp;
  for (int i = 0; i < 3; ++i)
    pp.memref(inputs[i], /*flat=*/true);
  pp.memref(oPart, /*flat=*/true);
  pp.memref(lsePart, /*flat=*/true);
  for (const TensorRef &c : inputs.drop_front(3))
    pp.memref(c, /*flat=*/false);
  for (int64_t v : {B, Nq, Nk})
    pp.push(v);
  for (int i = 0; i < 3; ++i)
    pushStrides(pp, inputs[i]);
  llvm::Error e =
      cuda::check(drv.cuLaunchKernel(fns->partialFn, unsigned(qTiles),
                                     unsigned(splits), unsigned(B * ak.headsKv),
                                     unsigned(sk.partial.block[0]), 1, 1, 0, s,
                                     pp.finish(), nullptr),
                  sig.name + ": launching the split-KV kernel");
  if (!e) {
    LaunchParams cp;
    cp.memref(oPart, /*flat=*/true);
    cp.memref(lsePart, /*flat=*/true);
    cp.memref(outputs[0], /*flat=*/true);
    if (ak.lse)
      cp.memref(outputs[1], /*flat=*/true);
    if (int in = captureInput(ak.sinks); in >= 0)
      cp.memref(inputs[in], /*flat=*/false);
    for (int64_t v : {B, Nq, splits})
      cp.push(v);
    pushStrides(cp, outputs[0]);
    e = cuda::check(drv.cuLaunchKernel(fns->combineFn, unsigned(Nq),
                                       unsigned(ak.headsQ), unsigned(B),
                                       unsigned(sk.combine.block[0]), 1, 1, 0,
                                       s, cp.finish(), nullptr),
                    sig.name + ": launching the split-KV combine kernel");
  }
  if (llvm::Error fe =
          cuda::check(drv.cuMemFreeAsync(work, s),
                      sig.name + ": freeing the split-KV partial results"))
    return llvm::joinErrors(std::move(e), std::move(fe));
  return e;
}

std::unique_ptr<KernelLauncher>
attnc::rt::makeAttentionLauncher(KernelSignature sig, abi::Kernel kernel,
                                 KernelImages images, InputChecks checks) {
  return std::unique_ptr<KernelLauncher>(new AttentionLauncher(
      std::move(sig), std::move(kernel), std::move(images), std::move(checks)));
}
