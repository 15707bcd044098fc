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
  /// Shared-memory buffers of each kernel's tiles: 2 (the next tile is
  /// fetched while one is computed) where they fit in static shared memory.
  int64_t dqBuffers = 1, dkdvBuffers = 1;
  /// The dq kernel accumulates the capture gradients in shared memory
  /// (shared atomics, then one global atomic per nonzero element and
  /// block) when their shapes are static and they fit beside its tiles.
  bool sharedCaptureGrads = false;
  /// Masks on captured data: a block-map kernel (the forward's, on
  /// `mapCfg`'s mapQ x mapKv tiles, which divide both kernels' tiles)
  /// classifies the tiles first.
  bool useMap = false;
  AttnKernelConfig mapCfg;
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
  Value lse, delta, blockMap;
  Value batch, nq, nk;
  /// Captured tensor (the op's) -> kernel memref; gradients in order.
  IRMapping capMap;
  SmallVector<Value> captureGrads;
};

GradKernelArgs bindGradArgs(const GradKernelConfig &cfg, Block &entry);

/// C fragments as a flat list of values (loop-carried state) and back.
SmallVector<Value> flattenFrags(ArrayRef<Frag> frags);
SmallVector<Frag> unflattenFrags(ValueRange v, size_t from, int64_t n);

/// The forward kernels' view of the backward's arguments (the shared
/// phases read q, k, v, the lengths and the captures through it).
AttnKernelArgs forwardArgsOf(const GradKernelArgs &g);

/// One buffer of a shared-memory tile [buffers, rows, cols + 8].
struct SharedTile {
  Value mem, buf;
};

/// An element's query row and key column.
struct ElementPos {
  Value qi, kj;
};

/// The capture-gradient contributions of one tile, summed before they
/// reach memory: per site, a thread keeps a running sum while consecutive
/// elements of its tile hit the same gradient element (relative-position
/// buckets far from the diagonal, per-head slopes) and adds it with one
/// atomic when the element changes; at the end of the tile, if every lane
/// of the warp ends on the same element, the warp's sums are reduced by
/// shuffles into one atomic.
class SiteSums {
public:
  /// `lane`: this thread's lane in its warp.
  SiteSums(ImplicitLocOpBuilder &b, ArrayRef<Value> targets, Value lane);
  /// Element contribution `val` (if `live`) to gradient `grad` at `idx`.
  void add(unsigned grad, Value live, Value val, ValueRange idx);
  /// Flushes every running sum (at warp-uniform control flow).
  void finish();

private:
  struct Run {
    Value mem, acc, has;
    SmallVector<Value> idx;
  };
  ImplicitLocOpBuilder &b;
  Emitter e;
  Value lane;
  SmallVector<Run> runs;
  void atomicAdd(const Run &r, Value val, ValueRange idx);
};

/// Per-element recomputation and warp-level MMA helpers of both kernels.
class GradKernelBase : public AttnKernelBase {
public:
  /// `ids.h` is the query head the element helpers use.
  GradKernelBase(const GradKernelConfig &gcfg, ImplicitLocOpBuilder &b,
                 const GradKernelArgs &gargs, AttnThreadIds ids,
                 int64_t threads)
      : AttnKernelBase(gcfg.fwd, b, forwardArgsOf(gargs), ids), gcfg(gcfg),
        grad(gcfg.grad), gargs(gargs), threads(threads),
        gradTargets(gargs.captureGrads) {}

protected:
  const GradKernelConfig &gcfg;
  AttentionGradOp grad;
  const GradKernelArgs &gargs;
  /// Threads of the block.
  const int64_t threads;
  /// Where scoreGrad adds capture gradients: gargs.captureGrads or their
  /// shared-memory copies.
  SmallVector<Value> gradTargets;

  /// This thread's accumulator rows (16 per warp) and first column.
  AccLayout accLayout();
  /// Rows [firstRow, firstRow + rows) of `src` at `head` staged through
  /// `smem` (`stage` rows at a time) into this warp's A fragments; the warp
  /// owns rows [firstRow + 16 warp, +16).
  SmallVector<SmallVector<Value>>
  loadRowFragments(const StridedTensor &src, Value head, Value firstRow,
                   Value rowLimit, int64_t rows, int64_t width, SharedTile smem,
                   int64_t stage);
  /// Issues the cp.async copies of rows [firstRow, firstRow + rows) of
  /// `src` (`width` columns) into `smem`, zero past `rowLimit` (no
  /// commit).
  void stageRows(const StridedTensor &src, Value head, Value firstRow,
                 Value rowLimit, int64_t rows, int64_t width, SharedTile smem);
  /// C[16 x n] = A[16 x k] X^T, X = rows [0, n) x cols [0, k) of `smem`.
  SmallVector<Frag> mulBt(ArrayRef<SmallVector<Value>> a, SharedTile smem,
                          int64_t n, int64_t k);
  /// acc[16 x n] += A X, A given as C-layout values of 16 x k, X = rows
  /// [0, k) x cols [0, n) of `smem`.
  void mulB(SmallVector<Frag> &acc, ArrayRef<Value> aC, SharedTile smem,
            int64_t k, int64_t n);
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
  /// with `sums`, each site's contribution goes to its capture gradient.
  /// 0 where p is 0.
  Value scoreGrad(Value raw, Value p, Value dp, Value delta, ElementPos pos,
                  SiteSums *sums);
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
