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

namespace {
/// A read of a captured argument of the phase function at the query
/// position: `extract`'s index `dim` is the region's `i`.
struct QueryRead {
  tensor::ExtractOp extract;
  unsigned dim;
};
} // namespace

/// The reads in `r` of arguments of `g` at exactly the query position
/// (argument `index` of `r`), such as document ids `docs[i]`.
static SmallVector<QueryRead> queryReads(Region &r, unsigned index,
                                         func::FuncOp g) {
  SmallVector<QueryRead> reads;
  if (r.empty())
    return reads;
  Value i = r.front().getArgument(index);
  r.walk([&](tensor::ExtractOp ex) {
    auto arg = dyn_cast<BlockArgument>(ex.getTensor());
    if (!arg || arg.getOwner() != &g.getBody().front())
      return;
    for (auto [d, idx] : llvm::enumerate(ex.getIndices()))
      if (idx == i)
        reads.push_back({ex, unsigned(d)});
  });
  return reads;
}

/// Points each query-position read at a copy of its capture holding only
/// the rank's rows (a new argument of g, appended; the runtime passes the
/// slice), read at the local position `local`; returns (f's argument, dim)
/// per copy for the layout. Global positions would index the whole
/// capture at i + offset, which no launch can bound.
static SmallVector<int32_t> sliceQueryReads(func::FuncOp g, AttentionOp op,
                                            ArrayRef<QueryRead> reads,
                                            ArrayRef<Value> local) {
  SmallVector<int32_t> layout;
  llvm::SmallDenseMap<std::pair<Value, unsigned>, Value> copies;
  for (auto [read, i] : llvm::zip(reads, local)) {
    tensor::ExtractOp ex = read.extract;
    Value whole = ex.getTensor();
    Value &copy = copies[{whole, read.dim}];
    if (!copy) {
      unsigned n = g.getNumArguments();
      (void)g.insertArgument(n, whole.getType(), {}, whole.getLoc());
      copy = g.getArgument(n);
      op.getCapturesMutable().append(copy);
      layout.append({int32_t(cast<BlockArgument>(whole).getArgNumber()),
                     int32_t(read.dim)});
    }
    ex.getTensorMutable().assign(copy);
    ex.getIndicesMutable()[read.dim].assign(i);
  }
  return layout;
}

RankedTensorType lasp::scalarI32Type(MLIRContext *ctx) {
  return RankedTensorType::get({1}, IntegerType::get(ctx, 32));
}

void lasp::buildAttentionPhases(func::FuncOp f, AttentionOp op) {
  Type offsetType = lasp::scalarI32Type(f.getContext());
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
  // Regions (s, b, h, i, j) and (b, h, i, j): i is argument 3 and 2.
  SmallVector<QueryRead> reads = queryReads(clone.getScore(), 3, g);
  SmallVector<Value> local(reads.size(),
                           clone.getScore().empty()
                               ? Value()
                               : clone.getScore().front().getArgument(3));
  for (QueryRead r : queryReads(clone.getMask(), 2, g)) {
    reads.push_back(r);
    local.push_back(clone.getMask().front().getArgument(2));
  }
  if (!clone.getScore().empty())
    offsetPositions(clone.getScore(), 3, offset, loc);
  if (!clone.getMask().empty())
    offsetPositions(clone.getMask(), 2, offset, loc);
  SmallVector<int32_t> sliced = sliceQueryReads(g, clone, reads, local);
  auto ret = cast<func::ReturnOp>(f.getBody().front().getTerminator());
  SmallVector<Value> results;
  for (Value v : ret.getOperands())
    results.push_back(map.lookupOrDefault(v));
  OpBuilder b = OpBuilder::atBlockEnd(&g.getBody().front());
  func::ReturnOp::create(b, ret.getLoc(), results);
  auto argOf = [](Value v) {
    return int32_t(cast<BlockArgument>(v).getArgNumber());
  };
  SmallVector<int32_t> layout = {argOf(op.getQ()),
                                 argOf(op.getK()),
                                 argOf(op.getV()),
                                 -1,
                                 -1,
                                 op.getLse() ? 1 : 0,
                                 0,
                                 /*positional=*/1,
                                 /*kind=*/1};
  layout.append(sliced);
  buildLayout(f, layout);
}
