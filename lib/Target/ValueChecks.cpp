//===- ValueChecks.cpp - what a spec needs of its inputs' values ----------===//
//
// Part of attnc. The checks on input sizes and values that the types cannot
// express, found in the spec: log-gates of decays, token orders fixing a
// sequence length, batch and sequence sizes tied across q, k, v, gates and
// states, and the extents captured tensors need where the spec indexes them
// with i, j, b or h. Every launcher runs them (they travel in the kernel
// set's signature).
//
//===----------------------------------------------------------------------===//

#include "attnc/Target/ValueChecks.h"
#include "attnc/Dialect/Attn/Attn.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/Matchers.h"

#include <type_traits>

using namespace mlir;
using namespace mlir::attn;

namespace {
using IndexRole = std::pair<unsigned, unsigned>; // (input, dim)

/// Collects the checks of one function's attn ops.
class SpecChecker {
public:
  explicit SpecChecker(func::FuncOp func)
      : func(func), entry(&func.getBody().front()) {}

  attnc::InputChecks run();

private:
  func::FuncOp func;
  /// The function's arguments are this block's.
  Block *entry;
  attnc::InputChecks c;

  /// The function argument `v` is, if it is one.
  std::optional<unsigned> argIndex(Value v) const {
    auto arg = dyn_cast<BlockArgument>(v);
    if (arg && arg.getOwner() == entry)
      return arg.getArgNumber();
    return std::nullopt;
  }
  /// Linear attention and scans: log-gates, a token order's length, and
  /// the batch and sequence sizes tied to q's.
  void linearChecks(LinearOpInterface lin);
  /// Softmax attention (forward or backward): page tables, key counts,
  /// packed sequences, queries at the end, and the captured tensors' extents.
  template <typename OpT> void attentionChecks(OpT op);

  /// The per-op context of `scanRegion`.
  struct AttentionInputs {
    unsigned q;
    /// Key positions: k's dim 2, or a page table's width (in keys).
    IndexRole keys;
    bool queriesAtEnd = false, varlen = false;
    std::optional<unsigned> cuQ;
  };
  /// Extents of the captures `region` reads with tensor.extract at b, h, i
  /// or j (possibly divided by a constant); its index arguments start at
  /// `first`.
  void scanRegion(Region &region, unsigned first, const AttentionInputs &in);
  /// The (input, dim, divisor) that index `idx` of a read in `blk` ranges
  /// over, if it is an index argument (b of packed sequences excepted).
  std::optional<std::tuple<unsigned, unsigned, int64_t>>
  indexExtent(Value idx, Block &blk, unsigned first,
              const AttentionInputs &in) const;
};
} // namespace

void SpecChecker::linearChecks(LinearOpInterface lin) {
  Value decay = lin.getDecay();
  if (decay)
    if (auto i = argIndex(decay))
      c.logGates.push_back(*i);
  auto qi = argIndex(lin.getQ());
  if (!qi)
    return;
  if (TokenOrderAttr order = lin.getOrderAttr())
    c.lengths.push_back({*qi, 2u, order.getLength()});
  // Batch (dim 0) and sequence (dim 2) of k, v and per-token gates follow
  // q; an initial state's batch too.
  auto tie = [&](Value x, std::initializer_list<unsigned> dims) {
    if (!x)
      return;
    auto xi = argIndex(x);
    int64_t rank = cast<RankedTensorType>(x.getType()).getRank();
    if (xi)
      for (unsigned d : dims)
        if (int64_t(d) < rank)
          c.equalDims.push_back({*xi, d, *qi, d});
  };
  tie(lin.getK(), {0, 2});
  tie(lin.getV(), {0, 2});
  if (decay && cast<RankedTensorType>(decay.getType()).getRank() >= 3)
    tie(decay, {0, 2});
  tie(lin.getInitialState(), {0});
}

std::optional<std::tuple<unsigned, unsigned, int64_t>>
SpecChecker::indexExtent(Value idx, Block &blk, unsigned first,
                         const AttentionInputs &in) const {
  int64_t div = 1;
  if (auto d = idx.getDefiningOp<arith::DivUIOp>()) {
    APInt cst;
    if (!matchPattern(d.getRhs(), m_ConstantInt(&cst)) ||
        cst.getSExtValue() <= 0)
      return std::nullopt;
    div = cst.getSExtValue();
    idx = d.getLhs();
  }
  auto arg = dyn_cast<BlockArgument>(idx);
  if (!arg || arg.getOwner() != &blk || arg.getArgNumber() < first ||
      arg.getArgNumber() >= first + 4)
    return std::nullopt;
  // (b, h, i, j) -> (input, dim); query positions run up to Nk - 1 with
  // queries_at_end.
  IndexRole roles[] = {{in.q, 0u},
                       {in.q, 1u},
                       in.queriesAtEnd ? in.keys : IndexRole{in.q, 2u},
                       in.keys};
  // Packed sequences: b is a sequence (up to cu_seqlens' size - 1), which
  // no extent of an input states: checked per sequence (when not divided).
  if (in.varlen && arg.getArgNumber() == first)
    return std::nullopt;
  auto [input, dim] = roles[arg.getArgNumber() - first];
  return std::make_tuple(input, dim, div);
}

void SpecChecker::scanRegion(Region &region, unsigned first,
                             const AttentionInputs &in) {
  if (region.empty())
    return;
  Block &blk = region.front();
  auto isSequence = [&](Value idx) {
    auto arg = dyn_cast<BlockArgument>(idx);
    return in.varlen && arg && arg.getOwner() == &blk &&
           arg.getArgNumber() == first;
  };
  region.walk([&](tensor::ExtractOp ex) {
    auto ci = argIndex(ex.getTensor());
    if (!ci)
      return;
    for (auto [d, idx] : llvm::enumerate(ex.getIndices()))
      if (isSequence(idx) && in.cuQ)
        c.perSequence.push_back({*ci, unsigned(d), *in.cuQ});
      else if (auto r = indexExtent(idx, blk, first, in))
        c.minExtents.push_back({*ci, unsigned(d), std::get<0>(*r),
                                std::get<1>(*r), std::get<2>(*r)});
  });
}

template <typename OpT> void SpecChecker::attentionChecks(OpT op) {
  constexpr bool forward = std::is_same_v<OpT, AttentionOp>;
  auto qi = argIndex(op.getQ()), ki = argIndex(op.getK());
  if (!qi || !ki)
    return;
  AttentionInputs in{*qi, {*ki, 2u}};
  in.queriesAtEnd = bool(op.getQueriesAtEnd());
  if constexpr (forward) {
    if (op.isPaged()) {
      auto ti = argIndex(op.getPageTable()), vi = argIndex(op.getV());
      if (!ti || !vi)
        return;
      in.keys = {*ti, 1u};
      c.pageTables.push_back({*ti, *ki, op.getPageSize()});
      c.equalDims.push_back({*ki, 0u, *vi, 0u});
    }
    in.varlen = op.isVarlen();
    if (in.varlen)
      in.cuQ = argIndex(op.getCuSeqlensQ());
    if (op.getKvLens())
      if (auto li = argIndex(op.getKvLens()))
        c.kvLens.push_back(
            {*li, in.keys.first, in.keys.second, in.queriesAtEnd});
    if (in.varlen) {
      auto cq = in.cuQ, ck = argIndex(op.getCuSeqlensK());
      if (cq)
        c.cuSeqlens.push_back({*cq, *qi, 2u});
      if (ck)
        c.cuSeqlens.push_back({*ck, *ki, 2u});
      if (cq && ck)
        c.equalDims.push_back({*cq, 0u, *ck, 0u});
    }
  }
  // The queries are the last Nq of Nk positions: Nk >= Nq.
  if (in.queriesAtEnd && !in.varlen) {
    if (in.keys.second == 2u)
      c.minExtents.push_back({*ki, 2u, *qi, 2u, 1});
    else // A page table of M entries: M * S >= Nq.
      c.minExtents.push_back(
          {in.keys.first, 1u, *qi, 2u, c.pageTables.back().pageSize});
  }
  // The backward's regions read the captures as the forward's.
  scanRegion(op.getMask(), 0, in);  // (b, h, i, j)
  scanRegion(op.getScore(), 1, in); // (s, b, h, i, j)
  if constexpr (!forward)
    scanRegion(op.getScoreGrad(), 1, in);
}

attnc::InputChecks SpecChecker::run() {
  func.walk([&](Operation *op) {
    if (auto lin = dyn_cast<LinearOpInterface>(op))
      linearChecks(lin);
  });
  func.walk([&](Operation *op) {
    if (auto fwd = dyn_cast<AttentionOp>(op))
      attentionChecks(fwd);
    else if (auto grad = dyn_cast<AttentionGradOp>(op))
      attentionChecks(grad);
  });
  return std::move(c);
}

attnc::InputChecks mlir::attn::specValueChecks(mlir::func::FuncOp func) {
  return SpecChecker(func).run();
}
