//===- WidenIndexMath.cpp - math ops on index computed in i64 -------------===//
//
// Part of attnc. See AttnWidenIndexMath in AttnPasses.td.
//
//===----------------------------------------------------------------------===//

#include "attnc/Transforms/Passes.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "llvm/Support/Debug.h"

#define DEBUG_TYPE "attn-widen-index-math"

namespace mlir::attn {
#define GEN_PASS_DEF_ATTNWIDENINDEXMATH
#include "Attn/AttnPasses.h.inc"
} // namespace mlir::attn

using namespace mlir;

static bool touchesIndex(Operation *op) {
  auto isIndex = [](Type t) { return t.isIndex(); };
  return llvm::any_of(op->getOperandTypes(), isIndex) ||
         llvm::any_of(op->getResultTypes(), isIndex);
}

/// `op` recreated on i64 operands, its index results cast back.
static void widen(Operation *op) {
  OpBuilder b(op);
  Type i64 = b.getI64Type();
  auto widenType = [&](Type t) { return t.isIndex() ? i64 : t; };
  SmallVector<Value> operands;
  for (Value v : op->getOperands())
    operands.push_back(v.getType().isIndex()
                           ? arith::IndexCastOp::create(b, op->getLoc(), i64, v)
                           : v);
  OperationState state(op->getLoc(), op->getName());
  state.addOperands(operands);
  state.addAttributes(op->getAttrs());
  for (Type t : op->getResultTypes())
    state.addTypes(widenType(t));
  Operation *wide = b.create(state);
  for (auto [old, res] : llvm::zip(op->getResults(), wide->getResults())) {
    Value v = res;
    if (old.getType().isIndex())
      v = arith::IndexCastOp::create(b, op->getLoc(), old.getType(), res);
    old.replaceAllUsesWith(v);
  }
  op->erase();
}

namespace {
struct AttnWidenIndexMathPass
    : public mlir::attn::impl::AttnWidenIndexMathBase<AttnWidenIndexMathPass> {
  void runOnOperation() override {
    SmallVector<Operation *> ops;
    getOperation()->walk([&](Operation *op) {
      if (isa<math::MathDialect>(op->getDialect()) && touchesIndex(op))
        ops.push_back(op);
    });
    LLVM_DEBUG(llvm::dbgs() << "widening " << ops.size()
                            << " math ops on index values to i64\n");
    for (Operation *op : ops)
      widen(op);
  }
};
} // namespace
