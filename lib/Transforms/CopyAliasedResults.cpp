//===- CopyAliasedResults.cpp - one buffer per function result ------------===//
//
// Part of attnc. See AttnCopyAliasedResults in AttnPasses.td.
//
//===----------------------------------------------------------------------===//

#include "attnc/Transforms/Passes.h"

#include "mlir/Dialect/Bufferization/IR/Bufferization.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "llvm/ADT/SmallPtrSet.h"

namespace mlir::attn {
#define GEN_PASS_DEF_ATTNCOPYALIASEDRESULTS
#include "Attn/AttnPasses.h.inc"
} // namespace mlir::attn

using namespace mlir;

namespace {
struct AttnCopyAliasedResultsPass
    : public mlir::attn::impl::AttnCopyAliasedResultsBase<
          AttnCopyAliasedResultsPass> {
  void runOnOperation() override {
    func::FuncOp func = getOperation();
    if (func.isExternal())
      return;
    func.walk([&](func::ReturnOp ret) {
      llvm::SmallPtrSet<Value, 4> seen;
      OpBuilder b(ret);
      for (OpOperand &operand : ret->getOpOperands()) {
        Value v = operand.get();
        auto type = dyn_cast<RankedTensorType>(v.getType());
        bool aliases = isa<BlockArgument>(v) || !seen.insert(v).second;
        if (!type || !aliases)
          continue;
        auto copy = bufferization::AllocTensorOp::create(
            b, ret.getLoc(), type, /*dynamicSizes=*/ValueRange(), /*copy=*/v);
        operand.set(copy);
      }
    });
  }
};
} // namespace
