//===- SplitKvKernel.cpp - split-KV (decode) attention kernels ------------===//
//
// Part of attnc. The split-KV form of an attention kernel (flash-decoding;
// docs/inference.md), built beside the main kernel:
//  - `<name>_splitkv`: the mma.sync kernel in its split-KV configuration
//    (AttnKernelConfig::splitKv): the G = Hq / Hkv query heads of a kv head
//    packed into the rows of a q tile, so that K and V are read once per kv
//    head, and the kv tiles cut into `splits` slices (the grid's y), each
//    writing its f32 o and lse;
//  - `<name>_combine`: one block per (query, Hq, B), one thread per column,
//    merging the slices by their lse into o and lse.
//
//===----------------------------------------------------------------------===//

#include "AttnKernel.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"

#include <limits>

using namespace mlir;
using namespace mlir::attn;
using namespace mlir::attn::detail;
using arith::CmpFPredicate;
using arith::CmpIPredicate;

namespace {
/// The queries up to which launchers take the split-KV form (decode,
/// speculative decoding and chunked-prefill tails).
constexpr int64_t kMaxSplitQueries = 64;

/// The combine kernel's parameters: o_part, lse_part, o, [lse], [the
/// sinks], B, Nq, splits and o's strides.
KernelParams combineParams(const AttnKernelConfig &cfg) {
  MLIRContext *ctx = cfg.op.getContext();
  Type f32 = Float32Type::get(ctx);
  KernelParams p(ctx);
  p.memref("o_part", f32, {ShapedType::kDynamic});
  p.memref("lse_part", f32, {ShapedType::kDynamic});
  p.memref("o", cfg.elem, {ShapedType::kDynamic});
  if (cfg.op.getLse())
    p.memref("lse", f32, {ShapedType::kDynamic});
  if (Value sinks = cfg.op.getSinks())
    p.memref(captureArgName(cfg, sinks), f32, {cfg.hq});
  for (StringRef n :
       {"B", "Nq", "splits", "o_stride_b", "o_stride_h", "o_stride_n"})
    p.index(n);
  return p;
}

/// The split-KV kernel's parameters (bindMainArgs): q, k, v, o_part,
/// lse_part, the captures, B, Nq, Nk and the strides of q, k and v.
KernelParams splitParams(const AttnKernelConfig &cfg) {
  MLIRContext *ctx = cfg.op.getContext();
  Type f32 = Float32Type::get(ctx);
  KernelParams p(ctx);
  for (StringRef n : {"q", "k", "v"})
    p.memref(n, cfg.elem, {ShapedType::kDynamic});
  p.memref("o_part", f32, {ShapedType::kDynamic});
  p.memref("lse_part", f32, {ShapedType::kDynamic});
  for (auto [i, cap] : llvm::enumerate(cfg.captures)) {
    auto t = cast<RankedTensorType>(cap.getType());
    p.memref("capture" + std::to_string(i), t.getElementType(), t.getShape());
  }
  for (StringRef n :
       {"B", "Nq", "Nk", "q_stride_b", "q_stride_h", "q_stride_n", "k_stride_b",
        "k_stride_h", "k_stride_n", "v_stride_b", "v_stride_h", "v_stride_n"})
    p.index(n);
  return p;
}

/// The combine kernel's body (see emitCombineKernel).
class CombineKernel {
public:
  CombineKernel(const AttnKernelConfig &cfg, ImplicitLocOpBuilder &b,
                Block &entry)
      : cfg(cfg), b(b), e(b), entry(entry) {}
  void emit();

private:
  const AttnKernelConfig &cfg;
  ImplicitLocOpBuilder &b;
  Emitter e;
  Block &entry;
};
} // namespace

void CombineKernel::emit() {
  const double log2e = 1.4426950408889634, ln2 = 0.6931471805599453;
  unsigned a = 0;
  Value oPart = entry.getArgument(a++), lsePart = entry.getArgument(a++);
  StridedTensor o;
  o.mem = entry.getArgument(a++);
  Value lse = cfg.op.getLse() ? entry.getArgument(a++) : Value();
  Value sinks = cfg.op.getSinks() ? entry.getArgument(a++) : Value();
  Value batch = entry.getArgument(a++), nq = entry.getArgument(a++);
  Value splits = entry.getArgument(a++);
  for (int i = 0; i < 3; ++i)
    o.strides[i] = entry.getArgument(a++);

  Value c0 = e.idx(0), c1 = e.idx(1);
  Value negInf = e.f32(-std::numeric_limits<float>::infinity());
  Value zero = e.f32(0.0);
  Value col = gpu::ThreadIdOp::create(b, gpu::Dimension::x);
  Value i = gpu::BlockIdOp::create(b, gpu::Dimension::x);
  Value h = gpu::BlockIdOp::create(b, gpu::Dimension::y);
  Value bi = gpu::BlockIdOp::create(b, gpu::Dimension::z);
  // Row r of [B, Hq, Nq]; slice s's copy is row s * rows + r.
  Value rows = e.muli(e.muli(batch, e.idx(cfg.hq)), nq);
  Value r = e.addi(e.muli(e.addi(e.muli(bi, e.idx(cfg.hq)), h), nq), i);
  auto lseOf = [&](Value s) {
    return memref::LoadOp::create(b, lsePart,
                                  ValueRange{e.addi(e.muli(s, rows), r)})
        .getResult();
  };
  Value m = e.loop(c0, splits, c1, {negInf},
                   [&](Value s, ValueRange it) -> SmallVector<Value> {
                     return {e.maxf(it[0], lseOf(s))};
                   })[0];
  Value mSafe = e.select(e.cmpf(CmpFPredicate::OEQ, m, negInf), zero, m);
  SmallVector<Value> sums = e.loop(
      c0, splits, c1, {zero, zero},
      [&](Value s, ValueRange it) -> SmallVector<Value> {
        Value w = ex2Approx(b, e.mulf(e.subf(lseOf(s), mSafe), e.f32(log2e)));
        Value idx =
            e.addi(e.muli(e.addi(e.muli(s, rows), r), e.idx(cfg.dv)), col);
        Value x = memref::LoadOp::create(b, oPart, ValueRange{idx});
        return {e.addf(it[0], w), e.addf(it[1], e.mulf(w, x))};
      });
  if (sinks) {
    // The sink joins the denominator: rescale both sums from mSafe to
    // max(m, sink) (ex2(-inf) = 0 where no slice saw a key).
    Value sink = memref::LoadOp::create(b, sinks, ValueRange{h});
    Value mNew = e.maxf(m, sink);
    Value alpha = ex2Approx(b, e.mulf(e.subf(mSafe, mNew), e.f32(log2e)));
    alpha = e.select(e.cmpf(CmpFPredicate::OEQ, m, negInf), zero, alpha);
    sums[0] = e.addf(e.mulf(sums[0], alpha),
                     ex2Approx(b, e.mulf(e.subf(sink, mNew), e.f32(log2e))));
    sums[1] = e.mulf(sums[1], alpha);
    mSafe = mNew;
  }
  Value any = e.cmpf(CmpFPredicate::OGT, sums[0], zero);
  Value out = e.select(any, e.divf(sums[1], sums[0]), zero);
  Value off = o.offset(e, bi, h, i, col);
  memref::StoreOp::create(b, arith::TruncFOp::create(b, cfg.elem, out), o.mem,
                          ValueRange{off});
  if (lse)
    e.ifThen(e.cmpi(CmpIPredicate::eq, col, c0), [&] {
      Value val = e.select(
          any, e.addf(mSafe, e.mulf(lg2Approx(b, sums[0]), e.f32(ln2))),
          negInf);
      memref::StoreOp::create(b, val, lse, ValueRange{r});
    });
  gpu::ReturnOp::create(b);
}

void mlir::attn::detail::emitCombineKernel(const AttnKernelConfig &cfg,
                                           gpu::GPUFuncOp func) {
  Block &entry = func.getBody().front();
  auto b = ImplicitLocOpBuilder::atBlockBegin(cfg.op.getLoc(), &entry);
  CombineKernel(cfg, b, entry).emit();
}

FailureOr<attnc::abi::SplitKv>
mlir::attn::detail::buildSplitKvKernels(const AttnKernelConfig &main,
                                        OpBuilder &ob, StringRef name) {
  namespace abi = attnc::abi;
  AttnKernelConfig cfg = getSplitKvConfig(main);
  abi::SplitKv sk;
  sk.blockRows = cfg.bq;
  sk.blockKv = cfg.bkv;
  sk.maxQueries = kMaxSplitQueries;
  // One block per (packed query rows, kv slice, (b, kv head)).
  KernelParams split = splitParams(cfg);
  sk.partial.kernel = (name + "_splitkv").str();
  sk.partial.grid = {abi::SizeExpr::of("Nq*G", cfg.bq),
                     abi::SizeExpr::of("splits"), abi::SizeExpr::of("B*Hkv")};
  sk.partial.block = {cfg.threads(), 1, 1};
  sk.partial.args = split.args;
  gpu::GPUFuncOp splitFunc =
      createMainKernel(cfg, ob, sk.partial.kernel, split.types);
  if (failed(emitMmaSyncKernel(cfg, splitFunc)))
    return failure();

  // One block per (query, head, batch), a thread per value column.
  KernelParams combine = combineParams(cfg);
  sk.combine.kernel = (name + "_combine").str();
  sk.combine.grid = {abi::SizeExpr::of("Nq"), abi::SizeExpr::constant(main.hq),
                     abi::SizeExpr::of("B")};
  sk.combine.block = {cfg.dv, 1, 1};
  sk.combine.args = combine.args;
  auto combineFunc =
      gpu::GPUFuncOp::create(ob, cfg.op.getLoc(), sk.combine.kernel,
                             ob.getFunctionType(combine.types, {}));
  combineFunc->setAttr(gpu::GPUDialect::getKernelFuncAttrName(),
                       ob.getUnitAttr());
  combineFunc.setKnownBlockSizeAttr(
      ob.getDenseI32ArrayAttr({int32_t(cfg.dv), 1, 1}));
  emitCombineKernel(cfg, combineFunc);
  return sk;
}
