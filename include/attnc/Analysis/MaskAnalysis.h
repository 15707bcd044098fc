//===- MaskAnalysis.h - interval classification of attention masks -*- C++
//-*-===//
//
// Part of attnc. The mask of an attn.attention (its `mask` region, and the
// condition under which its `score` region yields -inf) is evaluated over a
// rectangle of (i, j) indices by interval arithmetic. The result says whether
// the mask may be true and whether it may be false anywhere in the
// rectangle: a tile is empty (never true), full (never false) or partial.
//
// The evaluator is written once over a backend: `ConstBackend` computes with
// int64_t / bool (compile-time tile maps, tests), `IRBackend` emits arith ops
// (the classifier inside the generated kernels). Both follow the same rules,
// so what the tests show is what the kernels do.
//
//===----------------------------------------------------------------------===//
#ifndef ATTNC_ANALYSIS_MASKANALYSIS_H
#define ATTNC_ANALYSIS_MASKANALYSIS_H

#include "attnc/Dialect/Attn/Attn.h"
#include "mlir/IR/IRMapping.h"
#include "mlir/IR/ImplicitLocOpBuilder.h"
#include "llvm/ADT/DenseMap.h"

#include <limits>
#include <optional>

namespace mlir::attn {

/// What the mask of an attention op looks like, from the op's regions alone.
struct MaskStructure {
  /// Value of the mask region's yield (null if there is no mask region).
  Value maskValue;
  /// Condition under which the score region keeps its value (the other
  /// select branch being -inf); null if there is none usable.
  Value scoreKeep;
  /// The score region's -inf is on the true side of the select.
  bool scoreKeepNegated = false;
  MaskKind kind = MaskKind::none;
  bool batch = false, head = false;
};

/// Analyses `op`'s regions (does not modify the op).
MaskStructure analyzeMaskStructure(AttentionOp op);

/// Clones `region`'s block at the insertion point with its arguments bound
/// to `args`, recording the clones in `map` (backends differ in how they
/// rewrite reads of captured tensors).
using RegionInliner =
    llvm::function_ref<void(Region &region, ValueRange args, IRMapping &map)>;

/// The combined mask at one element: the mask region and the score region's
/// keep condition (evaluated with s = 0, which it does not read).
Value emitMaskAt(ImplicitLocOpBuilder &b, AttentionOp op,
                 const MaskStructure &ms, Value bi, Value h, Value i, Value j,
                 RegionInliner inliner);

/// Tile classes as stored in block maps.
enum class TileClass : int8_t { Empty = 0, Partial = 1, Full = 2 };

/// Compile-time backend.
struct ConstBackend {
  using V = int64_t;
  using B = bool;
  V cst(int64_t x) { return x; }
  B bcst(bool x) { return x; }
  // Wrapping arithmetic: the evaluator discards results that left the range
  // of their type (see IntervalEvaluator::fit), but computing them must not
  // be undefined. The evaluator never divides the minimum by -1.
  V add(V a, V b) { return V(uint64_t(a) + uint64_t(b)); }
  V sub(V a, V b) { return V(uint64_t(a) - uint64_t(b)); }
  V mul(V a, V b) { return V(uint64_t(a) * uint64_t(b)); }
  V divTrunc(V a, int64_t c) { return a / c; }
  V divFloor(V a, int64_t c) {
    V q = a / c;
    return (a % c != 0 && ((a < 0) != (c < 0))) ? q - 1 : q;
  }
  V divCeil(V a, int64_t c) {
    V q = a / c;
    return (a % c != 0 && ((a < 0) == (c < 0))) ? q + 1 : q;
  }
  V rem(V a, int64_t c) { return a % c; }
  V min(V a, V b) { return a < b ? a : b; }
  V max(V a, V b) { return a > b ? a : b; }
  B lt(V a, V b) { return a < b; }
  B le(V a, V b) { return a <= b; }
  B eq(V a, V b) { return a == b; }
  B band(B a, B b) { return a && b; }
  B bor(B a, B b) { return a || b; }
  B bnot(B a) { return !a; }
  V sel(B c, V a, V b) { return c ? a : b; }
};

/// Backend that emits index/i1 arith ops (folded when operands are constant).
struct IRBackend {
  using V = Value;
  using B = Value;
  ImplicitLocOpBuilder &b;
  explicit IRBackend(ImplicitLocOpBuilder &b) : b(b) {}
  V cst(int64_t x);
  B bcst(bool x);
  V add(V x, V y);
  V sub(V x, V y);
  V mul(V x, V y);
  V divTrunc(V x, int64_t c);
  V divFloor(V x, int64_t c);
  V divCeil(V x, int64_t c);
  V rem(V x, int64_t c);
  V min(V x, V y);
  V max(V x, V y);
  B lt(V x, V y);
  B le(V x, V y);
  B eq(V x, V y);
  B band(B x, B y);
  B bor(B x, B y);
  B bnot(B x);
  V sel(B c, V x, V y);
};

/// Interval evaluation of the integer/boolean slice of a region.
template <typename BE> class IntervalEvaluator {
public:
  using V = typename BE::V;
  using B = typename BE::B;
  /// [lo, hi]: bounds over the bound ranges (values of the backend: numbers,
  /// or IR computing them at run time). [slo, shi]: bounds known when the
  /// evaluator runs, whatever the bound ranges are (index arguments are
  /// taken to be in [0, 2^40]); an op whose result may leave its type's range
  /// there (wrap around) or that reads a negative value as unsigned makes the
  /// result `top`, so lo and hi are always the true, unwrapped bounds.
  struct Itv {
    bool top = true;
    V lo{}, hi{};
    int64_t slo = std::numeric_limits<int64_t>::min();
    int64_t shi = std::numeric_limits<int64_t>::max();
    std::optional<int64_t> constant;
  };
  struct Tri {
    B mayTrue{}, mayFalse{};
  };

  IntervalEvaluator(BE &be) : be(be) {}

  /// Binds an index block argument (or any integer value of the regions
  /// whose range is known) to [lo, hi].
  void bind(Value arg, V lo, V hi) {
    Itv itv;
    itv.top = false;
    itv.lo = lo;
    itv.hi = hi;
    if (arg.getType().isIndex()) {
      // Batch, head and sequence positions.
      itv.slo = 0;
      itv.shi = int64_t(1) << 40;
    } else {
      auto [tlo, thi] = typeRange(arg.getType());
      itv.slo = int64_t(tlo);
      itv.shi = int64_t(thi);
    }
    ints[arg] = itv;
  }

  /// May the i1 value `v` be true / false over the bound ranges?
  Tri evalBool(Value v);
  Itv evalInt(Value v);

  bool sawData = false;   // read a captured tensor
  bool sawOpaque = false; // an op the evaluator does not model
  llvm::SmallPtrSet<Value, 8> touchedArgs;

  static unsigned typeWidth(Type t) {
    return t.isIndex() ? 64 : t.getIntOrFloatBitWidth();
  }
  /// The signed range of an integer or index type.
  static std::pair<__int128, __int128> typeRange(Type t) {
    unsigned w = typeWidth(t);
    if (w >= 64)
      return {std::numeric_limits<int64_t>::min(),
              std::numeric_limits<int64_t>::max()};
    return {-(__int128(1) << (w - 1)), (__int128(1) << (w - 1)) - 1};
  }

private:
  Tri unknown() { return {be.bcst(true), be.bcst(true)}; }
  Itv point(V x) {
    Itv r;
    r.top = false;
    r.lo = x;
    r.hi = x;
    return r;
  }
  Itv range(V lo, V hi) {
    Itv r;
    r.top = false;
    r.lo = lo;
    r.hi = hi;
    return r;
  }
  Itv evalIntImpl(Value v);
  Tri evalBoolImpl(Value v);
  /// `r` with the static bounds [slo, shi] when they fit the type of
  /// `result`; otherwise the value may have wrapped: top (opaque).
  Itv fit(Itv r, Value result, __int128 slo, __int128 shi) {
    if (r.top)
      return r;
    auto [tlo, thi] = typeRange(result.getType());
    if (slo < tlo || shi > thi) {
      sawOpaque = true;
      return Itv();
    }
    r.slo = int64_t(slo);
    r.shi = int64_t(shi);
    return r;
  }
  B mayNeg(const Itv &x) { return be.lt(x.lo, be.cst(0)); }
  /// minsi / maxsi of an unbounded value and `x`: bounded on one side by
  /// `x` (a clamp such as `maxsi(data, 1)`), so a divisor or an index can
  /// be proven in range. Unsigned min/max of an unbounded value stay top.
  Itv clampOfTop(bool isMinS, bool isMaxS, const Itv &x, Value result) {
    if (!isMinS && !isMaxS)
      return Itv();
    auto [tlo, thi] = typeRange(result.getType());
    if (isMaxS)
      return fit(range(x.lo, be.cst(int64_t(thi))), result, x.slo, thi);
    return fit(range(be.cst(int64_t(tlo)), x.hi), result, tlo, x.shi);
  }

  BE &be;
  llvm::DenseMap<Value, Itv> ints;
  llvm::DenseMap<Value, Tri> bools;
};

} // namespace mlir::attn

#include "attnc/Analysis/MaskAnalysisImpl.h"

#endif // ATTNC_ANALYSIS_MASKANALYSIS_H
