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

attnc::InputChecks mlir::attn::specValueChecks(mlir::func::FuncOp func) {
  using attnc::InputChecks;
  InputChecks c;
  auto argIndex = [&](mlir::Value v) -> std::optional<unsigned> {
    auto arg = llvm::dyn_cast<mlir::BlockArgument>(v);
    if (arg && arg.getOwner() == &func.getBody().front())
      return arg.getArgNumber();
    return std::nullopt;
  };
  auto visit = [&](mlir::Value q, mlir::Value k, mlir::Value v,
                   mlir::Value decay, mlir::Value init,
                   mlir::attn::TokenOrderAttr order) {
    if (decay)
      if (auto i = argIndex(decay))
        c.logGates.push_back(*i);
    auto qi = argIndex(q);
    if (!qi)
      return;
    if (order)
      c.lengths.push_back({*qi, 2u, order.getLength()});
    // Batch (dim 0) and sequence (dim 2) of k, v and per-token gates follow
    // q; an initial state's batch too.
    auto tie = [&](mlir::Value x, std::initializer_list<unsigned> dims) {
      if (!x)
        return;
      auto xi = argIndex(x);
      int64_t rank = llvm::cast<mlir::RankedTensorType>(x.getType()).getRank();
      if (xi)
        for (unsigned d : dims)
          if (int64_t(d) < rank)
            c.equalDims.push_back({*xi, d, *qi, d});
    };
    tie(k, {0, 2});
    tie(v, {0, 2});
    if (decay &&
        llvm::cast<mlir::RankedTensorType>(decay.getType()).getRank() >= 3)
      tie(decay, {0, 2});
    tie(init, {0});
  };
  func.walk([&](mlir::Operation *op) {
    if (auto lin = llvm::dyn_cast<mlir::attn::LinearOpInterface>(op))
      visit(lin.getQ(), lin.getK(), lin.getV(), lin.getDecay(),
            lin.getInitialState(), lin.getOrderAttr());
  });
  // Captured tensors read with tensor.extract at i, j, b or h (possibly
  // divided by a constant) must cover those ranges; the backward's regions
  // read them as the forward's.
  auto captureExtents = [&](auto op) {
    auto qi = argIndex(op.getQ()), ki = argIndex(op.getK());
    if (!qi || !ki)
      return;
    // Key positions: k's dim 2, or a page table's width (in keys).
    std::pair<unsigned, unsigned> keys = {*ki, 2u};
    bool varlen = false;
    std::optional<unsigned> cuQ;
    if constexpr (std::is_same_v<decltype(op), mlir::attn::AttentionOp>) {
      if (op.isPaged()) {
        auto ti = argIndex(op.getPageTable()), vi = argIndex(op.getV());
        if (!ti || !vi)
          return;
        keys = {*ti, 1u};
        c.pageTables.push_back({*ti, *ki, op.getPageSize()});
        c.equalDims.push_back({*ki, 0u, *vi, 0u});
      }
      varlen = op.isVarlen();
      if (varlen)
        cuQ = argIndex(op.getCuSeqlensQ());
    }
    auto scan = [&](mlir::Region &region, unsigned first) {
      if (region.empty())
        return;
      mlir::Block &blk = region.front();
      // (b, h, i, j) -> (input, dim); query positions run up to Nk - 1
      // with queries_at_end.
      std::pair<unsigned, unsigned> roles[] = {
          {*qi, 0u},
          {*qi, 1u},
          op.getQueriesAtEnd() ? keys : std::pair{*qi, 2u},
          keys};
      auto classify = [&](mlir::Value idx)
          -> std::optional<std::tuple<unsigned, unsigned, int64_t>> {
        int64_t div = 1;
        if (auto d = idx.getDefiningOp<mlir::arith::DivUIOp>()) {
          llvm::APInt c;
          if (!mlir::matchPattern(d.getRhs(), mlir::m_ConstantInt(&c)) ||
              c.getSExtValue() <= 0)
            return std::nullopt;
          div = c.getSExtValue();
          idx = d.getLhs();
        }
        auto arg = llvm::dyn_cast<mlir::BlockArgument>(idx);
        if (!arg || arg.getOwner() != &blk || arg.getArgNumber() < first ||
            arg.getArgNumber() >= first + 4)
          return std::nullopt;
        auto [in, dim] = roles[arg.getArgNumber() - first];
        // Packed sequences: b is a sequence (up to cu_seqlens' size - 1),
        // which no extent of an input states: checked per sequence below
        // (when not divided).
        if (varlen && arg.getArgNumber() == first)
          return std::nullopt;
        return std::make_tuple(in, dim, div);
      };
      auto isSequence = [&](mlir::Value idx) {
        auto arg = llvm::dyn_cast<mlir::BlockArgument>(idx);
        return varlen && arg && arg.getOwner() == &blk &&
               arg.getArgNumber() == first;
      };
      region.walk([&](mlir::tensor::ExtractOp ex) {
        auto ci = argIndex(ex.getTensor());
        if (!ci)
          return;
        for (auto [d, idx] : llvm::enumerate(ex.getIndices()))
          if (isSequence(idx) && cuQ)
            c.perSequence.push_back({*ci, unsigned(d), *cuQ});
          else if (auto r = classify(idx))
            c.minExtents.push_back({*ci, unsigned(d), std::get<0>(*r),
                                    std::get<1>(*r), std::get<2>(*r)});
      });
    };
    // The queries are the last Nq of Nk positions: Nk >= Nq.
    if constexpr (std::is_same_v<decltype(op), mlir::attn::AttentionOp>) {
      if (op.getKvLens())
        if (auto li = argIndex(op.getKvLens()))
          c.kvLens.push_back(
              {*li, keys.first, keys.second, bool(op.getQueriesAtEnd())});
      if (varlen) {
        auto cq = argIndex(op.getCuSeqlensQ()),
             ck = argIndex(op.getCuSeqlensK());
        if (cq)
          c.cuSeqlens.push_back({*cq, *qi, 2u});
        if (ck)
          c.cuSeqlens.push_back({*ck, *ki, 2u});
        if (cq && ck)
          c.equalDims.push_back({*cq, 0u, *ck, 0u});
      }
    }
    if (op.getQueriesAtEnd() && !varlen) {
      if (keys.second == 2u)
        c.minExtents.push_back({*ki, 2u, *qi, 2u, 1});
      else // A page table of M entries: M * S >= Nq.
        c.minExtents.push_back(
            {keys.first, 1u, *qi, 2u, c.pageTables.back().pageSize});
    }
    scan(op.getMask(), 0);  // (b, h, i, j)
    scan(op.getScore(), 1); // (s, b, h, i, j)
    if constexpr (std::is_same_v<decltype(op), mlir::attn::AttentionGradOp>)
      scan(op.getScoreGrad(), 1);
  };
  func.walk([&](mlir::Operation *op) {
    if (auto fwd = llvm::dyn_cast<mlir::attn::AttentionOp>(op))
      captureExtents(fwd);
    else if (auto grad = llvm::dyn_cast<mlir::attn::AttentionGradOp>(op))
      captureExtents(grad);
  });
  return c;
}
