//===- CopyAliasedResults.cpp - one buffer per function result ------------===//
//
// Part of attnc. See AttnCopyAliasedResults in AttnPasses.td.
//
//===----------------------------------------------------------------------===//

#include "attnc/Transforms/Passes.h"

#include "mlir/Dialect/Bufferization/IR/Bufferization.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "llvm/ADT/SmallPtrSet.h"
#include "llvm/Support/Debug.h"

#define DEBUG_TYPE "attn-copy-aliased-results"

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
        // A constant bufferizes to a global, which the caller must not
        // free.
        Operation *def = v.getDefiningOp();
        bool constant = def && def->hasTrait<OpTrait::ConstantLike>();
        bool aliases =
            isa<BlockArgument>(v) || constant || !seen.insert(v).second;
        if (!type || !aliases)
          continue;
        auto copy = bufferization::AllocTensorOp::create(
            b, ret.getLoc(), type, /*dynamicSizes=*/ValueRange(), /*copy=*/v);
        LLVM_DEBUG(llvm::dbgs() << func.getName() << ": result "
                                << operand.getOperandNumber()
                                << (isa<BlockArgument>(v) ? " is an argument"
                                    : constant            ? " is a constant"
                                               : " repeats another result")
                                << "; copied\n");
        operand.set(copy);
      }
    });
  }
};
} // namespace
