//===- ValueChecks.h - what a spec needs of its inputs' values --*- C++ -*-===//
//
// Part of attnc.
//
//===----------------------------------------------------------------------===//
#ifndef ATTNC_TARGET_VALUECHECKS_H
#define ATTNC_TARGET_VALUECHECKS_H

#include "attnc/Abi/TensorChecks.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"

namespace mlir::attn {

/// The value checks of `func`'s inputs (indices are its argument numbers):
/// log-gates, token-order lengths, tied batch and sequence sizes of the
/// linear ops, and the extents of captured tensors that attention regions
/// index with i, j, b or h (possibly divided by a constant).
attnc::InputChecks specValueChecks(func::FuncOp func);

} // namespace mlir::attn

#endif // ATTNC_TARGET_VALUECHECKS_H
