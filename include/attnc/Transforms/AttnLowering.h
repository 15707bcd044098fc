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
  /// A paged op's block table and page size (null and 0 otherwise).
  Value table;
  int64_t pageSize = 0;
  /// The per-head sink logits [Hq] (null: no sinks).
  Value sinks;
  /// Per-sequence key counts [B] (null: every sequence has nk keys).
  Value kvLens;
  /// Packed sequences: the cumulative query and key offsets [B + 1] (null
  /// otherwise); then `batch` is B and nq, nk the packed lengths.
  Value cuQ, cuK;

  /// The key count of batch `bi`: nk, or its clamped kv_lens entry.
  Value keysOf(Emitter &e, Operation *op, Value bi) const;

  /// Where sequence `bi` lies in q, k, v and o: its first query and key
  /// rows and their counts (rows 0.., nq and keysOf(bi) unless packed; the
  /// offsets clamped into the packed lengths when packed).
  struct Sequence {
    Value qStart, nq, kStart, nk;
  };
  Sequence sequence(Emitter &e, Operation *op, Value bi) const;
  /// The batch index of sequence `bi` in q, k, v, o and lse (0 when
  /// packed).
  Value storageBatch(Emitter &e, Value bi) const;

  /// The indices of column `col` of key `j` (batch `bi`, kv head `hk`) in
  /// k or v: [bi, hk, j, col], or in a page pool [table[bi, j / S], hk,
  /// j mod S, col].
  SmallVector<Value, 4> keyIndex(Emitter &e, Value bi, Value hk, Value j,
                                 Value col) const;
};

/// Converts q/k/v to buffers and allocates o (and lse); with packed
/// sequences, o is zeroed and lse set to -inf (rows outside every
/// sequence keep those).
AttentionBuffers makeAttentionBuffers(Emitter &e, AttentionOp op);
/// Replaces op's results with tensors of the filled buffers.
void finishAttention(Emitter &e, AttentionOp op, const AttentionBuffers &io);

/// How a linear op decays its state: not at all, per head (a constant), per
/// token (a scalar log-gate) or per token and key feature (GLA).
enum class LinearDecay { None, Head, Token, TokenDim };

/// The operands, regions and sizes of an attn.linear_attention or attn.scan
/// that its lowerings read (CPU: Linear.cpp; GPU: LinearToGPU.cpp).
struct LinearOpView {
  explicit LinearOpView(Operation *op);
  Operation *op;
  Value q, k, v, decay, init;
  /// Feature maps of q and k (null: identity); fk is fq unless the op has a
  /// separate key map.
  Region *fq = nullptr, *fk = nullptr;
  double scale = 1.0;
  bool normalize = false, causal = true, hasFinal = false;
  int64_t h = 0, hk = 0, d = 0, dv = 0, f = 0;
  LinearDecay kind = LinearDecay::None;
  /// The token order (null without one): scan position -> storage row.
  TokenOrderAttr order;
  SmallVector<Value> captures;
  Type elem;
};

/// The storage row of the token that the scan visits at position `pos` (a
/// token order folded into the addressing, on the CPU and the GPU): the
/// `review` tokens first, unchanged; then the grid with its dims nested as
/// `perm` says (perm[0] outermost), each digit of the grid step in scan
/// order (rem/div by the constant dim sizes, innermost first) times its
/// row-major storage stride; `pos` itself when `orderOn` (N == review +
/// product(grid)) is false, or without an order. Callers pass pos < N only,
/// so the outermost digit is the quotient left (no remainder taken).
Value tokenRow(ImplicitLocOpBuilder &b, Emitter &e, TokenOrderAttr order,
               Value orderOn, Value pos);

/// Naive lowerings (the oracle).
LogicalResult lowerAttentionToReference(AttentionOp op);
LogicalResult lowerLinearToReference(Operation *op);
/// Naive backward (f64 accumulation; the oracle of attn-run --backward).
LogicalResult lowerAttentionGradToReference(AttentionGradOp op);
/// Naive backward of linear attention and scans (f64, quadratic form).
LogicalResult lowerLinearGradToReference(LinearAttentionGradOp op);
/// Chunked backward of linear attention and scans (f64; chunks of `chunk`
/// tokens, states across chunks).
LogicalResult lowerLinearGradChunked(LinearAttentionGradOp op, int64_t chunk);
/// Tiled (FlashAttention-2) backward on the CPU: P recomputed per tile from
/// lse, empty tiles skipped through the forward's mask tile classes.
LogicalResult lowerAttentionGradTiled(AttentionGradOp op);
/// Tiled (FlashAttention) lowering of a scheduled, mask-analysed op.
LogicalResult lowerAttentionTiled(AttentionOp op);
/// Recurrent (token by token) lowering of linear attention / scans.
LogicalResult lowerLinearRecurrent(Operation *op);
/// Chunked lowering (chunk length from the op's schedule, default 64).
LogicalResult lowerLinearChunked(Operation *op);
/// The delta rule token by token (the oracle; attn-tile's recurrent form).
LogicalResult lowerDeltaRuleRecurrent(DeltaRuleOp op);
/// The delta rule in chunks (WY / UT form; chunk length from the op's
/// schedule, default 64).
LogicalResult lowerDeltaRuleChunked(DeltaRuleOp op);
/// The delta rule's backward: a reverse sweep with the states recomputed
/// from checkpoints every `chunk` tokens (f64; the reference takes 1, every
/// state kept).
LogicalResult lowerDeltaRuleGrad(DeltaRuleGradOp op, int64_t chunk);
/// The LASP-2 state combine (attn.combine_states) as loops over the ranks;
/// the same lowering serves the reference and the tiled pipelines.
LogicalResult lowerCombineStates(CombineStatesOp op);

} // namespace mlir::attn

#endif // ATTNC_TRANSFORMS_ATTNLOWERING_H
