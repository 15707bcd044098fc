//===- SequenceParallelAttention.cpp - LASP-2H for softmax attention ------===//
//
// Part of attnc. The softmax layers of hybrid models under sequence
// parallelism (LASP-2H): every rank gathers all keys and values (one
// AllGather, in the runtime) and attends from its chunk of queries, whose
// mask and score regions see global query positions: the rank's offset is
// added to `i`. Masks stay exact across ranks (causal, windows, documents
// indexed by position), and the tiles a mask empties (keys after a causal
// rank's chunk) are skipped through the data-dependent block map.
//
//===----------------------------------------------------------------------===//

#include "SequenceParallel.h"
#include "attnc/Transforms/FunctionCloning.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"

using namespace mlir;
using namespace mlir::attn;

void lasp::offsetPositions(Region &r, unsigned index, Value offset,
                           Location loc) {
  Block &blk = r.front();
  Value t = blk.getArgument(index);
  // A region not attached to an op yet has no context: the location's.
  OpBuilder b(loc.getContext());
  b.setInsertionPointToStart(&blk);
  Value c0 = arith::ConstantIndexOp::create(b, loc, 0);
  Value off32 = tensor::ExtractOp::create(b, loc, offset, ValueRange{c0});
  Value off = arith::IndexCastOp::create(b, loc, b.getIndexType(), off32);
  auto global = arith::AddIOp::create(b, loc, t, off);
  t.replaceAllUsesExcept(global, global);
}

void lasp::buildLayout(func::FuncOp f, ArrayRef<int32_t> values) {
  OpBuilder b(f.getContext());
  b.setInsertionPointAfter(f);
  auto type = RankedTensorType::get({int64_t(values.size())}, b.getI32Type());
  auto g =
      func::FuncOp::create(b, f.getLoc(), (f.getName() + "_lasp_layout").str(),
                           b.getFunctionType({}, {type}));
  g.setVisibility(f.getVisibility());
  b.setInsertionPointToEnd(g.addEntryBlock());
  Value layout = arith::ConstantOp::create(
      b, g.getLoc(), DenseIntElementsAttr::get(type, values));
  func::ReturnOp::create(b, g.getLoc(), layout);
}

std::string lasp::whyNotAttention(AttentionOp op) {
  if (op.isPaged() || op.getKvLens() || op.isVarlen() || op.getSinks())
    return "is inference attention (pages, kv_lens, packed sequences or "
           "sinks), which has no sequence-parallel form";
  if (op.getQueriesAtEnd())
    return "aligns its queries to the end of the keys (queries_at_end): "
           "under LASP-2H the rank's offset places them";
  for (Value v : {op.getQ(), op.getK(), op.getV()})
    if (!isa<BlockArgument>(v))
      return "computes q, k or v in the function: the runtime gathers k and "
             "v and maps gradients to arguments, so they must be arguments";
  return "";
}

void lasp::buildAttentionPhases(func::FuncOp f, AttentionOp op) {
  Type offsetType =
      RankedTensorType::get({1}, IntegerType::get(f.getContext(), 32));
  IRMapping map;
  func::FuncOp g = cloneFunctionBody(f, (f.getName() + "_lasp_attention").str(),
                                     {offsetType}, f.getResultTypes(), map);
  auto clone = cast<AttentionOp>(map.lookup(op.getO()).getDefiningOp());
  Value offset = g.getArguments().back();
  // Without regions, positions do not matter: the offset is unused.
  if (!clone.getScore().empty() || !clone.getMask().empty())
    clone.getCapturesMutable().append(offset);
  // The analysis of the old regions no longer holds: the pipeline redoes it.
  clone.removeMaskInfoAttr();
  Location loc = clone.getLoc();
  if (!clone.getScore().empty())
    offsetPositions(clone.getScore(), 3, offset, loc); // (s, b, h, i, j)
  if (!clone.getMask().empty())
    offsetPositions(clone.getMask(), 2, offset, loc); // (b, h, i, j)
  auto ret = cast<func::ReturnOp>(f.getBody().front().getTerminator());
  SmallVector<Value> results;
  for (Value v : ret.getOperands())
    results.push_back(map.lookupOrDefault(v));
  OpBuilder b = OpBuilder::atBlockEnd(&g.getBody().front());
  func::ReturnOp::create(b, ret.getLoc(), results);
  auto argOf = [](Value v) {
    return int32_t(cast<BlockArgument>(v).getArgNumber());
  };
  buildLayout(f, {argOf(op.getQ()), argOf(op.getK()), argOf(op.getV()), -1, -1,
                  op.getLse() ? 1 : 0, 0, /*positional=*/1, /*kind=*/1});
}
