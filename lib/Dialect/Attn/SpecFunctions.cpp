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
             attn::LinearAttentionGradOp, attn::ScanOp,
             attn::CombineStatesOp, attn::DeltaRuleOp,
             attn::DeltaRuleGradOp>(op);
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

SmallVector<Value> mlir::attn::kernelCaptures(Operation *attnOp, ValueRange own,
                                              unsigned trailing) {
  SmallVector<Value> mine(own);
  auto func = attnOp->getParentOfType<func::FuncOp>();
  if (!func || func.isExternal())
    return mine;
  ArrayRef<BlockArgument> args = func.getArguments();
  if (args.size() < 3 + trailing || attnOp->getOperand(0) != args[0] ||
      attnOp->getOperand(1) != args[1] || attnOp->getOperand(2) != args[2])
    return mine;
  SmallVector<Value> all(args.drop_front(3).drop_back(trailing));
  if (!llvm::all_of(all,
                    [](Value a) { return isa<RankedTensorType>(a.getType()); }))
    return mine;
  // `own` must be a subsequence of `all`.
  auto it = all.begin();
  for (Value c : mine) {
    it = std::find(it, all.end(), c);
    if (it == all.end())
      return mine;
    ++it;
  }
  return all;
}

SmallVector<Value> mlir::attn::attentionKernelCaptures(Operation *attentionOp) {
  // The page table, kv_lens, sinks and captures: every tensor the kernel
  // reads besides q, k and v. Kernels look them up by value, so they may
  // come in any order among the function's arguments.
  SmallVector<Value> own(attentionOp->getOperands().drop_front(3));
  SmallVector<Value> all = kernelCaptures(attentionOp, {}, 0);
  if (llvm::all_of(own, [&](Value v) { return llvm::is_contained(all, v); }))
    return all;
  return own;
}
