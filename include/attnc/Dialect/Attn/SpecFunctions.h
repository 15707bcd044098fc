//===- SpecFunctions.h - the kernel functions of a spec ---------*- C++ -*-===//
//
// Part of attnc. Every tool (the JIT, attn-run, attn-aot) compiles the
// functions at the top level of a spec module that contain attn ops; this is
// the one place that finds them.
//
//===----------------------------------------------------------------------===//
#ifndef ATTNC_DIALECT_ATTN_SPECFUNCTIONS_H
#define ATTNC_DIALECT_ATTN_SPECFUNCTIONS_H

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/BuiltinOps.h"

namespace mlir::attn {

/// The functions at the top level of `module` that contain attn ops. Fails,
/// with an error on the op, when an attn op is anywhere else (a nested
/// module, a function nested in another op): no tool could run it.
FailureOr<SmallVector<func::FuncOp>> specFunctions(ModuleOp module);

/// The captures a kernel of `attnOp` (q, k, v its first operands) takes:
/// the enclosing function's tensor arguments between v and its last
/// `trailing` arguments when `own` (the op's captures) is a subsequence of
/// them (canonicalization may drop unused captures from the op; the kernel
/// keeps the function's signature), else `own`.
SmallVector<Value> kernelCaptures(Operation *attnOp, ValueRange own,
                                  unsigned trailing);

/// The tensors a kernel of `op` takes after q, k and v: the enclosing
/// function's arguments after q, k and v when `op` is an attention on the
/// function's arguments whose page table, kv_lens, sinks and captures are
/// all among those, in any order (the others were captures whose uses
/// folded away: the kernel keeps the function's signature and ignores
/// them); otherwise those operands of `op`.
SmallVector<Value> attentionKernelCaptures(Operation *attentionOp);

} // namespace mlir::attn

#endif // ATTNC_DIALECT_ATTN_SPECFUNCTIONS_H
