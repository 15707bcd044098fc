//===- FunctionCloning.h - new spec functions from old ones ------*- C++
//-*-===//
//
// Part of attnc. The passes that add functions next to a spec's (the
// backward, the sequence-parallel phases) start from a copy of its body.
//
//===----------------------------------------------------------------------===//
#ifndef ATTNC_TRANSFORMS_FUNCTIONCLONING_H
#define ATTNC_TRANSFORMS_FUNCTIONCLONING_H

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/IRMapping.h"

namespace mlir::attn {

/// Clones `f`'s body into a new function `name` (inserted after `f`) of
/// type (f's inputs + `extraInputs`) -> `results`, without its return;
/// `map` maps f's values to the clone's. The caller adds the terminator.
func::FuncOp cloneFunctionBody(func::FuncOp f, StringRef name,
                               TypeRange extraInputs, TypeRange results,
                               IRMapping &map);

/// The functions such a pass (named `pass` in diagnostics) works on: every
/// defined function of `module`, or only `funcName` when it is not empty
/// (failure after an error at the module when there is no such function).
FailureOr<SmallVector<func::FuncOp>>
selectFunctions(ModuleOp module, StringRef funcName, StringRef pass);

/// Success when no symbol named f's name + one of `suffixes` exists; else
/// an error on `f`.
LogicalResult checkNamesFree(func::FuncOp f, ArrayRef<StringRef> suffixes,
                             StringRef pass);

} // namespace mlir::attn

#endif // ATTNC_TRANSFORMS_FUNCTIONCLONING_H
