//===- GpuKernelEmitter.h - shared state of the attention GPU kernels ----===//
//
// Part of attnc. Internal to lib/Conversion: the emitter of the mma.sync
// kernel (AttnToGPU.cpp) and of the sm_90a wgmma kernel (AttnToGPUSm90.cpp),
// which share the region inlining, tile classification and block map.
//
//===----------------------------------------------------------------------===//
#ifndef ATTNC_LIB_CONVERSION_GPUKERNELEMITTER_H
#define ATTNC_LIB_CONVERSION_GPUKERNELEMITTER_H

#include "attnc/Analysis/MaskAnalysis.h"
#include "attnc/Conversion/AttnToGPU.h"
#include "attnc/Transforms/LoweringUtils.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/LLVMIR/NVVMDialect.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/IR/IRMapping.h"
#include "mlir/IR/ImplicitLocOpBuilder.h"

#include <array>

namespace mlir::attn::detail {

/// Region ops the GPU code generation has no lowering for (on the CPU they
/// become function calls): a clear error instead of a failure deep in the
/// NVVM translation.
inline LogicalResult checkGpuRegionOps(Operation *attnOp) {
  WalkResult r =
      attnOp->walk([&](Operation *inner) {
        if (inner == attnOp ||
            !isa<math::IPowIOp, math::FPowIOp, math::CountLeadingZerosOp,
                 math::CountTrailingZerosOp, math::CtPopOp, arith::RemFOp>(
                inner))
          return WalkResult::advance();
        auto diag = attnOp->emitOpError()
                    << "'" << inner->getName()
                    << "' in a region has no GPU lowering";
        if (isa<math::IPowIOp, math::FPowIOp>(inner))
          diag << "; write the power as multiplications (or math.powf)";
        return WalkResult::interrupt();
      });
  return failure(r.wasInterrupted());
}

/// `<instr> $0, $1;` on one f32 (inline PTX), e.g. "ex2.approx.ftz.f32".
inline Value ptxUnaryF32(ImplicitLocOpBuilder &b, StringRef instr, Value x) {
  auto op = NVVM::InlinePtxOp::create(b, TypeRange{b.getF32Type()},
                                      ValueRange{x}, ValueRange{},
                                      (instr + " $0, $1;").str(), Value());
  return op->getResult(0);
}
/// 2^x with the hardware approximation (all GPU kernels' exponentials).
inline Value ex2Approx(ImplicitLocOpBuilder &b, Value x) {
  return ptxUnaryF32(b, "ex2.approx.ftz.f32", x);
}

/// Four f32 accumulator values of one m16n8 C fragment.
using Frag = std::array<Value, 4>;

class GpuKernelEmitter {
public:
  GpuKernelEmitter(AttentionOp op, ImplicitLocOpBuilder &b)
      : op(op), b(b), e(b), ms(analyzeMaskStructure(op)) {}

  LogicalResult emit(gpu::GPUFuncOp func);

  AttentionOp op;
  ImplicitLocOpBuilder &b;
  Emitter e;
  MaskStructure ms;
  int64_t d = 0, dv = 0, hq = 0, hkv = 0, bq = 0, bkv = 0, warps = 0;
  Type elem;
  bool bf16 = false;

  Value q, k, v, o, lse;
  /// The tensors the kernel takes after q, k, v, o and lse, in order: the
  /// enclosing function's capture arguments, including those the regions no
  /// longer use (canonicalization drops them from the op; the kernel keeps
  /// the function's signature and ignores them), or else the op's captures.
  SmallVector<Value> captures;
  IRMapping capMap; // captured tensor -> kernel memref
  Value batch, nq, nk;
  Value qs[3], ks[3], vs[3], os[3];
  Value sK, sV;
  Value tid, lane, warp, bi, h, hk, i0;
  Value c0, c1;
  Value negInf;

  Value cIdx(int64_t x) { return e.idx(x); }
  Value ex2(Value x) { return ex2Approx(b, x); }
  Value lg2(Value x) { return ptxUnaryF32(b, "lg2.approx.ftz.f32", x); }
  /// Waits until at most `n` cp.async groups are in flight.
  void waitGroups(int32_t n) {
    NVVM::CpAsyncWaitGroupOp::create(b, b.getI32IntegerAttr(n));
  }
  Value shflXor(Value x, int32_t mask) {
    return gpu::ShuffleOp::create(b, x, mask, 32, gpu::ShuffleMode::XOR)
        .getShuffleResult();
  }
  /// Global element offset of (row, col) of a [B, H, N, D] view.
  Value gOffset(Value *strides, Value hIdx, Value row, Value col) {
    return e.addi(e.addi(e.muli(bi, strides[0]), e.muli(hIdx, strides[1])),
                  e.addi(e.muli(row, strides[2]), col));
  }
  /// Issues cp.async copies of rows [r0, r0 + rows) (zero-filled from row n
  /// on) of a [B, H, N, width] tensor into smem[rows][width(+pad)], as one
  /// commit group.
  void stageTile(Value gmem, Value *strides, Value hIdx, Value r0, Value n,
                 Value smem, int64_t rows, int64_t width);
  /// Splits an ldmatrix result into mma operands (i32 for bf16).
  SmallVector<Value> operands(Value frag, int64_t count);
  Frag mma(ArrayRef<Value> a, ArrayRef<Value> bOps, const Frag &c);
  Value pack(Value x, Value y);
  /// Inlines a region; tensor.extract from captures becomes memref.load.
  Value inlineRegion(Region &region, ValueRange args);
  Value inlineRegion(Region &region, ValueRange args, IRMapping &map);
  Value classify(Value i0v, Value i1v, Value j0v, Value j1v);
  /// The combined mask (mask region and score -inf guard) at one element.
  Value maskAt(Value i, Value j);
  /// Reads this (b, h) slice's class of tile (qt, kt) from the block map.
  Value mapClass(Value qt, Value kt, Value numQT, Value numKT);
  /// One online-softmax step over this thread's scores `x` (value i belongs
  /// to its row (i % 4) / 2, the accumulator layout of both kernels), given
  /// the running maxima and sums of its two rows: with `fold`, x is unscaled
  /// and qkScale (scale * log2 e) is folded into the exponent.
  struct SoftmaxStep {
    Value m[2], alpha[2], l[2];
    SmallVector<Value> p;
  };
  SoftmaxStep onlineSoftmax(ArrayRef<Value> x, ArrayRef<Value> mOld,
                            ArrayRef<Value> lOld, bool fold, Value qkScale);
  /// Whether the mask region is evaluated in a rolled loop: unrolled once per
  /// accumulator element, a region with much index arithmetic (2D and 3D
  /// windows) outgrows the registers left beside the accumulators.
  bool rolledMask();
  /// The keep bits of this thread's `n` scores of the tile at column `j0`
  /// for a rolled mask (element i, in the accumulator layout of both
  /// kernels, is row i0 + (i % 4 < 2 ? r0 : r1), column j0 + 8 (i / 4) +
  /// i % 2 + lcol; it is bit i % 32 of word i / 32): the column bound and the
  /// mask region, evaluated in a rolled loop. All ones when `full`.
  SmallVector<Value> maskWords(Value full, Value j0, Value r0, Value r1,
                               Value lcol, int64_t n);
  /// `scored` (in that layout) with the masked elements set to -inf: read
  /// from `words` (maskWords) or, without words, the column bound and the
  /// mask region inlined per element. Unchanged when `full`.
  SmallVector<Value> applyMask(Value full, Value j0, Value r0, Value r1,
                               Value lcol, ArrayRef<Value> scored,
                               ArrayRef<Value> words);
  /// Sets c0, c1, negInf and the thread and block indices of both attention
  /// kernels (tid, lane, warp; h, bi from the grid's y and z, hk, i0);
  /// returns the q tile (the grid's x).
  Value bindIndices();
  /// Binds the attention kernel's arguments (the same order in both
  /// kernels; q, k, v are memrefs or, for sm_90a, TMA-map pointers).
  void bindArguments(Block &entry);
  /// The epilogue of both kernels: reduces this thread's two row sums over
  /// its quad, normalizes the accumulators once (`acc(i)`: value i in the
  /// m16n8 / wgmma accumulator layout, columns 8 * (i / 4) + lcol + i % 2 of
  /// row (i % 4 < 2 ? r0 : r1)), stores o and lse.
  void emitEpilogue(ArrayRef<Value> m, ArrayRef<Value> l,
                    llvm::function_ref<Value(int64_t)> acc, Value r0, Value r1,
                    Value lcol);
  /// Emits the block-map kernel body into `func`.
  void emitBlockMap(gpu::GPUFuncOp func);
  /// The sm_90a kernel (AttnToGPUSm90.cpp): TMA loads, wgmma for Q K^T and
  /// P V, one warpgroup per 64 query rows, 128-key tiles.
  LogicalResult emitSm90(gpu::GPUFuncOp func);
  Value blockMap;
  bool needsMap = false;
};
} // namespace mlir::attn::detail

#endif // ATTNC_LIB_CONVERSION_GPUKERNELEMITTER_H
