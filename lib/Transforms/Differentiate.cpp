//===- Differentiate.cpp - attn-differentiate: the backward of a spec -----===//
//
// Part of attnc. For a function whose attn op is one attn.attention, adds
// `@f_forward` (returns o and lse) and `@f_backward` (an attn.attention_grad
// on the forward's operands, o, lse and dO). The score region is
// differentiated symbolically, forward mode: every float value of the region
// carries one tangent per seed, seed 0 being the score argument s and seed
// 1 + k the element read by the k-th `tensor.extract` of a captured float
// tensor (a "site"). The `score_grad` region yields the tangents of the
// score and each site's indices.
//
//===----------------------------------------------------------------------===//

#include "attnc/Transforms/Passes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/IRMapping.h"
#include "mlir/IR/SymbolTable.h"
#include "llvm/ADT/TypeSwitch.h"

namespace mlir::attn {
#define GEN_PASS_DEF_ATTNDIFFERENTIATE
#include "Attn/AttnPasses.h.inc"
} // namespace mlir::attn

using namespace mlir;
using namespace mlir::attn;

namespace {
/// Builds the score_grad region of an attn.attention_grad from a score
/// region.
class ScoreDifferentiator {
public:
  ScoreDifferentiator(Region &score, ValueRange captures)
      : score(score), captures(captures) {}

  /// Fills `grad` (empty) with the derivative region; failure after a
  /// diagnostic on the op that cannot be differentiated.
  LogicalResult build(Region &grad, SmallVectorImpl<int64_t> &sites);

private:
  using Tangents = SmallVector<Value, 4>;
  /// The tangents of `op`'s result (one per seed; null = zero).
  FailureOr<Tangents> differentiate(Operation *op);
  /// One seed's tangent of `op`'s result from its operands' tangents `t`.
  FailureOr<Value> rule(Operation *op, ArrayRef<Value> t);
  Value tangentOf(Value v, unsigned seed) {
    auto it = tangents.find(v);
    return it == tangents.end() ? Value() : it->second[seed];
  }
  Value cst(Type t, double x) {
    return arith::ConstantOp::create(*b, b->getFloatAttr(t, x));
  }
  Value add(Value x, Value y) {
    if (!x || !y)
      return x ? x : y;
    return arith::AddFOp::create(*b, x, y);
  }
  Value mul(Value x, Value y) {
    if (!x || !y)
      return Value();
    return arith::MulFOp::create(*b, x, y);
  }
  Value neg(Value x) { return x ? arith::NegFOp::create(*b, x) : Value(); }
  Value orZero(Value x, Type t) { return x ? x : cst(t, 0.0); }

  Region &score;
  ValueRange captures;
  std::optional<ImplicitLocOpBuilder> b;
  IRMapping map;
  unsigned numSeeds = 1;
  llvm::DenseMap<Value, Tangents> tangents;
  /// Sites in order: their tensor.extract ops.
  SmallVector<tensor::ExtractOp> siteOps;
};
} // namespace

static bool isFloat(Type t) { return isa<FloatType>(t); }

FailureOr<Value> ScoreDifferentiator::rule(Operation *op, ArrayRef<Value> t) {
  Value r = map.lookup(op->getResult(0));
  auto x = [&](unsigned i) { return map.lookup(op->getOperand(i)); };
  Type ty = r.getType();
  const double ln2 = 0.6931471805599453;
  auto compare = [&](arith::CmpFPredicate p, Value tx, Value ty2) -> Value {
    if (!tx && !ty2)
      return Value();
    Value c = arith::CmpFOp::create(*b, p, x(0), x(1));
    return arith::SelectOp::create(*b, c, orZero(tx, ty), orZero(ty2, ty));
  };
  return llvm::TypeSwitch<Operation *, FailureOr<Value>>(op)
      .Case<arith::AddFOp>([&](auto) { return add(t[0], t[1]); })
      .Case<arith::SubFOp>([&](auto) { return add(t[0], neg(t[1])); })
      .Case<arith::MulFOp>(
          [&](auto) { return add(mul(t[0], x(1)), mul(x(0), t[1])); })
      .Case<arith::DivFOp>([&](auto) -> Value {
        // (tx - r ty) / y
        Value num = add(t[0], neg(mul(r, t[1])));
        return num ? arith::DivFOp::create(*b, num, x(1)) : Value();
      })
      .Case<arith::NegFOp>([&](auto) { return neg(t[0]); })
      .Case<arith::SelectOp>([&](auto) -> Value {
        if (!t[1] && !t[2])
          return Value();
        return arith::SelectOp::create(*b, x(0), orZero(t[1], ty),
                                       orZero(t[2], ty));
      })
      .Case<arith::MaximumFOp, arith::MaxNumFOp>(
          [&](auto) { return compare(arith::CmpFPredicate::OGE, t[0], t[1]); })
      .Case<arith::MinimumFOp, arith::MinNumFOp>(
          [&](auto) { return compare(arith::CmpFPredicate::OLE, t[0], t[1]); })
      .Case<arith::ExtFOp>([&](auto) -> Value {
        return t[0] ? arith::ExtFOp::create(*b, ty, t[0]) : Value();
      })
      .Case<arith::TruncFOp>([&](auto) -> Value {
        return t[0] ? arith::TruncFOp::create(*b, ty, t[0]) : Value();
      })
      .Case<math::ExpOp>([&](auto) { return mul(r, t[0]); })
      .Case<math::Exp2Op>([&](auto) { return mul(mul(r, cst(ty, ln2)), t[0]); })
      .Case<math::LogOp>([&](auto) -> Value {
        return t[0] ? arith::DivFOp::create(*b, t[0], x(0)) : Value();
      })
      .Case<math::Log2Op>([&](auto) -> Value {
        return t[0] ? arith::DivFOp::create(*b, t[0], mul(x(0), cst(ty, ln2)))
                    : Value();
      })
      .Case<math::TanhOp>([&](auto) -> Value {
        if (!t[0])
          return Value();
        Value d = arith::SubFOp::create(*b, cst(ty, 1.0), mul(r, r));
        return mul(d, t[0]);
      })
      .Case<math::SqrtOp>([&](auto) -> Value {
        if (!t[0])
          return Value();
        return arith::DivFOp::create(*b, t[0], mul(cst(ty, 2.0), r));
      })
      .Case<math::RsqrtOp>([&](auto) {
        return mul(mul(cst(ty, -0.5), mul(r, mul(r, r))), t[0]);
      })
      .Case<math::SinOp>(
          [&](auto) { return mul(math::CosOp::create(*b, x(0)), t[0]); })
      .Case<math::CosOp>(
          [&](auto) { return neg(mul(math::SinOp::create(*b, x(0)), t[0])); })
      .Case<math::AbsFOp>([&](auto) -> Value {
        if (!t[0])
          return Value();
        Value isNeg = arith::CmpFOp::create(*b, arith::CmpFPredicate::OLT, x(0),
                                            cst(ty, 0.0));
        return arith::SelectOp::create(*b, isNeg, neg(t[0]), t[0]);
      })
      .Case<math::FmaOp>([&](auto) {
        return add(add(mul(t[0], x(1)), mul(x(0), t[1])), t[2]);
      })
      .Default([&](Operation *) -> FailureOr<Value> { return failure(); });
}

FailureOr<ScoreDifferentiator::Tangents>
ScoreDifferentiator::differentiate(Operation *op) {
  Tangents result(numSeeds);
  if (llvm::none_of(op->getResultTypes(), isFloat))
    return result; // integer and boolean values carry no derivative
  auto refuse = [&]() -> FailureOr<Tangents> {
    op->emitOpError()
        << "cannot be differentiated: attn-differentiate knows arith "
           "addf/subf/mulf/divf/negf/select/maximumf/minimumf/extf/truncf "
           "and math exp/exp2/log/log2/tanh/sqrt/rsqrt/sin/cos/absf/fma in "
           "a 'score' region";
    return failure();
  };
  // Values that ops with regions read from above are not operands, and no
  // rule covers several results: refuse rather than drop a derivative.
  if (op->getNumRegions() != 0 || op->getNumResults() != 1)
    return refuse();
  if (auto extract = dyn_cast<tensor::ExtractOp>(op)) {
    auto it = llvm::find(siteOps, extract);
    if (it != siteOps.end())
      result[1 + (it - siteOps.begin())] =
          cst(extract.getType(), 1.0); // a seed
    return result;
  }
  for (unsigned seed = 0; seed < numSeeds; ++seed) {
    SmallVector<Value, 3> t;
    for (Value operand : op->getOperands())
      t.push_back(tangentOf(operand, seed));
    if (llvm::all_of(t, [](Value v) { return !v; }))
      continue; // constant with respect to this seed
    FailureOr<Value> d = rule(op, t);
    if (failed(d))
      return refuse();
    result[seed] = *d;
  }
  return result;
}

LogicalResult ScoreDifferentiator::build(Region &grad,
                                         SmallVectorImpl<int64_t> &sites) {
  Block &fwd = score.front();
  // Sites: reads of captured float tensors.
  fwd.walk([&](tensor::ExtractOp extract) {
    auto it = llvm::find(captures, extract.getTensor());
    if (it != captures.end() && isFloat(extract.getType())) {
      siteOps.push_back(extract);
      sites.push_back(it - captures.begin());
    }
  });
  numSeeds = 1 + siteOps.size();
  SmallVector<Location> locs(fwd.getNumArguments(), score.getLoc());
  Block *blk = new Block();
  grad.push_back(blk);
  blk->addArguments(fwd.getArgumentTypes(), locs);
  map.map(fwd.getArguments(), blk->getArguments());
  // `grad` belongs to no op yet: the builder takes the context from score.
  b.emplace(score.getLoc(), OpBuilder(score.getContext()));
  b->setInsertionPointToEnd(blk);
  Value s = fwd.getArgument(0);
  tangents[s] = Tangents(numSeeds);
  tangents[s][0] = cst(s.getType(), 1.0);
  for (Operation &op : fwd.without_terminator()) {
    b->setLoc(op.getLoc());
    b->clone(op, map);
    FailureOr<Tangents> t = differentiate(&op);
    if (failed(t))
      return failure();
    if (op.getNumResults() == 1)
      tangents[op.getResult(0)] = std::move(*t);
  }
  Value out = fwd.getTerminator()->getOperand(0);
  Type f32 = b->getF32Type();
  auto asF32 = [&](Value v) -> Value {
    if (!v)
      return cst(f32, 0.0);
    return v.getType() == f32 ? v : arith::ExtFOp::create(*b, f32, v);
  };
  SmallVector<Value> yields = {asF32(tangentOf(out, 0))};
  for (auto [k, extract] : llvm::enumerate(siteOps)) {
    yields.push_back(asF32(tangentOf(out, 1 + k)));
    for (Value idx : extract.getIndices())
      yields.push_back(map.lookup(idx));
  }
  YieldOp::create(*b, yields);
  // The primal values that no derivative reads are dead.
  SmallVector<Operation *> ops;
  for (Operation &op : blk->without_terminator())
    ops.push_back(&op);
  for (Operation *op : llvm::reverse(ops))
    if (op->use_empty() && isMemoryEffectFree(op))
      op->erase();
  return success();
}

/// The single attn.attention of `f` whose results only func.return uses, or
/// null with `why` set.
static AttentionOp eligibleAttention(func::FuncOp f, std::string &why) {
  SmallVector<Operation *> ops;
  f.walk([&](Operation *op) {
    if (isa<AttentionOp, AttentionGradOp, LinearAttentionOp, ScanOp>(op))
      ops.push_back(op);
  });
  if (ops.size() != 1 || !isa<AttentionOp>(ops[0])) {
    why = "has no single attn.attention to differentiate";
    return nullptr;
  }
  auto op = cast<AttentionOp>(ops[0]);
  if (op.isPaged()) {
    why = "reads a paged KV cache (pages(...)): paged attention is for "
          "inference and has no backward";
    return nullptr;
  }
  if (op.getKvLens()) {
    why = "has per-sequence key counts (kv_lens(...)), which have no "
          "backward yet";
    return nullptr;
  }
  if (op.getSinks()) {
    why = "has attention sinks (sinks(...)), which have no backward yet";
    return nullptr;
  }
  if (op.isVarlen()) {
    why = "packs variable-length sequences (cu_seqlens_q/k(...)), which "
          "have no backward yet";
    return nullptr;
  }
  for (Operation *user : op->getUsers())
    if (!isa<func::ReturnOp>(user)) {
      why = "uses the attention's results in other operations";
      return nullptr;
    }
  return op;
}

/// The lse type of `op`: its own, or [B, Hq, Nq] f32.
static RankedTensorType lseTypeOf(AttentionOp op) {
  if (op.getLse())
    return cast<RankedTensorType>(op.getLse().getType());
  auto q = cast<RankedTensorType>(op.getQ().getType());
  return RankedTensorType::get(q.getShape().drop_back(),
                               Float32Type::get(op.getContext()));
}

/// Clones `f`'s body into a new function `name` of type (f's inputs +
/// `extraInputs`) -> `results`, without its return; `map` maps the old
/// values to the new ones.
static func::FuncOp cloneBody(func::FuncOp f, StringRef name,
                              TypeRange extraInputs, TypeRange results,
                              IRMapping &map) {
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

/// `@name_forward`: the forward returning o and lse.
static void buildForward(func::FuncOp f, AttentionOp op) {
  RankedTensorType lseType = lseTypeOf(op);
  IRMapping map;
  func::FuncOp g = cloneBody(f, (f.getName() + "_forward").str(), {},
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
  IRMapping map;
  func::FuncOp g =
      cloneBody(f, (f.getName() + "_backward").str(), extraTypes, {}, map);
  auto clone = cast<AttentionOp>(map.lookup(op.getO()).getDefiningOp());
  Block &entry = g.getBody().front();
  ValueRange extra = entry.getArguments().take_back(extraTypes.size());
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
    ScoreDifferentiator diff(clone.getScore(), clone.getCaptures());
    if (failed(diff.build(*grad, sites))) {
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
  Operation *gradOp = b.create(state);
  clone->erase();
  g.setType(FunctionType::get(f.getContext(), g.getArgumentTypes(),
                              gradOp->getResultTypes()));
  b.setInsertionPointToEnd(&entry);
  func::ReturnOp::create(b, f.getLoc(), gradOp->getResults());
  return success();
}

namespace {
struct AttnDifferentiatePass
    : public mlir::attn::impl::AttnDifferentiateBase<AttnDifferentiatePass> {
  using AttnDifferentiateBase::AttnDifferentiateBase;
  void runOnOperation() override {
    ModuleOp module = getOperation();
    SymbolTable symbols(module);
    SmallVector<func::FuncOp> funcs(module.getOps<func::FuncOp>());
    bool found = false;
    for (func::FuncOp f : funcs) {
      if (f.isExternal() || (!funcName.empty() && f.getName() != funcName))
        continue;
      found = true;
      std::string why;
      AttentionOp op = eligibleAttention(f, why);
      if (!op) {
        if (funcName.empty())
          continue;
        f.emitError() << "attn-differentiate: function '" << f.getName() << "' "
                      << why;
        return signalPassFailure();
      }
      for (StringRef suffix : {"_forward", "_backward"})
        if (symbols.lookup((f.getName() + suffix).str())) {
          f.emitError() << "attn-differentiate: '" << f.getName() << suffix
                        << "' already exists";
          return signalPassFailure();
        }
      if (failed(buildBackward(f, op, lseGrad)))
        return signalPassFailure();
      buildForward(f, op);
    }
    if (!funcName.empty() && !found) {
      module.emitError() << "attn-differentiate: no function '" << funcName
                         << "'";
      return signalPassFailure();
    }
  }
};
} // namespace
