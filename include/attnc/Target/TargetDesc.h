//===- TargetDesc.h - one description per target -----------------*- C++
//-*-===//
//
// Part of attnc. Everything target-specific that passes consult lives here,
// not in `if (sm90)` branches spread through the code.
//
//===----------------------------------------------------------------------===//
#ifndef ATTNC_TARGET_TARGETDESC_H
#define ATTNC_TARGET_TARGETDESC_H

#include "llvm/ADT/ArrayRef.h"
#include "llvm/ADT/StringRef.h"
#include <cstdint>

namespace mlir::attn {

struct TargetDesc {
  llvm::StringRef name;
  bool isGpu;
  /// Bytes of on-chip memory one tile schedule may use: shared memory per
  /// thread block on GPUs, the share of L2 a core keeps hot on CPUs.
  int64_t onChipBytes;
  /// f32 registers per thread left for the score and accumulator tiles.
  int64_t accRegsPerThread;
  int64_t warpSize;
  /// Depth of the K/V pipeline.
  int64_t stages;
  /// Tensor-core instructions available (informational for now).
  bool mmaSync, wgmma, tma;
};

/// Returns the description of `name` or null if it is not a known target.
const TargetDesc *lookupTarget(llvm::StringRef name);

} // namespace mlir::attn

#endif // ATTNC_TARGET_TARGETDESC_H
