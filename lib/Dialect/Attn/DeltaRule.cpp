//===- DeltaRule.cpp - attn.delta_rule and attn.delta_rule_grad -----------===//
//
// Part of attnc. The verifiers of the delta-rule recurrence (DeltaNet, Gated
// DeltaNet) and of its backward: q, k [B, H, N, D], v and o [B, HV, N, Dv]
// (HV a multiple of H: grouped value heads), beta [B, HV, N], log-gates
// [B, HV, N] or [HV], states [B, HV, D, Dv] f32.
//
//===----------------------------------------------------------------------===//

#include "attnc/Dialect/Attn/Attn.h"

using namespace mlir;
using namespace mlir::attn;

namespace {
/// Whether static sizes `a` and `b` can be equal.
bool compatible(int64_t a, int64_t b) {
  return ShapedType::isDynamic(a) || ShapedType::isDynamic(b) || a == b;
}

/// The operands of a delta-rule op, checked by `verifyDeltaOperands`.
struct DeltaOperands {
  Value q, k, v, beta, decay, init;
  float scale;
};

template <typename OpT> DeltaOperands operandsOf(OpT op) {
  return {op.getQ(),
          op.getK(),
          op.getV(),
          op.getBeta(),
          op.getDecay(),
          op.getInitialState(),
          op.getEffectiveScale()};
}

RankedTensorType tensorOf(Value v) {
  return cast<RankedTensorType>(v.getType());
}

/// Every dim of `t` against `expected` (kDynamic entries match anything
/// dynamic or static); names the first mismatch.
LogicalResult checkShape(Operation *op, StringRef what, RankedTensorType t,
                         ArrayRef<int64_t> expected, StringRef layout) {
  if (t.getRank() != static_cast<int64_t>(expected.size()))
    return op->emitOpError() << what << " must be " << layout << ", got " << t;
  for (auto [i, want] : llvm::enumerate(expected))
    if (!compatible(t.getDimSize(i), want))
      return op->emitOpError() << what << " " << t << " does not match "
                               << layout << " in dimension " << i;
  return success();
}

/// A state: f32 [B, H, D, Dv] for q [B, H, N, D] and v [B, H, N, Dv].
LogicalResult checkState(Operation *op, StringRef what, RankedTensorType s,
                         RankedTensorType q, RankedTensorType v) {
  if (!s.getElementType().isF32())
    return op->emitOpError() << what << " must be f32, got " << s;
  return checkShape(
      op, what, s,
      {q.getDimSize(0), v.getDimSize(1), q.getDimSize(3), v.getDimSize(3)},
      "[B, HV, D, Dv]");
}

LogicalResult verifyDeltaOperands(Operation *op, const DeltaOperands &x) {
  RankedTensorType q = tensorOf(x.q), k = tensorOf(x.k), v = tensorOf(x.v);
  for (auto [what, t] : {std::pair<StringRef, RankedTensorType>{"q", q},
                         {"k", k},
                         {"v", v},
                         {"beta", tensorOf(x.beta)}})
    if (!isa<FloatType>(t.getElementType()))
      return op->emitOpError() << what << " must hold floats, got " << t;
  if (q.getRank() != 4)
    return op->emitOpError() << "q must be [B, H, N, D], got " << q;
  int64_t b = q.getDimSize(0), h = q.getDimSize(1), n = q.getDimSize(2),
          d = q.getDimSize(3);
  if (ShapedType::isDynamic(h) || ShapedType::isDynamic(d))
    return op->emitOpError()
           << "needs static heads and head dim in q, got " << q;
  if (failed(checkShape(op, "k", k, {b, h, n, d}, "[B, H, N, D] like q")))
    return failure();
  if (failed(checkShape(op, "v", v,
                        {b, ShapedType::kDynamic, n, ShapedType::kDynamic},
                        "[B, HV, N, Dv]")))
    return failure();
  int64_t hv = v.getDimSize(1), dv = v.getDimSize(3);
  if (ShapedType::isDynamic(hv) || ShapedType::isDynamic(dv))
    return op->emitOpError()
           << "needs static value heads and value dim in v, got " << v;
  if (hv % h != 0)
    return op->emitOpError()
           << "has " << hv << " value heads (v), not a multiple of the " << h
           << " heads of q and k";
  if (failed(
          checkShape(op, "beta", tensorOf(x.beta), {b, hv, n}, "[B, HV, N]")))
    return failure();
  if (x.decay) {
    RankedTensorType g = tensorOf(x.decay);
    if (!g.getElementType().isF32())
      return op->emitOpError() << "decay must be f32 log-gates, got " << g;
    if (g.getRank() == 1
            ? failed(checkShape(op, "decay", g, {hv}, "[HV]"))
            : failed(checkShape(op, "decay", g, {b, hv, n},
                                "[HV] (per head) or [B, HV, N] (per token)")))
      return failure();
  }
  if (x.init && failed(checkState(op, "initial_state", tensorOf(x.init), q, v)))
    return failure();
  if (!std::isfinite(x.scale))
    return op->emitOpError() << "scale must be finite, got " << x.scale;
  return success();
}

/// Result `r` must have exactly `want`'s type (a gradient of an operand,
/// or the output).
LogicalResult checkSameType(Operation *op, StringRef what, Value r, Type want) {
  if (r.getType() != want)
    return op->emitOpError()
           << what << " must have type " << want << ", got " << r.getType();
  return success();
}
} // namespace

LogicalResult DeltaRuleOp::verify() {
  if (failed(verifyDeltaOperands(*this, operandsOf(*this))))
    return failure();
  RankedTensorType q = tensorOf(getQ()), v = tensorOf(getV());
  auto oType = RankedTensorType::get(
      {q.getDimSize(0), v.getDimSize(1), q.getDimSize(2), v.getDimSize(3)},
      v.getElementType());
  RankedTensorType o = tensorOf(getO());
  if (o.getElementType() != v.getElementType())
    return emitOpError() << "o must have v's element type "
                         << v.getElementType() << ", got " << o;
  if (failed(checkShape(*this, "o", o, oType.getShape(), "[B, HV, N, Dv]")))
    return failure();
  if (Value fin = getFinalState())
    return checkState(*this, "final_state", tensorOf(fin), q, v);
  return success();
}

LogicalResult DeltaRuleGradOp::verify() {
  if (failed(verifyDeltaOperands(*this, operandsOf(*this))))
    return failure();
  RankedTensorType q = tensorOf(getQ()), v = tensorOf(getV());
  if (failed(checkShape(
          *this, "d_o", tensorOf(getDO()),
          {q.getDimSize(0), v.getDimSize(1), q.getDimSize(2), v.getDimSize(3)},
          "[B, HV, N, Dv]")))
    return failure();
  if (Value ds = getDFinalState())
    if (failed(checkState(*this, "final_state_grad", tensorOf(ds), q, v)))
      return failure();
  if (bool(getDDecay()) != bool(getDecay()))
    return emitOpError() << "has a decay gradient result exactly when it has "
                            "a decay operand";
  if (bool(getDInitialState()) != bool(getInitialState()))
    return emitOpError() << "has an initial-state gradient result exactly "
                            "when it has an initial_state operand";
  for (auto [what, r, operand] :
       {std::tuple<StringRef, Value, Value>{"dq", getDq(), getQ()},
        {"dk", getDk(), getK()},
        {"dv", getDv(), getV()},
        {"d_beta", getDBeta(), getBeta()},
        {"d_decay", getDDecay(), getDecay()},
        {"d_initial_state", getDInitialState(), getInitialState()}})
    if (r && failed(checkSameType(*this, what, r, operand.getType())))
      return failure();
  return success();
}
