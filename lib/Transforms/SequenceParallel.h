//===- SequenceParallel.h - pieces shared by the LASP-2 phases --*- C++ -*-===//
//
// Part of attnc. attn-sequence-parallel splits linear ops
// (SequenceParallel.cpp) and softmax attention (the LASP-2H form,
// SequenceParallelAttention.cpp); both read global positions through an
// offset argument and describe their phases in `@f_lasp_layout`.
//
//===----------------------------------------------------------------------===//
#ifndef ATTNC_LIB_TRANSFORMS_SEQUENCEPARALLEL_H
#define ATTNC_LIB_TRANSFORMS_SEQUENCEPARALLEL_H

#include "attnc/Dialect/Attn/Attn.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"

namespace mlir::attn::lasp {

/// tensor<1xi32>: the type of a position offset and of a rank index.
RankedTensorType scalarI32Type(MLIRContext *ctx);

/// Region `r`'s argument `index` (a token position) read as itself plus
/// `offset[0]` (`offset`: tensor<1xi32>): the global position on a rank
/// whose chunk starts at offset. `r` may not be attached to an op yet.
void offsetPositions(Region &r, unsigned index, Value offset, Location loc);

/// `@f_lasp_layout() -> tensor<Nxi32>`, what the runtime must know around
/// the phases: the argument indices of q, k, v, the decay and the initial
/// state (-1: none; -2: a decay computed in f), whether f returns a second
/// result (the final state, or lse), normalize, whether the phases take a
/// position offset, and the kind (0: linear, 1: softmax attention); then,
/// for softmax attention, an (argument, dim) pair per capture that the
/// phase also takes sliced to the rank's query rows along dim.
void buildLayout(func::FuncOp f, ArrayRef<int32_t> values);

/// Why `op` has no LASP-2H form ("" when it has one).
std::string whyNotAttention(AttentionOp op);

/// LASP-2H: `@f_lasp_attention(args, offset, query slices)`, f with its
/// queries at global positions offset.. (the rank's chunk) against keys and
/// values gathered from every rank, and its `@f_lasp_layout`. A capture read
/// at the query position (document ids `docs[i]`) is read from its slice of
/// the rank's rows at the local position.
void buildAttentionPhases(func::FuncOp f, AttentionOp op);

} // namespace mlir::attn::lasp

#endif // ATTNC_LIB_TRANSFORMS_SEQUENCEPARALLEL_H
