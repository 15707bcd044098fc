//===- Tile.cpp - attn-tile: FlashAttention-2 loop nest for the CPU -------===//
//
// Part of attnc. Per (batch, head, q tile): running max m and sum l in f32,
// an f32 accumulator, kv tiles visited over the range derived from the mask
// analysis. Scores are kept in log2 units (log2(e) folded into the scale) so
// that the softmax uses exp2. Empty tiles are never visited, full tiles run
// without mask code, partial tiles evaluate the mask per element.
//
//===----------------------------------------------------------------------===//

#include "attnc/Analysis/MaskAnalysis.h"
#include "attnc/Transforms/AttnLowering.h"
#include "attnc/Transforms/Passes.h"

#include "mlir/Dialect/Bufferization/IR/Bufferization.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/IR/IRMapping.h"
#include "llvm/Support/Debug.h"

#include <cmath>
#include <limits>

namespace mlir::attn {
#define GEN_PASS_DEF_ATTNTILE
#include "Attn/AttnPasses.h.inc"
} // namespace mlir::attn

#define DEBUG_TYPE "attn-tile"

using namespace mlir;
using namespace mlir::attn;
using arith::CmpFPredicate;
using arith::CmpIPredicate;

namespace {
class TiledAttentionEmitter {
public:
  TiledAttentionEmitter(AttentionOp op, ImplicitLocOpBuilder &b)
      : op(op), b(b), e(b), ms(analyzeMaskStructure(op)) {}

  LogicalResult emit();

private:
  /// Class of the tile [i0, i1] x [j0, j1] by interval evaluation (i8).
  Value classifyByIntervals(Value bi, Value h, Value i0, Value i1, Value j0,
                            Value j1);
  /// Exact class of a tile by evaluating the mask on every element.
  Value classifyExhaustively(Value bi, Value h, Value i0, Value rows, Value j0,
                             Value cols);
  /// The combined mask at one element (mask region and score -inf guard).
  Value maskAt(Value bi, Value h, Value i, Value j);
  /// Fills the [numQT x numKT] block map for (bi, h).
  void fillBlockMap(Value bi, Value h);
  /// Adds head h's sink logit to row r's running maximum and sum (and
  /// rescales its accumulator).
  void addSink(Value h, Value r);
  void processTile(Value bi, Value h, Value hk, Value i0, Value rows, Value j0,
                   Value cols, bool withMask);
  /// The scratch buffers, the tile classes and a shared block map.
  void allocScratch();
  /// One q tile of head h: classes, tiles, normalization.
  void emitQueryTile(Value bi, Value h, Value hk, Value qt);
  /// Classifies the kv tiles of the q tile of rows [i0, i1] into `classes`;
  /// returns the span [lo, hi) of the non-empty ones.
  std::pair<Value, Value> classifyRow(Value bi, Value h, Value qt, Value i0,
                                      Value i1);
  /// Divides each of the q tile's rows by its sum and stores o (and lse).
  void storeRows(Value h, Value i0, Value rows);

  AttentionOp op;
  ImplicitLocOpBuilder &b;
  Emitter e;
  MaskStructure ms;
  AttentionBuffers io;
  int64_t bq = 0, bkv = 0;
  Value numQT, numKT, blockMap, classes, mBuf, lBuf, accBuf, sBuf, qScale;
  Value c0, c1;
  /// The current sequence's batch index in the buffers and its first query
  /// and key rows (0, and the batch, unless sequences are packed).
  Value storageBatch, qBase, kBase;
  /// The mask's kind decides: classify tiles at all, from a block map (per
  /// head or shared), or take every tile as partial (data masks of
  /// per-sequence key counts).
  bool masked = false, needsMap = false, everyTilePartial = false,
       mapPerHead = false;
};
} // namespace

static Value i8(Emitter &e, int64_t v) {
  return arith::ConstantIntOp::create(e.b, e.b.getI8Type(), v);
}

Value TiledAttentionEmitter::classifyByIntervals(Value bi, Value h, Value i0,
                                                 Value i1, Value j0, Value j1) {
  IRBackend be(b);
  auto [mayTrue, mayFalse] =
      evalTileMask(be, op, ms, bi, h, queryPosition(e, op, i0, io.nq, io.nk),
                   queryPosition(e, op, i1, io.nq, io.nk), j0, j1);
  // empty = 0 if never true; full = 2 if never false; else partial = 1.
  Value cls = e.select(mayFalse, i8(e, 1), i8(e, 2));
  return e.select(mayTrue, cls, i8(e, 0));
}

Value TiledAttentionEmitter::maskAt(Value bi, Value h, Value i, Value j) {
  return emitMaskAt(b, op, ms, bi, h, queryPosition(e, op, i, io.nq, io.nk), j,
                    [&](Region &region, ValueRange args, IRMapping &map) {
                      Block &blk = region.front();
                      map.map(blk.getArguments(), args);
                      for (Operation &inner : blk.without_terminator())
                        b.clone(inner, map);
                    });
}

Value TiledAttentionEmitter::classifyExhaustively(Value bi, Value h, Value i0,
                                                  Value rows, Value j0,
                                                  Value cols) {
  Value count = e.loop(
      c0, rows, c1, {c0}, [&](Value r, ValueRange acc) -> SmallVector<Value> {
        Value inner =
            e.loop(c0, cols, c1, {acc[0]},
                   [&](Value c, ValueRange acc2) -> SmallVector<Value> {
                     Value keep = maskAt(bi, h, e.addi(i0, r), e.addi(j0, c));
                     Value one = arith::IndexCastUIOp::create(
                         b, b.getIndexType(),
                         arith::ExtUIOp::create(b, b.getI32Type(), keep));
                     return {e.addi(acc2[0], one)};
                   })[0];
        return {inner};
      })[0];
  Value none = e.cmpi(CmpIPredicate::eq, count, c0);
  Value all = e.cmpi(CmpIPredicate::eq, count, e.muli(rows, cols));
  return e.select(none, i8(e, 0), e.select(all, i8(e, 2), i8(e, 1)));
}

void TiledAttentionEmitter::fillBlockMap(Value bi, Value h) {
  e.loop(c0, numQT, [&](Value qt) {
    Value i0 = e.muli(qt, e.idx(bq));
    Value rows = e.mini(e.idx(bq), e.subi(io.nq, i0));
    Value i1 = e.subi(e.addi(i0, rows), c1);
    e.loop(c0, numKT, [&](Value kt) {
      Value j0 = e.muli(kt, e.idx(bkv));
      Value cols = e.mini(e.idx(bkv), e.subi(io.nk, j0));
      Value j1 = e.subi(e.addi(j0, cols), c1);
      Value cls = classifyByIntervals(bi, h, i0, i1, j0, j1);
      Value partial = e.cmpi(CmpIPredicate::eq, cls, i8(e, 1));
      Value refined = e.ifElse(
          partial, {b.getI8Type()},
          [&] {
            return SmallVector<Value>{
                classifyExhaustively(bi, h, i0, rows, j0, cols)};
          },
          [&] { return SmallVector<Value>{cls}; })[0];
      memref::StoreOp::create(b, refined, blockMap, ValueRange{qt, kt});
    });
  });
}

void TiledAttentionEmitter::addSink(Value h, Value r) {
  const double log2e = 1.4426950408889634;
  Value sink =
      e.mulf(memref::LoadOp::create(b, io.sinks, ValueRange{h}), e.f32(log2e));
  Value m = memref::LoadOp::create(b, mBuf, ValueRange{r});
  Value l = memref::LoadOp::create(b, lBuf, ValueRange{r});
  // m is -inf on a row with no visible key (l = 0): exp2(-inf) = 0.
  Value mNew = e.maxf(m, sink);
  Value alpha = e.exp2(e.subf(m, mNew));
  memref::StoreOp::create(b,
                          e.addf(e.mulf(l, alpha), e.exp2(e.subf(sink, mNew))),
                          lBuf, ValueRange{r});
  memref::StoreOp::create(b, mNew, mBuf, ValueRange{r});
  Value accv = e.readRowF32(accBuf, {r, c0}, io.dv);
  e.writeRowF32(e.mulf(accv, e.splat(alpha, io.dv)), accBuf, {r, c0});
}

void TiledAttentionEmitter::processTile(Value bi, Value h, Value hk, Value i0,
                                        Value rows, Value j0, Value cols,
                                        bool withMask) {
  const float negInf = -std::numeric_limits<float>::infinity();
  const double log2e = 1.4426950408889634;
  e.loop(c0, rows, [&](Value r) {
    Value i = e.addi(i0, r);
    Value qv = e.mulf(
        e.readRowF32(io.q, {storageBatch, h, e.addi(qBase, i), c0}, io.d),
        e.splat(qScale, io.d));
    // Scores of this row in log2 units, and their maximum.
    Value rowMax = e.loop(
        c0, cols, c1, {e.f32(negInf)},
        [&](Value jj, ValueRange it) -> SmallVector<Value> {
          Value j = e.addi(j0, jj);
          Value s = e.dot(qv, e.readRowF32(io.k,
                                           io.keyIndex(e, storageBatch, hk,
                                                       e.addi(kBase, j), c0),
                                           io.d));
          Value pos = queryPosition(e, op, i, io.nq, io.nk);
          if (op.hasScoreRegion())
            s = e.mulf(e.inlineRegion(op.getScore(), {s, bi, h, pos, j})[0],
                       e.f32(log2e));
          if (withMask && op.hasMaskRegion()) {
            Value keep = e.inlineRegion(op.getMask(), {bi, h, pos, j})[0];
            s = e.select(keep, s, e.f32(negInf));
          }
          memref::StoreOp::create(b, s, sBuf, ValueRange{jj});
          return {e.maxf(it[0], s)};
        })[0];
    Value mOld = memref::LoadOp::create(b, mBuf, ValueRange{r});
    Value mNew = e.maxf(mOld, rowMax);
    Value isInf = e.cmpf(CmpFPredicate::OEQ, mNew, e.f32(negInf));
    Value mSafe = e.select(isInf, e.f32(0.0), mNew);
    Value alpha = e.exp2(e.subf(mOld, mSafe));
    Value accv =
        e.mulf(e.readRowF32(accBuf, {r, c0}, io.dv), e.splat(alpha, io.dv));
    SmallVector<Value> sums = e.loop(
        c0, cols, c1, {e.f32(0.0), accv},
        [&](Value jj, ValueRange it) -> SmallVector<Value> {
          Value s = memref::LoadOp::create(b, sBuf, ValueRange{jj});
          Value p = e.exp2(e.subf(s, mSafe));
          Value vv =
              e.readRowF32(io.v,
                           io.keyIndex(e, storageBatch, hk,
                                       e.addi(kBase, e.addi(j0, jj)), c0),
                           io.dv);
          Value av = vector::FMAOp::create(b, e.splat(p, io.dv), vv, it[1]);
          return {e.addf(it[0], p), av};
        });
    Value lOld = memref::LoadOp::create(b, lBuf, ValueRange{r});
    memref::StoreOp::create(b, e.addf(e.mulf(lOld, alpha), sums[0]), lBuf,
                            ValueRange{r});
    memref::StoreOp::create(b, mNew, mBuf, ValueRange{r});
    e.writeRowF32(sums[1], accBuf, {r, c0});
  });
}

void TiledAttentionEmitter::allocScratch() {
  Type f32 = e.f32Type();
  mBuf = e.alloc({bq}, f32, {});
  lBuf = e.alloc({bq}, f32, {});
  accBuf = e.alloc({bq, io.dv}, f32, {});
  sBuf = e.alloc({bkv}, f32, {});
  masked = ms.kind != MaskKind::none;
  bool dataMask = ms.kind == MaskKind::data || ms.kind == MaskKind::opaque;
  // Per-sequence key counts (kv_lens, packed sequences) shift positions per
  // batch: a mask on captured data gets no block map then (every tile
  // partial, evaluated per element).
  bool perSequence = io.kvLens || io.cuQ;
  needsMap = dataMask && !perSequence;
  everyTilePartial = dataMask && perSequence;
  mapPerHead = needsMap && (ms.batch || ms.head);
  if (masked)
    classes = e.alloc({ShapedType::kDynamic}, b.getI8Type(), {numKT});
  if (needsMap) {
    blockMap = e.alloc({ShapedType::kDynamic, ShapedType::kDynamic},
                       b.getI8Type(), {numQT, numKT});
    if (!mapPerHead)
      fillBlockMap(c0, c0);
  }
}

std::pair<Value, Value> TiledAttentionEmitter::classifyRow(Value bi, Value h,
                                                           Value qt, Value i0,
                                                           Value i1) {
  SmallVector<Value> range =
      e.loop(c0, numKT, c1, {numKT, c0},
             [&](Value kt, ValueRange it) -> SmallVector<Value> {
               Value cls;
               if (needsMap) {
                 cls = memref::LoadOp::create(b, blockMap, ValueRange{qt, kt});
               } else if (everyTilePartial) {
                 cls = i8(e, 1);
               } else {
                 Value j0 = e.muli(kt, e.idx(bkv));
                 Value j1 = e.subi(e.mini(e.addi(j0, e.idx(bkv)), io.nk), c1);
                 cls = classifyByIntervals(bi, h, i0, i1, j0, j1);
               }
               memref::StoreOp::create(b, cls, classes, ValueRange{kt});
               Value nonEmpty = e.cmpi(CmpIPredicate::ne, cls, i8(e, 0));
               return {e.select(nonEmpty, e.mini(it[0], kt), it[0]),
                       e.select(nonEmpty, e.addi(kt, c1), it[1])};
             });
  return {range[0], range[1]};
}

void TiledAttentionEmitter::storeRows(Value h, Value i0, Value rows) {
  const float negInf = -std::numeric_limits<float>::infinity();
  const double ln2 = 0.6931471805599453;
  e.loop(c0, rows, [&](Value r) {
    Value i = e.addi(qBase, e.addi(i0, r));
    if (io.sinks)
      addSink(h, r);
    Value l = memref::LoadOp::create(b, lBuf, ValueRange{r});
    Value any = e.cmpf(CmpFPredicate::OGT, l, e.f32(0.0));
    Value inv = e.select(any, e.divf(e.f32(1.0), l), e.f32(0.0));
    Value accv = e.readRowF32(accBuf, {r, c0}, io.dv);
    e.writeRowF32(e.mulf(accv, e.splat(inv, io.dv)), io.o,
                  {storageBatch, h, i, c0});
    if (io.lse) {
      Value m = memref::LoadOp::create(b, mBuf, ValueRange{r});
      Value lse = e.addf(e.mulf(m, e.f32(ln2)), e.log(l));
      memref::StoreOp::create(b, e.select(any, lse, e.f32(negInf)), io.lse,
                              ValueRange{storageBatch, h, i});
    }
  });
}

void TiledAttentionEmitter::emitQueryTile(Value bi, Value h, Value hk,
                                          Value qt) {
  const float negInf = -std::numeric_limits<float>::infinity();
  Value i0 = e.muli(qt, e.idx(bq));
  Value rows = e.mini(e.idx(bq), e.subi(io.nq, i0));
  Value i1 = e.subi(e.addi(i0, rows), c1);
  // The kv-tile range of this q tile, and the class of each tile.
  Value lo = c0, hi = numKT;
  if (masked)
    std::tie(lo, hi) = classifyRow(bi, h, qt, i0, i1);
  e.loop(c0, e.idx(bq), [&](Value r) {
    memref::StoreOp::create(b, e.f32(negInf), mBuf, ValueRange{r});
    memref::StoreOp::create(b, e.f32(0.0), lBuf, ValueRange{r});
    e.writeRowF32(e.splat(e.f32(0.0), io.dv), accBuf, {r, c0});
  });
  e.loop(lo, hi, [&](Value kt) {
    Value j0 = e.muli(kt, e.idx(bkv));
    Value cols = e.mini(e.idx(bkv), e.subi(io.nk, j0));
    if (!masked) {
      processTile(bi, h, hk, i0, rows, j0, cols, /*withMask=*/false);
      return;
    }
    Value cls = memref::LoadOp::create(b, classes, ValueRange{kt});
    e.ifThen(e.cmpi(CmpIPredicate::ne, cls, i8(e, 0)), [&] {
      Value full = e.cmpi(CmpIPredicate::eq, cls, i8(e, 2));
      e.ifElse(
          full, {},
          [&] {
            processTile(bi, h, hk, i0, rows, j0, cols, /*withMask=*/false);
            return SmallVector<Value>();
          },
          [&] {
            processTile(bi, h, hk, i0, rows, j0, cols, /*withMask=*/true);
            return SmallVector<Value>();
          });
    });
  });
  // One normalization per row at the end.
  storeRows(h, i0, rows);
}

LogicalResult TiledAttentionEmitter::emit() {
  ScheduleAttr sched = op.getScheduleAttr();
  if (!sched)
    return op.emitOpError() << "has no #attn.schedule; run "
                               "attn-select-schedule before attn-tile";
  if (!op.getMaskInfoAttr())
    return op.emitOpError()
           << "has no #attn.mask_info; run attn-analyze-masks before attn-tile";
  bq = sched.getBlockQ();
  bkv = sched.getBlockKv();
  const double log2e = 1.4426950408889634;
  io = makeAttentionBuffers(e, op);
  c0 = e.idx(0);
  c1 = e.idx(1);
  numQT = e.ceilDiv(io.nq, e.idx(bq));
  numKT = e.ceilDiv(io.nk, e.idx(bkv));
  double scale = op.getEffectiveScale();
  qScale = e.f32(op.hasScoreRegion() ? scale : scale * log2e);
  allocScratch();
  Value group = e.idx(io.hq / io.hkv);
  e.loop(c0, io.batch, [&](Value bi) {
    // This sequence's rows (kv_lens, packed sequences); restored after the
    // body is emitted.
    Value allQueries = io.nq, allKeys = io.nk, allQTiles = numQT,
          allTiles = numKT;
    AttentionBuffers::Sequence seq = io.sequence(e, op, bi);
    storageBatch = io.storageBatch(e, bi);
    qBase = seq.qStart;
    kBase = seq.kStart;
    io.nq = seq.nq;
    io.nk = seq.nk;
    numQT = e.ceilDiv(io.nq, e.idx(bq));
    numKT = e.ceilDiv(io.nk, e.idx(bkv));
    e.loop(c0, e.idx(io.hq), [&](Value h) {
      Value hk = e.divi(h, group);
      if (mapPerHead)
        fillBlockMap(bi, h);
      e.loop(c0, numQT, [&](Value qt) { emitQueryTile(bi, h, hk, qt); });
    });
    io.nq = allQueries;
    io.nk = allKeys;
    numQT = allQTiles;
    numKT = allTiles;
  });
  for (Value buf : {mBuf, lBuf, accBuf, sBuf, classes, blockMap})
    if (buf)
      memref::DeallocOp::create(b, buf);
  finishAttention(e, op, io);
  return success();
}

LogicalResult mlir::attn::lowerAttentionTiled(AttentionOp op) {
  ImplicitLocOpBuilder b(op.getLoc(), op);
  TiledAttentionEmitter emitter(op, b);
  return emitter.emit();
}

namespace {
struct AttnTilePass : public mlir::attn::impl::AttnTileBase<AttnTilePass> {
  using AttnTileBase::AttnTileBase;
  void runOnOperation() override {
    if (linearForm != "chunked" && linearForm != "recurrent") {
      getOperation()->emitError()
          << "attn-tile: unknown linear-form '" << linearForm
          << "' (expected chunked or recurrent)";
      return signalPassFailure();
    }
    SmallVector<Operation *> ops;
    getOperation()->walk([&](Operation *op) {
      if (isa<AttentionOp, AttentionGradOp, LinearAttentionOp,
              LinearAttentionGradOp, ScanOp, CombineStatesOp, DeltaRuleOp,
              DeltaRuleGradOp>(op))
        ops.push_back(op);
    });
    for (Operation *op : ops) {
      if (auto delta = dyn_cast<DeltaRuleOp>(op)) {
        if (failed(linearForm == "recurrent" ? lowerDeltaRuleRecurrent(delta)
                                             : lowerDeltaRuleChunked(delta)))
          return signalPassFailure();
        continue;
      }
      if (auto grad = dyn_cast<DeltaRuleGradOp>(op)) {
        auto sched = grad.getScheduleAttr();
        if (failed(lowerDeltaRuleGrad(grad, sched ? sched.getBlockQ() : 64)))
          return signalPassFailure();
        continue;
      }
      if (auto combine = dyn_cast<CombineStatesOp>(op)) {
        if (failed(lowerCombineStates(combine)))
          return signalPassFailure();
        continue;
      }
      if (auto grad = dyn_cast<LinearAttentionGradOp>(op)) {
        // The chunk length: a schedule's block_q (attn-run --block-q), or
        // the forward's default.
        auto sched = grad->getAttrOfType<ScheduleAttr>("schedule");
        if (failed(
                lowerLinearGradChunked(grad, sched ? sched.getBlockQ() : 64)))
          return signalPassFailure();
        continue;
      }
      if (auto grad = dyn_cast<AttentionGradOp>(op)) {
        if (failed(lowerAttentionGradTiled(grad)))
          return signalPassFailure();
        continue;
      }
      LLVM_DEBUG(llvm::dbgs()
                 << "tiling " << op->getName() << " at " << op->getLoc()
                 << " with " << op->getAttr("schedule") << " (linear form "
                 << linearForm << ")\n");
      LogicalResult r = isa<AttentionOp>(op)
                            ? lowerAttentionTiled(cast<AttentionOp>(op))
                        : linearForm == "recurrent" ? lowerLinearRecurrent(op)
                                                    : lowerLinearChunked(op);
      if (failed(r))
        return signalPassFailure();
    }
  }
};
} // namespace
