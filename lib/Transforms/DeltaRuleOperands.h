//===- DeltaRuleOperands.h - what the delta-rule lowerings read --*- C++
//-*-===//
//
// Part of attnc. The sizes and operand buffers of an attn.delta_rule or
// attn.delta_rule_grad that the forward (DeltaRule.cpp) and the backward
// (DeltaRuleBackward.cpp) lowerings share: value heads and q/k heads (GVA),
// the q/k head of a value head, and the log-gate of a token.
//
//===----------------------------------------------------------------------===//
#ifndef ATTNC_LIB_TRANSFORMS_DELTARULEOPERANDS_H
#define ATTNC_LIB_TRANSFORMS_DELTARULEOPERANDS_H

#include "attnc/Transforms/LoweringUtils.h"

#include "mlir/Dialect/MemRef/IR/MemRef.h"

namespace mlir::attn {

struct DeltaRuleOperands {
  /// Memref views of q, k, v, beta and (null when absent) the decay and
  /// the initial state.
  Value q, k, v, beta, decay, init;
  /// The batch and sequence lengths (index).
  Value batch, n;
  /// h: value heads (of v, beta, gates, states, o); hq: heads of q and k,
  /// each shared by h / hq value heads.
  int64_t h = 0, hq = 0, d = 0, dv = 0;

  /// Reads the sizes of `op` and converts its operands to buffers.
  template <typename OpT> void readOperands(Emitter &e, OpT op) {
    auto qt = cast<RankedTensorType>(op.getQ().getType());
    auto vt = cast<RankedTensorType>(op.getV().getType());
    hq = qt.getDimSize(1);
    d = qt.getDimSize(3);
    h = vt.getDimSize(1);
    dv = vt.getDimSize(3);
    q = e.toBuffer(op.getQ());
    k = e.toBuffer(op.getK());
    v = e.toBuffer(op.getV());
    beta = e.toBuffer(op.getBeta());
    if (op.getDecay())
      decay = e.toBuffer(op.getDecay());
    if (op.getInitialState())
      init = e.toBuffer(op.getInitialState());
    batch = e.dim(q, 0);
    n = e.dim(q, 2);
  }
  /// The q/k head of value head `hi`.
  Value qkHeadOf(Emitter &e, Value hi) const {
    return e.divi(hi, e.idx(h / hq));
  }
  /// The stored (f32) log-gate of token t of value head hi, per head or
  /// per token; null without a decay.
  Value logGate(Emitter &e, Value bi, Value hi, Value t) const {
    if (!decay)
      return Value();
    if (cast<MemRefType>(decay.getType()).getRank() == 1)
      return memref::LoadOp::create(e.b, decay, ValueRange{hi});
    return memref::LoadOp::create(e.b, decay, ValueRange{bi, hi, t});
  }
};

} // namespace mlir::attn

#endif // ATTNC_LIB_TRANSFORMS_DELTARULEOPERANDS_H
