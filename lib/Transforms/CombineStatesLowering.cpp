//===- CombineStatesLowering.cpp - attn.combine_states as loops
//------------===//
//
// Part of attnc. LASP-2's state combine on the CPU: for every (b, h, f, e)
// a Horner sweep over the ranks before (prefix) or after (suffix) `rank`,
// acc = exp(T_j) * acc + states[j], in f32. W is small (the world size),
// so one scalar loop nest serves the reference and the tiled pipelines.
//
//===----------------------------------------------------------------------===//

#include "attnc/Transforms/AttnLowering.h"
#include "attnc/Transforms/LoweringUtils.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"

using namespace mlir;
using namespace mlir::attn;

namespace {
/// The loop nest of one attn.combine_states.
struct CombineLowering {
  CombineStatesOp op;
  ImplicitLocOpBuilder &b;
  Emitter e;
  Value states, decays, c0, c1;
  bool perFeature;

  CombineLowering(CombineStatesOp op, ImplicitLocOpBuilder &b)
      : op(op), b(b), e(b),
        perFeature(
            cast<RankedTensorType>(op.getLogDecays().getType()).getRank() ==
            4) {}

  /// The rank visited at step `i` of the sweep and the number of steps:
  /// prefix j = i for i < min(rank, W); suffix j = W-1-i for i < W-1-rank.
  std::pair<Value, Value> steps(Value w, Value rank) {
    if (op.getKind() == StateCombine::prefix)
      return {Value(), e.mini(rank, w)};
    Value after = e.subi(e.subi(w, c1), rank);
    Value some = e.cmpi(arith::CmpIPredicate::sgt, after, c0);
    return {w, e.select(some, after, c0)};
  }

  LogicalResult lower() {
    states = e.toBuffer(op.getStates());
    decays = e.toBuffer(op.getLogDecays());
    c0 = e.idx(0);
    c1 = e.idx(1);
    SmallVector<Value> dims;
    for (int64_t i = 1; i < 5; ++i)
      dims.push_back(e.dim(states, i));
    Value w = e.dim(states, 0);
    auto [last, count] = steps(w, op.getRank());
    Value out = e.allocLike(op.getResult().getType(), dims);
    e.loop(c0, dims[0], [&](Value bi) {
      e.loop(c0, dims[1], [&](Value hi) {
        e.loop(c0, dims[2], [&](Value fi) {
          e.loop(c0, dims[3], [&](Value ei) {
            Value acc = e.loop(
                c0, count, c1, {e.f32(0.0)}, [&](Value i, ValueRange it) {
                  Value j = last ? e.subi(e.subi(last, c1), i) : i;
                  return SmallVector<Value>{step(it[0], j, bi, hi, fi, ei)};
                })[0];
            e.storeF32(acc, out, {bi, hi, fi, ei});
          });
        });
      });
    });
    op.replaceAllUsesWith(e.toTensor(out, op.getResult().getType()));
    op.erase();
    return success();
  }

  /// acc * exp(T_j) + states[j] at (b, h, f, e).
  Value step(Value acc, Value j, Value bi, Value hi, Value fi, Value ei) {
    SmallVector<Value> at = {j, bi, hi};
    if (perFeature)
      at.push_back(fi);
    Value decay = e.exp(e.loadF32(decays, at));
    return e.addf(e.mulf(acc, decay), e.loadF32(states, {j, bi, hi, fi, ei}));
  }
};
} // namespace

LogicalResult mlir::attn::lowerCombineStates(CombineStatesOp op) {
  ImplicitLocOpBuilder b(op.getLoc(), op);
  return CombineLowering(op, b).lower();
}
