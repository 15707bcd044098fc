//===- Differentiate.cpp - attn-differentiate: the backward of a spec -----===//
//
// Part of attnc. For a function whose attn op is one attn.attention, adds
// `@f_forward` (returns o and lse) and `@f_backward` (an attn.attention_grad
// on the forward's operands, o, lse and dO); for one attn.linear_attention
// or attn.scan, `@f_forward` (a copy) and `@f_backward` (an
// attn.linear_attention_grad on the operands, dO and the final state's
// gradient). Regions are differentiated by RegionDifferentiator.
//
//===----------------------------------------------------------------------===//

#include "attnc/Transforms/FunctionCloning.h"
#include "attnc/Transforms/Passes.h"
#include "attnc/Transforms/RegionDifferentiator.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/IRMapping.h"

namespace mlir::attn {
#define GEN_PASS_DEF_ATTNDIFFERENTIATE
#include "Attn/AttnPasses.h.inc"
} // namespace mlir::attn

using namespace mlir;
using namespace mlir::attn;

static bool isFloat(Type t) { return isa<FloatType>(t); }

/// Whether the backward of `op` exists (else `why` says what it lacks).
static bool checkAttention(AttentionOp op, std::string &why) {
  if (op.isPaged()) {
    why = "reads a paged KV cache (pages(...)): paged attention is for "
          "inference and has no backward";
    return false;
  }
  if (op.getKvLens()) {
    why = "has per-sequence key counts (kv_lens(...)), which have no "
          "backward yet";
    return false;
  }
  if (op.getSinks()) {
    why = "has attention sinks (sinks(...)), which have no backward yet";
    return false;
  }
  if (op.isVarlen()) {
    why = "packs variable-length sequences (cu_seqlens_q/k(...)), which "
          "have no backward yet";
    return false;
  }
  return true;
}

/// The single attn op of `f` (attn.attention, attn.linear_attention or
/// attn.scan) whose results only func.return uses, or null with `why` set.
static Operation *eligibleOp(func::FuncOp f, std::string &why) {
  SmallVector<Operation *> ops;
  f.walk([&](Operation *op) {
    if (isa<AttentionOp, AttentionGradOp, LinearAttentionOp,
            LinearAttentionGradOp, ScanOp, DeltaRuleOp, DeltaRuleGradOp>(op))
      ops.push_back(op);
  });
  if (ops.size() != 1 ||
      !isa<AttentionOp, LinearAttentionOp, ScanOp, DeltaRuleOp>(ops[0])) {
    why = "has no single attn.attention, attn.linear_attention, attn.scan "
          "or attn.delta_rule to differentiate";
    return nullptr;
  }
  for (Operation *user : ops[0]->getUsers())
    if (!isa<func::ReturnOp>(user)) {
      why = "uses the attn op's results in other operations";
      return nullptr;
    }
  if (auto op = dyn_cast<AttentionOp>(ops[0]))
    return checkAttention(op, why) ? op : nullptr;
  return ops[0];
}

/// The lse type of `op`: its own, or [B, Hq, Nq] f32.
static RankedTensorType lseTypeOf(AttentionOp op) {
  if (op.getLse())
    return cast<RankedTensorType>(op.getLse().getType());
  auto q = cast<RankedTensorType>(op.getQ().getType());
  return RankedTensorType::get(q.getShape().drop_back(),
                               Float32Type::get(op.getContext()));
}

namespace {
/// `@<f>_backward` under construction: f's body cloned with extra
/// arguments, the clone of f's attn op (to be replaced by its gradient op)
/// and the extra arguments.
struct BackwardFunction {
  func::FuncOp g;
  Operation *clone;
  ValueRange extra;

  BackwardFunction(func::FuncOp f, Value opResult, TypeRange extraTypes) {
    IRMapping map;
    g = cloneFunctionBody(f, (f.getName() + "_backward").str(), extraTypes, {},
                          map);
    clone = map.lookup(opResult).getDefiningOp();
    extra = g.getBody().front().getArguments().take_back(extraTypes.size());
  }
  /// Replaces the clone by `state`'s op and returns its results.
  void finish(OperationState &state) {
    OpBuilder b(clone);
    Operation *gradOp = b.create(state);
    clone->erase();
    g.setType(FunctionType::get(g.getContext(), g.getArgumentTypes(),
                                gradOp->getResultTypes()));
    b.setInsertionPointToEnd(&g.getBody().front());
    func::ReturnOp::create(b, g.getLoc(), gradOp->getResults());
  }
};
} // namespace

/// `@name_forward`: the forward returning o and lse.
static void buildForward(func::FuncOp f, AttentionOp op) {
  RankedTensorType lseType = lseTypeOf(op);
  IRMapping map;
  func::FuncOp g = cloneFunctionBody(f, (f.getName() + "_forward").str(), {},
                                     {op.getO().getType(), lseType}, map);
  auto clone = cast<AttentionOp>(map.lookup(op.getO()).getDefiningOp());
  OpBuilder b(clone);
  OperationState state(clone.getLoc(), clone->getName());
  state.addOperands(clone->getOperands());
  state.addAttributes(clone->getAttrs());
  state.addTypes({clone.getO().getType(), lseType});
  state.addRegion()->takeBody(clone.getScore());
  state.addRegion()->takeBody(clone.getMask());
  Operation *withLse = b.create(state);
  clone->erase();
  b.setInsertionPointToEnd(&g.getBody().front());
  func::ReturnOp::create(b, f.getLoc(), withLse->getResults());
}

/// `@name_backward`: (f's inputs, o, lse, dO[, dLSE]) -> (dq, dk, dv, capture
/// grads).
static LogicalResult buildBackward(func::FuncOp f, AttentionOp op,
                                   bool lseGrad) {
  Type oType = op.getO().getType();
  RankedTensorType lseType = lseTypeOf(op);
  // dLSE when asked for and the function returns lse.
  bool withDLse = lseGrad && op.getLse();
  SmallVector<Type> extraTypes = {oType, lseType, oType};
  if (withDLse)
    extraTypes.push_back(lseType);
  BackwardFunction bwd(f, op.getO(), extraTypes);
  auto clone = cast<AttentionOp>(bwd.clone);
  func::FuncOp g = bwd.g;
  ValueRange extra = bwd.extra;
  OpBuilder b(clone);
  OperationState state(clone.getLoc(), AttentionGradOp::getOperationName());
  state.addOperands({clone.getQ(), clone.getK(), clone.getV()});
  state.addOperands(extra);
  state.addOperands(clone.getCaptures());
  state.addAttribute(
      "operandSegmentSizes",
      b.getDenseI32ArrayAttr({1, 1, 1, 1, 1, 1, withDLse ? 1 : 0,
                              int32_t(clone.getCaptures().size())}));
  if (auto scale = clone.getScaleAttr())
    state.addAttribute("scale", scale);
  if (clone.getQueriesAtEnd())
    state.addAttribute("queries_at_end", b.getUnitAttr());
  Region *score = state.addRegion();
  Region *mask = state.addRegion();
  Region *grad = state.addRegion();
  SmallVector<int64_t> sites;
  if (clone.hasScoreRegion()) {
    if (failed(buildScoreGradRegion(clone.getScore(), clone.getCaptures(),
                                    *grad, sites))) {
      // The partial region reads values of `g`: drop it first.
      grad->dropAllReferences();
      grad->getBlocks().clear();
      g.erase();
      return failure();
    }
  }
  state.addAttribute("capture_sites", b.getDenseI64ArrayAttr(sites));
  state.addTypes(
      {clone.getQ().getType(), clone.getK().getType(), clone.getV().getType()});
  // One gradient per captured float tensor the score region reads.
  llvm::SmallPtrSet<Value, 4> read;
  clone.getScore().walk([&](Operation *inner) {
    read.insert(inner->operand_begin(), inner->operand_end());
  });
  for (Value c : clone.getCaptures())
    if (isFloat(cast<RankedTensorType>(c.getType()).getElementType()) &&
        read.contains(c))
      state.addTypes(RankedTensorType::get(
          cast<RankedTensorType>(c.getType()).getShape(), b.getF32Type()));
  score->takeBody(clone.getScore());
  mask->takeBody(clone.getMask());
  bwd.finish(state);
  return success();
}

/// The backward's extra inputs of a linear op or a delta rule: dO, and the
/// final state's gradient when the op returns the final state (`fin`).
static SmallVector<Type> cotangentTypes(Value o, Value fin) {
  SmallVector<Type> types = {o.getType()};
  if (fin)
    types.push_back(fin.getType());
  return types;
}

/// `@name_forward` of a linear op or a delta rule: the function itself under
/// a new name (the backward recomputes what it needs).
static void buildForwardCopy(func::FuncOp f) {
  OpBuilder b(f.getContext());
  b.setInsertionPointAfter(f);
  auto g = cast<func::FuncOp>(b.clone(*f));
  g.setName((f.getName() + "_forward").str());
}

/// The feature maps of `fwd` (an attn.linear_attention; an attn.scan has
/// none) into `state`'s four regions: the maps, then their tangent maps.
/// Failure after a diagnostic (the regions are then left empty).
static LogicalResult addFeatureMapRegions(Operation *fwd,
                                          OperationState &state) {
  Region *maps[4];
  for (Region *&r : maps)
    r = state.addRegion();
  auto lin = dyn_cast<LinearAttentionOp>(fwd);
  if (!lin)
    return success();
  for (auto [map, jvp] :
       {std::pair<Region &, Region *>{lin.getFeatureMap(), maps[2]},
        {lin.getKeyFeatureMap(), maps[3]}}) {
    if (map.empty() || succeeded(buildFeatureMapJvp(map, *jvp)))
      continue;
    // The partial regions read values of the function: drop them.
    for (Region *r : {maps[2], maps[3]}) {
      r->dropAllReferences();
      r->getBlocks().clear();
    }
    return failure();
  }
  maps[0]->takeBody(lin.getFeatureMap());
  maps[1]->takeBody(lin.getKeyFeatureMap());
  return success();
}

/// `@name_backward` of a linear op: (f's inputs, dO[, dS_N]) -> (dq, dk,
/// dv[, d_decay][, d_initial_state]).
static LogicalResult buildLinearBackward(func::FuncOp f, LinearOpInterface op) {
  BackwardFunction bwd(f, op.getO(),
                       cotangentTypes(op.getO(), op.getFinalState()));
  auto clone = cast<LinearOpInterface>(bwd.clone);
  func::FuncOp g = bwd.g;
  ValueRange extra = bwd.extra;
  OpBuilder b(clone);
  OperationState state(clone.getLoc(),
                       LinearAttentionGradOp::getOperationName());
  Value decay = clone.getDecay(), init = clone.getInitialState();
  state.addOperands({clone.getQ(), clone.getK(), clone.getV()});
  state.addOperands(extra.take_front());
  for (Value optional : {decay, init})
    if (optional)
      state.addOperands(optional);
  state.addOperands(extra.drop_front());
  state.addOperands(clone.getCapturedValues());
  state.addAttribute(
      "operandSegmentSizes",
      b.getDenseI32ArrayAttr({1, 1, 1, 1, decay ? 1 : 0, init ? 1 : 0,
                              int32_t(extra.size() - 1),
                              int32_t(clone.getCapturedValues().size())}));
  state.addAttribute(
      "resultSegmentSizes",
      b.getDenseI32ArrayAttr({1, 1, 1, decay ? 1 : 0, init ? 1 : 0}));
  state.addAttribute("direction",
                     DirectionAttr::get(b.getContext(), clone.getDirection()));
  if (clone.getNormalize())
    state.addAttribute("normalize", b.getUnitAttr());
  if (auto scale = clone->getAttrOfType<FloatAttr>("scale"))
    state.addAttribute("scale", scale);
  if (auto order = clone.getOrderAttr())
    state.addAttribute("order", order);
  state.addTypes(
      {clone.getQ().getType(), clone.getK().getType(), clone.getV().getType()});
  for (Value optional : {decay, init})
    if (optional)
      state.addTypes(optional.getType());
  if (failed(addFeatureMapRegions(clone, state))) {
    g.erase();
    return failure();
  }
  bwd.finish(state);
  return success();
}

/// `@name_backward` of a delta rule: (f's inputs, dO[, dS_N]) -> (dq, dk,
/// dv, dbeta[, d_decay][, d_initial_state]).
static void buildDeltaBackward(func::FuncOp f, DeltaRuleOp op) {
  BackwardFunction bwd(f, op.getO(),
                       cotangentTypes(op.getO(), op.getFinalState()));
  auto clone = cast<DeltaRuleOp>(bwd.clone);
  OpBuilder b(clone);
  OperationState state(clone.getLoc(), DeltaRuleGradOp::getOperationName());
  Value decay = clone.getDecay(), init = clone.getInitialState();
  state.addOperands({clone.getQ(), clone.getK(), clone.getV(), clone.getBeta(),
                     bwd.extra.front()});
  for (Value optional : {decay, init})
    if (optional)
      state.addOperands(optional);
  state.addOperands(bwd.extra.drop_front());
  state.addAttribute(
      "operandSegmentSizes",
      b.getDenseI32ArrayAttr({1, 1, 1, 1, 1, decay ? 1 : 0, init ? 1 : 0,
                              int32_t(bwd.extra.size() - 1)}));
  state.addAttribute(
      "resultSegmentSizes",
      b.getDenseI32ArrayAttr({1, 1, 1, 1, decay ? 1 : 0, init ? 1 : 0}));
  for (StringRef name : {"scale", "schedule"})
    if (Attribute attr = clone->getAttr(name))
      state.addAttribute(name, attr);
  for (Value x : SmallVector<Value>{clone.getQ(), clone.getK(), clone.getV(),
                                    clone.getBeta(), decay, init})
    if (x)
      state.addTypes(x.getType());
  bwd.finish(state);
}

namespace {
struct AttnDifferentiatePass
    : public mlir::attn::impl::AttnDifferentiateBase<AttnDifferentiatePass> {
  using AttnDifferentiateBase::AttnDifferentiateBase;
  void runOnOperation() override {
    StringRef pass = "attn-differentiate";
    auto funcs = selectFunctions(getOperation(), funcName, pass);
    if (failed(funcs))
      return signalPassFailure();
    for (func::FuncOp f : *funcs) {
      std::string why;
      Operation *op = eligibleOp(f, why);
      if (!op && funcName.empty())
        continue;
      if (!op) {
        f.emitError() << pass << ": function '" << f.getName() << "' " << why;
        return signalPassFailure();
      }
      if (failed(checkNamesFree(f, {"_forward", "_backward"}, pass)))
        return signalPassFailure();
      if (auto delta = dyn_cast<DeltaRuleOp>(op)) {
        buildDeltaBackward(f, delta);
        buildForwardCopy(f);
        continue;
      }
      if (auto lin = dyn_cast<LinearOpInterface>(op)) {
        if (failed(buildLinearBackward(f, lin)))
          return signalPassFailure();
        buildForwardCopy(f);
        continue;
      }
      auto attention = cast<AttentionOp>(op);
      if (failed(buildBackward(f, attention, lseGrad)))
        return signalPassFailure();
      buildForward(f, attention);
    }
  }
};
} // namespace
