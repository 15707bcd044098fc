//===- ReferenceBackward.cpp - naive lowering of attn.attention_grad ------===//
//
// Part of attnc. The oracle of the backward pass: scalar loops over every
// (b, h, i, j), the probabilities recomputed from lse, every dot product and
// every accumulation in f64 (the score and score_grad regions are f32 code
// and run in f32). No N x N buffer: each row's D_i = dO_i . O_i first, then
// each key's contribution to dq, dk, dv and the capture gradients.
//
//===----------------------------------------------------------------------===//

#include "attnc/Transforms/AttnLowering.h"
#include "attnc/Transforms/GradLowering.h"

#include "mlir/Dialect/MemRef/IR/MemRef.h"

#include <limits>

using namespace mlir;
using namespace mlir::attn;
using arith::CmpFPredicate;

namespace {
/// Emits the reference backward of one op.
class ReferenceGradEmitter {
public:
  ReferenceGradEmitter(AttentionGradOp op, ImplicitLocOpBuilder &b)
      : op(op), b(b), e(b) {}
  void emit();

private:
  Value load64(Value buf, ValueRange idx) {
    Value x = memref::LoadOp::create(b, buf, idx);
    return x.getType() == f64 ? x : arith::ExtFOp::create(b, f64, x);
  }
  void accumulate(Value buf, ValueRange idx, Value x) {
    Value old = memref::LoadOp::create(b, buf, idx);
    memref::StoreOp::create(b, e.addf(old, x), buf, idx);
  }
  /// sum_d x[xi..., d] * y[yi..., d] in f64 over [0, n).
  Value dot(Value x, ValueRange xi, Value y, ValueRange yi, int64_t n);
  void key(Value bi, Value h, Value hk, Value i, Value j, Value lse,
           Value rowD);

  AttentionGradOp op;
  ImplicitLocOpBuilder &b;
  Emitter e;
  GradBuffers gb;
  Type f64;
  Value c0, c1, scale64;
};
} // namespace

Value ReferenceGradEmitter::dot(Value x, ValueRange xi, Value y, ValueRange yi,
                                int64_t n) {
  Value zero = arith::ConstantOp::create(b, b.getF64FloatAttr(0.0));
  return e.loop(c0, e.idx(n), c1, {zero},
                [&](Value d, ValueRange acc) -> SmallVector<Value> {
                  SmallVector<Value> a(xi), c(yi);
                  a.push_back(d);
                  c.push_back(d);
                  return {e.addf(acc[0], e.mulf(load64(x, a), load64(y, c)))};
                })[0];
}

void ReferenceGradEmitter::key(Value bi, Value h, Value hk, Value i, Value j,
                               Value lse, Value rowD) {
  Value s64 = e.mulf(dot(gb.q, {bi, h, i}, gb.k, {bi, hk, j}, gb.d), scale64);
  Value s = arith::TruncFOp::create(b, b.getF32Type(), s64);
  Value sOut = s;
  Value pos = queryPosition(e, op, i, gb.nq, gb.nk);
  if (op.hasScoreRegion())
    sOut = e.inlineRegion(op.getScore(), {s, bi, h, pos, j})[0];
  Value p =
      math::ExpOp::create(b, e.subf(arith::ExtFOp::create(b, f64, sOut), lse));
  Value zero = arith::ConstantOp::create(b, b.getF64FloatAttr(0.0));
  if (op.hasMaskRegion()) {
    Value keep = e.inlineRegion(op.getMask(), {bi, h, pos, j})[0];
    p = e.select(keep, p, zero);
  }
  // Masked keys (p = 0) contribute nothing; their score derivative may not
  // even be finite.
  e.ifThen(e.cmpf(CmpFPredicate::OGT, p, zero), [&] {
    Value dp = dot(gb.dO, {bi, h, i}, gb.v, {bi, hk, j}, gb.dv);
    Value dsOut = e.mulf(p, e.subf(dp, rowD));
    Value ds = chainScore(e, op, gb, dsOut, s, bi, h, pos, j);
    Value dsScaled = e.mulf(ds, scale64);
    e.loop(c0, e.idx(gb.d), [&](Value d) {
      accumulate(gb.dq, {bi, h, i, d},
                 e.mulf(dsScaled, load64(gb.k, {bi, hk, j, d})));
      accumulate(gb.dk, {bi, hk, j, d},
                 e.mulf(dsScaled, load64(gb.q, {bi, h, i, d})));
    });
    e.loop(c0, e.idx(gb.dv), [&](Value d) {
      accumulate(gb.dvAcc, {bi, hk, j, d},
                 e.mulf(p, load64(gb.dO, {bi, h, i, d})));
    });
  });
}

void ReferenceGradEmitter::emit() {
  f64 = b.getF64Type();
  gb = makeGradBuffers(e, op, f64);
  c0 = e.idx(0);
  c1 = e.idx(1);
  scale64 = arith::ConstantOp::create(
      b, b.getF64FloatAttr(double(op.getEffectiveScale())));
  Value negInf = arith::ConstantOp::create(
      b, b.getF64FloatAttr(-std::numeric_limits<double>::infinity()));
  Value group = e.idx(gb.hq / gb.hkv);
  e.loop(c0, gb.batch, [&](Value bi) {
    e.loop(c0, e.idx(gb.hq), [&](Value h) {
      Value hk = e.divi(h, group);
      e.loop(c0, gb.nq, [&](Value i) {
        Value lse = load64(gb.lse, {bi, h, i});
        // A row with no visible key (lse = -inf) has zero gradients.
        e.ifThen(e.cmpf(CmpFPredicate::ONE, lse, negInf), [&] {
          Value rowD = dot(gb.dO, {bi, h, i}, gb.o, {bi, h, i}, gb.dv);
          // A loss reading lse: dS = P (dP - D + dLSE).
          if (gb.dLse)
            rowD = e.subf(rowD, load64(gb.dLse, {bi, h, i}));
          e.loop(c0, gb.nk, [&](Value j) { key(bi, h, hk, i, j, lse, rowD); });
        });
      });
    });
  });
  finishGrad(e, op, gb);
}

LogicalResult mlir::attn::lowerAttentionGradToReference(AttentionGradOp op) {
  ImplicitLocOpBuilder b(op.getLoc(), op);
  ReferenceGradEmitter(op, b).emit();
  return success();
}
