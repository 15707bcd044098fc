//===- GradLowering.h - shared parts of the attention backward -*- C++ -*-===//
//
// Part of attnc. The buffers of an attn.attention_grad and the per-element
// chain rule that its naive (Reference) and tiled (CPU) lowerings share;
// accumulator helpers that the linear backward uses too.
//
//===----------------------------------------------------------------------===//
#ifndef ATTNC_TRANSFORMS_GRADLOWERING_H
#define ATTNC_TRANSFORMS_GRADLOWERING_H

#include "attnc/Transforms/LoweringUtils.h"

namespace mlir::attn {

/// Memref views of the operands of an attn.attention_grad and zeroed
/// accumulators (of `acc`, f32 or f64) for its results.
struct GradBuffers {
  Value q, k, v, o, lse, dO;
  /// The gradient of lse ([B, Hq, Nq] f32), null without one.
  Value dLse;
  Value batch, nq, nk;
  int64_t hq = 0, hkv = 0, d = 0, dv = 0;
  Type acc;
  /// Accumulators of dq [B, Hq, Nq, D], dk [B, Hkv, Nk, D], dv [B, Hkv,
  /// Nk, Dv] and of each capture gradient (the capture's shape).
  Value dq, dk, dvAcc;
  SmallVector<Value> captureGrads;
  /// For each capture operand: its gradient's position in captureGrads,
  /// or -1.
  SmallVector<int> gradOfCapture;
};

/// Buffers of `op` with zeroed accumulators of type `acc`.
GradBuffers makeGradBuffers(Emitter &e, AttentionGradOp op, Type acc);
/// Converts the accumulators to the result types and replaces `op`.
void finishGrad(Emitter &e, AttentionGradOp op, const GradBuffers &gb);
/// A zeroed buffer of `shape` with elements `acc`; `dims` holds a size
/// for each dynamic dim (null for the static ones).
Value zeroedBuffer(Emitter &e, ArrayRef<int64_t> shape, Type acc,
                   ArrayRef<Value> dims);
/// A tensor of `tensorType` holding accumulator `acc` converted to its
/// elements (f64 to bf16/f16 through f32); `acc` is deallocated.
Value convertBufferTo(Emitter &e, Value acc, Type tensorType);
/// Runs `body` on every index of `buf` (a nest of scf.for).
void forEachIndex(Emitter &e, Value buf,
                  const std::function<void(ValueRange)> &body);

/// At one element with dL/dS = `dsOut` (type `gb.acc`, S the score
/// region's output): inlines `score_grad` at (s, b, h, i, j), adds each
/// site's contribution into its capture gradient, and returns dL/ds.
Value chainScore(Emitter &e, AttentionGradOp op, const GradBuffers &gb,
                 Value dsOut, Value s, Value bi, Value h, Value i, Value j);

} // namespace mlir::attn

#endif // ATTNC_TRANSFORMS_GRADLOWERING_H
