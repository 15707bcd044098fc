//===- GradKernel.h - shared parts of the attention backward kernels -*- C++
//-*-===//
//
// Part of attnc. Internal to lib/Conversion. The backward of an
// attn.attention_grad on mma.sync m16n8k16 (AttnGradToGPU.cpp builds them):
//  - the dq kernel (GradDqKernel.cpp): one block per (q tile, Hq, B); it
//    also writes D = rowsum(dO * o) of its rows for the dkdv kernel and
//    accumulates the capture gradients (atomics);
//  - the dkdv kernel (GradDkDvKernel.cpp): one block per (kv tile, Hkv, B),
//    looping over the group's query heads and the q tiles the mask leaves
//    non-empty (GQA sums in registers: deterministic).
// Both recompute P = exp(S - lse) tile by tile from the forward's regions:
// the mask analysis of a detached forward view of the op classifies tiles
// exactly as the forward does.
//
//===----------------------------------------------------------------------===//
#ifndef ATTNC_LIB_CONVERSION_GRADKERNEL_H
#define ATTNC_LIB_CONVERSION_GRADKERNEL_H

#include "AttnKernel.h"

namespace mlir::attn::detail {

/// Everything about the backward kernels decided before any IR is emitted.
struct GradKernelConfig {
  /// The forward view's configuration (op: a detached attn.attention with
  /// the grad op's score and mask regions; bq and warps: the dq kernel's).
  AttnKernelConfig fwd;
  mutable AttentionGradOp grad;
  /// dq kernel: kv rows staged per step. dkdv kernel: kv rows of a block
  /// (16 per warp) and q rows staged per step.
  int64_t kvStep = 0, bkv = 0, qStep = 0;
  /// Shared memory of each kernel (static).
  int64_t dqSharedBytes = 0, dkdvSharedBytes = 0;
  /// Per capture of the kernel (fwd.captures): its gradient's position, or
  /// -1.
  SmallVector<int> gradOfCapture;
  /// The kernel's capture index of each op capture.
  SmallVector<unsigned> kernelCaptureOf;

  int64_t dkdvThreads() const { return bkv / 16 * 32; }
  int64_t numGrads() const {
    return llvm::count_if(gradOfCapture, [](int g) { return g >= 0; });
  }
};

/// The arguments of both backward kernels (docs/backward.md).
struct GradKernelArgs {
  StridedTensor q, k, v, o, dO, dq, dk, dv;
  Value lse, delta;
  Value batch, nq, nk;
  /// Captured tensor (the op's) -> kernel memref; gradients in order.
  IRMapping capMap;
  SmallVector<Value> captureGrads;
};

GradKernelArgs bindGradArgs(const GradKernelConfig &cfg, Block &entry);

/// The forward kernels' view of the backward's arguments (the shared
/// phases read q, k, v, the lengths and the captures through it).
AttnKernelArgs forwardArgsOf(const GradKernelArgs &g);

/// An element's query row and key column.
struct ElementPos {
  Value qi, kj;
};

/// Per-element recomputation and warp-level MMA helpers of both kernels.
class GradKernelBase : public AttnKernelBase {
public:
  /// `ids.h` is the query head the element helpers use.
  GradKernelBase(const GradKernelConfig &gcfg, ImplicitLocOpBuilder &b,
                 const GradKernelArgs &gargs, AttnThreadIds ids,
                 int64_t threads)
      : AttnKernelBase(gcfg.fwd, b, forwardArgsOf(gargs), ids), gcfg(gcfg),
        grad(gcfg.grad), gargs(gargs), threads(threads) {}

protected:
  const GradKernelConfig &gcfg;
  AttentionGradOp grad;
  const GradKernelArgs &gargs;
  /// Threads of the block.
  const int64_t threads;

  /// This thread's accumulator rows (16 per warp) and first column.
  AccLayout accLayout();
  /// A fragments (16 rows x `cols`) of this warp's rows [row0, row0 + 16)
  /// of a shared tile.
  SmallVector<SmallVector<Value>> loadA(Value smem, Value row0, int64_t cols);
  /// Rows [firstRow, firstRow + rows) of `src` at `head` staged through
  /// `smem` (`stage` rows at a time) into this warp's A fragments; the warp
  /// owns rows [firstRow + 16 warp, +16).
  SmallVector<SmallVector<Value>> loadRowFragments(const StridedTensor &src,
                                                   Value head, Value firstRow,
                                                   Value rowLimit, int64_t rows,
                                                   int64_t width, Value smem,
                                                   int64_t stage);
  /// Issues the cp.async copies of rows [firstRow, firstRow + rows) of
  /// `src` (`width` columns) into `smem`, zero past `rowLimit`, as one
  /// commit group.
  void stageRows(const StridedTensor &src, Value head, Value firstRow,
                 Value rowLimit, int64_t rows, int64_t width, Value smem);
  /// C[16 x n] = A[16 x k] X^T, X = rows [0, n) x cols [0, k) of `smem`.
  SmallVector<Frag> mulBt(ArrayRef<SmallVector<Value>> a, Value smem, int64_t n,
                          int64_t k);
  /// acc[16 x n] += A X, A given as C-layout values of 16 x k, X = rows
  /// [0, k) x cols [0, n) of `smem`.
  void mulB(SmallVector<Frag> &acc, ArrayRef<Value> aC, Value smem, int64_t k,
            int64_t n);
  /// The class of tile [i0, i1] x [j0, j1]: 2 without a mask, 1 for masks
  /// on captured data (evaluated per element), else the forward's interval
  /// classification.
  Value tileClass(Value i0, Value i1, Value j0, Value j1);
  /// S log2 e of each raw dot product (S: the score region's value of the
  /// scaled product), -inf where `checkMask` and the element is masked or
  /// past Nq / Nk.
  SmallVector<Value> scaledScores(ArrayRef<Value> raw,
                                  llvm::function_ref<ElementPos(int64_t)> pos,
                                  Value checkMask);
  /// dL/ds at one element from dL/dS = p (dp - delta), through score_grad;
  /// with `captureGrads`, each site's contribution is added to its capture
  /// gradient by an atomic. 0 where p is 0.
  Value scoreGrad(Value raw, Value p, Value dp, Value delta, ElementPos pos,
                  bool captureGrads);
  /// The [B, Hq, Nq] f32 value of row `qi` (head `h`) of `mem`; row 0's
  /// past Nq.
  Value rowValue(Value mem, Value qi, Value h);
  /// lse * log2 e of query row `qi`, +inf past Nq or for a row with no
  /// unmasked key (lse = -inf): its probabilities are then 0.
  Value lse2Of(Value qi, Value h);
  /// D of query row `qi` from the workspace; 0 past Nq.
  Value deltaOf(Value qi, Value h);
  /// Stores this warp's 16 x (8 acc.size()) accumulators times `scale`
  /// (rows `rowBase` + layout rows) into `dst` at `head`, rows below
  /// `limit`.
  void storeRows(const StridedTensor &dst, Value head, Value rowBase,
                 Value limit, ArrayRef<Frag> acc, double scale,
                 const AccLayout &layout);
};

LogicalResult emitGradDqKernel(const GradKernelConfig &cfg,
                               gpu::GPUFuncOp func);
LogicalResult emitGradDkDvKernel(const GradKernelConfig &cfg,
                                 gpu::GPUFuncOp func);

} // namespace mlir::attn::detail

#endif // ATTNC_LIB_CONVERSION_GRADKERNEL_H
