//===- SpecFunctions.cpp - the kernel functions of a spec -----------------===//
//
// Part of attnc. See SpecFunctions.h.
//
//===----------------------------------------------------------------------===//

#include "attnc/Dialect/Attn/SpecFunctions.h"
#include "attnc/Dialect/Attn/Attn.h"

using namespace mlir;

static bool isAttnOp(Operation *op) {
  return isa<attn::AttentionOp, attn::AttentionGradOp, attn::LinearAttentionOp,
             attn::ScanOp>(op);
}

FailureOr<SmallVector<func::FuncOp>>
mlir::attn::specFunctions(ModuleOp module) {
  SmallVector<func::FuncOp> funcs;
  for (auto f : module.getOps<func::FuncOp>()) {
    bool has = false;
    f.walk([&](Operation *op) { has |= isAttnOp(op); });
    if (has)
      funcs.push_back(f);
  }
  // Anything else: the first attn op outside those functions.
  Operation *stray = nullptr;
  module.walk([&](Operation *op) {
    if (!isAttnOp(op))
      return WalkResult::advance();
    auto f = op->getParentOfType<func::FuncOp>();
    if (f && f->getParentOp() == module.getOperation())
      return WalkResult::skip();
    stray = op;
    return WalkResult::interrupt();
  });
  if (stray)
    return stray->emitOpError()
           << "is not in a function at the top level of the spec module (a "
              "nested module?); attnc compiles top-level functions only";
  return funcs;
}

SmallVector<Value> mlir::attn::attentionKernelCaptures(Operation *attentionOp) {
  auto op = cast<attn::AttentionOp>(attentionOp);
  SmallVector<Value> own(op.getCaptures());
  auto func = op->getParentOfType<func::FuncOp>();
  if (!func || func.isExternal())
    return own;
  ArrayRef<BlockArgument> args = func.getArguments();
  if (args.size() < 3 || op.getQ() != args[0] || op.getK() != args[1] ||
      op.getV() != args[2])
    return own;
  SmallVector<Value> all(args.drop_front(3));
  if (!llvm::all_of(all,
                    [](Value a) { return isa<RankedTensorType>(a.getType()); }))
    return own;
  // `own` must be a subsequence of `all`.
  auto it = all.begin();
  for (Value c : own) {
    it = std::find(it, all.end(), c);
    if (it == all.end())
      return own;
    ++it;
  }
  return all;
}
