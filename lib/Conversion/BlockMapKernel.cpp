//===- BlockMapKernel.cpp - the attention kernels' block map --------------===//
//
// Part of attnc. Masks on captured data (documents, block layouts, opaque
// masks) cannot be classified per tile from index intervals alone: a kernel
// launched before the main kernel, one thread block per (q tile, kv tile,
// slice), writes one i8 class per tile (0 empty, 1 partial, 2 full) to the
// block map the main kernel reads. Phases:
//  1. the tile's class from the index intervals (partial when undecided);
//  2. for a document mask (a capture equality), the ranges of the values
//     the tile's rows and columns read, and one load for each read of
//     captured integers at indices that are the same for the whole tile;
//  3. the tile's class with those reads bound to their ranges;
//  4. every element of a tile still undecided, in parallel;
//  5. the class stored by thread 0.
//
//===----------------------------------------------------------------------===//

#include "AttnKernel.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"

#include <limits>
#include <optional>

using namespace mlir;
using namespace mlir::attn;
using namespace mlir::attn::detail;
using arith::CmpIPredicate;

namespace {
/// A conjunct `cap_a[.., i, ..] == cap_b[.., j, ..]` of a mask region (a
/// document mask): the extract reading at the query index i and the one
/// reading at the key index j, each indexed otherwise only by b, h or
/// constants, holding integers of at most 32 bits.
struct CaptureEquality {
  tensor::ExtractOp atI, atJ;
};

/// Whether `ex` reads an integer capture of at most 32 bits at `want` (and
/// otherwise only at b, h or constants, never at `other`).
bool indexedBy(Block &blk, tensor::ExtractOp ex, Value want, Value other) {
  auto t = cast<RankedTensorType>(ex.getTensor().getType());
  if (!t.getElementType().isSignlessInteger() ||
      t.getElementType().getIntOrFloatBitWidth() > 32)
    return false;
  bool found = false;
  for (Value ix : ex.getIndices()) {
    if (ix == want) {
      found = true;
      continue;
    }
    auto arg = dyn_cast<BlockArgument>(ix);
    bool bh = arg && arg.getOwner() == &blk && arg.getArgNumber() < 2;
    if (ix == other || (!bh && !ix.getDefiningOp<arith::ConstantOp>()))
      return false;
  }
  return found;
}

std::optional<CaptureEquality> findCaptureEquality(AttentionOp op) {
  if (!op.hasMaskRegion())
    return std::nullopt;
  Block &blk = op.getMask().front();
  Value iArg = blk.getArgument(2), jArg = blk.getArgument(3);
  SmallVector<Value> work = {blk.getTerminator()->getOperand(0)};
  while (!work.empty()) {
    Operation *d = work.pop_back_val().getDefiningOp();
    if (!d)
      continue;
    if (auto a = dyn_cast<arith::AndIOp>(d)) {
      work.push_back(a.getLhs());
      work.push_back(a.getRhs());
      continue;
    }
    auto cmp = dyn_cast<arith::CmpIOp>(d);
    if (!cmp || cmp.getPredicate() != CmpIPredicate::eq)
      continue;
    auto x = cmp.getLhs().getDefiningOp<tensor::ExtractOp>();
    auto y = cmp.getRhs().getDefiningOp<tensor::ExtractOp>();
    if (!x || !y)
      continue;
    if (indexedBy(blk, x, iArg, jArg) && indexedBy(blk, y, jArg, iArg))
      return CaptureEquality{x, y};
    if (indexedBy(blk, y, iArg, jArg) && indexedBy(blk, x, jArg, iArg))
      return CaptureEquality{y, x};
  }
  return std::nullopt;
}

/// The tile of a block-map thread block: its indices, first and last row
/// and column (inclusive), and its row and column counts.
struct MapTile {
  Value qt, kt, slice;
  /// The first and last query positions (rows, or rows + Nk - Nq with
  /// queries_at_end) and keys.
  Value i0, i1, j0, j1;
  Value rows, cols;
};

/// A captured read of the mask region bound to the range [lo, hi] over the
/// tile.
using KnownRange = std::tuple<Value, Value, Value>;

class BlockMapKernel : public AttnKernelBase {
public:
  BlockMapKernel(const AttnKernelConfig &cfg, ImplicitLocOpBuilder &b,
                 AttnKernelArgs args, AttnThreadIds ids, MapTile tile,
                 Value flags)
      : AttnKernelBase(cfg, b, std::move(args), ids), tile(tile), flags(flags) {
  }

  void emit();

private:
  const MapTile tile;
  /// Shared i32 slots: any element true, any false, then the (min, max) of
  /// the document values of the rows and of the columns.
  const Value flags;

  void initFlags(Value first, Value zero32,
                 const std::optional<CaptureEquality> &capEq);
  /// Reads the capture of `ex` at index `idx` for the mask's i (or j).
  Value readCaptureAt(tensor::ExtractOp ex, Value idx);
  /// The document ranges of the tile's rows and columns (phase 2).
  void captureRanges(Value partial, CaptureEquality capEq,
                     SmallVectorImpl<KnownRange> &known);
  /// One load per read of captured integers at indices constant over the
  /// tile (phase 2).
  void pointReads(Value partial, const std::optional<CaptureEquality> &capEq,
                  SmallVectorImpl<KnownRange> &known);
  /// Every element of an undecided tile (phase 4): ors into flags 0 and 1.
  void evaluateElements(Value evaluate, Value zero32);
  /// Thread 0 stores the tile's class (phase 5).
  void storeClass(Value first, Value partial, Value cls, Value zero32);
};
} // namespace

void BlockMapKernel::initFlags(Value first, Value zero32,
                               const std::optional<CaptureEquality> &capEq) {
  Type i32 = b.getI32Type();
  e.ifThen(first, [&] {
    memref::StoreOp::create(b, zero32, flags, ValueRange{ids.c0});
    memref::StoreOp::create(b, zero32, flags, ValueRange{ids.c1});
    if (!capEq)
      return;
    for (int64_t k = 0; k < 4; ++k)
      memref::StoreOp::create(b,
                              arith::ConstantIntOp::create(
                                  b, i32,
                                  k % 2 == 0
                                      ? std::numeric_limits<int32_t>::max()
                                      : std::numeric_limits<int32_t>::min()),
                              flags, ValueRange{cIdx(2 + k)});
  });
}

Value BlockMapKernel::readCaptureAt(tensor::ExtractOp ex, Value idx) {
  Block &blk = op.getMask().front();
  Value regionArgs[4] = {ids.bi, ids.h, idx, idx};
  SmallVector<Value> ix;
  for (Value v : ex.getIndices()) {
    if (auto arg = dyn_cast<BlockArgument>(v); arg && arg.getOwner() == &blk)
      ix.push_back(regionArgs[arg.getArgNumber()]);
    else
      ix.push_back(b.clone(*v.getDefiningOp())->getResult(0));
  }
  Value x = memref::LoadOp::create(b, args.capMap.lookup(ex.getTensor()), ix);
  Type i32 = b.getI32Type();
  if (x.getType() != i32)
    x = arith::ExtSIOp::create(b, i32, x);
  return x;
}

void BlockMapKernel::captureRanges(Value partial, CaptureEquality capEq,
                                   SmallVectorImpl<KnownRange> &known) {
  // One pass over the tile's rows and columns instead of all its elements.
  auto minMax = [&](Value x, int64_t slot) {
    memref::AtomicRMWOp::create(b, arith::AtomicRMWKind::mins, x, flags,
                                ValueRange{cIdx(slot)});
    memref::AtomicRMWOp::create(b, arith::AtomicRMWKind::maxs, x, flags,
                                ValueRange{cIdx(slot + 1)});
  };
  e.ifThen(partial, [&] {
    e.loop(ids.tid, e.addi(tile.rows, tile.cols), cIdx(cfg.threads()),
           ValueRange{}, [&](Value t, ValueRange) -> SmallVector<Value> {
             Value isRow = e.cmpi(CmpIPredicate::ult, t, tile.rows);
             e.ifElse(
                 isRow, {},
                 [&] {
                   minMax(readCaptureAt(capEq.atI, e.addi(tile.i0, t)), 2);
                   return SmallVector<Value>{};
                 },
                 [&] {
                   minMax(readCaptureAt(capEq.atJ,
                                        e.addi(tile.j0, e.subi(t, tile.rows))),
                          4);
                   return SmallVector<Value>{};
                 });
             return SmallVector<Value>{};
           });
  });
  gpu::BarrierOp::create(b);
  auto slot = [&](int64_t k) {
    return arith::IndexCastOp::create(
               b, b.getIndexType(),
               memref::LoadOp::create(b, flags, ValueRange{cIdx(k)}))
        .getResult();
  };
  known.push_back({capEq.atI.getResult(), slot(2), slot(3)});
  known.push_back({capEq.atJ.getResult(), slot(4), slot(5)});
}

void BlockMapKernel::pointReads(Value partial,
                                const std::optional<CaptureEquality> &capEq,
                                SmallVectorImpl<KnownRange> &known) {
  // A block layout read at (i / 128, j / 128) on a 128 x 128 tile: one load
  // each, made only where the indices' intervals over the tile are points.
  IRBackend be(b);
  IntervalEvaluator<IRBackend> ev(be);
  Block &blk = op.getMask().front();
  ev.bind(blk.getArgument(0), ids.bi, ids.bi);
  ev.bind(blk.getArgument(1), ids.h, ids.h);
  ev.bind(blk.getArgument(2), tile.i0, tile.i1);
  ev.bind(blk.getArgument(3), tile.j0, tile.j1);
  blk.walk([&](tensor::ExtractOp ex) {
    auto ty = dyn_cast<IntegerType>(ex.getType());
    if (!ty || ty.getWidth() < 2 || ty.getWidth() > 32 ||
        (capEq && (ex == capEq->atI || ex == capEq->atJ)))
      return;
    Value point = e.i1(true);
    SmallVector<Value> at;
    for (Value ix : ex.getIndices()) {
      auto itv = ev.evalInt(ix);
      if (itv.top)
        return;
      point = b.createOrFold<arith::AndIOp>(
          point, e.cmpi(CmpIPredicate::eq, itv.lo, itv.hi));
      at.push_back(itv.lo);
    }
    Value use = b.createOrFold<arith::AndIOp>(partial, point);
    Value x = e.ifElse(
        use, {b.getIndexType()},
        [&] {
          Value v =
              memref::LoadOp::create(b, args.capMap.lookup(ex.getTensor()), at);
          // index_cast sign-extends any integer width to index (an extsi
          // to i32 first was invalid on i32 captures).
          return SmallVector<Value>{
              arith::IndexCastOp::create(b, b.getIndexType(), v)};
        },
        [&] { return SmallVector<Value>{ids.c0}; })[0];
    known.push_back({ex.getResult(),
                     e.select(use, x, cIdx(-(int64_t(1) << 40))),
                     e.select(use, x, cIdx(int64_t(1) << 40))});
  });
}

void BlockMapKernel::evaluateElements(Value evaluate, Value zero32) {
  // Each thread takes 4 x 4 blocks of elements: the mask regions of a block
  // read their captures at 4 rows and 4 columns, so loads of captured data
  // shared by a row or a column are made once, not 16 times (LLVM merges
  // them). Elements past Nq/Nk evaluate the mask at the last row/column
  // (always in bounds) and do not count.
  Type i32 = b.getI32Type();
  e.ifThen(evaluate, [&] {
    constexpr int64_t kMicro = 4;
    int64_t perRow = cfg.bkv / kMicro;
    Value blocks = e.muli(e.ceilDiv(tile.rows, cIdx(kMicro)), cIdx(perRow));
    Value lastR = e.subi(tile.rows, ids.c1), lastC = e.subi(tile.cols, ids.c1);
    SmallVector<Value> any =
        e.loop(ids.tid, blocks, cIdx(cfg.threads()), {zero32, zero32},
               [&](Value u, ValueRange it) -> SmallVector<Value> {
                 Value r0b = e.muli(e.divi(u, cIdx(perRow)), cIdx(kMicro));
                 Value c0b = e.muli(remui(u, perRow), cIdx(kMicro));
                 Value anyT = it[0], anyF = it[1];
                 for (int64_t a = 0; a < kMicro; ++a)
                   for (int64_t bb = 0; bb < kMicro; ++bb) {
                     Value r = e.addi(r0b, cIdx(a)), c = e.addi(c0b, cIdx(bb));
                     Value in = b.createOrFold<arith::AndIOp>(
                         e.cmpi(CmpIPredicate::ult, r, tile.rows),
                         e.cmpi(CmpIPredicate::ult, c, tile.cols));
                     Value m = maskAt(e.addi(tile.i0, e.mini(r, lastR)),
                                      e.addi(tile.j0, e.mini(c, lastC)));
                     Value res = b.createOrFold<arith::AndIOp>(in, m);
                     Value isFalse = b.createOrFold<arith::AndIOp>(
                         in, b.createOrFold<arith::XOrIOp>(m, e.i1(true)));
                     // Accumulated in i32: 16 elements of i1 flags at once
                     // outnumber the predicate registers.
                     anyT = arith::OrIOp::create(
                         b, anyT, arith::ExtUIOp::create(b, i32, res));
                     anyF = arith::OrIOp::create(
                         b, anyF, arith::ExtUIOp::create(b, i32, isFalse));
                   }
                 return {anyT, anyF};
               });
    for (int f = 0; f < 2; ++f) {
      memref::AtomicRMWOp::create(b, arith::AtomicRMWKind::ori, any[f], flags,
                                  ValueRange{cIdx(f)});
    }
  });
}

void BlockMapKernel::storeClass(Value first, Value partial, Value cls,
                                Value zero32) {
  e.ifThen(first, [&] {
    Value anyTrue =
        e.cmpi(CmpIPredicate::ne,
               memref::LoadOp::create(b, flags, ValueRange{ids.c0}), zero32);
    Value anyFalse =
        e.cmpi(CmpIPredicate::ne,
               memref::LoadOp::create(b, flags, ValueRange{ids.c1}), zero32);
    Value exact =
        e.select(anyTrue, e.select(anyFalse, ids.c1, cIdx(2)), ids.c0);
    Value finalCls = e.select(partial, exact, cls);
    Value numQT = gpu::GridDimOp::create(b, gpu::Dimension::x);
    Value numKT = gpu::GridDimOp::create(b, gpu::Dimension::y);
    Value idx = e.addi(
        e.muli(e.addi(e.muli(tile.slice, numQT), tile.qt), numKT), tile.kt);
    Value c8 = arith::TruncIOp::create(
        b, b.getI8Type(),
        arith::IndexCastUIOp::create(b, b.getI32Type(), finalCls));
    memref::StoreOp::create(b, c8, args.blockMap, ValueRange{idx});
  });
}

void BlockMapKernel::emit() {
  // Phase 1: the class from the index intervals.
  Value cls = classify(tile.i0, tile.i1, tile.j0, tile.j1);
  Value first = e.cmpi(CmpIPredicate::eq, ids.tid, ids.c0);
  Value zero32 = arith::ConstantIntOp::create(b, b.getI32Type(), 0);
  std::optional<CaptureEquality> capEq = findCaptureEquality(op);
  initFlags(first, zero32, capEq);
  gpu::BarrierOp::create(b);
  Value partial = e.cmpi(CmpIPredicate::eq, cls, ids.c1);
  Value evaluate = partial;
  // Phase 2: captured reads bound to their ranges over the tile.
  SmallVector<KnownRange> known;
  if (capEq)
    captureRanges(partial, *capEq, known);
  if (op.hasMaskRegion())
    pointReads(partial, capEq, known);
  if (!known.empty()) {
    // Phase 3: the mask over the tile with those reads bound: disjoint
    // document ranges make the tile empty; one document on both sides
    // leaves the rest of the mask (a causal mask's class, say); a block
    // layout's value decides its block.
    IRBackend be(b);
    auto [mayTrue, mayFalse] =
        evalTileMask(be, op, cfg.ms, ids.bi, ids.h, tile.i0, tile.i1, tile.j0,
                     tile.j1, ArrayRef(known));
    Value ranged =
        e.select(mayTrue, e.select(mayFalse, ids.c1, cIdx(2)), ids.c0);
    cls = e.select(partial, ranged, cls);
    partial = e.cmpi(CmpIPredicate::eq, cls, ids.c1);
    evaluate = partial;
  }
  // Phase 4: tiles still undecided, every element.
  evaluateElements(evaluate, zero32);
  gpu::BarrierOp::create(b);
  // Phase 5.
  storeClass(first, partial, cls, zero32);
  gpu::ReturnOp::create(b);
}

void mlir::attn::detail::emitBlockMapKernel(const AttnKernelConfig &cfg,
                                            gpu::GPUFuncOp func) {
  Block &entry = func.getBody().front();
  auto b = ImplicitLocOpBuilder::atBlockBegin(cfg.op.getLoc(), &entry);
  Emitter e(b);
  AttnKernelArgs args;
  unsigned a = 0;
  for (Value cap : cfg.captures)
    args.capMap.map(cap, entry.getArgument(a++));
  args.blockMap = entry.getArgument(a++);
  ++a; // the slice count: the grid's z extent carries it
  args.nq = entry.getArgument(a++);
  args.nk = entry.getArgument(a++);
  Value flags = func.getWorkgroupAttributions()[0];
  AttnThreadIds ids;
  ids.c0 = e.idx(0);
  ids.c1 = e.idx(1);
  ids.tid = gpu::ThreadIdOp::create(b, gpu::Dimension::x);
  MapTile tile;
  tile.qt = gpu::BlockIdOp::create(b, gpu::Dimension::x);
  tile.kt = gpu::BlockIdOp::create(b, gpu::Dimension::y);
  tile.slice = gpu::BlockIdOp::create(b, gpu::Dimension::z);
  const MaskStructure &ms = cfg.ms;
  ids.bi = ms.batch ? (ms.head ? e.divi(tile.slice, e.idx(cfg.hq)) : tile.slice)
                    : ids.c0;
  ids.h = ms.head ? b.createOrFold<arith::RemUIOp>(tile.slice, e.idx(cfg.hq))
                  : ids.c0;
  tile.i0 = e.muli(tile.qt, e.idx(cfg.bq));
  tile.j0 = e.muli(tile.kt, e.idx(cfg.bkv));
  tile.rows = e.mini(e.idx(cfg.bq), e.subi(args.nq, tile.i0));
  tile.cols = e.mini(e.idx(cfg.bkv), e.subi(args.nk, tile.j0));
  tile.i1 = e.subi(e.addi(tile.i0, tile.rows), ids.c1);
  tile.j1 = e.subi(e.addi(tile.j0, tile.cols), ids.c1);
  // From here on the tile's rows are query positions (queries_at_end).
  tile.i0 = queryPosition(e, cfg.op, tile.i0, args.nq, args.nk);
  tile.i1 = queryPosition(e, cfg.op, tile.i1, args.nq, args.nk);
  BlockMapKernel(cfg, b, std::move(args), ids, tile, flags).emit();
}
