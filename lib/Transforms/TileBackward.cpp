//===- TileBackward.cpp - tiled CPU lowering of attn.attention_grad -------===//
//
// Part of attnc. FlashAttention-2's backward on the CPU: per (batch, query
// head, kv tile) the dk and dv of the tile accumulate in f32 tile buffers
// while the q tiles stream past; P is recomputed per element from the
// forward's lse, so nothing of size N x N exists. dq accumulates in an f32
// buffer of q's shape, dk and dv in buffers of k's and v's shape summed over
// the query heads of a group. The tile classes are the forward's (the mask
// analysis of the same regions): empty tiles are skipped, full tiles run
// without mask code, partial ones evaluate the mask per element.
//
//===----------------------------------------------------------------------===//

#include "attnc/Analysis/MaskAnalysis.h"
#include "attnc/Transforms/AttnLowering.h"
#include "attnc/Transforms/GradLowering.h"

#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"

#include <limits>

using namespace mlir;
using namespace mlir::attn;
using arith::CmpFPredicate;
using arith::CmpIPredicate;

namespace {
class TiledGradEmitter {
public:
  TiledGradEmitter(AttentionGradOp op, ImplicitLocOpBuilder &b)
      : op(op), b(b), e(b) {}
  ~TiledGradEmitter() {
    if (fwd)
      fwd->erase();
  }
  LogicalResult emit();

private:
  /// A detached attn.attention with the op's score and mask regions: the
  /// mask analysis reads the forward op.
  void makeForwardView();
  /// Class of the tile (i8: 0 empty, 1 partial, 2 full).
  Value classify(Value bi, Value h, Value i0, Value rows, Value j0, Value cols);
  Value maskAt(Value bi, Value h, Value i, Value j);
  void processTile(Value bi, Value h, Value hk, Value i0, Value rows, Value j0,
                   Value cols, bool withMask);
  void keyOfRow(Value bi, Value h, Value hk, Value i, Value j, Value cc,
                Value lse, Value rowD, Value qv, Value dov, bool withMask,
                Value &dqv);

  AttentionGradOp op;
  ImplicitLocOpBuilder &b;
  Emitter e;
  Operation *fwd = nullptr;
  MaskStructure ms;
  GradBuffers gb;
  int64_t bq = 32, bkv = 32;
  Value c0, c1, scale, dRow, dkTile, dvTile;
};
} // namespace

static Value i8(Emitter &e, int64_t v) {
  return arith::ConstantIntOp::create(e.b, e.b.getI8Type(), v);
}

void TiledGradEmitter::makeForwardView() {
  fwd = op.createForwardView();
  ms = analyzeMaskStructure(cast<AttentionOp>(fwd));
}

Value TiledGradEmitter::maskAt(Value bi, Value h, Value i, Value j) {
  return emitMaskAt(b, cast<AttentionOp>(fwd), ms, bi, h, i, j,
                    [&](Region &region, ValueRange args, IRMapping &map) {
                      Block &blk = region.front();
                      map.map(blk.getArguments(), args);
                      for (Operation &inner : blk.without_terminator())
                        b.clone(inner, map);
                    });
}

Value TiledGradEmitter::classify(Value bi, Value h, Value i0, Value rows,
                                 Value j0, Value cols) {
  if (ms.kind == MaskKind::none)
    return i8(e, 2);
  IRBackend be(b);
  // Query positions from here on.
  i0 = queryPosition(e, op, i0, gb.nq, gb.nk);
  Value i1 = e.subi(e.addi(i0, rows), c1), j1 = e.subi(e.addi(j0, cols), c1);
  auto [mayTrue, mayFalse] =
      evalTileMask(be, cast<AttentionOp>(fwd), ms, bi, h, i0, i1, j0, j1);
  Value cls =
      e.select(mayTrue, e.select(mayFalse, i8(e, 1), i8(e, 2)), i8(e, 0));
  if (ms.kind != MaskKind::data && ms.kind != MaskKind::opaque)
    return cls;
  // Data-dependent masks: a partial tile by intervals is counted exactly.
  Value partial = e.cmpi(CmpIPredicate::eq, cls, i8(e, 1));
  return e.ifElse(
      partial, {b.getI8Type()},
      [&] {
        Value count =
            e.loop(c0, rows, c1, {c0},
                   [&](Value r, ValueRange acc) -> SmallVector<Value> {
                     return e.loop(
                         c0, cols, c1, {acc[0]},
                         [&](Value c, ValueRange acc2) -> SmallVector<Value> {
                           Value keep =
                               maskAt(bi, h, e.addi(i0, r), e.addi(j0, c));
                           Value one = e.select(keep, c1, c0);
                           return {e.addi(acc2[0], one)};
                         });
                   })[0];
        Value none = e.cmpi(CmpIPredicate::eq, count, c0);
        Value all = e.cmpi(CmpIPredicate::eq, count, e.muli(rows, cols));
        return SmallVector<Value>{
            e.select(none, i8(e, 0), e.select(all, i8(e, 2), i8(e, 1)))};
      },
      [&] { return SmallVector<Value>{cls}; })[0];
}

void TiledGradEmitter::keyOfRow(Value bi, Value h, Value hk, Value i, Value j,
                                Value cc, Value lse, Value rowD, Value qv,
                                Value dov, bool withMask, Value &dqv) {
  Value kv = e.readRowF32(gb.k, {bi, hk, j, c0}, gb.d);
  Value s = e.mulf(e.dot(qv, kv), scale);
  Value sOut = s;
  Value pos = queryPosition(e, op, i, gb.nq, gb.nk);
  if (op.hasScoreRegion())
    sOut = e.inlineRegion(op.getScore(), {s, bi, h, pos, j})[0];
  Value p = e.exp(e.subf(sOut, lse));
  Value zero = e.f32(0.0);
  if (withMask && op.hasMaskRegion())
    p = e.select(e.inlineRegion(op.getMask(), {bi, h, pos, j})[0], p, zero);
  Type vecD = VectorType::get({gb.d}, b.getF32Type());
  dqv = e.ifElse(
      e.cmpf(CmpFPredicate::OGT, p, zero), {vecD},
      [&] {
        Value vv = e.readRowF32(gb.v, {bi, hk, j, c0}, gb.dv);
        Value dsOut = e.mulf(p, e.subf(e.dot(dov, vv), rowD));
        Value ds =
            e.mulf(chainScore(e, op, gb, dsOut, s, bi, h, pos, j), scale);
        Value dk = e.readRowF32(dkTile, {cc, c0}, gb.d);
        e.writeRowF32(vector::FMAOp::create(b, e.splat(ds, gb.d), qv, dk),
                      dkTile, {cc, c0});
        Value dv = e.readRowF32(dvTile, {cc, c0}, gb.dv);
        e.writeRowF32(vector::FMAOp::create(b, e.splat(p, gb.dv), dov, dv),
                      dvTile, {cc, c0});
        return SmallVector<Value>{
            vector::FMAOp::create(b, e.splat(ds, gb.d), kv, dqv)};
      },
      [&] { return SmallVector<Value>{dqv}; })[0];
}

void TiledGradEmitter::processTile(Value bi, Value h, Value hk, Value i0,
                                   Value rows, Value j0, Value cols,
                                   bool withMask) {
  const float negInf = -std::numeric_limits<float>::infinity();
  e.loop(c0, rows, [&](Value r) {
    Value i = e.addi(i0, r);
    Value lse = memref::LoadOp::create(b, gb.lse, ValueRange{bi, h, i});
    // Rows with no visible key (lse = -inf) have zero gradients.
    e.ifThen(e.cmpf(CmpFPredicate::ONE, lse, e.f32(negInf)), [&] {
      Value qv = e.readRowF32(gb.q, {bi, h, i, c0}, gb.d);
      Value dov = e.readRowF32(gb.dO, {bi, h, i, c0}, gb.dv);
      Value rowD = memref::LoadOp::create(b, dRow, ValueRange{i});
      Value dq = e.readRowF32(gb.dq, {bi, h, i, c0}, gb.d);
      dq = e.loop(c0, cols, c1, {dq},
                  [&](Value cc, ValueRange it) -> SmallVector<Value> {
                    Value dqv = it[0];
                    keyOfRow(bi, h, hk, i, e.addi(j0, cc), cc, lse, rowD, qv,
                             dov, withMask, dqv);
                    return {dqv};
                  })[0];
      e.writeRowF32(dq, gb.dq, {bi, h, i, c0});
    });
  });
}

LogicalResult TiledGradEmitter::emit() {
  if (ScheduleAttr sched = op.getScheduleAttr()) {
    bq = sched.getBlockQ();
    bkv = sched.getBlockKv();
  }
  makeForwardView();
  gb = makeGradBuffers(e, op, b.getF32Type());
  c0 = e.idx(0);
  c1 = e.idx(1);
  scale = e.f32(op.getEffectiveScale());
  Value numQT = e.ceilDiv(gb.nq, e.idx(bq));
  Value numKT = e.ceilDiv(gb.nk, e.idx(bkv));
  Type f32 = b.getF32Type();
  dRow = e.alloc({ShapedType::kDynamic}, f32, {gb.nq});
  dkTile = e.alloc({bkv, gb.d}, f32, {});
  dvTile = e.alloc({bkv, gb.dv}, f32, {});
  Value group = e.idx(gb.hq / gb.hkv);
  e.loop(c0, gb.batch, [&](Value bi) {
    e.loop(c0, e.idx(gb.hq), [&](Value h) {
      Value hk = e.divi(h, group);
      // D_i = dO_i . O_i for the rows of this head.
      e.loop(c0, gb.nq, [&](Value i) {
        Value x = e.dot(e.readRowF32(gb.dO, {bi, h, i, c0}, gb.dv),
                        e.readRowF32(gb.o, {bi, h, i, c0}, gb.dv));
        // A loss reading lse: dS = P (dP - D + dLSE).
        if (gb.dLse)
          x = e.subf(x,
                     memref::LoadOp::create(b, gb.dLse, ValueRange{bi, h, i}));
        memref::StoreOp::create(b, x, dRow, ValueRange{i});
      });
      e.loop(c0, numKT, [&](Value kt) {
        Value j0 = e.muli(kt, e.idx(bkv));
        Value cols = e.mini(e.idx(bkv), e.subi(gb.nk, j0));
        e.loop(c0, e.idx(bkv), [&](Value c) {
          e.writeRowF32(e.splat(e.f32(0.0), gb.d), dkTile, {c, c0});
          e.writeRowF32(e.splat(e.f32(0.0), gb.dv), dvTile, {c, c0});
        });
        e.loop(c0, numQT, [&](Value qt) {
          Value i0 = e.muli(qt, e.idx(bq));
          Value rows = e.mini(e.idx(bq), e.subi(gb.nq, i0));
          Value cls = classify(bi, h, i0, rows, j0, cols);
          e.ifThen(e.cmpi(CmpIPredicate::ne, cls, i8(e, 0)), [&] {
            e.ifElse(
                e.cmpi(CmpIPredicate::eq, cls, i8(e, 2)), {},
                [&] {
                  processTile(bi, h, hk, i0, rows, j0, cols, false);
                  return SmallVector<Value>();
                },
                [&] {
                  processTile(bi, h, hk, i0, rows, j0, cols, true);
                  return SmallVector<Value>();
                });
          });
        });
        // The tile's dk and dv into the group's kv head.
        e.loop(c0, cols, [&](Value c) {
          Value j = e.addi(j0, c);
          for (auto [tile, acc, n] : {std::tuple{dkTile, gb.dk, gb.d},
                                      std::tuple{dvTile, gb.dvAcc, gb.dv}}) {
            Value sum = e.addf(e.readRowF32(acc, {bi, hk, j, c0}, n),
                               e.readRowF32(tile, {c, c0}, n));
            e.writeRowF32(sum, acc, {bi, hk, j, c0});
          }
        });
      });
    });
  });
  for (Value buf : {dRow, dkTile, dvTile})
    memref::DeallocOp::create(b, buf);
  finishGrad(e, op, gb);
  return success();
}

LogicalResult mlir::attn::lowerAttentionGradTiled(AttentionGradOp op) {
  ImplicitLocOpBuilder b(op.getLoc(), op);
  TiledGradEmitter emitter(op, b);
  return emitter.emit();
}
