//===- AttnLowering.h - entry points of the attn lowerings --------*- C++
//-*-===//
#ifndef ATTNC_TRANSFORMS_ATTNLOWERING_H
#define ATTNC_TRANSFORMS_ATTNLOWERING_H

#include "attnc/Transforms/LoweringUtils.h"

namespace mlir::attn {

/// Memref views of an attention op's operands and its allocated results.
struct AttentionBuffers {
  Value q, k, v, o, lse;
  Value batch, nq, nk;
  int64_t hq, hkv, d, dv;
};

/// Converts q/k/v to buffers and allocates o (and lse).
AttentionBuffers makeAttentionBuffers(Emitter &e, AttentionOp op);
/// Replaces op's results with tensors of the filled buffers.
void finishAttention(Emitter &e, AttentionOp op, const AttentionBuffers &io);

/// Naive lowerings (the oracle).
LogicalResult lowerAttentionToReference(AttentionOp op);
LogicalResult lowerLinearToReference(Operation *op);
/// Tiled (FlashAttention) lowering of a scheduled, mask-analysed op.
LogicalResult lowerAttentionTiled(AttentionOp op);
/// Recurrent (token by token) lowering of linear attention / scans.
LogicalResult lowerLinearRecurrent(Operation *op);
/// Chunked lowering (chunk length from the op's schedule, default 64).
LogicalResult lowerLinearChunked(Operation *op);

} // namespace mlir::attn

#endif // ATTNC_TRANSFORMS_ATTNLOWERING_H
