//===- FunctionCloning.cpp - new spec functions from old ones -------------===//
//
// Part of attnc. See FunctionCloning.h.
//
//===----------------------------------------------------------------------===//

#include "attnc/Transforms/FunctionCloning.h"

using namespace mlir;

func::FuncOp mlir::attn::cloneFunctionBody(func::FuncOp f, StringRef name,
                                           TypeRange extraInputs,
                                           TypeRange results, IRMapping &map) {
  SmallVector<Type> inputs(f.getArgumentTypes());
  inputs.append(extraInputs.begin(), extraInputs.end());
  OpBuilder b(f.getContext());
  b.setInsertionPointAfter(f);
  auto g = func::FuncOp::create(b, f.getLoc(), name,
                                b.getFunctionType(inputs, results));
  g.setVisibility(f.getVisibility());
  if (ArrayAttr args = f.getAllArgAttrs())
    for (auto [i, attrs] : llvm::enumerate(args))
      g.setArgAttrs(i, cast<DictionaryAttr>(attrs));
  Block *blk = g.addEntryBlock();
  map.map(f.getArguments(),
          blk->getArguments().take_front(f.getNumArguments()));
  b.setInsertionPointToEnd(blk);
  for (Operation &op : f.getBody().front().without_terminator())
    b.clone(op, map);
  return g;
}

FailureOr<SmallVector<func::FuncOp>>
mlir::attn::selectFunctions(ModuleOp module, StringRef funcName,
                            StringRef pass) {
  SmallVector<func::FuncOp> funcs;
  for (func::FuncOp f : module.getOps<func::FuncOp>())
    if (!f.isExternal() && (funcName.empty() || f.getName() == funcName))
      funcs.push_back(f);
  if (!funcName.empty() && funcs.empty())
    return module.emitError() << pass << ": no function '" << funcName << "'";
  return funcs;
}

LogicalResult mlir::attn::checkNamesFree(func::FuncOp f,
                                         ArrayRef<StringRef> suffixes,
                                         StringRef pass) {
  auto module = f->getParentOfType<ModuleOp>();
  for (StringRef suffix : suffixes)
    if (module.lookupSymbol((f.getName() + suffix).str()))
      return f.emitError() << pass << ": '" << f.getName() << suffix
                           << "' already exists";
  return success();
}
