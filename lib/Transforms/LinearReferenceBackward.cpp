//===- LinearReferenceBackward.cpp - naive attn.linear_attention_grad -----===//
//
// Part of attnc. The oracle of the linear backward: the quadratic form of
// the op's description, per (batch, head), in f64 (feature maps and their
// tangent maps are f32 code and run in f32). On top of LinearGradEmitter's
// shared parts: per query row t, z_t and dO_t . n_t over every key it sees
// (then dn_t, dz_t), and every visible pair (t, s) one by one. O(N^2 F)
// per head: for tests and checks, not for training.
//
//===----------------------------------------------------------------------===//

#include "LinearGradEmitter.h"

using namespace mlir;
using namespace mlir::attn;

namespace {
/// Every visible pair, one by one: O(N^2 F) per head.
class ReferenceLinearGrad : public LinearGradEmitter {
public:
  using LinearGradEmitter::LinearGradEmitter;

private:
  void pairsOfHead(Value bi, Value hi, Value hkv) override;
  /// z_t and dO_t . n_t over every key t sees.
  void rowGradients(Value bi, Value hi, Value hkv, Value t);
};
} // namespace

void ReferenceLinearGrad::rowGradients(Value bi, Value hi, Value hkv, Value t) {
  if (!normalize) {
    storeRowGradients(bi, hi, t, Value(), Value());
    return;
  }
  // z_t = sum_s A_ts and dO_t . n_t = sum_s A_ts (dO_t . v_s) (+ the
  // initial state's row, which the normalizer does not count).
  SmallVector<Value> acc =
      rowSums(bi, hi, hkv, t, c0, causal ? e.addi(t, c1) : n);
  Value don = acc[1];
  if (init)
    don = e.addf(don, initialStateRow(bi, hi, t));
  storeRowGradients(bi, hi, t, acc[0], don);
}

void ReferenceLinearGrad::pairsOfHead(Value bi, Value hi, Value hkv) {
  e.loop(c0, n, [&](Value t) { rowGradients(bi, hi, hkv, t); });
  e.loop(c0, n, [&](Value t) {
    e.loop(c0, causal ? e.addi(t, c1) : n,
           [&](Value s) { pair(hkv, bi, t, s); });
  });
}

LogicalResult mlir::attn::lowerLinearGradToReference(LinearAttentionGradOp op) {
  ImplicitLocOpBuilder b(op.getLoc(), op);
  LinearAttentionOp view = op.createForwardView();
  ReferenceLinearGrad(op, view, b).emit();
  view->erase();
  return success();
}
