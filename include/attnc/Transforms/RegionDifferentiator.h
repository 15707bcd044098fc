//===- RegionDifferentiator.h - forward-mode derivatives of regions -*- C++
//-*-===//
//
// Part of attnc. Symbolic forward-mode differentiation of the pure arith /
// math / vector code of an attn region: every float value carries one
// tangent per seed. Used by attn-differentiate for the `score_grad` region
// of attn.attention_grad and the `*_jvp` regions of
// attn.linear_attention_grad.
//
//===----------------------------------------------------------------------===//
#ifndef ATTNC_TRANSFORMS_REGIONDIFFERENTIATOR_H
#define ATTNC_TRANSFORMS_REGIONDIFFERENTIATOR_H

#include "mlir/IR/Region.h"
#include "mlir/IR/ValueRange.h"
#include "mlir/Support/LLVM.h"

namespace mlir::attn {

/// Builds the score_grad region of an attn.attention_grad from its `score`
/// region: the region takes the score's arguments and yields dS/ds, then
/// per capture site (a `tensor.extract` of a captured float tensor, in
/// order) the derivative with respect to the element and its indices;
/// `sites` receives each site's capture position. Failure after a
/// diagnostic naming the op that cannot be differentiated.
LogicalResult buildScoreGradRegion(Region &score, ValueRange captures,
                                   Region &grad,
                                   SmallVectorImpl<int64_t> &sites);

/// Builds the Jacobian-vector product of feature map `map` (arguments
/// (x [, t]), yielding phi(x)) into `jvp` (empty): arguments (x [, t], dx),
/// yielding J_phi(x) dx. Reads of captured tensors are constants. Failure
/// after a diagnostic naming the op that cannot be differentiated.
LogicalResult buildFeatureMapJvp(Region &map, Region &jvp);

} // namespace mlir::attn

#endif // ATTNC_TRANSFORMS_REGIONDIFFERENTIATOR_H
