//===- RegionSafety.h - defined behaviour of attn regions -------*- C++ -*-===//
//
// Part of attnc. The regions of attn ops run on every (b, h, i, j) of a
// problem whose sizes are only known at launch. Before any lowering, the
// verifier proves with interval arithmetic (the mask analysis' evaluator)
// that the integer operations of a region are defined everywhere and that
// every read of a captured tensor stays inside it, or that a launch-time
// extent check covers the read. What it cannot prove is refused with a
// diagnostic naming the operation, never compiled into code that traps or
// reads out of bounds.
//
//===----------------------------------------------------------------------===//
#ifndef ATTNC_DIALECT_ATTN_REGIONSAFETY_H
#define ATTNC_DIALECT_ATTN_REGIONSAFETY_H

#include "mlir/IR/Block.h"
#include "mlir/IR/Operation.h"
#include "mlir/Support/LLVM.h"

#include <optional>

namespace mlir::attn {

/// A capture index a launch can check against the problem sizes: region
/// argument `argPosition` (relative to the first index argument), possibly
/// divided by a positive constant with `arith.divui`.
struct CheckableIndex {
  unsigned argPosition;
  int64_t divisor;
};

/// `idx` as one of the arguments [first, first + count) of `block`, possibly
/// divided by a positive constant; nullopt for any other index.
std::optional<CheckableIndex>
matchCheckableIndex(Value idx, Block &block, unsigned first, unsigned count);

/// Proves that every integer division and remainder in `op`'s regions has a
/// divisor that is never zero and never divides the type's minimum by -1,
/// and that every read of one of `captures` (tensor.extract,
/// vector.transfer_read) is in bounds: statically for static dimensions,
/// through a launch-time extent check for dynamic ones (attn.attention
/// only, for indices of the form matchCheckableIndex accepts). Emits an
/// error on the offending operation otherwise.
LogicalResult verifyRegionSafety(Operation *op, ValueRange captures);

} // namespace mlir::attn

#endif // ATTNC_DIALECT_ATTN_REGIONSAFETY_H
