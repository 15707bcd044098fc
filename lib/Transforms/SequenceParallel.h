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

/// Region `r`'s argument `index` (a token position) read as itself plus
/// `offset[0]` (`offset`: tensor<1xi32>): the global position on a rank
/// whose chunk starts at offset. `r` may not be attached to an op yet.
void offsetPositions(Region &r, unsigned index, Value offset, Location loc);

/// `@f_lasp_layout() -> tensor<9xi32>`, what the runtime must know around
/// the phases: the argument indices of q, k, v, the decay and the initial
/// state (-1: none; -2: a decay computed in f), whether f returns a second
/// result (the final state, or lse), normalize, whether the phases take a
/// position offset, and the kind (0: linear, 1: softmax attention).
void buildLayout(func::FuncOp f, ArrayRef<int32_t> values);

/// Why `op` has no LASP-2H form ("" when it has one).
std::string whyNotAttention(AttentionOp op);

/// LASP-2H: `@f_lasp_attention(args, offset)`, f with its queries at global
/// positions offset.. (the rank's chunk) against keys and values gathered
/// from every rank, and its `@f_lasp_layout`.
void buildAttentionPhases(func::FuncOp f, AttentionOp op);

} // namespace mlir::attn::lasp

#endif // ATTNC_LIB_TRANSFORMS_SEQUENCEPARALLEL_H
