//===- WgmmaKernel.cpp - the Hopper (sm_90a) attention kernel -------------===//
//
// Part of attnc. The sm_90a sibling of the mma.sync kernel
// (MmaSyncKernel.cpp), following docs/notes/sm90a-plan.md (described in
// docs/gpu-sm90.md):
//  - block_q / 64 warpgroups (128 threads each, 64 query rows each) share
//    128-key K/V tiles (block_kv = 128); block_q 128 is the default;
//  - load: Q once and K, V per tile by TMA (4-D tensor maps over
//    [B, H, N, D] with the tensor's strides, 64-column boxes, 128-byte
//    swizzle, zero fill past N), completion on mbarriers; with block_q 128,
//    two K/V stages: the next tile is loaded while this one is computed;
//  - scores: S = Q K^T with nvvm.wgmma.mma_async m64n128k16 (A and B from
//    shared memory through descriptors built here);
//  - mask: the block classifies the q tile's kv tiles (one per thread and
//    round, from the intervals or the block map) and lists the non-empty
//    ones in shared memory, in order, with their classes; only those are
//    loaded and computed, so gaps inside the kv range (3D windows,
//    block-sparse layouts) cost nothing. More non-empty tiles than the list
//    holds are listed and visited in windows of up to a list each. Full
//    tiles run without mask code; a partial tile's rolled mask is evaluated
//    into bits before S exists;
//  - online softmax in registers; P V with register-A wgmma m64n{Dv}k16 (P
//    straight from the S accumulators);
//  - epilogue shared with the mma.sync kernel.
// Accumulator layout of wgmma m64nN (f32): warp w of the warpgroup holds
// rows 16w + lane/4 and 16w + lane/4 + 8; value i (0 <= i < N/2) is in row
// (i % 4 < 2 ? first : second), column 8 * (i / 4) + 2 * (lane % 4) + i % 2.
// This is also the register-A layout of P for the P V wgmma.
//
//===----------------------------------------------------------------------===//

#include "AttnKernel.h"

#include "attnc/Target/TargetDesc.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/LLVMIR/NVVMDialect.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/NVGPU/IR/NVGPUDialect.h"

using namespace mlir;
using namespace mlir::attn;
using namespace mlir::attn::detail;
using arith::CmpIPredicate;

namespace {
/// Shared memory: Q (d/64 atoms of bq rows), then `stages` stages of K
/// (d/64 atoms) and V (dv/64 atoms) of 128 rows; every atom is 64 columns of
/// 128-byte rows, 128-byte swizzled (1024-byte aligned).
struct SmemLayout {
  int64_t qAtoms, kAtoms, vAtoms;
  int64_t qAtomBytes, kvAtomBytes;
  int64_t stages;
  /// K of stage 0 (after Q), the bytes of a stage, V after K in a stage.
  int64_t kOff, stageBytes, vRel;

  explicit SmemLayout(const AttnKernelConfig &cfg)
      : qAtoms(cfg.d / 64), kAtoms(cfg.d / 64), vAtoms(cfg.dv / 64),
        qAtomBytes(cfg.bq * 128), kvAtomBytes(cfg.bkv * 128),
        stages(sm90Stages(cfg.bq)), kOff(qAtoms * qAtomBytes),
        stageBytes((kAtoms + vAtoms) * kvAtomBytes),
        vRel(kAtoms * kvAtomBytes) {}
};

/// The TMA side of the kernel: the maps, the shared memory, its barriers
/// (0: Q; 1 + s: K and V of stage s) and the thread that issues the loads.
struct TmaState {
  Value kMap, vMap;
  Value smem, bars;
  Value first;
  Value ticks;
  /// One TMA box of K or V: a 64-column atom of the tile's rows, or of a
  /// page's rows when the cache is paged (then a tile takes several).
  MemRefType kBoxTy;
};

/// The wgmma descriptors of Q per 16-wide k-step (this warpgroup's 64-row
/// slab), and of K and V of stage 0.
struct Descriptors {
  SmallVector<Value> q;
  Value k0, v0;
};

/// What the loop over kv tiles reads and never changes.
struct LoopInvariants {
  TmaState tma;
  Descriptors desc;
  AccLayout acc;
  TileRange range;
  bool fold;
  Value qkScale;
  Type sTy, oTy;
};

class WgmmaKernel : public AttnKernelBase {
public:
  WgmmaKernel(const AttnKernelConfig &cfg, ImplicitLocOpBuilder &b,
              AttnKernelArgs args, AttnThreadIds ids, Value red, Value list)
      : AttnKernelBase(cfg, b, std::move(args), ids), layout(cfg),
        pv(cfg.dv, cfg.elem), red(red), list(list) {}

  void emit();

private:
  const SmemLayout layout;
  /// O += P V, m64 n{dv} k16 with P from registers.
  const RegisterAWgmma pv;
  /// The per-warp counts of non-empty tiles in a listing round (masked
  /// kernels).
  const Value red;
  /// The non-empty kv tiles, kSm90TileListEntries of index * 4 + class.
  const Value list;

  /// The maps and barriers, and the TMA load of Q.
  TmaState loadQuery();
  /// The TMA coordinates (col, row, head, batch) of a row of q (or of k and
  /// v with `keys`): packed sequences are batch 0, from their first row.
  SmallVector<Value, 4> tmaCoords(Value col, Value row, Value head, bool keys);
  /// Rows of a K/V box (the tile's, or a page's).
  int64_t boxRows() const;
  /// The coordinates (column 0) of the K/V box holding key `j` first.
  SmallVector<Value, 4> keyBoxCoords(Value j);
  AccLayout accLayout();
  Descriptors descriptors(Value smem);
  /// The q tile's kv tile counts and query positions.
  TileRange tileRange();
  /// Lists the non-empty tiles from tile `from` on, in order, until the
  /// tiles end or another round might not fit; returns (tiles listed, the
  /// first tile not classified).
  std::pair<Value, Value> listTiles(const TileRange &range, Value from);
  /// Appends the non-empty tiles among kt = base + tid (one per thread) to
  /// the list from entry `count`; returns the new count.
  Value listRound(const TileRange &range, Value base, Value count);
  /// The kv tile of the window's step i and its class: listed (masked
  /// kernels), or tile i, full.
  std::pair<Value, Value> tileAt(Value i);
  /// Visits `count` tiles (tileAt) from step `t0` of the block's steps
  /// (which pick the stages and barrier phases) from loop state `st`.
  SmallVector<Value> visitTiles(const LoopInvariants &inv, Value t0,
                                Value count, ValueRange st);
  /// Thread `tma.first` loads the tile of window step i (block step t0 + i)
  /// into stage (t0 + i) % stages.
  void issue(const LoopInvariants &inv, Value t0, Value i);
  Value extract(Value s, int64_t i) {
    return LLVM::ExtractValueOp::create(b, s, ArrayRef<int64_t>{i}).getResult();
  }
  /// S = Q K^T of one tile (K at descriptor `dK`).
  Value qkProduct(const LoopInvariants &inv, Value dK);
  /// O = alpha O + P V of one tile (V at descriptor `dV`).
  Value pvProduct(const LoopInvariants &inv, const SoftmaxStep &sm, Value o,
                  Value dV);
  /// A visited tile: scores, mask, softmax step and P V.
  SmallVector<Value> computeTile(const LoopInvariants &inv, Value kt, Value cls,
                                 ValueRange st, Value dK, Value dV);
  /// The loop body: window step i (block step t0 + i) of `count`.
  SmallVector<Value> tileStep(const LoopInvariants &inv, Value t0, Value i,
                              Value count, ValueRange st);
};
} // namespace

SmallVector<Value, 4> WgmmaKernel::tmaCoords(Value col, Value row, Value head,
                                             bool keys) {
  Value row0 = keys ? args.kRow0 : args.qRow0;
  if (!row0)
    return {col, row, head, ids.bi};
  return {col, e.addi(row0, row), head, ids.c0};
}

TmaState WgmmaKernel::loadQuery() {
  MLIRContext *ctx = b.getContext();
  auto wg = gpu::AddressSpaceAttr::get(ctx, gpu::AddressSpace::Workgroup);
  Type elem = cfg.elem;
  auto qTileTy = MemRefType::get({1, 1, cfg.bq, 64}, elem, AffineMap(), wg);
  TmaState tma;
  tma.kBoxTy = MemRefType::get({1, 1, boxRows(), 64}, elem, AffineMap(), wg);
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
  // q, k, v are the TMA maps' pointers here.
  Value qMap = cast(args.q, mapTy(qTileTy));
  tma.kMap = cast(args.k, mapTy(tma.kBoxTy));
  tma.vMap = cast(args.v, mapTy(tma.kBoxTy));
  auto smemTy =
      MemRefType::get({ShapedType::kDynamic}, b.getI8Type(), AffineMap(), wg);
  tma.smem = gpu::DynamicSharedMemoryOp::create(b, smemTy);
  auto barsTy = nvgpu::MBarrierGroupType::get(ctx, wg, 1 + layout.stages);
  tma.bars = nvgpu::MBarrierCreateOp::create(b, barsTy);
  tma.first = e.cmpi(CmpIPredicate::eq, ids.tid, ids.c0);
  e.ifThen(tma.first, [&] {
    for (int64_t i = 0; i <= layout.stages; ++i)
      nvgpu::MBarrierInitOp::create(b, tma.bars, ids.c1, cIdx(i), Value());
  });
  gpu::BarrierOp::create(b);
  tma.ticks = cIdx(10000000);
  // Q, once: rows [i0, i0 + bq) of head h (zero past Nq).
  e.ifThen(tma.first, [&] {
    nvgpu::MBarrierArriveExpectTxOp::create(
        b, tma.bars, cIdx(layout.qAtoms * layout.qAtomBytes), ids.c0, Value());
    for (int64_t at = 0; at < layout.qAtoms; ++at)
      nvgpu::TmaAsyncLoadOp::create(
          b,
          memref::ViewOp::create(b, qTileTy, tma.smem,
                                 cIdx(at * layout.qAtomBytes), ValueRange{})
              .getResult(),
          tma.bars, qMap, tmaCoords(cIdx(at * 64), ids.i0, ids.h, false),
          ids.c0, Value(), Value());
  });
  return tma;
}

AccLayout WgmmaKernel::accLayout() {
  // Warpgroup wgi owns rows [64 wgi, 64 wgi + 64) of the block's bq.
  Value lane = ids.lane;
  Value g = e.divi(lane, cIdx(4));
  AccLayout acc;
  acc.r0 = e.addi(e.muli(ids.warp, cIdx(16)), g);
  acc.r1 = e.addi(acc.r0, cIdx(8));
  acc.lcol = e.muli(remui(lane, 4), cIdx(2));
  return acc;
}

Descriptors WgmmaKernel::descriptors(Value smem) {
  Type i64 = b.getI64Type();
  Value wgi = e.divi(ids.warp, cIdx(4));
  Value baseIdx =
      memref::ExtractAlignedPointerAsIndexOp::create(b, smem).getResult();
  Value base = arith::IndexCastOp::create(b, i64, baseIdx);
  Value wgRows = arith::IndexCastOp::create(b, i64, e.muli(wgi, cIdx(8192)));
  auto qDesc = WgmmaDescriptor::swizzled128(layout.qAtomBytes);
  auto kvDesc = WgmmaDescriptor::swizzled128(layout.kvAtomBytes);
  Descriptors desc;
  Value q0 = qDesc.build(b, arith::AddIOp::create(b, base, wgRows));
  desc.k0 = kvDesc.build(b, addConstant(b, base, layout.kOff));
  desc.v0 = kvDesc.build(b, addConstant(b, base, layout.kOff + layout.vRel));
  for (int64_t kk = 0; kk < cfg.d / 16; ++kk)
    desc.q.push_back(
        addConstant(b, q0, (kk / 4 * layout.qAtomBytes + kk % 4 * 32) / 16));
  return desc;
}

TileRange WgmmaKernel::tileRange() {
  TileRange range;
  Value c1 = ids.c1;
  range.numKT = e.ceilDiv(args.nk, cIdx(cfg.bkv));
  range.numQT = e.ceilDiv(args.nq, cIdx(cfg.bq));
  range.firstRow = queryPosition(ids.i0);
  range.lastRow =
      queryPosition(e.subi(e.mini(e.addi(ids.i0, cIdx(cfg.bq)), args.nq), c1));
  range.lo = ids.c0;
  range.hi = range.numKT;
  return range;
}

std::pair<Value, Value> WgmmaKernel::listTiles(const TileRange &range,
                                               Value from) {
  int64_t threads = cfg.threads();
  SmallVector<Value> r = e.whileLoop(
      {from, ids.c0},
      [&](ValueRange it) {
        Value more = e.cmpi(CmpIPredicate::ult, it[0], range.numKT);
        Value fits = e.cmpi(CmpIPredicate::ule, e.addi(it[1], cIdx(threads)),
                            cIdx(kSm90TileListEntries));
        return b.createOrFold<arith::AndIOp>(more, fits);
      },
      [&](ValueRange it) -> SmallVector<Value> {
        return {e.addi(it[0], cIdx(threads)), listRound(range, it[0], it[1])};
      });
  return {r[1], r[0]};
}

Value WgmmaKernel::listRound(const TileRange &range, Value base, Value count) {
  Value c0 = ids.c0;
  Type i32 = b.getI32Type();
  Value kt = e.addi(base, ids.tid);
  Value in = e.cmpi(CmpIPredicate::ult, kt, range.numKT);
  Value cls = e.ifElse(
      in, {b.getIndexType()},
      [&] { return SmallVector<Value>{classOf(range, kt)}; },
      [&] { return SmallVector<Value>{c0}; })[0];
  Value nonEmpty = e.cmpi(CmpIPredicate::ne, cls, c0);
  // The warp's non-empty tiles as bits, this lane's rank among them.
  auto c32 = [&](int32_t v) {
    return arith::ConstantIntOp::create(b, i32, v).getResult();
  };
  Value ballot = NVVM::VoteSyncOp::create(b, i32, c32(-1), nonEmpty,
                                          NVVM::VoteSyncKind::ballot);
  Value lane32 = arith::IndexCastUIOp::create(b, i32, ids.lane);
  Value below = arith::SubIOp::create(
      b, arith::ShLIOp::create(b, c32(1), lane32), c32(1));
  Value rank =
      LLVM::CtPopOp::create(b, arith::AndIOp::create(b, ballot, below));
  e.ifThen(e.cmpi(CmpIPredicate::eq, ids.lane, c0), [&] {
    memref::StoreOp::create(b, LLVM::CtPopOp::create(b, ballot), red,
                            ValueRange{ids.warp});
  });
  gpu::BarrierOp::create(b);
  // The non-empty tiles of the warps before this one, and of all warps.
  Value before = c32(0), total = c32(0);
  for (int64_t w = 0; w < cfg.warps; ++w) {
    Value n = memref::LoadOp::create(b, red, ValueRange{cIdx(w)});
    Value earlier = e.cmpi(CmpIPredicate::ult, cIdx(w), ids.warp);
    before = arith::AddIOp::create(b, before, e.select(earlier, n, c32(0)));
    total = arith::AddIOp::create(b, total, n);
  }
  Type idx = b.getIndexType();
  Value slot =
      e.addi(count, arith::IndexCastUIOp::create(
                        b, idx, arith::AddIOp::create(b, before, rank)));
  e.ifThen(nonEmpty, [&] {
    Value entry = e.addi(e.muli(kt, cIdx(4)), cls);
    memref::StoreOp::create(b, arith::IndexCastUIOp::create(b, i32, entry),
                            list, ValueRange{slot});
  });
  // Every warp has read the counts before the next round writes them.
  gpu::BarrierOp::create(b);
  return e.addi(count, arith::IndexCastUIOp::create(b, idx, total));
}

std::pair<Value, Value> WgmmaKernel::tileAt(Value i) {
  if (!cfg.masked())
    return {i, cIdx(2)};
  Value entry = arith::IndexCastUIOp::create(
      b, b.getIndexType(), memref::LoadOp::create(b, list, ValueRange{i}));
  return {e.divi(entry, cIdx(4)), remui(entry, 4)};
}

void WgmmaKernel::issue(const LoopInvariants &inv, Value t0, Value i) {
  // Every visited tile is loaded, so the stage barriers' phases follow the
  // block's step.
  const TmaState &tma = inv.tma;
  Value stage = remui(e.addi(t0, i), layout.stages);
  Value j0 = e.muli(tileAt(i).first, cIdx(cfg.bkv));
  Value sOff =
      e.addi(cIdx(layout.kOff), e.muli(stage, cIdx(layout.stageBytes)));
  Value bar = e.addi(stage, ids.c1);
  // Out-of-bounds box rows are zero-filled and count in full.
  nvgpu::MBarrierArriveExpectTxOp::create(b, tma.bars, cIdx(layout.stageBytes),
                                          bar, Value());
  int64_t rows = boxRows();
  for (int64_t r = 0; r < cfg.bkv; r += rows) {
    SmallVector<Value, 4> at0 = keyBoxCoords(e.addi(j0, cIdx(r)));
    auto load = [&](Value map, int64_t off, int64_t atom) {
      SmallVector<Value, 4> coords = at0;
      coords[0] = cIdx(atom * 64);
      Value view = memref::ViewOp::create(
          b, tma.kBoxTy, tma.smem,
          e.addi(sOff, cIdx(off + atom * layout.kvAtomBytes + r * 128)),
          ValueRange{});
      nvgpu::TmaAsyncLoadOp::create(b, view, tma.bars, map, coords, bar,
                                    Value(), Value());
    };
    for (int64_t at = 0; at < layout.kAtoms; ++at)
      load(tma.kMap, 0, at);
    for (int64_t at = 0; at < layout.vAtoms; ++at)
      load(tma.vMap, layout.vRel, at);
  }
}

int64_t WgmmaKernel::boxRows() const {
  return sm90KvBoxRows(cfg.op.getPageSize());
}

SmallVector<Value, 4> WgmmaKernel::keyBoxCoords(Value j) {
  if (!op.isPaged())
    return tmaCoords(ids.c0, j, ids.hk, true);
  // A paged pool [P, Hkv, S, D]: the box of key j is in page table[b, j / S]
  // from row j mod S. Keys past Nk (the last tile's tail) read the last
  // key's page: in bounds of the table, masked by the column bound.
  Value last = e.subi(b.createOrFold<arith::MaxUIOp>(args.nk, ids.c1), ids.c1);
  auto [page, row] = pagedKeyRow(e.mini(j, last));
  return {ids.c0, row, ids.hk, page};
}

Value WgmmaKernel::qkProduct(const LoopInvariants &inv, Value dK) {
  wgmmaFence(b);
  Value s = LLVM::PoisonOp::create(b, inv.sTy);
  for (int64_t kk = 0; kk < cfg.d / 16; ++kk) {
    Value descK =
        addConstant(b, dK, (kk / 4 * layout.kvAtomBytes + kk % 4 * 32) / 16);
    s = wgmmaShared(b, inv.sTy, s, inv.desc.q[kk], descK, cfg.bkv, cfg.elem,
                    /*accumulate=*/kk != 0);
  }
  wgmmaCommitAndWait(b);
  return s;
}

Value WgmmaKernel::pvProduct(const LoopInvariants &inv, const SoftmaxStep &sm,
                             Value o, Value dV) {
  int64_t nO = cfg.dv / 2;
  ArrayRef<Value> p = sm.p;
  SmallVector<Value> acc;
  for (int64_t i = 0; i < nO; ++i)
    acc.push_back(e.mulf(extract(o, i), sm.alpha[(i % 4) / 2]));
  wgmmaFence(b);
  Value oAcc;
  for (int64_t kk = 0; kk < cfg.bkv / 16; ++kk) {
    SmallVector<Value> aRegs;
    for (int64_t rr = 0; rr < 4; ++rr)
      aRegs.push_back(tc.pack(p[8 * kk + 2 * rr], p[8 * kk + 2 * rr + 1]));
    Value descV = addConstant(b, dV, kk * 16 * 128 / 16);
    oAcc = pv.emit(b, inv.oTy, aRegs, descV, acc);
    if (kk + 1 < cfg.bkv / 16) {
      acc.clear();
      for (int64_t i = 0; i < nO; ++i)
        acc.push_back(extract(oAcc, i));
    }
  }
  wgmmaCommitAndWait(b);
  return oAcc;
}

SmallVector<Value> WgmmaKernel::computeTile(const LoopInvariants &inv, Value kt,
                                            Value cls, ValueRange st, Value dK,
                                            Value dV) {
  int64_t nS = cfg.bkv / 2;
  Value j0 = e.muli(kt, cIdx(cfg.bkv));
  // The mask of a partial (or ragged) tile: a rolled one as bits evaluated
  // before S exists (its index arithmetic does not compete with S and O for
  // registers), any other per element on the scores (fewer instructions:
  // measured faster on the H100,
  // bench/results/2026-11-24-h100-mask-bits-vs-direct.md).
  Value complete =
      e.cmpi(CmpIPredicate::ule, e.addi(j0, cIdx(cfg.bkv)), args.nk);
  Value full = b.createOrFold<arith::AndIOp>(
      complete, e.cmpi(CmpIPredicate::eq, cls, cIdx(2)));
  SmallVector<Value> keepBits;
  if (rolledMask())
    keepBits = maskWords(full, j0, inv.acc, nS);
  Value s = qkProduct(inv, dK);
  // Scores (log2 units unless folded), mask on partial tiles.
  SmallVector<Value> scored = scoreElements(
      nS, [&](int64_t i) { return extract(s, i); }, j0, inv.acc, inv.fold,
      inv.qkScale);
  SmallVector<Value> x = applyMask(full, j0, inv.acc, scored, keepBits);
  // Online softmax: the two rows of this thread, reduced over the quad of
  // lanes that share them.
  SoftmaxStep sm =
      onlineSoftmax(x, {st[0], st[1]}, {st[2], st[3]}, inv.fold, inv.qkScale);
  Value oAcc = pvProduct(inv, sm, st[4], dV);
  return {sm.m[0], sm.m[1], sm.l[0], sm.l[1], oAcc};
}

SmallVector<Value> WgmmaKernel::tileStep(const LoopInvariants &inv, Value t0,
                                         Value i, Value count, ValueRange st) {
  Value c1 = ids.c1;
  int64_t stages = layout.stages;
  auto [kt, cls] = tileAt(i);
  // Prefetch step i + stages - 1 into the stage freed by step i - 1.
  Value ahead = e.addi(i, cIdx(stages - 1));
  e.ifThen(b.createOrFold<arith::AndIOp>(
               inv.tma.first, e.cmpi(CmpIPredicate::ult, ahead, count)),
           [&] { issue(inv, t0, ahead); });
  Value t = e.addi(t0, i);
  Value stage = remui(t, stages);
  Value use = e.divi(t, cIdx(stages));
  Value parity = e.cmpi(CmpIPredicate::eq, remui(use, 2), c1);
  nvgpu::MBarrierTryWaitParityOp::create(b, inv.tma.bars, parity, inv.tma.ticks,
                                         e.addi(stage, c1));
  Value sDesc = arith::IndexCastOp::create(
      b, b.getI64Type(), e.muli(stage, cIdx(layout.stageBytes / 16)));
  Value dK = arith::AddIOp::create(b, inv.desc.k0, sDesc);
  Value dV = arith::AddIOp::create(b, inv.desc.v0, sDesc);
  SmallVector<Value> next = computeTile(inv, kt, cls, st, dK, dV);
  // Every warp is done with this stage before it is loaded again.
  gpu::BarrierOp::create(b);
  return next;
}

SmallVector<Value> WgmmaKernel::visitTiles(const LoopInvariants &inv, Value t0,
                                           Value count, ValueRange st) {
  // Prologue: the first stages - 1 tiles.
  for (int64_t i = 0; i + 1 < layout.stages; ++i)
    e.ifThen(b.createOrFold<arith::AndIOp>(
                 inv.tma.first, e.cmpi(CmpIPredicate::ult, cIdx(i), count)),
             [&] { issue(inv, t0, cIdx(i)); });
  // Q has arrived (the first window waits; later ones find it complete).
  nvgpu::MBarrierTryWaitParityOp::create(b, inv.tma.bars, e.i1(false),
                                         inv.tma.ticks, ids.c0);
  return e.loop(ids.c0, count, ids.c1, st,
                [&](Value i, ValueRange carried) -> SmallVector<Value> {
                  return tileStep(inv, t0, i, count, carried);
                });
}

void WgmmaKernel::emit() {
  const double log2e = 1.4426950408889634;
  Value c0 = ids.c0;
  Value zero = e.f32(0.0);
  LoopInvariants inv;
  inv.tma = loadQuery();
  inv.acc = accLayout();
  inv.desc = descriptors(inv.tma.smem);
  inv.range = tileRange();
  auto accTy = [&](int64_t n) {
    return LLVM::LLVMStructType::getLiteral(
        b.getContext(), SmallVector<Type>(n, b.getF32Type()));
  };
  inv.sTy = accTy(cfg.bkv / 2);
  inv.oTy = accTy(cfg.dv / 2);
  double scale = op.getEffectiveScale();
  inv.fold = !op.hasScoreRegion() && scale > 0;
  inv.qkScale = e.f32(op.hasScoreRegion() ? scale : scale * log2e);
  Value oInit = LLVM::ZeroOp::create(b, inv.oTy);
  // Loop state: m (2 rows), l (2 rows), the O accumulators.
  SmallVector<Value> init = {ids.negInf, ids.negInf, zero, zero, oInit};
  SmallVector<Value> res;
  if (!cfg.masked()) {
    res = visitTiles(inv, c0, inv.range.numKT, init);
  } else {
    // Windows of listed tiles; the loop state, the next tile to classify
    // and the block's step carry over.
    init.append({c0, c0});
    res = e.whileLoop(
        init,
        [&](ValueRange it) {
          return e.cmpi(CmpIPredicate::ult, it[5], inv.range.numKT);
        },
        [&](ValueRange it) {
          auto [count, next] = listTiles(inv.range, it[5]);
          SmallVector<Value> st =
              visitTiles(inv, it[6], count, it.take_front(5));
          st.append({next, e.addi(it[6], count)});
          return st;
        });
    // Q's load has completed before the block exits, even with no tile.
    nvgpu::MBarrierTryWaitParityOp::create(b, inv.tma.bars, e.i1(false),
                                           inv.tma.ticks, c0);
  }
  emitEpilogue(
      {res[0], res[1]}, {res[2], res[3]},
      [&](int64_t i) { return extract(res[4], i); }, inv.acc);
  gpu::ReturnOp::create(b);
}

LogicalResult mlir::attn::detail::emitWgmmaKernel(const AttnKernelConfig &cfg,
                                                  gpu::GPUFuncOp func) {
  Block &entry = func.getBody().front();
  auto b = ImplicitLocOpBuilder::atBlockBegin(cfg.op.getLoc(), &entry);
  AttnKernelArgs args = bindMainArgs(cfg, entry);
  AttnThreadIds ids = bindThreadIds(cfg, b);
  bindSequence(cfg, b, args, ids);
  Value red = func.getWorkgroupAttributions()[0];
  Value list = func.getWorkgroupAttributions()[1];
  WgmmaKernel(cfg, b, std::move(args), ids, red, list).emit();
  return success();
}
