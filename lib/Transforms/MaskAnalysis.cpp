//===- MaskAnalysis.cpp - attn-analyze-masks ------------------------------===//
//
// Part of attnc.
//
//===----------------------------------------------------------------------===//

#include "attnc/Analysis/MaskAnalysis.h"
#include "attnc/Transforms/Passes.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "llvm/Support/CheckedArithmetic.h"
#include "llvm/Support/Debug.h"
#include "llvm/Support/raw_ostream.h"

#include <optional>
#include <string>

namespace mlir::attn {
#define GEN_PASS_DEF_ATTNANALYZEMASKS
#include "Attn/AttnPasses.h.inc"
} // namespace mlir::attn

#define DEBUG_TYPE "attn-analyze-masks"

using namespace mlir;
using namespace mlir::attn;

//===----------------------------------------------------------------------===//
// IRBackend
//===----------------------------------------------------------------------===//

Value IRBackend::cst(int64_t x) { return arith::ConstantIndexOp::create(b, x); }
Value IRBackend::bcst(bool x) {
  return arith::ConstantIntOp::create(b, b.getI1Type(), x ? 1 : 0);
}
Value IRBackend::add(Value x, Value y) {
  return b.createOrFold<arith::AddIOp>(x, y);
}
Value IRBackend::sub(Value x, Value y) {
  return b.createOrFold<arith::SubIOp>(x, y);
}
Value IRBackend::mul(Value x, Value y) {
  return b.createOrFold<arith::MulIOp>(x, y);
}
Value IRBackend::divTrunc(Value x, int64_t c) {
  return b.createOrFold<arith::DivSIOp>(x, cst(c));
}
Value IRBackend::divFloor(Value x, int64_t c) {
  return b.createOrFold<arith::FloorDivSIOp>(x, cst(c));
}
Value IRBackend::divCeil(Value x, int64_t c) {
  return b.createOrFold<arith::CeilDivSIOp>(x, cst(c));
}
Value IRBackend::rem(Value x, int64_t c) {
  return b.createOrFold<arith::RemSIOp>(x, cst(c));
}
Value IRBackend::min(Value x, Value y) {
  return b.createOrFold<arith::MinSIOp>(x, y);
}
Value IRBackend::max(Value x, Value y) {
  return b.createOrFold<arith::MaxSIOp>(x, y);
}
Value IRBackend::lt(Value x, Value y) {
  return b.createOrFold<arith::CmpIOp>(arith::CmpIPredicate::slt, x, y);
}
Value IRBackend::le(Value x, Value y) {
  return b.createOrFold<arith::CmpIOp>(arith::CmpIPredicate::sle, x, y);
}
Value IRBackend::eq(Value x, Value y) {
  return b.createOrFold<arith::CmpIOp>(arith::CmpIPredicate::eq, x, y);
}
Value IRBackend::band(Value x, Value y) {
  return b.createOrFold<arith::AndIOp>(x, y);
}
Value IRBackend::bor(Value x, Value y) {
  return b.createOrFold<arith::OrIOp>(x, y);
}
Value IRBackend::bnot(Value x) {
  return b.createOrFold<arith::XOrIOp>(x, bcst(true));
}
Value IRBackend::sel(Value c, Value x, Value y) {
  return b.createOrFold<arith::SelectOp>(c, x, y);
}

//===----------------------------------------------------------------------===//
// Structure
//===----------------------------------------------------------------------===//

static bool isNegInf(Value v) {
  FloatAttr attr;
  if (!matchPattern(v, m_Constant(&attr)))
    return false;
  return attr.getValue().isInfinity() && attr.getValue().isNegative();
}

MaskStructure mlir::attn::analyzeMaskStructure(AttentionOp op) {
  MaskStructure ms;
  if (op.hasMaskRegion())
    ms.maskValue =
        cast<YieldOp>(op.getMask().front().getTerminator()).getValues()[0];
  if (op.hasScoreRegion()) {
    Value r =
        cast<YieldOp>(op.getScore().front().getTerminator()).getValues()[0];
    if (auto sel = r.getDefiningOp<arith::SelectOp>()) {
      if (isNegInf(sel.getFalseValue())) {
        ms.scoreKeep = sel.getCondition();
      } else if (isNegInf(sel.getTrueValue())) {
        ms.scoreKeep = sel.getCondition();
        ms.scoreKeepNegated = true;
      }
    }
  }
  ConstBackend be;
  // Flags: evaluate each part once at an arbitrary point; the dependences
  // come from the whole backward slice (tensor.extract indices included).
  auto probe = [&](Value cond, Region &region, unsigned first, bool &usable) {
    Block &blk = region.front();
    llvm::SmallPtrSet<Value, 4> args;
    llvm::SmallVector<Value> work = {cond};
    llvm::SmallPtrSet<Value, 16> seen;
    while (!work.empty()) {
      Value v = work.pop_back_val();
      if (!seen.insert(v).second)
        continue;
      if (auto arg = dyn_cast<BlockArgument>(v)) {
        if (arg.getOwner() == &blk)
          args.insert(arg);
        continue;
      }
      Operation *def = v.getDefiningOp();
      if (!def || !region.isAncestor(def->getParentRegion()))
        continue;
      def->walk([&](Operation *nested) {
        for (Value operand : nested->getOperands())
          work.push_back(operand);
      });
    }
    // A score condition that looks at the score itself cannot be a mask.
    usable = !(first == 1 && args.contains(blk.getArgument(0)));
    if (!usable)
      return;
    IntervalEvaluator<ConstBackend> ev(be);
    for (unsigned a = 0; a < 4; ++a)
      ev.bind(blk.getArgument(first + a), 0, 0);
    (void)ev.evalBool(cond);
    if (ev.sawData)
      ms.kind = MaskKind::data;
    else if (ev.sawOpaque && ms.kind != MaskKind::data)
      ms.kind = MaskKind::opaque;
    else if (ms.kind == MaskKind::none)
      ms.kind = MaskKind::index;
    ms.batch |= args.contains(blk.getArgument(first));
    ms.head |= args.contains(blk.getArgument(first + 1));
  };
  bool usable = true;
  if (ms.maskValue)
    probe(ms.maskValue, op.getMask(), 0, usable);
  if (ms.scoreKeep) {
    probe(ms.scoreKeep, op.getScore(), 1, usable);
    if (!usable)
      ms.scoreKeep = Value();
  }
  return ms;
}

Value mlir::attn::emitMaskAt(ImplicitLocOpBuilder &b, AttentionOp op,
                             const MaskStructure &ms, Value bi, Value h,
                             Value i, Value j, RegionInliner inliner) {
  Value keep = arith::ConstantIntOp::create(b, b.getI1Type(), 1);
  if (ms.maskValue) {
    IRMapping map;
    inliner(op.getMask(), {bi, h, i, j}, map);
    keep = map.lookupOrDefault(ms.maskValue);
  }
  if (ms.scoreKeep) {
    IRMapping map;
    Value zero = arith::ConstantOp::create(b, b.getF32FloatAttr(0.0f));
    inliner(op.getScore(), {zero, bi, h, i, j}, map);
    Value k = map.lookupOrDefault(ms.scoreKeep);
    if (ms.scoreKeepNegated)
      k = b.createOrFold<arith::XOrIOp>(
          k, arith::ConstantIntOp::create(b, b.getI1Type(), 1));
    keep = b.createOrFold<arith::AndIOp>(keep, k);
  }
  return keep;
}

//===----------------------------------------------------------------------===//
// Pass
//===----------------------------------------------------------------------===//

namespace {
struct AttnAnalyzeMasksPass
    : public mlir::attn::impl::AttnAnalyzeMasksBase<AttnAnalyzeMasksPass> {
  using AttnAnalyzeMasksBase::AttnAnalyzeMasksBase;

  void runOnOperation() override {
    if (!tileMap.empty() && tileMap.size() != 4) {
      getOperation()->emitError()
          << "attn-analyze-masks: tile-map takes 4 values (Nq,Nk,block_q,"
             "block_kv), got "
          << tileMap.size();
      return signalPassFailure();
    }
    if (tileMap.size() == 4 &&
        llvm::any_of(tileMap, [](int64_t x) { return x <= 0; })) {
      getOperation()->emitError()
          << "attn-analyze-masks: tile-map values must be positive";
      return signalPassFailure();
    }
    getOperation()->walk([&](AttentionOp op) {
      MaskStructure ms = analyzeMaskStructure(op);
      LLVM_DEBUG(llvm::dbgs()
                 << "attention at " << op->getLoc() << ": mask kind "
                 << stringifyMaskKind(ms.kind) << ", depends on batch "
                 << ms.batch << ", head " << ms.head << ", score keep "
                 << bool(ms.scoreKeep) << "\n");
      op.setMaskInfoAttr(MaskInfoAttr::get(op.getContext(), ms.kind, ms.batch,
                                           ms.head, bool(ms.scoreKeep)));
      if (tileMap.size() == 4)
        printTileMap(op, ms);
    });
  }

  /// Tile maps print at most this many tile rows and columns; a larger map
  /// prints the number of tiles of each class instead, and says so.
  static constexpr int64_t kMaxPrintedTiles = 256;
  /// Tiles classified for those counts at most (about a second of interval
  /// evaluation); past it the map says it was not classified.
  static constexpr int64_t kMaxCountedTiles = int64_t(1) << 20;

  void printTileMap(AttentionOp op, const MaskStructure &ms) {
    int64_t nq = tileMap[0], nk = tileMap[1], bq = tileMap[2], bk = tileMap[3];
    // ceil(n / b) without overflowing near INT64_MAX.
    int64_t tq = nq / bq + (nq % bq != 0), tk = nk / bk + (nk % bk != 0);
    llvm::raw_ostream &os = llvm::outs();
    os << "tile map of " << op->getLoc() << " (b=0 h=0) Nq=" << nq
       << " Nk=" << nk << " tile " << bq << "x" << bk << " kind "
       << stringifyMaskKind(ms.kind) << "\n";
    std::optional<int64_t> total = llvm::checkedMul(tq, tk);
    bool printRows = tq <= kMaxPrintedTiles && tk <= kMaxPrintedTiles;
    if (!printRows) {
      os << "  truncated: " << tq << "x" << tk << " tiles exceed the "
         << kMaxPrintedTiles << "x" << kMaxPrintedTiles
         << " printed at most; tiles per class instead\n";
      if (!total || *total > kMaxCountedTiles) {
        os << "  not classified: more than the " << kMaxCountedTiles
           << " tiles classified at most (use larger tiles)\n";
        return;
      }
    }
    ConstBackend be;
    bool needsRuntime =
        ms.kind == MaskKind::data || ms.kind == MaskKind::opaque;
    int64_t visited = 0;
    int64_t counts[4] = {0, 0, 0, 0}; // F, P, R, .
    static constexpr char kClasses[] = "FPR.";
    for (int64_t qt = 0; qt < tq; ++qt) {
      std::string row;
      int64_t lo = -1, hi = -1;
      for (int64_t kt = 0; kt < tk; ++kt) {
        int64_t i0 = qt * bq, i1 = i0 + std::min(bq, nq - i0) - 1;
        int64_t j0 = kt * bk, j1 = j0 + std::min(bk, nk - j0) - 1;
        // Query positions (queries_at_end: the last Nq of Nk).
        int64_t off = op.getQueriesAtEnd() ? nk - nq : 0;
        auto [mayTrue, mayFalse] =
            evalTileMask(be, op, ms, 0, 0, i0 + off, i1 + off, j0, j1);
        char c = !mayTrue ? '.' : !mayFalse ? 'F' : needsRuntime ? 'R' : 'P';
        ++counts[llvm::StringRef(kClasses).find(c)];
        if (printRows)
          row.push_back(c);
        if (c != '.') {
          if (lo < 0)
            lo = kt;
          hi = kt + 1;
        }
      }
      if (lo < 0)
        lo = hi = 0;
      visited += hi - lo;
      if (printRows)
        os << "  q" << qt << " " << row << " kv [" << lo << ", " << hi << ")\n";
    }
    if (!printRows)
      os << "  tiles: " << counts[0] << " F, " << counts[1] << " P, "
         << counts[2] << " R, " << counts[3] << " .\n";
    os << "  visited " << visited << " of " << *total << " tiles\n";
  }
};
} // namespace
