//===- RegionDifferentiator.cpp - forward-mode derivatives of regions -----===//
//
// Part of attnc. See RegionDifferentiator.h. Every float value of the
// region (scalar or vector) carries one tangent per seed (null = zero); the
// rules are the usual ones, and ops that are linear in their float operands
// (vector broadcasts, shuffles, extracts, add reductions) map tangents by
// applying the op to them.
//
//===----------------------------------------------------------------------===//

#include "attnc/Transforms/RegionDifferentiator.h"
#include "attnc/Dialect/Attn/Attn.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/IRMapping.h"
#include "mlir/IR/ImplicitLocOpBuilder.h"
#include "mlir/IR/TypeUtilities.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"
#include "llvm/ADT/TypeSwitch.h"

#include <optional>

using namespace mlir;
using namespace mlir::attn;

namespace {
/// Forward-mode derivatives of one region (see the header).
class RegionDifferentiator {
public:
  RegionDifferentiator(Region &score, ValueRange captures, StringRef kind)
      : score(score), captures(captures), kind(kind) {}

  /// Fills `grad` (empty) with the score_grad region.
  LogicalResult build(Region &grad, SmallVectorImpl<int64_t> &sites);
  /// Fills `jvp` (empty) with the feature map's tangent region.
  LogicalResult buildJvp(Region &jvp);

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
  /// A scalar or splat-vector constant.
  Value cst(Type t, double x) {
    if (auto vec = dyn_cast<VectorType>(t))
      return arith::ConstantOp::create(
          *b, DenseElementsAttr::get(vec,
                                     b->getFloatAttr(vec.getElementType(), x)));
    return arith::ConstantOp::create(*b, b->getFloatAttr(t, x));
  }
  /// The tangent of an op that is linear in its float operands: the op
  /// again on the operands' tangents (zeros where they have none).
  Value linearRule(Operation *op, ArrayRef<Value> t);
  /// The tangent of a max/min reduction: the tangent at the extremum.
  Value extremumRule(vector::ReductionOp op, ArrayRef<Value> t);
  /// Clones the primal region's block into a new block of `out` with
  /// `extraArgs` more arguments, differentiating every op; the builder is
  /// left at the block's end.
  LogicalResult differentiateBody(Region &out, TypeRange extraArgs);
  /// Clones and differentiates the primal ops in order.
  LogicalResult differentiateOps();
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
  /// The region's name in diagnostics.
  StringRef kind;
  std::optional<ImplicitLocOpBuilder> b;
  IRMapping map;
  unsigned numSeeds = 1;
  llvm::DenseMap<Value, Tangents> tangents;
  /// Sites in order: their tensor.extract ops.
  SmallVector<tensor::ExtractOp> siteOps;
};
} // namespace

/// Float scalars and vectors carry tangents.
static bool isFloat(Type t) { return isa<FloatType>(getElementTypeOrSelf(t)); }

Value RegionDifferentiator::linearRule(Operation *op, ArrayRef<Value> t) {
  // The zeros first: they must dominate the clone.
  SmallVector<Value> operands;
  for (auto [i, operand] : llvm::enumerate(op->getOperands()))
    operands.push_back(isFloat(operand.getType())
                           ? orZero(t[i], operand.getType())
                           : map.lookup(operand));
  // clone() maps op's result to the clone's: keep the primal mapping.
  Value primal = map.lookup(op->getResult(0));
  Operation *c = b->clone(*op, map);
  map.map(op->getResult(0), primal);
  c->setOperands(operands);
  return c->getResult(0);
}

Value RegionDifferentiator::extremumRule(vector::ReductionOp op,
                                         ArrayRef<Value> t) {
  if (!t[0])
    return Value();
  Value x = map.lookup(op.getVector());
  Value at =
      vector::BroadcastOp::create(*b, x.getType(), map.lookup(op.getResult()));
  Value hit = arith::CmpFOp::create(*b, arith::CmpFPredicate::OEQ, x, at);
  Value picked = arith::SelectOp::create(*b, hit, t[0], cst(x.getType(), 0.0));
  // Ties (measure zero) would add the tangents of every extremum.
  return vector::ReductionOp::create(*b, vector::CombiningKind::ADD, picked);
}

FailureOr<Value> RegionDifferentiator::rule(Operation *op, ArrayRef<Value> t) {
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
      .Case<vector::BroadcastOp, vector::ShuffleOp, vector::ExtractOp,
            vector::InsertOp, vector::TransposeOp, vector::ShapeCastOp,
            vector::ExtractStridedSliceOp, vector::InsertStridedSliceOp>(
          [&](Operation *lin) { return linearRule(lin, t); })
      .Case<vector::FMAOp>([&](auto) {
        return add(add(mul(t[0], x(1)), mul(x(0), t[1])), t[2]);
      })
      .Case<vector::ReductionOp>(
          [&](vector::ReductionOp red) -> FailureOr<Value> {
            switch (red.getKind()) {
            case vector::CombiningKind::ADD:
              return linearRule(red, t);
            case vector::CombiningKind::MAXIMUMF:
            case vector::CombiningKind::MINIMUMF:
            case vector::CombiningKind::MAXNUMF:
            case vector::CombiningKind::MINNUMF:
              if (red.getAcc())
                return failure();
              return extremumRule(red, t);
            default:
              return failure();
            }
          })
      .Case<vector::MultiDimReductionOp>(
          [&](vector::MultiDimReductionOp red) -> FailureOr<Value> {
            if (red.getKind() != vector::CombiningKind::ADD)
              return failure();
            return linearRule(red, t);
          })
      .Default([&](Operation *) -> FailureOr<Value> { return failure(); });
}

FailureOr<RegionDifferentiator::Tangents>
RegionDifferentiator::differentiate(Operation *op) {
  Tangents result(numSeeds);
  if (llvm::none_of(op->getResultTypes(), isFloat))
    return result; // integer and boolean values carry no derivative
  auto refuse = [&]() -> FailureOr<Tangents> {
    op->emitOpError()
        << "cannot be differentiated: attn-differentiate knows arith "
           "addf/subf/mulf/divf/negf/select/maximumf/minimumf/extf/truncf, "
           "math exp/exp2/log/log2/tanh/sqrt/rsqrt/sin/cos/absf/fma and "
           "vector broadcast/shuffle/extract/insert/transpose/shape_cast/"
           "fma, add reductions and max/min vector.reduction in a '"
        << kind << "' region";
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

LogicalResult RegionDifferentiator::differentiateBody(Region &out,
                                                      TypeRange extraArgs) {
  Block &fwd = score.front();
  SmallVector<Type> argTypes(fwd.getArgumentTypes());
  argTypes.append(extraArgs.begin(), extraArgs.end());
  SmallVector<Location> locs(argTypes.size(), score.getLoc());
  Block *blk = new Block();
  out.push_back(blk);
  blk->addArguments(argTypes, locs);
  map.map(fwd.getArguments(),
          blk->getArguments().take_front(fwd.getNumArguments()));
  // `out` belongs to no op yet: the builder takes the context from score.
  b.emplace(score.getLoc(), OpBuilder(score.getContext()));
  b->setInsertionPointToEnd(blk);
  return success();
}

/// Differentiates every op of `fwd` in order (clone, then tangents).
LogicalResult RegionDifferentiator::differentiateOps() {
  for (Operation &op : score.front().without_terminator()) {
    b->setLoc(op.getLoc());
    b->clone(op, map);
    FailureOr<Tangents> t = differentiate(&op);
    if (failed(t))
      return failure();
    if (op.getNumResults() == 1)
      tangents[op.getResult(0)] = std::move(*t);
  }
  return success();
}

/// Erases the primal values that no derivative reads.
static void eraseDeadOps(Block &blk) {
  SmallVector<Operation *> ops;
  for (Operation &op : blk.without_terminator())
    ops.push_back(&op);
  for (Operation *op : llvm::reverse(ops))
    if (op->use_empty() && isMemoryEffectFree(op))
      op->erase();
}

LogicalResult RegionDifferentiator::build(Region &grad,
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
  if (failed(differentiateBody(grad, {})))
    return failure();
  Value s = fwd.getArgument(0);
  tangents[s] = Tangents(numSeeds);
  tangents[s][0] = cst(s.getType(), 1.0);
  if (failed(differentiateOps()))
    return failure();
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
  eraseDeadOps(grad.front());
  return success();
}

LogicalResult RegionDifferentiator::buildJvp(Region &jvp) {
  Block &fwd = score.front();
  Value x = fwd.getArgument(0);
  if (failed(differentiateBody(jvp, {x.getType()})))
    return failure();
  numSeeds = 1;
  tangents[x] = Tangents{jvp.front().getArguments().back()};
  if (failed(differentiateOps()))
    return failure();
  Value out = fwd.getTerminator()->getOperand(0);
  Value t = tangentOf(out, 0);
  YieldOp::create(*b, t ? t : cst(out.getType(), 0.0));
  eraseDeadOps(jvp.front());
  return success();
}

LogicalResult
mlir::attn::buildScoreGradRegion(Region &score, ValueRange captures,
                                 Region &grad,
                                 SmallVectorImpl<int64_t> &sites) {
  return RegionDifferentiator(score, captures, "score").build(grad, sites);
}

LogicalResult mlir::attn::buildFeatureMapJvp(Region &map, Region &jvp) {
  return RegionDifferentiator(map, {}, "feature_map").buildJvp(jvp);
}
