//===- LinearKernel.h - the linear-attention GPU kernels --------*- C++ -*-===//
//
// Part of attnc. Internal to lib/Conversion. The kernels of
// buildLinearKernel (LinearToGPU.cpp):
//  - the chunked kernel (ChunkedKernel.cpp): one thread block per (Dv
//    slice, head, batch) walking chunks of 64 tokens on mma.sync;
//  - the feature kernel (FeatureKernel.cpp): phi(q), phi(k) for feature
//    maps that are not elementwise, read captures or change the feature
//    dim, written to workspaces the chunked kernel reads.
//
//===----------------------------------------------------------------------===//
#ifndef ATTNC_LIB_CONVERSION_LINEARKERNEL_H
#define ATTNC_LIB_CONVERSION_LINEARKERNEL_H

#include "attnc/Transforms/AttnLowering.h"

#include "mlir/Dialect/GPU/IR/GPUDialect.h"

#include <string>

namespace mlir::attn::detail {

/// Tokens per chunk, warps (and threads) of a chunked-kernel block.
constexpr int64_t kChunk = 64;
constexpr int64_t kWarps = 4;
constexpr int64_t kThreads = kWarps * 32;
/// Threads of a feature-kernel block (one row each).
constexpr int64_t kFeatureThreads = 128;
constexpr double kLog2e = 1.4426950408889634;

using Decay = LinearDecay;

/// The parts of a linear op the kernels need.
struct LinearSpec : LinearOpView {
  bool hasCaptures = false, hasOrder = false;
  /// The chunked kernel of a feature-kernel op: q and k are the workspaces
  /// phi(q), phi(k) ([B, H, N, F], [B, Hkv, N, F], contiguous; d == f), no
  /// feature map, scale 1 (both applied by the feature kernel).
  bool workspace = false;

  explicit LinearSpec(Operation *o) : LinearOpView(o) {
    hasCaptures = !captures.empty();
    hasOrder = bool(order);
  }
};

/// Whether the op's feature maps need the per-row feature kernel (a
/// workspace pass before the chunked kernel): they read captured tensors,
/// change the feature dimension, or are not elementwise.
bool needsFeatureKernel(const LinearSpec &s);

/// The first op of a feature-map region the feature kernel cannot evaluate
/// (null when it can), with the reason in `why`.
Operation *firstUnscalarizable(Region &r, ArrayRef<Value> captures,
                               std::string &why);

/// The feature kernel's body: thread (blockIdx.x * 128 + tid) of block row
/// y evaluates the query feature map (y < H, head y; scale first) or the key
/// feature map (head y - H) on token t of batch blockIdx.z and writes the F
/// features, rounded to the element type, to the workspace.
void emitFeatureKernel(const LinearSpec &s, gpu::GPUFuncOp func);

/// The spec op's feature map, rewritten in place into the same computation
/// on scalars (vector.extract of the row, tensor.extract of captures,
/// vector.from_elements of the features): the GPU pipeline later lowers the
/// host function's vector code to LLVM, where n-D vectors (W x's
/// vector<F x D>) would leave the region with LLVM arrays, which attn
/// regions do not allow.
void scalarizeHostRegion(Region &r);

/// The chunked kernel's body for `s` (with `workspace`, reading phi(q),
/// phi(k)), `dvSlice` value columns per block.
void emitChunkedKernel(const LinearSpec &s, int64_t dvSlice,
                       gpu::GPUFuncOp func);

} // namespace mlir::attn::detail

#endif // ATTNC_LIB_CONVERSION_LINEARKERNEL_H
