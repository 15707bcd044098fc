//===- MaskAnalysisImpl.h - interval evaluator bodies ------------*- C++
//-*-===//
//
// Part of attnc. Included from MaskAnalysis.h only.
//
//===----------------------------------------------------------------------===//
#ifndef ATTNC_ANALYSIS_MASKANALYSISIMPL_H
#define ATTNC_ANALYSIS_MASKANALYSISIMPL_H

#include "mlir/IR/Matchers.h"

namespace mlir::attn {

template <typename BE>
typename IntervalEvaluator<BE>::Itv IntervalEvaluator<BE>::evalInt(Value v) {
  if (isa<BlockArgument>(v))
    touchedArgs.insert(v);
  auto it = ints.find(v);
  if (it != ints.end())
    return it->second;
  Itv r = evalIntImpl(v);
  ints[v] = r;
  return r;
}

template <typename BE>
typename IntervalEvaluator<BE>::Tri IntervalEvaluator<BE>::evalBool(Value v) {
  if (isa<BlockArgument>(v))
    touchedArgs.insert(v);
  auto it = bools.find(v);
  if (it != bools.end())
    return it->second;
  Tri r = evalBoolImpl(v);
  bools[v] = r;
  return r;
}

template <typename BE>
typename IntervalEvaluator<BE>::Itv
IntervalEvaluator<BE>::evalIntImpl(Value v) {
  Itv top;
  if (isa<BlockArgument>(v)) {
    // Bound arguments are found by evalInt; anything else (the score value s,
    // an unbound argument) is not an integer we model.
    sawOpaque = true;
    return top;
  }
  Operation *op = v.getDefiningOp();

  llvm::APInt cst;
  if (matchPattern(v, m_ConstantInt(&cst))) {
    Itv r = point(be.cst(cst.getSExtValue()));
    r.constant = cst.getSExtValue();
    r.slo = r.shi = cst.getSExtValue();
    return r;
  }
  // i1 -> integer extension: [0, 1] narrowed by what the bool may be.
  if (isa<arith::ExtUIOp, arith::ExtSIOp>(op) &&
      op->getOperand(0).getType().isInteger(1)) {
    Tri t = evalBool(op->getOperand(0));
    V one = be.cst(isa<arith::ExtUIOp>(op) ? 1 : -1);
    V zero = be.cst(0);
    if (isa<arith::ExtUIOp>(op))
      return fit(
          range(be.sel(t.mayFalse, zero, one), be.sel(t.mayTrue, one, zero)), v,
          0, 1);
    return fit(
        range(be.sel(t.mayTrue, one, zero), be.sel(t.mayFalse, zero, one)), v,
        -1, 0);
  }
  // Casts keep the value where it fits the result type; an unsigned cast
  // also needs a value that is not negative.
  if (isa<arith::IndexCastOp, arith::ExtSIOp, arith::TruncIOp>(op)) {
    Itv a = evalInt(op->getOperand(0));
    return fit(a, v, a.slo, a.shi);
  }
  if (isa<arith::IndexCastUIOp, arith::ExtUIOp>(op)) {
    Itv a = evalInt(op->getOperand(0));
    if (!a.top && a.slo < 0) {
      sawOpaque = true;
      return top;
    }
    return fit(a, v, a.slo, a.shi);
  }

  auto binary = [&]() -> std::pair<Itv, Itv> {
    return {evalInt(op->getOperand(0)), evalInt(op->getOperand(1))};
  };
  using I128 = __int128;
  if (isa<arith::AddIOp>(op)) {
    auto [a, b] = binary();
    if (a.top || b.top)
      return top;
    return fit(range(be.add(a.lo, b.lo), be.add(a.hi, b.hi)), v,
               I128(a.slo) + b.slo, I128(a.shi) + b.shi);
  }
  if (isa<arith::SubIOp>(op)) {
    auto [a, b] = binary();
    if (a.top || b.top)
      return top;
    return fit(range(be.sub(a.lo, b.hi), be.sub(a.hi, b.lo)), v,
               I128(a.slo) - b.shi, I128(a.shi) - b.slo);
  }
  if (isa<arith::MulIOp>(op)) {
    auto [a, b] = binary();
    if (a.top || b.top)
      return top;
    I128 s1 = I128(a.slo) * b.slo, s2 = I128(a.slo) * b.shi;
    I128 s3 = I128(a.shi) * b.slo, s4 = I128(a.shi) * b.shi;
    I128 slo = std::min(std::min(s1, s2), std::min(s3, s4));
    I128 shi = std::max(std::max(s1, s2), std::max(s3, s4));
    if (a.constant)
      std::swap(a, b);
    if (b.constant) {
      V c = be.cst(*b.constant);
      if (*b.constant >= 0)
        return fit(range(be.mul(a.lo, c), be.mul(a.hi, c)), v, slo, shi);
      return fit(range(be.mul(a.hi, c), be.mul(a.lo, c)), v, slo, shi);
    }
    V p1 = be.mul(a.lo, b.lo), p2 = be.mul(a.lo, b.hi);
    V p3 = be.mul(a.hi, b.lo), p4 = be.mul(a.hi, b.hi);
    return fit(range(be.min(be.min(p1, p2), be.min(p3, p4)),
                     be.max(be.max(p1, p2), be.max(p3, p4))),
               v, slo, shi);
  }
  if (isa<arith::DivSIOp, arith::DivUIOp, arith::FloorDivSIOp,
          arith::CeilDivSIOp, arith::CeilDivUIOp>(op)) {
    auto [a, b] = binary();
    if (a.top || !b.constant || *b.constant == 0) {
      sawOpaque |= !a.top;
      return top;
    }
    int64_t c = *b.constant;
    bool isUnsigned = isa<arith::DivUIOp, arith::CeilDivUIOp>(op);
    if (isUnsigned && c < 0) {
      sawOpaque = true;
      return top;
    }
    if (isUnsigned && c == 1)
      return a;
    // x / -1 overflows at the type's minimum (a trap on x86): never evaluate
    // it there.
    if (!isUnsigned && c == -1 && a.slo <= typeRange(v.getType()).first) {
      sawOpaque = true;
      return top;
    }
    // Static bounds: the quotient's magnitude is at most the dividend's
    // (rounded up), with the sign of x / c.
    I128 m = std::max(-I128(a.slo), I128(a.shi)) / (c > 0 ? c : -I128(c)) + 1;
    I128 qlo = -m, qhi = m;
    if (a.slo >= 0)
      (c > 0 ? qlo : qhi) = 0;
    if (a.shi <= 0)
      (c > 0 ? qhi : qlo) = 0;
    auto apply = [&](V x) {
      if (isa<arith::FloorDivSIOp>(op))
        return be.divFloor(x, c);
      if (isa<arith::CeilDivSIOp, arith::CeilDivUIOp>(op))
        return be.divCeil(x, c);
      return be.divTrunc(x, c);
    };
    // x -> x / c is monotone (non-decreasing for c > 0).
    Itv r = c > 0 ? range(apply(a.lo), apply(a.hi))
                  : range(apply(a.hi), apply(a.lo));
    if (isUnsigned && a.slo < 0) {
      // A negative x reads as 2^w + x: the quotient is in [0, (2^w - 1) / c]
      // (c >= 2, so it stays below 2^(w-1)).
      I128 big = ((I128(typeRange(v.getType()).second) + 1) * 2 - 1) / c;
      B neg = mayNeg(a);
      r.lo = be.sel(neg, be.cst(0), r.lo);
      r.hi = be.sel(neg, be.cst(int64_t(big)), r.hi);
      qlo = 0;
      qhi = std::max(qhi, big);
    }
    return fit(r, v, qlo, qhi);
  }
  if (isa<arith::RemSIOp, arith::RemUIOp>(op)) {
    auto [a, b] = binary();
    if (a.top || !b.constant || *b.constant <= 0) {
      sawOpaque |= !a.top;
      return top;
    }
    int64_t c = *b.constant;
    B nonNeg = be.bnot(mayNeg(a));
    B sameBlock =
        be.band(nonNeg, be.eq(be.divTrunc(a.lo, c), be.divTrunc(a.hi, c)));
    V lo = be.sel(sameBlock, be.rem(a.lo, c),
                  be.sel(nonNeg, be.cst(0), be.cst(-(c - 1))));
    V hi = be.sel(sameBlock, be.rem(a.hi, c), be.cst(c - 1));
    bool isUnsigned = isa<arith::RemUIOp>(op);
    if (isUnsigned) {
      // Negative inputs wrap for unsigned remainder: any residue.
      lo = be.sel(nonNeg, lo, be.cst(0));
      hi = be.sel(nonNeg, hi, be.cst(c - 1));
    }
    I128 slo = a.slo >= 0 || isUnsigned ? 0 : -(I128(c) - 1);
    I128 shi = a.slo >= 0 ? std::min(I128(a.shi), I128(c) - 1) : I128(c) - 1;
    return fit(range(lo, hi), v, slo, shi);
  }
  if (isa<arith::MinSIOp, arith::MaxSIOp, arith::MinUIOp, arith::MaxUIOp>(op)) {
    auto [a, b] = binary();
    if (a.top && b.top)
      return top;
    if (a.top || b.top)
      return clampOfTop(isa<arith::MinSIOp>(op), isa<arith::MaxSIOp>(op),
                        a.top ? b : a, v);
    bool isMin = isa<arith::MinSIOp, arith::MinUIOp>(op);
    Itv r = isMin ? range(be.min(a.lo, b.lo), be.min(a.hi, b.hi))
                  : range(be.max(a.lo, b.lo), be.max(a.hi, b.hi));
    if (isa<arith::MinUIOp, arith::MaxUIOp>(op)) {
      // A negative value is the largest unsigned one; the result is still
      // one of the operands: their union bounds it.
      B neg = be.bor(mayNeg(a), mayNeg(b));
      r.lo = be.sel(neg, be.min(a.lo, b.lo), r.lo);
      r.hi = be.sel(neg, be.max(a.hi, b.hi), r.hi);
      if (a.slo < 0 || b.slo < 0)
        return fit(r, v, std::min(a.slo, b.slo), std::max(a.shi, b.shi));
    }
    return isMin ? fit(r, v, std::min(a.slo, b.slo), std::min(a.shi, b.shi))
                 : fit(r, v, std::max(a.slo, b.slo), std::max(a.shi, b.shi));
  }
  if (isa<arith::AndIOp>(op)) {
    // x & c with a constant c >= 0 is in [0, c] (and at most x when x >= 0).
    auto [a, b] = binary();
    if (a.constant)
      std::swap(a, b);
    if (!b.constant || *b.constant < 0) {
      sawOpaque = true;
      return top;
    }
    V c = be.cst(*b.constant);
    if (a.top || a.slo < 0)
      return fit(range(be.cst(0), c), v, 0, *b.constant);
    return fit(range(be.cst(0), be.min(a.hi, c)), v, 0,
               std::min(a.shi, *b.constant));
  }
  if (isa<arith::ShLIOp>(op)) {
    // x << c is x * 2^c (top where that leaves the type).
    auto [a, b] = binary();
    if (a.top || !b.constant || *b.constant < 0 || *b.constant >= 62) {
      sawOpaque |= !a.top;
      return top;
    }
    int64_t p = int64_t(1) << *b.constant;
    return fit(range(be.mul(a.lo, be.cst(p)), be.mul(a.hi, be.cst(p))), v,
               I128(a.slo) * p, I128(a.shi) * p);
  }
  if (isa<arith::ShRUIOp, arith::ShRSIOp>(op)) {
    // x >> c of a non-negative x is floor(x / 2^c).
    auto [a, b] = binary();
    unsigned w = typeWidth(v.getType());
    if (a.top || a.slo < 0 || !b.constant || *b.constant < 0 ||
        *b.constant >= int64_t(w) || *b.constant >= 62) {
      sawOpaque |= !a.top;
      return top;
    }
    int64_t p = int64_t(1) << *b.constant;
    return fit(range(be.divFloor(a.lo, p), be.divFloor(a.hi, p)), v, a.slo / p,
               a.shi / p);
  }
  if (auto abs = dyn_cast<math::AbsIOp>(op)) {
    Itv a = evalInt(abs.getOperand());
    if (a.top)
      return top;
    V zero = be.cst(0);
    V negLo = be.sub(zero, a.lo), negHi = be.sub(zero, a.hi);
    V lo =
        be.sel(be.le(zero, a.lo), a.lo, be.sel(be.le(a.hi, zero), negHi, zero));
    // |min| does not fit: fit() turns that into top.
    I128 slo = a.slo >= 0 ? I128(a.slo) : a.shi <= 0 ? -I128(a.shi) : 0;
    return fit(range(lo, be.max(negLo, a.hi)), v, slo,
               std::max(-I128(a.slo), I128(a.shi)));
  }
  if (auto sel = dyn_cast<arith::SelectOp>(op)) {
    Tri c = evalBool(sel.getCondition());
    Itv a = evalInt(sel.getTrueValue()), b = evalInt(sel.getFalseValue());
    if (a.top || b.top)
      return top;
    B onlyA = be.bnot(c.mayFalse), onlyB = be.bnot(c.mayTrue);
    V lo = be.sel(onlyA, a.lo, be.sel(onlyB, b.lo, be.min(a.lo, b.lo)));
    V hi = be.sel(onlyA, a.hi, be.sel(onlyB, b.hi, be.max(a.hi, b.hi)));
    return fit(range(lo, hi), v, std::min(a.slo, b.slo),
               std::max(a.shi, b.shi));
  }
  if (isa<tensor::ExtractOp>(op))
    sawData = true;
  else
    sawOpaque = true;
  return top;
}

template <typename BE>
typename IntervalEvaluator<BE>::Tri
IntervalEvaluator<BE>::evalBoolImpl(Value v) {
  if (isa<BlockArgument>(v)) {
    sawOpaque = true;
    return unknown();
  }
  Operation *op = v.getDefiningOp();
  llvm::APInt cst;
  if (matchPattern(v, m_ConstantInt(&cst))) {
    bool t = !cst.isZero();
    return {be.bcst(t), be.bcst(!t)};
  }
  if (auto cmp = dyn_cast<arith::CmpIOp>(op)) {
    Itv a = evalInt(cmp.getLhs()), b = evalInt(cmp.getRhs());
    if (a.top || b.top)
      return unknown();
    using P = arith::CmpIPredicate;
    P pred = cmp.getPredicate();
    bool isUnsigned =
        pred == P::ult || pred == P::ule || pred == P::ugt || pred == P::uge;
    // Normalize to a < b, a <= b, a == b, a != b.
    if (pred == P::sgt || pred == P::ugt || pred == P::sge || pred == P::uge)
      std::swap(a, b);
    Tri r;
    switch (pred) {
    case P::slt:
    case P::ult:
    case P::sgt:
    case P::ugt:
      r = {be.lt(a.lo, b.hi), be.le(b.lo, a.hi)};
      break;
    case P::sle:
    case P::ule:
    case P::sge:
    case P::uge:
      r = {be.le(a.lo, b.hi), be.lt(b.lo, a.hi)};
      break;
    case P::eq:
    case P::ne: {
      B disjoint = be.bor(be.lt(a.hi, b.lo), be.lt(b.hi, a.lo));
      B samePoint = be.band(be.band(be.eq(a.lo, a.hi), be.eq(b.lo, b.hi)),
                            be.eq(a.lo, b.lo));
      r = {be.bnot(disjoint), be.bnot(samePoint)};
      if (pred == P::ne)
        std::swap(r.mayTrue, r.mayFalse);
      break;
    }
    }
    if (isUnsigned) {
      // Negative operands compare as huge unsigned values: unknown there.
      B neg = be.bor(mayNeg(a), mayNeg(b));
      r.mayTrue = be.bor(neg, r.mayTrue);
      r.mayFalse = be.bor(neg, r.mayFalse);
    }
    return r;
  }
  if (isa<arith::AndIOp, arith::OrIOp, arith::XOrIOp>(op)) {
    Tri a = evalBool(op->getOperand(0)), b = evalBool(op->getOperand(1));
    if (isa<arith::AndIOp>(op))
      return {be.band(a.mayTrue, b.mayTrue), be.bor(a.mayFalse, b.mayFalse)};
    if (isa<arith::OrIOp>(op))
      return {be.bor(a.mayTrue, b.mayTrue), be.band(a.mayFalse, b.mayFalse)};
    return {
        be.bor(be.band(a.mayTrue, b.mayFalse), be.band(a.mayFalse, b.mayTrue)),
        be.bor(be.band(a.mayTrue, b.mayTrue), be.band(a.mayFalse, b.mayFalse))};
  }
  if (auto sel = dyn_cast<arith::SelectOp>(op)) {
    Tri c = evalBool(sel.getCondition());
    Tri a = evalBool(sel.getTrueValue()), b = evalBool(sel.getFalseValue());
    return {
        be.bor(be.band(c.mayTrue, a.mayTrue), be.band(c.mayFalse, b.mayTrue)),
        be.bor(be.band(c.mayTrue, a.mayFalse),
               be.band(c.mayFalse, b.mayFalse))};
  }
  if (isa<arith::TruncIOp>(op) || isa<tensor::ExtractOp>(op)) {
    // Reading a data-dependent boolean (e.g. a captured i1 block layout).
    if (isa<tensor::ExtractOp>(op))
      sawData = true;
    else
      sawOpaque = true;
    return unknown();
  }
  sawOpaque = true;
  return unknown();
}

/// Evaluates the combined mask of `op` over b, the heads [h0, h1] and the
/// index rectangle [i0, i1] x [j0, j1] (inclusive): returns (may be true,
/// may be false).
/// `known` gives ranges of values of the regions that the evaluator cannot
/// bound itself (a captured tensor's values over the tile, read at run time).
template <typename BE>
std::pair<typename BE::B, typename BE::B> evalTileMaskOverHeads(
    BE &be, AttentionOp op, const MaskStructure &ms, typename BE::V b,
    typename BE::V h0, typename BE::V h1, typename BE::V i0, typename BE::V i1,
    typename BE::V j0, typename BE::V j1,
    ArrayRef<std::tuple<Value, typename BE::V, typename BE::V>> known = {}) {
  IntervalEvaluator<BE> ev(be);
  for (auto [v, lo, hi] : known)
    ev.bind(v, lo, hi);
  auto bindAll = [&](Region &r, unsigned first) {
    if (r.empty())
      return;
    Block &blk = r.front();
    ev.bind(blk.getArgument(first), b, b);
    ev.bind(blk.getArgument(first + 1), h0, h1);
    ev.bind(blk.getArgument(first + 2), i0, i1);
    ev.bind(blk.getArgument(first + 3), j0, j1);
  };
  bindAll(op.getMask(), 0);
  bindAll(op.getScore(), 1);
  typename BE::B mayTrue = be.bcst(true), mayFalse = be.bcst(false);
  auto combine = [&](Value cond, bool negate) {
    auto t = ev.evalBool(cond);
    if (negate)
      std::swap(t.mayTrue, t.mayFalse);
    mayTrue = be.band(mayTrue, t.mayTrue);
    mayFalse = be.bor(mayFalse, t.mayFalse);
  };
  if (ms.maskValue)
    combine(ms.maskValue, false);
  if (ms.scoreKeep)
    combine(ms.scoreKeep, ms.scoreKeepNegated);
  return {mayTrue, mayFalse};
}

/// evalTileMaskOverHeads for the one head `h`.
template <typename BE>
std::pair<typename BE::B, typename BE::B> evalTileMask(
    BE &be, AttentionOp op, const MaskStructure &ms, typename BE::V b,
    typename BE::V h, typename BE::V i0, typename BE::V i1, typename BE::V j0,
    typename BE::V j1,
    ArrayRef<std::tuple<Value, typename BE::V, typename BE::V>> known = {}) {
  return evalTileMaskOverHeads(be, op, ms, b, h, h, i0, i1, j0, j1, known);
}

} // namespace mlir::attn

#endif // ATTNC_ANALYSIS_MASKANALYSISIMPL_H
