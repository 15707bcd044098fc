//===- AttnKernel.cpp - shared parts of the attention GPU kernels ---------===//
//
// Part of attnc. See AttnKernel.h.
//
//===----------------------------------------------------------------------===//

#include "AttnKernel.h"

#include "attnc/Analysis/MaskAnalysisImpl.h"
#include "attnc/Dialect/Attn/SpecFunctions.h"
#include "attnc/Target/TargetDesc.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "llvm/ADT/SmallPtrSet.h"

#include <limits>

using namespace mlir;
using namespace mlir::attn;
using namespace mlir::attn::detail;
using arith::CmpFPredicate;
using arith::CmpIPredicate;

LogicalResult mlir::attn::detail::checkGpuRegionOps(Operation *attnOp) {
  WalkResult r = attnOp->walk([&](Operation *inner) {
    if (inner == attnOp ||
        !isa<math::IPowIOp, math::FPowIOp, math::CountLeadingZerosOp,
             math::CountTrailingZerosOp, math::CtPopOp, arith::RemFOp>(inner))
      return WalkResult::advance();
    auto diag = attnOp->emitOpError() << "'" << inner->getName()
                                      << "' in a region has no GPU lowering";
    if (isa<math::IPowIOp, math::FPowIOp>(inner))
      diag << "; write the power as multiplications (or math.powf)";
    return WalkResult::interrupt();
  });
  return failure(r.wasInterrupted());
}

/// Whether the last q tile of a 16384 x 16384 sample (batch 0, head 0)
/// visits more kv tiles than the first: index masks only (the classes of
/// data masks are known at run time).
static bool heavierLastQueryTiles(AttentionOp op, const MaskStructure &ms,
                                  int64_t bq, int64_t bkv) {
  if (ms.kind != MaskKind::index)
    return false;
  const int64_t n = 16384;
  ConstBackend be;
  auto visited = [&](int64_t qt) {
    int64_t i0 = qt * bq, count = 0;
    for (int64_t j0 = 0; j0 < n; j0 += bkv)
      count += evalTileMask(be, op, ms, 0, 0, i0, i0 + bq - 1, j0, j0 + bkv - 1)
                   .first;
    return count;
  };
  return visited(n / bq - 1) > visited(0);
}

FailureOr<AttnKernelConfig>
mlir::attn::detail::getAttnKernelConfig(AttentionOp op) {
  ScheduleAttr sched = op.getScheduleAttr();
  if (!sched || !op.getMaskInfoAttr())
    return op.emitOpError()
           << "needs #attn.schedule and #attn.mask_info before GPU code "
              "generation (run attn-analyze-masks and attn-select-schedule)";
  if (sched.getTarget() == Target::Cpu)
    return op.emitOpError() << "has a CPU schedule; select a GPU target "
                               "(sm_80 or sm_90a) for GPU code generation";
  auto qType = cast<RankedTensorType>(op.getQ().getType());
  Type elem = qType.getElementType();
  if (!elem.isBF16() && !elem.isF16())
    return op.emitOpError()
           << "GPU kernels take bf16 or f16 inputs, got " << elem;
  if (failed(checkGpuRegionOps(op)))
    return failure();
  int64_t d = op.getHeadDim(), dv = op.getValueDim();
  if (d % 16 != 0 || dv % 16 != 0 || d > 256 || dv > 256)
    return op.emitOpError() << "GPU kernels need head dims that are multiples "
                               "of 16 and at most 256, got "
                            << d << " and " << dv;
  int64_t bq = sched.getBlockQ(), bkv = sched.getBlockKv();
  if (bq % 16 != 0 || bq > 128 || bkv % 16 != 0)
    return op.emitOpError() << "GPU schedule needs block_q in {16, ..., 128} "
                               "and block_kv a multiple of 16, got "
                            << bq << "x" << bkv;
  // sm_90a with the schedule's 128 (or 64) x 128 tiles: TMA + wgmma, one
  // warpgroup per 64 query rows (WgmmaKernel.cpp).
  const TargetDesc &tdesc = getTargetDesc(sched.getTarget());
  // Paged KV caches: TMA boxes of a page each (pages of 8 rows or more
  // that tile 128 keys), else cp.async row gathers in the mma.sync kernel.
  bool pagesFit = !op.isPaged() || sm90PageSize(op.getPageSize());
  bool wgmma =
      tdesc.wgmma && pagesFit && sm90Tile(bq, bkv) && sm90Supports(true, d, dv);
  const int64_t elemBytes = 2;
  int64_t shared = wgmma ? sm90SharedBytes(bq, d, dv)
                         : mmaSyncSharedBytes(bkv, d, dv, elemBytes);
  if (!wgmma && shared > kStaticSharedBytes)
    return op.emitOpError()
           << "the mma.sync kernel's " << bkv << "-row tiles of K and V need "
           << shared
           << " bytes of shared memory, past the 49152 (48 KB) of static "
              "shared memory a block may use: use a smaller block_kv";
  AttnKernelConfig cfg;
  cfg.op = op;
  cfg.ms = analyzeMaskStructure(op);
  cfg.d = d;
  cfg.dv = dv;
  cfg.hq = op.getNumQueryHeads();
  cfg.hkv = op.getNumKvHeads();
  cfg.bq = bq;
  cfg.bkv = bkv;
  cfg.warps = bq / 16;
  cfg.elem = elem;
  cfg.dataMask =
      cfg.ms.kind == MaskKind::data || cfg.ms.kind == MaskKind::opaque;
  // Per-sequence key counts (kv_lens, packed sequences) shift positions
  // per batch: no block map then.
  cfg.needsMap = cfg.dataMask && !op.getKvLens() && !op.isVarlen();
  cfg.wgmma = wgmma;
  cfg.reverseQTiles = heavierLastQueryTiles(op, cfg.ms, bq, bkv);
  cfg.sharedBytes = shared;
  cfg.captures = attentionKernelCaptures(op);
  return cfg;
}

AttnKernelConfig
mlir::attn::detail::getSplitKvConfig(const AttnKernelConfig &main) {
  AttnKernelConfig cfg = main;
  cfg.splitKv = true;
  cfg.wgmma = false;
  cfg.needsMap = false;
  cfg.bq = 64;
  cfg.warps = 4;
  cfg.bkv = std::max(main.d, main.dv) <= 128 ? 64 : 32;
  cfg.sharedBytes = mmaSyncSharedBytes(cfg.bkv, cfg.d, cfg.dv, 2);
  return cfg;
}

AttnKernelArgs mlir::attn::detail::bindMainArgs(const AttnKernelConfig &cfg,
                                                Block &entry) {
  AttnKernelArgs args;
  unsigned a = 0;
  args.q = entry.getArgument(a++);
  args.k = entry.getArgument(a++);
  args.v = entry.getArgument(a++);
  // o and lse, or the split-KV kernel's partial results.
  Value o;
  if (cfg.splitKv) {
    args.oPart = entry.getArgument(a++);
    args.lsePart = entry.getArgument(a++);
  } else {
    o = entry.getArgument(a++);
    if (cfg.op.getLse())
      args.lse = entry.getArgument(a++);
  }
  for (Value cap : cfg.captures)
    args.capMap.map(cap, entry.getArgument(a++));
  if (cfg.needsMap)
    args.blockMap = entry.getArgument(a++);
  args.batch = entry.getArgument(a++);
  args.nq = entry.getArgument(a++);
  args.nk = entry.getArgument(a++);
  args.qT.mem = args.q;
  args.kT.mem = args.k;
  args.vT.mem = args.v;
  args.oT.mem = o;
  SmallVector<StridedTensor *, 4> strided = {&args.qT, &args.kT, &args.vT};
  if (!cfg.splitKv)
    strided.push_back(&args.oT);
  for (StridedTensor *t : strided)
    for (int i = 0; i < 3; ++i)
      t->strides[i] = entry.getArgument(a++);
  return args;
}

/// Packed sequences: finds the block's sequence by counting each
/// sequence's ceil(nq / bq) q tiles in order (B is small next to a tile's
/// work), then rebases q, k, v and o on its first rows. The rows past the
/// last sequence (cu_seqlens_q[B] to Nq) come last, as a sequence without
/// keys: o = 0 and lse = -inf there, as on the CPU. Launchers start at
/// least one sequence and ceil(Nq / bq) + B blocks, which covers all tiles.
static void bindPackedSequence(const AttnKernelConfig &cfg,
                               ImplicitLocOpBuilder &b, AttnKernelArgs &args,
                               AttnThreadIds &ids) {
  Emitter e(b);
  AttentionOp op = cfg.op;
  Value cuQ = args.capMap.lookup(op.getCuSeqlensQ());
  Value cuK = args.capMap.lookup(op.getCuSeqlensK());
  Value bq = e.idx(cfg.bq), t = ids.qt, total = args.nq;
  auto contains = [&](Value first, Value end) {
    return b.createOrFold<arith::AndIOp>(e.cmpi(CmpIPredicate::uge, t, first),
                                         e.cmpi(CmpIPredicate::ult, t, end));
  };
  // (first tile of sequence s, the block's sequence (B: none), its tile).
  SmallVector<Value> found =
      e.loop(ids.c0, args.batch, ids.c1, {ids.c0, args.batch, ids.c0},
             [&](Value s, ValueRange it) -> SmallVector<Value> {
               Value end = e.addi(
                   it[0], e.ceilDiv(packedRows(e, cuQ, s, total).second, bq));
               Value here = contains(it[0], end);
               return {end, e.select(here, s, it[1]),
                       e.select(here, e.subi(t, it[0]), it[2])};
             });
  Value valid = e.cmpi(CmpIPredicate::ult, found[1], args.batch);
  Value seq = e.select(valid, found[1], ids.c0);
  auto [qRow0, nq] = packedRows(e, cuQ, seq, total);
  auto [kRow0, nk] = packedRows(e, cuK, seq, args.nk);
  // The tail: rows [cu_seqlens_q[B], Nq).
  auto [lastRow0, lastRows] =
      packedRows(e, cuQ, e.subi(args.batch, ids.c1), total);
  Value tailRow0 = e.addi(lastRow0, lastRows);
  Value tailRows = e.subi(total, tailRow0);
  Value inTail = contains(found[0], e.addi(found[0], e.ceilDiv(tailRows, bq)));
  args.packedRows = total;
  args.inSequence = valid;
  args.qRow0 = e.select(valid, qRow0, tailRow0);
  args.kRow0 = kRow0;
  args.nq = e.select(valid, nq, e.select(inTail, tailRows, ids.c0));
  args.nk = e.select(valid, nk, ids.c0);
  ids.bi = seq;
  ids.qt = e.select(valid, found[2], e.subi(t, found[0]));
  ids.i0 = e.muli(ids.qt, bq);
  for (auto [st, row0] : {std::pair{&args.qT, args.qRow0},
                          {&args.oT, args.qRow0},
                          {&args.kT, args.kRow0},
                          {&args.vT, args.kRow0}}) {
    st->strides[0] = ids.c0;
    st->base = e.muli(row0, st->strides[2]);
  }
}

void mlir::attn::detail::bindSequence(const AttnKernelConfig &cfg,
                                      ImplicitLocOpBuilder &b,
                                      AttnKernelArgs &args,
                                      AttnThreadIds &ids) {
  if (cfg.op.isVarlen())
    return bindPackedSequence(cfg, b, args, ids);
  Value lens = cfg.op.getKvLens();
  if (!lens)
    return;
  Emitter e(b);
  args.nk = sequenceKeys(e, cfg.op, args.capMap.lookup(lens), ids.bi, args.nq,
                         args.nk);
}

AttnThreadIds mlir::attn::detail::bindThreadIds(const AttnKernelConfig &cfg,
                                                ImplicitLocOpBuilder &b) {
  Emitter e(b);
  AttnThreadIds ids;
  ids.c0 = e.idx(0);
  ids.c1 = e.idx(1);
  ids.negInf = e.f32(-std::numeric_limits<float>::infinity());
  ids.tid = gpu::ThreadIdOp::create(b, gpu::Dimension::x);
  ids.lane = b.createOrFold<arith::RemUIOp>(ids.tid, e.idx(32));
  ids.warp = e.divi(ids.tid, e.idx(32));
  ids.qt = gpu::BlockIdOp::create(b, gpu::Dimension::x);
  if (cfg.splitKv) {
    ids.slice = gpu::BlockIdOp::create(b, gpu::Dimension::y);
    Value z = gpu::BlockIdOp::create(b, gpu::Dimension::z);
    ids.bi = e.divi(z, e.idx(cfg.hkv));
    ids.hk = b.createOrFold<arith::RemUIOp>(z, e.idx(cfg.hkv));
    ids.i0 = e.muli(ids.qt, e.idx(cfg.bq));
    return ids;
  }
  if (cfg.reverseQTiles) {
    Value n = gpu::GridDimOp::create(b, gpu::Dimension::x);
    ids.qt = e.subi(e.subi(n, ids.c1), ids.qt);
  }
  ids.h = gpu::BlockIdOp::create(b, gpu::Dimension::y);
  ids.bi = gpu::BlockIdOp::create(b, gpu::Dimension::z);
  ids.hk = e.divi(ids.h, e.idx(cfg.hq / cfg.hkv));
  ids.i0 = e.muli(ids.qt, e.idx(cfg.bq));
  return ids;
}

Value AttnKernelBase::classOf(const TileRange &range, Value kt) {
  if (!cfg.masked())
    return cIdx(2);
  // Without a block map (split-KV kernels, kv_lens) every tile of a mask on
  // captured data is partial (evaluated per element).
  if (cfg.dataMask)
    return cfg.needsMap ? mapClass(ids.qt, kt, range.numQT, range.numKT)
                        : cIdx(1);
  Value j0 = e.muli(kt, cIdx(cfg.bkv));
  Value j1 = e.subi(e.mini(e.addi(j0, cIdx(cfg.bkv)), args.nk), ids.c1);
  return classify(range.firstRow, range.lastRow, j0, j1);
}

Value AttnKernelBase::queryPosition(Value row) {
  return attn::queryPosition(e, op, row, args.nq, args.nk);
}

std::string mlir::attn::detail::captureArgName(const AttnKernelConfig &cfg,
                                               Value tensor) {
  auto it = llvm::find(cfg.captures, tensor);
  return "capture" + std::to_string(std::distance(cfg.captures.begin(), it));
}

std::pair<Value, Value> AttnKernelBase::pagedKeyRow(Value j) {
  int64_t s = op.getPageSize();
  Value table = args.capMap.lookup(op.getPageTable());
  Value slot =
      memref::LoadOp::create(b, table, ValueRange{ids.bi, e.divi(j, cIdx(s))});
  Value page = arith::IndexCastUIOp::create(b, b.getIndexType(), slot);
  return {page, remui(j, s)};
}

RowPos AttnKernelBase::packedRow(Value p) {
  int64_t g = cfg.group();
  return {e.addi(e.muli(ids.hk, cIdx(g)), remui(p, g)), e.divi(p, cIdx(g))};
}

RowPos AttnKernelBase::rowPos(Value local) {
  if (!cfg.splitKv)
    return {ids.h, queryPosition(e.addi(ids.i0, local))};
  RowPos q = packedRow(e.addi(ids.i0, local));
  // Launchers never start a kernel with Nq = 0.
  Value last = e.subi(args.nq, ids.c1);
  return {q.h, queryPosition(e.mini(q.i, last))};
}

std::pair<Value, Value>
AttnKernelBase::nonEmptySpan(Value lo, Value hi,
                             llvm::function_ref<Value(Value)> classOfTile) {
  SmallVector<Value> span =
      e.loop(lo, hi, ids.c1, {hi, lo},
             [&](Value t, ValueRange it) -> SmallVector<Value> {
               Value nonEmpty =
                   e.cmpi(CmpIPredicate::ne, classOfTile(t), ids.c0);
               return {e.select(nonEmpty, e.mini(it[0], t), it[0]),
                       e.select(nonEmpty, e.addi(t, ids.c1), it[1])};
             });
  return {span[0], span[1]};
}

Value AttnKernelBase::inlineRegion(Region &region, ValueRange regionArgs) {
  IRMapping map;
  return inlineRegion(region, regionArgs, map);
}

/// The operations of `blk` that `root` depends on (an operation whose
/// nested regions use a value counts as using it).
static llvm::SmallPtrSet<Operation *, 16> backwardSlice(Block &blk,
                                                        Value root) {
  llvm::SmallPtrSet<Operation *, 16> slice;
  SmallVector<Value> work = {root};
  while (!work.empty()) {
    Operation *def = work.pop_back_val().getDefiningOp();
    Operation *top = def ? blk.findAncestorOpInBlock(*def) : nullptr;
    if (!top || !slice.insert(top).second)
      continue;
    top->walk([&](Operation *nested) {
      llvm::append_range(work, nested->getOperands());
    });
  }
  return slice;
}

Value AttnKernelBase::inlineRegion(Region &region, ValueRange regionArgs,
                                   IRMapping &map, Value root) {
  Block &blk = region.front();
  map.map(blk.getArguments(), regionArgs);
  llvm::SmallPtrSet<Operation *, 16> slice;
  if (root)
    slice = backwardSlice(blk, root);
  for (Operation &inner : blk.without_terminator()) {
    // Operations without results have only effects: always kept.
    if (root && inner.getNumResults() && !slice.contains(&inner))
      continue;
    if (auto ex = dyn_cast<tensor::ExtractOp>(inner)) {
      if (Value mem = args.capMap.lookupOrNull(ex.getTensor())) {
        SmallVector<Value> idx;
        for (Value i : ex.getIndices())
          idx.push_back(map.lookupOrDefault(i));
        map.map(ex.getResult(),
                memref::LoadOp::create(b, mem, idx).getResult());
        continue;
      }
    }
    if (auto tanh = dyn_cast<math::TanhOp>(inner);
        tanh && tanh.getType().isF32()) {
      // The hardware tanh (sm_75+, max rel. error ~2^-11) instead of
      // libdevice's polynomial: well inside bf16/f16 tolerances.
      Value x = map.lookupOrDefault(tanh.getOperand());
      map.map(tanh.getResult(), ptxUnaryF32(b, "tanh.approx.f32", x));
      continue;
    }
    if (auto abs = dyn_cast<math::AbsIOp>(inner)) {
      // |x| as arith: math.absi on index has no NVVM lowering.
      Value x = map.lookupOrDefault(abs.getOperand());
      Value zero = arith::ConstantOp::create(b, b.getZeroAttr(x.getType()));
      Value neg = arith::SubIOp::create(b, zero, x);
      Value isNeg = arith::CmpIOp::create(b, CmpIPredicate::slt, x, zero);
      map.map(abs.getResult(),
              arith::SelectOp::create(b, isNeg, neg, x).getResult());
      continue;
    }
    b.clone(inner, map);
  }
  return map.lookupOrDefault(root ? root : blk.getTerminator()->getOperand(0));
}

bool AttnKernelBase::rolledMask() {
  if (!op.hasMaskRegion())
    return false;
  // Constants cost nothing per element: count the other operations.
  int64_t n = llvm::count_if(op.getMask().front(), [](Operation &o) {
    return !o.hasTrait<OpTrait::ConstantLike>();
  });
  return n > 8;
}

SmallVector<Value> AttnKernelBase::maskWords(Value full, Value j0,
                                             const AccLayout &acc, int64_t n) {
  Type i32 = b.getI32Type();
  int64_t nWords = (n + 31) / 32;
  SmallVector<Type> wordTypes(nWords, i32);
  auto evaluate = [&] {
    SmallVector<Value> words(nWords, arith::ConstantIntOp::create(b, i32, 0));
    // One n8 block (2 rows x 2 columns) per iteration: what depends on the
    // row only is loop-invariant (hoisted), what depends on the column only
    // is shared by the block's two rows.
    RowPos qa = rowPos(acc.r0), qb = rowPos(acc.r1);
    return e.loop(
        ids.c0, cIdx(n / 4), ids.c1, words,
        [&](Value blk, ValueRange w) -> SmallVector<Value> {
          Value jb = e.addi(j0, e.addi(e.muli(blk, cIdx(8)), acc.lcol));
          Value nib = arith::ConstantIntOp::create(b, i32, 0);
          for (int64_t el = 0; el < 4; ++el) {
            const RowPos &q = el < 2 ? qa : qb;
            Value kj = e.addi(jb, cIdx(el % 2));
            Value keep = e.cmpi(CmpIPredicate::ult, kj, args.nk);
            keep = b.createOrFold<arith::AndIOp>(
                keep, inlineRegion(op.getMask(), {ids.bi, q.h, q.i, kj}));
            nib = arith::OrIOp::create(
                b, nib,
                arith::ShLIOp::create(
                    b, arith::ExtUIOp::create(b, i32, keep),
                    arith::ConstantIntOp::create(b, i32, el)));
          }
          // Element 4 blk + el is bit (blk % 8) * 4 + el of word blk / 8.
          Value sh = arith::IndexCastUIOp::create(
              b, i32, e.muli(remui(blk, 8), cIdx(4)));
          Value bits = arith::ShLIOp::create(b, nib, sh);
          Value wi = e.divi(blk, cIdx(8));
          SmallVector<Value> out;
          for (int64_t k = 0; k < nWords; ++k)
            out.push_back(e.select(e.cmpi(CmpIPredicate::eq, wi, cIdx(k)),
                                   arith::OrIOp::create(b, w[k], bits), w[k]));
          return out;
        });
  };
  return e.ifElse(
      full, wordTypes,
      [&] {
        return SmallVector<Value>(nWords,
                                  arith::ConstantIntOp::create(b, i32, -1));
      },
      evaluate);
}

SmallVector<Value> AttnKernelBase::applyMask(Value full, Value j0,
                                             const AccLayout &acc,
                                             ArrayRef<Value> scored,
                                             ArrayRef<Value> words) {
  Type i32 = b.getI32Type();
  SmallVector<Type> types(scored.size(), b.getF32Type());
  auto masked = [&] {
    SmallVector<Value> out;
    Value zero32 = arith::ConstantIntOp::create(b, i32, 0);
    for (auto [i, x] : llvm::enumerate(scored)) {
      Value keep;
      if (!words.empty()) {
        Value bit = arith::AndIOp::create(
            b, words[i / 32],
            arith::ConstantIntOp::create(b, i32,
                                         int32_t(uint32_t(1) << (i % 32))));
        keep = e.cmpi(CmpIPredicate::ne, bit, zero32);
      } else {
        int64_t blk = i / 4, el = i % 4;
        Value kj = e.addi(j0, e.addi(cIdx(blk * 8 + el % 2), acc.lcol));
        keep = e.cmpi(CmpIPredicate::ult, kj, args.nk);
        if (op.hasMaskRegion()) {
          RowPos q = rowPos(el < 2 ? acc.r0 : acc.r1);
          keep = b.createOrFold<arith::AndIOp>(
              keep, inlineRegion(op.getMask(), {ids.bi, q.h, q.i, kj}));
        }
      }
      out.push_back(e.select(keep, x, ids.negInf));
    }
    return out;
  };
  return e.ifElse(
      full, types, [&] { return SmallVector<Value>(scored); }, masked);
}

SmallVector<Value>
AttnKernelBase::scoreElements(int64_t n, llvm::function_ref<Value(int64_t)> raw,
                              Value j0, const AccLayout &acc, bool fold,
                              Value qkScale) {
  const double log2e = 1.4426950408889634;
  SmallVector<Value> scored;
  for (int64_t i = 0; i < n; ++i) {
    // Without a score region the scale is folded into the exponent (one FMA
    // instead of a multiply and a subtraction per element).
    Value x = raw(i);
    if (!fold)
      x = e.mulf(x, qkScale);
    if (op.hasScoreRegion()) {
      int64_t blk = i / 4, el = i % 4;
      RowPos q = rowPos(el < 2 ? acc.r0 : acc.r1);
      Value kj = e.addi(j0, e.addi(cIdx(blk * 8 + el % 2), acc.lcol));
      x = e.mulf(inlineRegion(op.getScore(), {x, ids.bi, q.h, q.i, kj}),
                 e.f32(log2e));
    }
    scored.push_back(x);
  }
  return scored;
}

Value AttnKernelBase::classify(Value i0v, Value i1v, Value j0v, Value j1v) {
  IRBackend be(b);
  Value h0 = ids.h, h1 = ids.h;
  if (cfg.splitKv) {
    h0 = e.muli(ids.hk, cIdx(cfg.group()));
    h1 = e.addi(h0, cIdx(cfg.group() - 1));
  }
  auto [mayTrue, mayFalse] =
      evalTileMaskOverHeads(be, op, cfg.ms, ids.bi, h0, h1, i0v, i1v, j0v, j1v);
  Value two = cIdx(2), one = cIdx(1);
  return e.select(mayTrue, e.select(mayFalse, one, two), ids.c0);
}

Value AttnKernelBase::maskAt(Value i, Value j) {
  // Only what the mask value and the score's keep condition depend on: the
  // score region runs here at s = 0 for its condition, and its tanh (inline
  // PTX, never removed as dead) would cost a MUFU op per element.
  return emitMaskAt(b, op, cfg.ms, ids.bi, ids.h, i, j,
                    [&](Region &region, ValueRange regionArgs, IRMapping &map) {
                      Value root = &region == &op.getMask() ? cfg.ms.maskValue
                                                            : cfg.ms.scoreKeep;
                      if (root && root.getParentRegion() != &region)
                        root = Value();
                      inlineRegion(region, regionArgs, map, root);
                    });
}

/// Index of the (b, h) slice of the block map (0 when the mask depends on
/// neither).
static Value mapSlice(Emitter &e, const MaskStructure &ms, Value bi, Value h,
                      int64_t hq) {
  Value s = e.idx(0);
  if (ms.batch)
    s = bi;
  if (ms.head)
    s = e.addi(e.muli(s, e.idx(hq)), h);
  return s;
}

Value AttnKernelBase::mapClass(Value qt, Value kt, Value numQT, Value numKT) {
  Value slice = mapSlice(e, cfg.ms, ids.bi, ids.h, cfg.hq);
  Value idx = e.addi(e.muli(e.addi(e.muli(slice, numQT), qt), numKT), kt);
  Value c = memref::LoadOp::create(b, args.blockMap, ValueRange{idx});
  return arith::IndexCastUIOp::create(
      b, b.getIndexType(), arith::ExtUIOp::create(b, b.getI32Type(), c));
}

SoftmaxStep AttnKernelBase::onlineSoftmax(ArrayRef<Value> x,
                                          ArrayRef<Value> mOld,
                                          ArrayRef<Value> lOld, bool fold,
                                          Value qkScale) {
  Value zero = e.f32(0.0);
  SoftmaxStep st;
  Value mSafe[2];
  for (int r = 0; r < 2; ++r) {
    Value mx = x[2 * r];
    for (size_t i = 0; i < x.size(); ++i)
      if ((i % 4) / 2 == size_t(r) && i != size_t(2 * r))
        mx = e.maxf(mx, x[i]);
    mx = e.maxf(mx, shuffleXor(b, mx, 1));
    mx = e.maxf(mx, shuffleXor(b, mx, 2));
    if (fold)
      mx = e.mulf(mx, qkScale);
    mx = e.maxf(mOld[r], mx);
    st.m[r] = mx;
    mSafe[r] = e.select(e.cmpf(CmpFPredicate::OEQ, mx, ids.negInf), zero, mx);
    st.alpha[r] = ex2Approx(b, e.subf(mOld[r], mSafe[r]));
    st.l[r] = e.mulf(lOld[r], st.alpha[r]);
  }
  st.p.resize(x.size());
  for (size_t i = 0; i < x.size(); ++i) {
    int r = (i % 4) / 2;
    Value arg =
        fold ? Value(math::FmaOp::create(b, x[i], qkScale,
                                         arith::NegFOp::create(b, mSafe[r])))
             : e.subf(x[i], mSafe[r]);
    st.p[i] = ex2Approx(b, arg);
    st.l[r] = e.addf(st.l[r], st.p[i]);
  }
  return st;
}

void AttnKernelBase::emitEpilogue(ArrayRef<Value> m, ArrayRef<Value> l,
                                  llvm::function_ref<Value(int64_t)> acc,
                                  const AccLayout &layout) {
  const double ln2 = 0.6931471805599453, log2e = 1.4426950408889634;
  Value zero = e.f32(0.0);
  // Sinks join the denominator here; a split-KV kernel's partial results
  // leave them to the combine kernel.
  Value sink;
  if (op.getSinks() && !cfg.splitKv)
    sink = e.mulf(memref::LoadOp::create(b, args.capMap.lookup(op.getSinks()),
                                         ValueRange{ids.h}),
                  e.f32(log2e));
  for (int r = 0; r < 2; ++r) {
    Value sum = l[r], mRow = m[r];
    sum = e.addf(sum, shuffleXor(b, sum, 1));
    sum = e.addf(sum, shuffleXor(b, sum, 2));
    Value alpha;
    if (sink) {
      // m is -inf on a row with no visible key (sum 0): ex2(-inf) = 0.
      Value mNew = e.maxf(mRow, sink);
      alpha = ex2Approx(b, e.subf(mRow, mNew));
      Value term = ex2Approx(b, e.subf(sink, mNew));
      // Rows past every packed sequence take no sink (o = 0, lse = -inf).
      if (args.inSequence) {
        alpha = e.select(args.inSequence, alpha, e.f32(1.0));
        term = e.select(args.inSequence, term, zero);
        mNew = e.select(args.inSequence, mNew, mRow);
      }
      sum = e.addf(e.mulf(sum, alpha), term);
      mRow = mNew;
    }
    Value any = e.cmpf(CmpFPredicate::OGT, sum, zero);
    Value inv = e.select(any, e.divf(e.f32(1.0), sum), zero);
    if (alpha)
      inv = e.mulf(inv, alpha);
    RowDestination dst = rowDestination(r == 0 ? layout.r0 : layout.r1);
    e.ifThen(dst.inRange, [&] {
      for (int64_t nd = 0; nd < cfg.dv / 8; ++nd) {
        Value col = e.addi(cIdx(nd * 8), layout.lcol);
        storePair(dst, col, e.mulf(acc(nd * 4 + 2 * r), inv),
                  e.mulf(acc(nd * 4 + 2 * r + 1), inv));
      }
      if (!dst.lse)
        return;
      Value first = e.cmpi(CmpIPredicate::eq, layout.lcol, ids.c0);
      e.ifThen(first, [&] {
        Value val =
            e.select(any, e.mulf(e.addf(mRow, lg2Approx(b, sum)), e.f32(ln2)),
                     ids.negInf);
        memref::StoreOp::create(b, val, dst.lse, ValueRange{dst.lseIndex});
      });
    });
  }
}

AttnKernelBase::RowDestination AttnKernelBase::rowDestination(Value local) {
  RowDestination dst;
  if (!cfg.splitKv) {
    Value row = e.addi(ids.i0, local);
    dst.inRange = e.cmpi(CmpIPredicate::ult, row, args.nq);
    dst.row = row;
    dst.h = ids.h;
    dst.lse = args.lse;
    // Packed sequences: lse is [1, Hq, packed rows].
    dst.lseIndex =
        args.qRow0
            ? e.addi(e.muli(ids.h, args.packedRows), e.addi(args.qRow0, row))
            : e.addi(
                  e.muli(e.addi(e.muli(ids.bi, cIdx(cfg.hq)), ids.h), args.nq),
                  row);
    return dst;
  }
  // Row (slice, b, h, i) of the [slices, B, Hq, Nq] partial results.
  Value p = e.addi(ids.i0, local);
  dst.inRange =
      e.cmpi(CmpIPredicate::ult, p, e.muli(args.nq, cIdx(cfg.group())));
  RowPos q = packedRow(p);
  dst.h = q.h;
  dst.row = q.i;
  Value sb = e.addi(e.muli(ids.slice, args.batch), ids.bi);
  dst.lse = args.lsePart;
  dst.lseIndex =
      e.addi(e.muli(e.addi(e.muli(sb, cIdx(cfg.hq)), dst.h), args.nq), dst.row);
  return dst;
}

void AttnKernelBase::storePair(const RowDestination &dst, Value col, Value x0,
                               Value x1) {
  if (!cfg.splitKv) {
    Type elem = cfg.elem;
    Value pair = vector::FromElementsOp::create(
        b, VectorType::get({2}, elem),
        ValueRange{arith::TruncFOp::create(b, elem, x0),
                   arith::TruncFOp::create(b, elem, x1)});
    Value off = args.oT.offset(e, ids.bi, dst.h, dst.row, col);
    vector::StoreOp::create(b, pair, args.oT.mem, ValueRange{off});
    return;
  }
  Value pair = vector::FromElementsOp::create(
      b, VectorType::get({2}, b.getF32Type()), ValueRange{x0, x1});
  Value off = e.addi(e.muli(dst.lseIndex, cIdx(cfg.dv)), col);
  vector::StoreOp::create(b, pair, args.oPart, ValueRange{off});
}
