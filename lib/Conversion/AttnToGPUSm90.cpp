//===- AttnToGPUSm90.cpp - attn.attention to a Hopper (sm_90a) kernel -----===//
//
// Part of attnc. The sm_90a sibling of the mma.sync kernel (AttnToGPU.cpp),
// following docs/notes/sm90a-plan.md (described in docs/gpu-sm90.md):
//  - block_q / 64 warpgroups (128 threads each, 64 query rows each) share
//    128-key K/V tiles (block_kv = 128); block_q 128 is the default;
//  - Q once and K, V per tile by TMA (4-D tensor maps over [B, H, N, D]
//    with the tensor's strides, 64-column boxes, 128-byte swizzle, zero fill
//    past N), completion on mbarriers; with block_q 128, two K/V stages:
//    the next tile is loaded while this one is computed;
//  - S = Q K^T with nvvm.wgmma.mma_async m64n128k16 (A and B from shared
//    memory through descriptors built here), O += P V with register-A wgmma
//    m64n{Dv}k16 (P straight from the S accumulators, through inline PTX:
//    no MLIR 22 op takes A from registers);
//  - the online softmax in registers; the score and mask regions inlined per
//    element. kv tiles outside the range of non-empty tiles (reduced over
//    the block) are neither loaded nor computed; empty tiles inside it are
//    loaded but not computed; full tiles run without mask code; a partial
//    tile's mask is evaluated into bits before S exists.
// Accumulator layout of wgmma m64nN (f32): warp w of the warpgroup holds
// rows 16w + lane/4 and 16w + lane/4 + 8; value i (0 <= i < N/2) is in row
// (i % 4 < 2 ? first : second), column 8 * (i / 4) + 2 * (lane % 4) + i % 2.
// This is also the register-A layout of P for the P V wgmma.
//
//===----------------------------------------------------------------------===//

#include "GpuKernelEmitter.h"
#include "attnc/Target/TargetDesc.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/NVGPU/IR/NVGPUDialect.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"

#include <limits>
#include <string>

using namespace mlir;
using namespace mlir::attn;
using namespace mlir::attn::detail;
using arith::CmpFPredicate;
using arith::CmpIPredicate;

namespace {
/// The 128-byte-swizzle wgmma matrix descriptor of the shared-memory byte
/// address `addr` (i64): (addr >> 4) in bits 0-13, LBO / 16 << 16, SBO / 16
/// << 32 with SBO = 1024 B (8 rows of 128 B), swizzle mode 1 << 62. Shared
/// addresses are below 2^18, so the descriptor of addr + off (off a multiple
/// of 16) is this one plus off / 16.
Value descriptor(ImplicitLocOpBuilder &b, Value addr, int64_t lboBytes) {
  Type i64 = b.getI64Type();
  auto c = [&](int64_t x) {
    return arith::ConstantIntOp::create(b, i64, x).getResult();
  };
  Value m = arith::AndIOp::create(b, addr, c(0x3FFFF));
  Value s = arith::ShRUIOp::create(b, m, c(4));
  int64_t fixed =
      ((lboBytes / 16) << 16) | (int64_t(64) << 32) | (int64_t(1) << 62);
  return arith::OrIOp::create(b, s, c(fixed));
}

Value addConst(ImplicitLocOpBuilder &b, Value x, int64_t off) {
  if (!off)
    return x;
  return arith::AddIOp::create(
      b, x, arith::ConstantIntOp::create(b, x.getType(), off));
}
} // namespace

LogicalResult GpuKernelEmitter::emitSm90(gpu::GPUFuncOp func) {
  MLIRContext *ctx = b.getContext();
  Block &entry = func.getBody().front();
  b.setInsertionPointToStart(&entry);
  bindArguments(entry);
  // q, k, v are the TMA maps' pointers here.
  Value qPtr = q, kPtr = k, vPtr = v;

  const double log2e = 1.4426950408889634;
  Type f32 = b.getF32Type(), i64 = b.getI64Type(), idxTy = b.getIndexType();
  Value qt = bindIndices();
  Value zero = e.f32(0.0);

  // Shared memory: Q (d/64 atoms of bq rows), then `stages` stages of K
  // (d/64 atoms) and V (dv/64 atoms) of 128 rows; every atom is 64 columns
  // of 128-byte rows, 128-byte swizzled (1024-byte aligned).
  auto wg = gpu::AddressSpaceAttr::get(ctx, gpu::AddressSpace::Workgroup);
  int64_t qAtoms = d / 64, kAtoms = d / 64, vAtoms = dv / 64;
  int64_t qAtomBytes = bq * 128, kvAtomBytes = bkv * 128;
  int64_t stages = sm90Stages(bq);
  int64_t kOff = qAtoms * qAtomBytes;
  int64_t stageBytes = (kAtoms + vAtoms) * kvAtomBytes;
  int64_t vRel = kAtoms * kvAtomBytes; // V after K within a stage
  auto qTileTy = MemRefType::get({1, 1, bq, 64}, elem, AffineMap(), wg);
  auto kTileTy = MemRefType::get({1, 1, bkv, 64}, elem, AffineMap(), wg);
  auto mapTy = [&](MemRefType t) {
    return nvgpu::TensorMapDescriptorType::get(
        ctx, t, nvgpu::TensorMapSwizzleKind::SWIZZLE_128B,
        nvgpu::TensorMapL2PromoKind::L2PROMO_NONE,
        nvgpu::TensorMapOOBKind::OOB_ZERO,
        nvgpu::TensorMapInterleaveKind::INTERLEAVE_NONE);
  };
  auto cast = [&](Value p, Type t) {
    return UnrealizedConversionCastOp::create(b, TypeRange{t}, ValueRange{p})
        .getResult(0);
  };
  Value qMap = cast(qPtr, mapTy(qTileTy));
  Value kMap = cast(kPtr, mapTy(kTileTy));
  Value vMap = cast(vPtr, mapTy(kTileTy));
  auto smemTy =
      MemRefType::get({ShapedType::kDynamic}, b.getI8Type(), AffineMap(), wg);
  Value smem = gpu::DynamicSharedMemoryOp::create(b, smemTy);
  // Barrier 0: Q; barrier 1 + s: K and V of stage s.
  auto barsTy = nvgpu::MBarrierGroupType::get(ctx, wg, 1 + stages);
  Value bars = nvgpu::MBarrierCreateOp::create(b, barsTy);
  Value first = e.cmpi(CmpIPredicate::eq, tid, c0);
  e.ifThen(first, [&] {
    for (int64_t i = 0; i <= stages; ++i)
      nvgpu::MBarrierInitOp::create(b, bars, c1, cIdx(i), Value());
  });
  gpu::BarrierOp::create(b);
  auto view = [&](Value off, MemRefType t) {
    return memref::ViewOp::create(b, t, smem, off, ValueRange{}).getResult();
  };
  Value ticks = cIdx(10000000);
  // Q, once: rows [i0, i0 + bq) of head h (zero past Nq).
  e.ifThen(first, [&] {
    nvgpu::MBarrierArriveExpectTxOp::create(b, bars, cIdx(qAtoms * qAtomBytes),
                                            c0, Value());
    for (int64_t at = 0; at < qAtoms; ++at)
      nvgpu::TmaAsyncLoadOp::create(
          b, view(cIdx(at * qAtomBytes), qTileTy), bars, qMap,
          ValueRange{cIdx(at * 64), i0, h, bi}, c0, Value(), Value());
  });

  // This thread's rows (of the block's bq) and first column in the
  // accumulator layout; warpgroup wgi owns rows [64 wgi, 64 wgi + 64).
  Value g = e.divi(lane, cIdx(4));
  Value r0 = e.addi(e.muli(warp, cIdx(16)), g);
  Value r1 = e.addi(r0, cIdx(8));
  Value lcol = e.muli(b.createOrFold<arith::RemUIOp>(lane, cIdx(4)), cIdx(2));
  Value wgi = e.divi(warp, cIdx(4));

  // Descriptors: Q per 16-wide k-step (this warpgroup's 64-row slab of the
  // Q atom), K per k-step and V per 16-key k-step of a stage.
  Value baseIdx =
      memref::ExtractAlignedPointerAsIndexOp::create(b, smem).getResult();
  Value base = arith::IndexCastOp::create(b, i64, baseIdx);
  Value wgRows = arith::IndexCastOp::create(b, i64, e.muli(wgi, cIdx(8192)));
  Value dQ0 = descriptor(b, arith::AddIOp::create(b, base, wgRows), qAtomBytes);
  Value dK0 = descriptor(b, addConst(b, base, kOff), kvAtomBytes);
  Value dV0 = descriptor(b, addConst(b, base, kOff + vRel), kvAtomBytes);
  SmallVector<Value> dq;
  for (int64_t kk = 0; kk < d / 16; ++kk)
    dq.push_back(addConst(b, dQ0, (kk / 4 * qAtomBytes + kk % 4 * 32) / 16));

  // kv-tile range of this q tile (the span of its non-empty tiles).
  Value numKT = e.ceilDiv(nk, cIdx(bkv));
  Value numQTv = e.ceilDiv(nq, cIdx(bq));
  Value i1v = e.subi(e.mini(e.addi(i0, cIdx(bq)), nq), c1);
  bool masked = ms.kind != MaskKind::none;
  Value lo = c0, hi = numKT;
  auto classOf = [&](Value kt) -> Value {
    if (!masked)
      return cIdx(2);
    if (needsMap)
      return mapClass(qt, kt, numQTv, numKT);
    Value j0 = e.muli(kt, cIdx(bkv));
    Value j1 = e.subi(e.mini(e.addi(j0, cIdx(bkv)), nk), c1);
    return classify(i0, i1v, j0, j1);
  };
  if (masked) {
    // Every thread classifies tiles tid, tid + threads, ...; the block
    // reduces the bounds (shuffles, then one i32 pair per warp in `red`):
    // with a block map that is one map read per thread instead of numKT
    // dependent reads per block.
    int64_t threads = warps * 32;
    SmallVector<Value> part =
        e.loop(tid, numKT, cIdx(threads), {numKT, c0},
               [&](Value kt, ValueRange it) -> SmallVector<Value> {
                 Value nonEmpty = e.cmpi(CmpIPredicate::ne, classOf(kt), c0);
                 return {e.select(nonEmpty, e.mini(it[0], kt), it[0]),
                         e.select(nonEmpty, e.addi(kt, c1), it[1])};
               });
    Type i32 = b.getI32Type();
    Value lo32 = arith::IndexCastUIOp::create(b, i32, part[0]);
    Value hi32 = arith::IndexCastUIOp::create(b, i32, part[1]);
    for (int32_t m = 16; m >= 1; m /= 2) {
      lo32 = arith::MinUIOp::create(b, lo32, shflXor(lo32, m));
      hi32 = arith::MaxUIOp::create(b, hi32, shflXor(hi32, m));
    }
    Value red = func.getWorkgroupAttributions()[0];
    e.ifThen(e.cmpi(CmpIPredicate::eq, lane, c0), [&] {
      memref::StoreOp::create(b, lo32, red, ValueRange{warp});
      memref::StoreOp::create(b, hi32, red,
                              ValueRange{e.addi(warp, cIdx(warps))});
    });
    gpu::BarrierOp::create(b);
    for (int64_t w = 0; w < warps; ++w) {
      Value l = memref::LoadOp::create(b, red, ValueRange{cIdx(w)});
      Value u = memref::LoadOp::create(b, red, ValueRange{cIdx(warps + w)});
      lo32 = w ? arith::MinUIOp::create(b, lo32, l).getResult() : l;
      hi32 = w ? arith::MaxUIOp::create(b, hi32, u).getResult() : u;
    }
    lo = arith::IndexCastUIOp::create(b, b.getIndexType(), lo32);
    Value hiv = arith::IndexCastUIOp::create(b, b.getIndexType(), hi32);
    hi = e.select(e.cmpi(CmpIPredicate::ult, lo, hiv), hiv, lo);
  }
  Value nTiles = e.subi(hi, lo);
  // Loads tile lo + t into stage t % stages (every tile of the range is
  // loaded, so the stage barriers' phases follow t).
  auto issue = [&](Value t) {
    Value stage = b.createOrFold<arith::RemUIOp>(t, cIdx(stages));
    Value j0 = e.muli(e.addi(lo, t), cIdx(bkv));
    Value sOff = e.addi(cIdx(kOff), e.muli(stage, cIdx(stageBytes)));
    Value bar = e.addi(stage, c1);
    nvgpu::MBarrierArriveExpectTxOp::create(b, bars, cIdx(stageBytes), bar,
                                            Value());
    for (int64_t at = 0; at < kAtoms; ++at)
      nvgpu::TmaAsyncLoadOp::create(
          b, view(e.addi(sOff, cIdx(at * kvAtomBytes)), kTileTy), bars, kMap,
          ValueRange{cIdx(at * 64), j0, hk, bi}, bar, Value(), Value());
    for (int64_t at = 0; at < vAtoms; ++at)
      nvgpu::TmaAsyncLoadOp::create(
          b, view(e.addi(sOff, cIdx(vRel + at * kvAtomBytes)), kTileTy), bars,
          vMap, ValueRange{cIdx(at * 64), j0, hk, bi}, bar, Value(), Value());
  };
  // Prologue: the first stages - 1 tiles.
  for (int64_t t = 0; t + 1 < stages; ++t)
    e.ifThen(b.createOrFold<arith::AndIOp>(
                 first, e.cmpi(CmpIPredicate::ult, cIdx(t), nTiles)),
             [&] { issue(cIdx(t)); });
  nvgpu::MBarrierTryWaitParityOp::create(b, bars, e.i1(false), ticks, c0);

  int64_t nS = bkv / 2, nO = dv / 2; // accumulator values per thread
  auto accTy = [&](int64_t n) {
    return LLVM::LLVMStructType::getLiteral(ctx, SmallVector<Type>(n, f32));
  };
  Type sTy = accTy(nS), oTy = accTy(nO);
  auto extract = [&](Value s, int64_t i) {
    return LLVM::ExtractValueOp::create(b, s, ArrayRef<int64_t>{i}).getResult();
  };
  NVVM::WGMMATypes wt = bf16 ? NVVM::WGMMATypes::bf16 : NVVM::WGMMATypes::f16;
  std::string ty = bf16 ? "bf16" : "f16";
  // Register-A wgmma m64n{dv}k16: outputs $0..$(nO-1), A the next four,
  // then the B descriptor; accumulators tied to the outputs; scale-d 1,
  // scale-a 1, scale-b 1, trans-b 1 (V is MN-major).
  std::string asmStr = "wgmma.mma_async.sync.aligned.m64n" +
                       std::to_string(dv) + "k16.f32." + ty + "." + ty + " {";
  std::string cons;
  for (int64_t i = 0; i < nO; ++i) {
    asmStr += (i ? ", $" : "$") + std::to_string(i);
    cons += "=f,";
  }
  asmStr += "}, {";
  for (int64_t i = 0; i < 4; ++i)
    asmStr += (i ? ", $" : "$") + std::to_string(nO + i);
  asmStr += "}, $" + std::to_string(nO + 4) + ", 1, 1, 1, 1;";
  cons += "r,r,r,r,l";
  for (int64_t i = 0; i < nO; ++i)
    cons += "," + std::to_string(i);

  double scale = op.getEffectiveScale();
  bool fold = !op.hasScoreRegion() && scale > 0;
  Value qkScale = e.f32(op.hasScoreRegion() ? scale : scale * log2e);
  Value oInit = LLVM::ZeroOp::create(b, oTy);
  // Loop state: m (2 rows), l (2 rows), the O accumulators.
  SmallVector<Value> init = {negInf, negInf, zero, zero, oInit};
  // With a block map, each tile's class is read one iteration ahead: the
  // load's latency overlaps a tile's math instead of stalling the start of
  // the next tile (the class decides whether and how it is computed).
  if (needsMap)
    init.push_back(e.ifElse(
        e.cmpi(CmpIPredicate::ult, c0, nTiles), {idxTy},
        [&] { return SmallVector<Value>{classOf(lo)}; },
        [&] { return SmallVector<Value>{c0}; })[0]);
  SmallVector<Value> res = e.loop(
      c0, nTiles, c1, init,
      [&](Value t, ValueRange carried) -> SmallVector<Value> {
        ValueRange st = carried.take_front(5);
        Value kt = e.addi(lo, t);
        // The next tile's class (this one's again on the last tile).
        Value nextCls;
        if (needsMap)
          nextCls = classOf(e.mini(e.addi(kt, c1), e.subi(hi, c1)));
        // Prefetch tile t + stages - 1 into the stage freed by tile t - 1.
        Value ahead = e.addi(t, cIdx(stages - 1));
        e.ifThen(b.createOrFold<arith::AndIOp>(
                     first, e.cmpi(CmpIPredicate::ult, ahead, nTiles)),
                 [&] { issue(ahead); });
        Value stage = b.createOrFold<arith::RemUIOp>(t, cIdx(stages));
        Value use = e.divi(t, cIdx(stages));
        Value parity = e.cmpi(CmpIPredicate::eq,
                              b.createOrFold<arith::RemUIOp>(use, cIdx(2)), c1);
        nvgpu::MBarrierTryWaitParityOp::create(b, bars, parity, ticks,
                                               e.addi(stage, c1));
        Value sDesc = arith::IndexCastOp::create(
            b, i64, e.muli(stage, cIdx(stageBytes / 16)));
        Value dK = arith::AddIOp::create(b, dK0, sDesc);
        Value dV = arith::AddIOp::create(b, dV0, sDesc);
        Value cls = needsMap ? carried[5] : classOf(kt);
        Value visit = e.cmpi(CmpIPredicate::ne, cls, c0);
        SmallVector<Type> types(st.getTypes());
        SmallVector<Value> next = e.ifElse(
            visit, types,
            [&]() -> SmallVector<Value> {
              Value j0 = e.muli(kt, cIdx(bkv));
              auto index = [&](int64_t i) {
                int64_t blk = i / 4, el = i % 4;
                return std::make_pair(
                    e.addi(i0, el < 2 ? r0 : r1),
                    e.addi(j0, e.addi(cIdx(blk * 8 + el % 2), lcol)));
              };
              // The mask of a partial (or ragged) tile: a rolled one as bits
              // evaluated before S exists (its index arithmetic does not
              // compete with S and O for registers), any other per element
              // on the scores (fewer instructions: measured faster on the
              // H100, bench/results/2026-11-24-h100-mask-bits-vs-direct.md).
              Value complete =
                  e.cmpi(CmpIPredicate::ule, e.addi(j0, cIdx(bkv)), nk);
              Value full = b.createOrFold<arith::AndIOp>(
                  complete, e.cmpi(CmpIPredicate::eq, cls, cIdx(2)));
              SmallVector<Value> keepBits;
              if (rolledMask())
                keepBits = maskWords(full, j0, r0, r1, lcol, nS);
              // S = Q K^T.
              NVVM::WgmmaFenceAlignedOp::create(b);
              Value s = LLVM::PoisonOp::create(b, sTy);
              for (int64_t kk = 0; kk < d / 16; ++kk)
                s = NVVM::WgmmaMmaAsyncOp::create(
                    b, sTy, s, dq[kk],
                    addConst(b, dK, (kk / 4 * kvAtomBytes + kk % 4 * 32) / 16),
                    NVVM::MMAShapeAttr::get(ctx, 64, int(bkv), 16), wt, wt,
                    NVVM::WGMMATypes::f32,
                    kk == 0 ? NVVM::WGMMAScaleOut::zero
                            : NVVM::WGMMAScaleOut::one,
                    NVVM::WGMMAScaleIn::one, NVVM::WGMMAScaleIn::one,
                    NVVM::MMALayout::row, NVVM::MMALayout::col,
                    NVVM::MMAIntOverflowAttr());
              NVVM::WgmmaGroupSyncAlignedOp::create(b);
              NVVM::WgmmaWaitGroupSyncOp::create(b, uint64_t(0));

              // Scores (log2 units unless folded), mask on partial tiles.
              SmallVector<Value> scored;
              for (int64_t i = 0; i < nS; ++i) {
                Value x = extract(s, i);
                if (!fold)
                  x = e.mulf(x, qkScale);
                if (op.hasScoreRegion()) {
                  auto [qi, kj] = index(i);
                  x = e.mulf(inlineRegion(op.getScore(), {x, bi, h, qi, kj}),
                             e.f32(log2e));
                }
                scored.push_back(x);
              }
              SmallVector<Value> x =
                  applyMask(full, j0, r0, r1, lcol, scored, keepBits);

              // Online softmax: the two rows of this thread, reduced over
              // the quad of lanes that share them.
              SoftmaxStep sm = onlineSoftmax(x, {st[0], st[1]}, {st[2], st[3]},
                                             fold, qkScale);
              ArrayRef<Value> p = sm.p;
              Value *alpha = sm.alpha;
              // O = alpha O + P V.
              SmallVector<Value> acc;
              for (int64_t i = 0; i < nO; ++i)
                acc.push_back(e.mulf(extract(st[4], i), alpha[(i % 4) / 2]));
              NVVM::WgmmaFenceAlignedOp::create(b);
              Value oAcc;
              for (int64_t kk = 0; kk < bkv / 16; ++kk) {
                SmallVector<Value> ops;
                for (int64_t rr = 0; rr < 4; ++rr)
                  ops.push_back(
                      pack(p[8 * kk + 2 * rr], p[8 * kk + 2 * rr + 1]));
                ops.push_back(addConst(b, dV, kk * 16 * 128 / 16));
                ops.append(acc.begin(), acc.end());
                auto asmOp = LLVM::InlineAsmOp::create(
                    b, TypeRange{oTy}, ops, asmStr, cons,
                    /*has_side_effects=*/true, /*is_align_stack=*/false,
                    LLVM::tailcallkind::TailCallKind::None,
                    LLVM::AsmDialectAttr::get(ctx, LLVM::AsmDialect::AD_ATT),
                    ArrayAttr());
                oAcc = asmOp.getResult(0);
                if (kk + 1 < bkv / 16) {
                  acc.clear();
                  for (int64_t i = 0; i < nO; ++i)
                    acc.push_back(extract(oAcc, i));
                }
              }
              NVVM::WgmmaGroupSyncAlignedOp::create(b);
              NVVM::WgmmaWaitGroupSyncOp::create(b, uint64_t(0));
              return {sm.m[0], sm.m[1], sm.l[0], sm.l[1], oAcc};
            },
            [&]() -> SmallVector<Value> { return SmallVector<Value>(st); });
        // Every warp is done with this stage before it is loaded again.
        gpu::BarrierOp::create(b);
        if (needsMap)
          next.push_back(nextCls);
        return next;
      });

  emitEpilogue(
      {res[0], res[1]}, {res[2], res[3]},
      [&](int64_t i) { return extract(res[4], i); }, r0, r1, lcol);
  gpu::ReturnOp::create(b);
  return success();
}
