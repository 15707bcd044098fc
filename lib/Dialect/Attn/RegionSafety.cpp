//===- RegionSafety.cpp - defined behaviour of attn regions ---------------===//
//
// Part of attnc. See RegionSafety.h.
//
//===----------------------------------------------------------------------===//

#include "attnc/Dialect/Attn/RegionSafety.h"
#include "attnc/Analysis/MaskAnalysis.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/IR/Matchers.h"

using namespace mlir;
using namespace mlir::attn;

using Evaluator = IntervalEvaluator<ConstBackend>;

std::optional<CheckableIndex> mlir::attn::matchCheckableIndex(Value idx,
                                                              Block &block,
                                                              unsigned first,
                                                              unsigned count) {
  int64_t divisor = 1;
  if (auto d = idx.getDefiningOp<arith::DivUIOp>()) {
    APInt c;
    if (!matchPattern(d.getRhs(), m_ConstantInt(&c)) || !c.isStrictlyPositive())
      return std::nullopt;
    divisor = c.getSExtValue();
    idx = d.getLhs();
  }
  auto arg = dyn_cast<BlockArgument>(idx);
  if (!arg || arg.getOwner() != &block || arg.getArgNumber() < first ||
      arg.getArgNumber() >= first + count)
    return std::nullopt;
  return CheckableIndex{arg.getArgNumber() - first, divisor};
}

namespace {
/// The facts one region is verified under.
struct RegionFacts {
  Region &region;
  /// The first of the (b, h, i, j) arguments, if the region has them.
  std::optional<unsigned> firstIndexArg;
  /// Dynamic capture dimensions may be read at checkable indices.
  bool launchChecksExtents;
};
} // namespace

/// An evaluator with the region's arguments bound: indices to [0, 2^40] (the
/// evaluator's bound on sizes), the head to [0, heads - 1] when the heads are
/// known, other integers to their type's range.
static void bindArguments(Evaluator &ev, const RegionFacts &facts,
                          int64_t heads) {
  Block &block = facts.region.front();
  for (BlockArgument arg : block.getArguments()) {
    Type t = arg.getType();
    if (!t.isIntOrIndex() || t.isInteger(1))
      continue;
    if (t.isIndex()) {
      bool isHead = facts.firstIndexArg &&
                    arg.getArgNumber() == *facts.firstIndexArg + 1 && heads > 0;
      ev.bind(arg, 0, isHead ? heads - 1 : int64_t(1) << 40);
      continue;
    }
    auto [lo, hi] = Evaluator::typeRange(t);
    ev.bind(arg, int64_t(lo), int64_t(hi));
  }
}

static std::string rangeStr(const Evaluator::Itv &x) {
  return "[" + std::to_string(x.lo) + ", " + std::to_string(x.hi) + "]";
}

/// The divisor of `div` is never zero, and a signed division never divides
/// the type's minimum by -1 (both trap on x86 and are undefined in LLVM).
static LogicalResult checkDivision(Operation *div, Evaluator &ev) {
  Value x = div->getOperand(0), d = div->getOperand(1);
  if (matchPattern(d, m_Zero()))
    return div->emitOpError() << "divides by a constant zero";
  if (isa<VectorType>(d.getType())) {
    // Vector lanes are not modelled: a constant divisor other than 0 and -1.
    APInt c;
    if (matchPattern(d, m_ConstantInt(&c)) && !c.isAllOnes())
      return success();
    return div->emitOpError() << "divides vectors by a divisor other than a "
                                 "constant splat (not 0 or -1), which may "
                                 "be zero or overflow";
  }
  Evaluator::Itv dv = ev.evalInt(d);
  if (dv.top)
    return div->emitOpError()
           << "has a divisor the analysis cannot bound (it reads captured "
              "data or an operation it does not model), so it may be zero; "
              "clamp it away from zero, e.g. with arith.maxsi against 1";
  if (dv.lo <= 0 && dv.hi >= 0)
    return div->emitOpError()
           << "divides by a value in " << rangeStr(dv) << ", which may be zero";
  bool isSigned = isa<arith::DivSIOp, arith::CeilDivSIOp, arith::FloorDivSIOp,
                      arith::RemSIOp>(div);
  if (!isSigned || dv.lo > -1 || dv.hi < -1)
    return success();
  Evaluator::Itv xv = ev.evalInt(x);
  if (xv.top || xv.lo <= Evaluator::typeRange(x.getType()).first)
    return div->emitOpError()
           << "may divide the minimum of " << x.getType()
           << " by -1, which overflows; the dividend is "
           << (xv.top ? std::string("unbounded") : "in " + rangeStr(xv));
  return success();
}

/// One index of a capture read: `extent` elements from `idx` along dimension
/// `dim`; `upper` when the read must stay below the dimension's size
/// (vector.transfer_read masks what its in_bounds does not claim).
struct IndexUse {
  Value idx;
  unsigned dim;
  int64_t extent;
  bool upper;
};

static LogicalResult checkCaptureIndex(Operation *read, unsigned captureNo,
                                       RankedTensorType type,
                                       const IndexUse &use, Evaluator &ev,
                                       const RegionFacts &facts) {
  auto describe = [&]() {
    InFlightDiagnostic diag = read->emitOpError();
    diag << "reads capture #" << captureNo << " of type " << type << " ";
    return diag;
  };
  Evaluator::Itv x = ev.evalInt(use.idx);
  if (type.isDynamicDim(use.dim)) {
    if (facts.launchChecksExtents && facts.firstIndexArg &&
        matchCheckableIndex(use.idx, facts.region.front(), *facts.firstIndexArg,
                            4))
      return success();
    if (!use.upper && !x.top && x.lo >= 0)
      return success();
    return describe()
           << "along its dynamic dimension " << use.dim
           << " at an index no launch can check"
           << (x.top ? std::string() : " (in " + rangeStr(x) + ")")
           << "; index it with b, h, i or j (optionally divided by a positive "
              "constant with arith.divui) or give the dimension a static size";
  }
  int64_t size = type.getDimSize(use.dim);
  if (x.top)
    return describe() << "along dimension " << use.dim << " (" << size
                      << " elements) at an index the analysis cannot bound; "
                         "clamp it with arith.minsi / arith.maxsi";
  int64_t last = x.hi + use.extent - 1;
  if (x.lo < 0 || (use.upper && (x.hi > size - use.extent || last >= size)))
    return describe() << "along dimension " << use.dim << " (" << size
                      << " elements) at indices " << rangeStr(x)
                      << (use.extent > 1
                              ? " + " + std::to_string(use.extent - 1)
                              : std::string())
                      << ", outside the tensor";
  return success();
}

/// The indices a read of a captured tensor uses, or nullopt if `op` does not
/// read `captures`.
static std::optional<std::pair<Value, SmallVector<IndexUse>>>
captureReadOf(Operation *op) {
  if (auto ex = dyn_cast<tensor::ExtractOp>(op)) {
    SmallVector<IndexUse> uses;
    for (auto [d, idx] : llvm::enumerate(ex.getIndices()))
      uses.push_back({idx, unsigned(d), 1, true});
    return std::make_pair(ex.getTensor(), uses);
  }
  auto rd = dyn_cast<vector::TransferReadOp>(op);
  if (!rd || !isa<RankedTensorType>(rd.getBase().getType()))
    return std::nullopt;
  SmallVector<IndexUse> uses;
  for (auto [d, idx] : llvm::enumerate(rd.getIndices()))
    uses.push_back({idx, unsigned(d), 1, true});
  AffineMap map = rd.getPermutationMap();
  ArrayRef<int64_t> shape = rd.getVectorType().getShape();
  for (unsigned r = 0; r < map.getNumResults(); ++r) {
    auto dimExpr = dyn_cast<AffineDimExpr>(map.getResult(r));
    if (!dimExpr)
      continue; // a broadcast dimension reads one element
    IndexUse &use = uses[dimExpr.getPosition()];
    use.extent = shape[r];
    use.upper = rd.isDimInBounds(r);
  }
  return std::make_pair(rd.getBase(), uses);
}

/// Whether an op of `region` uses a value defined after it (a cycle through
/// the use-def chains, which the interval evaluator must not follow).
static bool usesValueBeforeDefinition(Region &region) {
  WalkResult r = region.walk([&](Operation *op) {
    for (Value v : op->getOperands()) {
      Operation *def = v.getDefiningOp();
      if (!def)
        continue;
      Operation *user = def->getBlock()->findAncestorOpInBlock(*op);
      if (user && !def->isBeforeInBlock(user))
        return WalkResult::interrupt();
    }
    return WalkResult::advance();
  });
  return r.wasInterrupted();
}

static LogicalResult verifyRegion(const RegionFacts &facts, int64_t heads,
                                  ValueRange captures) {
  // Op verifiers run before dominance is verified: a use before its
  // definition is reported there ("does not dominate this use").
  if (facts.region.empty() || usesValueBeforeDefinition(facts.region))
    return success();
  ConstBackend be;
  Evaluator ev(be);
  bindArguments(ev, facts, heads);
  WalkResult result = facts.region.walk([&](Operation *op) -> WalkResult {
    // MLIR 22's arith canonicalization (CmpFIntToFPConst) segfaults on these
    // predicates when an operand is converted from an integer.
    if (auto cmp = dyn_cast<arith::CmpFOp>(op);
        cmp && (cmp.getPredicate() == arith::CmpFPredicate::AlwaysTrue ||
                cmp.getPredicate() == arith::CmpFPredicate::AlwaysFalse)) {
      bool value = cmp.getPredicate() == arith::CmpFPredicate::AlwaysTrue;
      cmp.emitOpError() << "with predicate '"
                        << arith::stringifyCmpFPredicate(cmp.getPredicate())
                        << "' is a constant: write arith.constant "
                        << (value ? "true" : "false");
      return WalkResult::interrupt();
    }
    if (isa<arith::DivUIOp, arith::DivSIOp, arith::RemUIOp, arith::RemSIOp,
            arith::CeilDivSIOp, arith::CeilDivUIOp, arith::FloorDivSIOp>(op))
      return failed(checkDivision(op, ev)) ? WalkResult::interrupt()
                                           : WalkResult::advance();
    auto read = captureReadOf(op);
    if (!read)
      return WalkResult::advance();
    auto it = llvm::find(captures, read->first);
    if (it == captures.end())
      return WalkResult::advance();
    auto type = cast<RankedTensorType>(read->first.getType());
    for (const IndexUse &use : read->second)
      if (failed(checkCaptureIndex(op, unsigned(it - captures.begin()), type,
                                   use, ev, facts)))
        return WalkResult::interrupt();
    return WalkResult::advance();
  });
  return failure(result.wasInterrupted());
}

LogicalResult mlir::attn::verifyRegionSafety(Operation *op,
                                             ValueRange captures) {
  auto attention = dyn_cast<AttentionOp>(op);
  auto grad = dyn_cast<AttentionGradOp>(op);
  int64_t heads = attention ? attention.getNumQueryHeads()
                  : grad    ? grad.getNumQueryHeads()
                            : 0;
  if (heads == ShapedType::kDynamic)
    heads = 0;
  for (Region &region : op->getRegions()) {
    std::optional<unsigned> first;
    if (attention)
      first = &region == &attention.getScore() ? 1u : 0u;
    // The backward's score and score_grad regions take (s, b, h, i, j).
    if (grad)
      first = &region == &grad.getMask() ? 0u : 1u;
    RegionFacts facts{region, first,
                      /*launchChecksExtents=*/bool(attention || grad)};
    if (failed(verifyRegion(facts, heads, captures)))
      return failure();
  }
  return success();
}
