//===- FeatureKernel.cpp - feature maps of linear attention on GPUs -------===//
//
// Part of attnc. Feature maps that are not elementwise, read captures or
// change the feature dim (Hedgehog, Performer, cosFormer): a feature kernel
// <name>_phi runs before the chunked kernel, one thread per (b, t, head)
// row evaluating the region as unrolled scalar code (RowScalarizer), and
// writes phi(q), phi(k) to workspaces that the chunked kernel reads with the
// identity map (LinearSpec::workspace). Here: which maps need it and which
// it can evaluate, the kernel, and the host region rewritten into the same
// scalar code.
//
//===----------------------------------------------------------------------===//

#include "LinearKernel.h"

#include "attnc/Transforms/LoweringUtils.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/IR/IRMapping.h"
#include "mlir/IR/ImplicitLocOpBuilder.h"
#include "mlir/IR/Matchers.h"

#include <array>
#include <functional>
#include <optional>

using namespace mlir;
using namespace mlir::attn;
using namespace mlir::attn::detail;
using arith::CmpIPredicate;

namespace {
/// The first op of a feature-map region that the GPU kernel cannot apply
/// element by element (null when every op can be).
Operation *firstNonElementwise(Region &r) {
  for (Operation &inner : r.front().without_terminator()) {
    if (isa<arith::ConstantOp>(inner))
      continue;
    if (auto bc = dyn_cast<vector::BroadcastOp>(inner))
      if (!isa<VectorType>(bc.getSource().getType()))
        continue;
    bool scalar = llvm::all_of(inner.getOperandTypes(),
                               [](Type t) { return !isa<ShapedType>(t); }) &&
                  llvm::all_of(inner.getResultTypes(),
                               [](Type t) { return !isa<ShapedType>(t); });
    bool pureArith =
        isa<arith::ArithDialect, math::MathDialect>(inner.getDialect());
    if (pureArith && inner.getNumRegions() == 0 &&
        (scalar || inner.hasTrait<OpTrait::Elementwise>()))
      continue;
    return &inner;
  }
  return nullptr;
}

} // namespace

bool mlir::attn::detail::needsFeatureKernel(const LinearSpec &s) {
  if (s.hasCaptures || s.f != s.d)
    return true;
  for (Region *r : {s.fq, s.fk}) {
    if (!r)
      continue;
    if (firstNonElementwise(*r))
      return true;
    for (Operation &inner : r->front().without_terminator())
      if (auto cst = dyn_cast<arith::ConstantOp>(inner))
        if (auto dense = dyn_cast<DenseElementsAttr>(cst.getValue()))
          if (!dense.isSplat())
            return true;
  }
  return false;
}

namespace {
// Upper bound on the scalar code one feature-map evaluation unrolls to
// (every vector value's elements, summed over the region's ops).
constexpr int64_t kMaxUnrolledElements = 1 << 17;

int64_t numElements(Type t) {
  if (auto vt = dyn_cast<VectorType>(t))
    return vt.getNumElements();
  return 1;
}

/// Checks the ops of a feature-map region for the feature kernel, which
/// evaluates it as unrolled scalar code, and counts the elements it unrolls
/// to.
class FeatureMapChecker {
public:
  FeatureMapChecker(Region &r, ArrayRef<Value> captures)
      : r(r), captures(captures) {}

  /// Why `inner` (an op of the region's block) cannot be evaluated; none
  /// when it can.
  std::optional<std::string> check(Operation *inner);
  /// Elements of the results checked so far.
  int64_t total = 0;

private:
  Region &r;
  ArrayRef<Value> captures;

  bool isCapture(Value v) { return llvm::is_contained(captures, v); }
  std::optional<std::string> checkResults(Operation *inner);
  std::optional<std::string> checkOperandsFromAbove(Operation *inner);
  std::optional<std::string> checkTransferRead(vector::TransferReadOp tr);
  /// Vector ops other than transfer_read (none: not one of those).
  std::optional<std::optional<std::string>> checkVectorOp(Operation *inner);
  /// Elementwise on vectors (all vector operands/results of one shape) or
  /// scalar arith / math.
  static bool isElementwiseArith(Operation *inner);
};
} // namespace

std::optional<std::string> FeatureMapChecker::checkResults(Operation *inner) {
  for (Type t : inner->getResultTypes()) {
    if (isa<ShapedType>(t) && !isa<VectorType>(t))
      return std::string("non-vector shaped result");
    if (auto vt = dyn_cast<VectorType>(t))
      if (vt.isScalable())
        return std::string("scalable vector");
    total += numElements(t);
  }
  return std::nullopt;
}

std::optional<std::string>
FeatureMapChecker::checkOperandsFromAbove(Operation *inner) {
  for (Value o : inner->getOperands()) {
    if (r.isAncestor(o.getParentRegion()))
      continue;
    // From above: a capture (read by transfer_read) or a constant.
    bool ok = isCapture(o) ? isa<vector::TransferReadOp>(inner)
                           : matchPattern(o, m_Constant()) &&
                                 !isa<ShapedType>(o.getType());
    if (!ok)
      return std::string(
          "a value from above that is not a capture or a scalar constant");
  }
  return std::nullopt;
}

std::optional<std::string>
FeatureMapChecker::checkTransferRead(vector::TransferReadOp tr) {
  auto st = dyn_cast<RankedTensorType>(tr.getBase().getType());
  if (!isCapture(tr.getBase()) || !st || !st.hasStaticShape() ||
      !isa<FloatType>(st.getElementType()) || tr.getMask() ||
      !tr.getPermutationMap().isMinorIdentity())
    return std::string("transfer_read of other than a static-shaped float "
                       "capture with a minor identity map and no mask");
  VectorType vt = tr.getVectorType();
  int64_t lead = st.getRank() - vt.getRank();
  for (int64_t d = 0; d < vt.getRank(); ++d) {
    if (tr.isDimInBounds(d))
      continue;
    APInt c;
    if (!matchPattern(tr.getIndices()[lead + d], m_ConstantInt(&c)) ||
        c.getSExtValue() + vt.getDimSize(d) > st.getDimSize(lead + d))
      return std::string("transfer_read that may be out of bounds");
  }
  return std::nullopt;
}

std::optional<std::optional<std::string>>
FeatureMapChecker::checkVectorOp(Operation *inner) {
  using Reason = std::optional<std::string>;
  if (auto sh = dyn_cast<vector::ShuffleOp>(inner)) {
    if (sh.getV1VectorType().getRank() != 1 ||
        sh.getV2VectorType().getRank() != 1)
      return Reason("shuffle of other than rank-1 vectors");
    return Reason();
  }
  if (auto ex = dyn_cast<vector::ExtractOp>(inner)) {
    if (!ex.getDynamicPosition().empty())
      return Reason("extract at a dynamic position");
    return Reason();
  }
  if (auto red = dyn_cast<vector::ReductionOp>(inner)) {
    if (!isa<FloatType>(red.getType()) ||
        cast<VectorType>(red.getVector().getType()).getRank() != 1)
      return Reason("non-float reduction");
    return Reason();
  }
  if (auto mr = dyn_cast<vector::MultiDimReductionOp>(inner)) {
    if (!isa<FloatType>(getElementTypeOrSelf(mr.getType())))
      return Reason("non-float reduction");
    return Reason();
  }
  if (isa<vector::BroadcastOp, vector::FMAOp>(inner))
    return Reason();
  return std::nullopt;
}

bool FeatureMapChecker::isElementwiseArith(Operation *inner) {
  if (!isa<arith::ArithDialect, math::MathDialect>(inner->getDialect()) ||
      inner->getNumRegions() != 0)
    return false;
  std::optional<ArrayRef<int64_t>> shape;
  bool same = true;
  SmallVector<Type> types(inner->getOperandTypes());
  llvm::append_range(types, inner->getResultTypes());
  for (Type t : types)
    if (auto vt = dyn_cast<VectorType>(t)) {
      if (shape && *shape != vt.getShape())
        same = false;
      shape = vt.getShape();
    }
  bool elementwise = !shape || inner->hasTrait<OpTrait::Elementwise>() ||
                     isa<arith::ConstantOp>(inner);
  return same && elementwise;
}

std::optional<std::string> FeatureMapChecker::check(Operation *inner) {
  if (std::optional<std::string> why = checkResults(inner))
    return why;
  if (std::optional<std::string> why = checkOperandsFromAbove(inner))
    return why;
  if (auto tr = dyn_cast<vector::TransferReadOp>(inner))
    return checkTransferRead(tr);
  if (std::optional<std::optional<std::string>> why = checkVectorOp(inner))
    return *why;
  if (isElementwiseArith(inner))
    return std::nullopt;
  return std::string("not supported in feature maps on GPU");
}

Operation *mlir::attn::detail::firstUnscalarizable(Region &r,
                                                   ArrayRef<Value> captures,
                                                   std::string &why) {
  FeatureMapChecker checker(r, captures);
  Operation *bad = nullptr;
  r.walk([&](Operation *inner) -> WalkResult {
    if (inner->getBlock() != &r.front()) {
      why = "nested regions";
      bad = inner->getParentOp();
      return WalkResult::interrupt();
    }
    if (inner == r.front().getTerminator())
      return WalkResult::advance();
    if (std::optional<std::string> reason = checker.check(inner)) {
      why = *reason;
      bad = inner;
      return WalkResult::interrupt();
    }
    return WalkResult::advance();
  });
  if (!bad && checker.total > kMaxUnrolledElements) {
    why =
        "too large to unroll (" + std::to_string(checker.total) + " elements)";
    bad = r.getParentOp();
  }
  return bad;
}

namespace {
SmallVector<int64_t> delinearize(int64_t flat, ArrayRef<int64_t> shape) {
  SmallVector<int64_t> idx(shape.size());
  for (int64_t d = int64_t(shape.size()) - 1; d >= 0; --d) {
    idx[d] = flat % shape[d];
    flat /= shape[d];
  }
  return idx;
}
int64_t linearize(ArrayRef<int64_t> idx, ArrayRef<int64_t> shape) {
  int64_t flat = 0;
  for (size_t d = 0; d < shape.size(); ++d)
    flat = flat * shape[d] + idx[d];
  return flat;
}

/// Evaluates a feature-map region on one row as scalar code: the element
/// `flat` of a vector value is emitted when first asked for (and cached),
/// so a reduction streams through its operand (W x reads W[i][j] x[j]
/// without materializing W or the product) and ops run in demand order.
/// Captures are read from f32/bf16/f16 memrefs (row-major, flattened).
class RowScalarizer {
public:
  /// `x(j)`: element j of the row (f32); `readCap(capture, indices)`: one
  /// element of a capture.
  using CaptureReader = std::function<Value(Value, ArrayRef<Value>)>;
  RowScalarizer(ImplicitLocOpBuilder &b, Region &r,
                std::function<Value(int64_t)> x, Value t, CaptureReader readCap)
      : b(b), e(b), r(r), x(std::move(x)), t(t), readCap(std::move(readCap)) {}

  Value get(Value v, int64_t flat) {
    if (!isa<VectorType>(v.getType()))
      flat = 0;
    auto key = std::make_pair(v, flat);
    auto it = cache.find(key);
    if (it != cache.end())
      return it->second;
    Value out = compute(v, flat);
    cache[key] = out;
    return out;
  }
  Value result(int64_t flat) {
    return get(r.front().getTerminator()->getOperand(0), flat);
  }

private:
  ImplicitLocOpBuilder &b;
  Emitter e;
  Region &r;
  std::function<Value(int64_t)> x;
  Value t;
  CaptureReader readCap;
  DenseMap<std::pair<Value, int64_t>, Value> cache;

  Value convert(Value val, Type to) {
    if (val.getType() == to)
      return val;
    if (to.getIntOrFloatBitWidth() > val.getType().getIntOrFloatBitWidth())
      return arith::ExtFOp::create(b, to, val);
    return arith::TruncFOp::create(b, to, val);
  }

  Value compute(Value v, int64_t flat);
  Value broadcast(vector::BroadcastOp bc, int64_t flat);
  Value transferRead(vector::TransferReadOp tr, int64_t flat);
  Value multiReduction(vector::MultiDimReductionOp mr, int64_t flat);
  Value reduction(vector::ReductionOp red);
  Value shuffle(vector::ShuffleOp sh, int64_t flat);
  Value extract(vector::ExtractOp ex, int64_t flat);
  /// arith / math, elementwise or scalar: the op on this element.
  Value elementwise(Operation *op, Value v, int64_t flat);
};
} // namespace

Value RowScalarizer::compute(Value v, int64_t flat) {
  if (auto ba = dyn_cast<BlockArgument>(v)) {
    assert(ba.getOwner() == &r.front() && "feature map argument");
    return ba.getArgNumber() == 0 ? x(flat) : t;
  }
  Operation *op = v.getDefiningOp();
  if (!r.isAncestor(op->getParentRegion())) {
    // A scalar constant from above.
    Operation *c = b.clone(*op);
    return c->getResult(cast<OpResult>(v).getResultNumber());
  }
  if (auto cst = dyn_cast<arith::ConstantOp>(op)) {
    if (auto dense = dyn_cast<DenseElementsAttr>(cst.getValue())) {
      Attribute a = dense.isSplat() ? dense.getSplatValue<Attribute>()
                                    : dense.getValues<Attribute>()[flat];
      return arith::ConstantOp::create(b, llvm::cast<TypedAttr>(a));
    }
    return arith::ConstantOp::create(b, cst.getValue());
  }
  if (auto bc = dyn_cast<vector::BroadcastOp>(op))
    return broadcast(bc, flat);
  if (auto tr = dyn_cast<vector::TransferReadOp>(op))
    return transferRead(tr, flat);
  if (auto mr = dyn_cast<vector::MultiDimReductionOp>(op))
    return multiReduction(mr, flat);
  if (auto red = dyn_cast<vector::ReductionOp>(op))
    return reduction(red);
  if (auto sh = dyn_cast<vector::ShuffleOp>(op))
    return shuffle(sh, flat);
  if (auto ex = dyn_cast<vector::ExtractOp>(op))
    return extract(ex, flat);
  if (auto fma = dyn_cast<vector::FMAOp>(op))
    return math::FmaOp::create(b, get(fma.getLhs(), flat),
                               get(fma.getRhs(), flat),
                               get(fma.getAcc(), flat));
  return elementwise(op, v, flat);
}

Value RowScalarizer::broadcast(vector::BroadcastOp bc, int64_t flat) {
  auto st = dyn_cast<VectorType>(bc.getSource().getType());
  if (!st)
    return get(bc.getSource(), 0);
  auto rt = bc.getResultVectorType();
  SmallVector<int64_t> idx = delinearize(flat, rt.getShape());
  int64_t off = rt.getRank() - st.getRank();
  SmallVector<int64_t> si;
  for (int64_t d = 0; d < st.getRank(); ++d)
    si.push_back(st.getDimSize(d) == 1 ? 0 : idx[d + off]);
  return get(bc.getSource(), linearize(si, st.getShape()));
}

Value RowScalarizer::transferRead(vector::TransferReadOp tr, int64_t flat) {
  auto st = llvm::cast<RankedTensorType>(tr.getBase().getType());
  VectorType vt = tr.getVectorType();
  SmallVector<int64_t> vi = delinearize(flat, vt.getShape());
  int64_t lead = st.getRank() - vt.getRank();
  SmallVector<Value> pos;
  for (int64_t d = 0; d < st.getRank(); ++d) {
    int64_t local = d >= lead ? vi[d - lead] : 0;
    APInt c;
    if (matchPattern(tr.getIndices()[d], m_ConstantInt(&c)))
      pos.push_back(e.idx(c.getSExtValue() + local));
    else
      pos.push_back(e.addi(get(tr.getIndices()[d], 0), e.idx(local)));
  }
  return convert(readCap(tr.getBase(), pos), vt.getElementType());
}

Value RowScalarizer::multiReduction(vector::MultiDimReductionOp mr,
                                    int64_t flat) {
  VectorType st = mr.getSourceVectorType();
  ArrayRef<int64_t> shape = st.getShape();
  SmallVector<bool> reduced(shape.size(), false);
  for (int64_t d : mr.getReductionDims())
    reduced[d] = true;
  SmallVector<int64_t> ridx;
  if (auto rt = dyn_cast<VectorType>(mr.getType()))
    ridx = delinearize(flat, rt.getShape());
  SmallVector<int64_t> redShape;
  for (size_t d = 0; d < shape.size(); ++d)
    if (reduced[d])
      redShape.push_back(shape[d]);
  int64_t count = 1;
  for (int64_t s : redShape)
    count *= s;
  Value acc = get(mr.getAcc(), flat);
  for (int64_t c = 0; c < count; ++c) {
    SmallVector<int64_t> ci = delinearize(c, redShape), full;
    size_t ri = 0, rr = 0;
    for (size_t d = 0; d < shape.size(); ++d)
      full.push_back(reduced[d] ? ci[rr++] : ridx[ri++]);
    acc = vector::makeArithReduction(
        b, b.getLoc(), mr.getKind(),
        get(mr.getSource(), linearize(full, shape)), acc);
  }
  return acc;
}

Value RowScalarizer::reduction(vector::ReductionOp red) {
  int64_t count = cast<VectorType>(red.getVector().getType()).getNumElements();
  Value acc = red.getAcc() ? get(red.getAcc(), 0) : Value();
  for (int64_t i = 0; i < count; ++i) {
    Value el = get(red.getVector(), i);
    acc =
        acc ? vector::makeArithReduction(b, b.getLoc(), red.getKind(), el, acc)
            : el;
  }
  return acc;
}

Value RowScalarizer::shuffle(vector::ShuffleOp sh, int64_t flat) {
  int64_t m = sh.getMask()[flat];
  int64_t n1 = sh.getV1VectorType().getNumElements();
  if (m < 0)
    return arith::ConstantOp::create(
        b, b.getZeroAttr(sh.getResultVectorType().getElementType()));
  return m < n1 ? get(sh.getV1(), m) : get(sh.getV2(), m - n1);
}

Value RowScalarizer::extract(vector::ExtractOp ex, int64_t flat) {
  VectorType st = ex.getSourceVectorType();
  SmallVector<int64_t> idx(ex.getStaticPosition());
  if (auto rt = dyn_cast<VectorType>(ex.getType()))
    llvm::append_range(idx, delinearize(flat, rt.getShape()));
  return get(ex.getSource(), linearize(idx, st.getShape()));
}

Value RowScalarizer::elementwise(Operation *op, Value v, int64_t flat) {
  IRMapping map;
  for (Value o : op->getOperands())
    map.map(o, get(o, flat));
  Operation *c = b.clone(*op, map);
  for (OpResult res : c->getResults()) {
    res.setType(getElementTypeOrSelf(res.getType()));
    if (res.getResultNumber() != cast<OpResult>(v).getResultNumber())
      cache[{op->getResult(res.getResultNumber()), flat}] = res;
  }
  return c->getResult(cast<OpResult>(v).getResultNumber());
}

namespace {
/// The feature kernel's arguments and indices.
struct FeatureKernelValues {
  Value q, k, pq, pk, n;
  DenseMap<Value, Value> caps;
  std::array<Value, 3> qs, ks;
  Value bz, by;
  /// The scan position (the map's position argument, the workspace row)
  /// and the storage row it reads (different with a token order).
  Value t, srcRow;
};

/// One row of the feature kernel: the feature map `r` (identity when null)
/// of row `srcRow` of head `head` of `src` (strides `st`), written as row t
/// of head `head` of the workspace `dst` ([B, heads, N, F], contiguous).
void emitFeatureRow(const LinearSpec &s, ImplicitLocOpBuilder &b,
                    const FeatureKernelValues &kv, Region *r, Value src,
                    const std::array<Value, 3> &st, Value head, Value dst,
                    int64_t heads, bool query) {
  Emitter e(b);
  Value bz = kv.bz, t = kv.t, n = kv.n;
  Type elem = s.elem;
  Type v2 = VectorType::get({2}, elem);
  Value base = e.addi(e.addi(e.muli(bz, st[0]), e.muli(head, st[1])),
                      e.muli(kv.srcRow, st[2]));
  auto x = [&](int64_t j) -> Value {
    Value raw =
        memref::LoadOp::create(b, src, ValueRange{e.addi(base, e.idx(j))});
    Value xf = arith::ExtFOp::create(b, b.getF32Type(), raw);
    if (query && s.scale != 1.0)
      xf = e.mulf(xf, e.f32(s.scale));
    return xf;
  };
  Value dbase = e.muli(
      e.addi(e.muli(e.addi(e.muli(bz, e.idx(heads)), head), n), t), e.idx(s.f));
  // Captures: row-major f32/bf16/f16 memrefs (flattened).
  auto readCap = [&](Value cap, ArrayRef<Value> pos) -> Value {
    auto ct = cast<RankedTensorType>(cap.getType());
    Value off = e.idx(0);
    for (int64_t d = 0; d < ct.getRank(); ++d)
      off = e.addi(e.muli(off, e.idx(ct.getDimSize(d))), pos[d]);
    return memref::LoadOp::create(b, kv.caps.lookup(cap), ValueRange{off});
  };
  std::optional<RowScalarizer> sc;
  if (r)
    sc.emplace(b, *r, x, t, readCap);
  for (int64_t j = 0; j < s.f; j += 2) {
    Value y0 = sc ? sc->result(j) : x(j);
    Value y1 = sc ? sc->result(j + 1) : x(j + 1);
    Value pair = vector::FromElementsOp::create(
        b, v2,
        ValueRange{arith::TruncFOp::create(b, elem, y0),
                   arith::TruncFOp::create(b, elem, y1)});
    vector::StoreOp::create(b, pair, dst, ValueRange{e.addi(dbase, e.idx(j))});
  }
}
} // namespace

void mlir::attn::detail::emitFeatureKernel(const LinearSpec &s,
                                           gpu::GPUFuncOp func) {
  Block &entry = func.getBody().front();
  auto b = ImplicitLocOpBuilder::atBlockBegin(s.op->getLoc(), &entry);
  Emitter e(b);
  FeatureKernelValues kv;
  unsigned a = 0;
  kv.q = entry.getArgument(a++);
  kv.k = entry.getArgument(a++);
  for (Value c : s.captures)
    kv.caps[c] = entry.getArgument(a++);
  kv.pq = entry.getArgument(a++);
  kv.pk = entry.getArgument(a++);
  a++; // B (the grid's z)
  kv.n = entry.getArgument(a++);
  for (std::array<Value, 3> *st : {&kv.qs, &kv.ks})
    for (int i = 0; i < 3; ++i)
      (*st)[i] = entry.getArgument(a++);
  Value tid = gpu::ThreadIdOp::create(b, gpu::Dimension::x);
  Value bx = gpu::BlockIdOp::create(b, gpu::Dimension::x);
  kv.by = gpu::BlockIdOp::create(b, gpu::Dimension::y);
  kv.bz = gpu::BlockIdOp::create(b, gpu::Dimension::z);
  kv.t = e.addi(e.muli(bx, e.idx(kFeatureThreads)), tid);
  Value valid = e.cmpi(CmpIPredicate::ult, kv.t, kv.n);
  // With a token order the row read is the token's storage row.
  Value orderOn =
      s.order ? e.cmpi(CmpIPredicate::eq, kv.n, e.idx(s.order.getLength()))
              : Value();
  kv.srcRow = tokenRow(b, e, s.order, orderOn, kv.t);
  Value by = kv.by;
  Value isQ = e.cmpi(CmpIPredicate::ult, by, e.idx(s.h));
  e.ifThen(arith::AndIOp::create(b, valid, isQ), [&] {
    emitFeatureRow(s, b, kv, s.fq, kv.q, kv.qs, by, kv.pq, s.h, true);
  });
  Value isK = e.cmpi(CmpIPredicate::uge, by, e.idx(s.h));
  e.ifThen(arith::AndIOp::create(b, valid, isK), [&] {
    emitFeatureRow(s, b, kv, s.fk, kv.k, kv.ks, e.subi(by, e.idx(s.h)), kv.pk,
                   s.hk, false);
  });
  gpu::ReturnOp::create(b);
}

void mlir::attn::detail::scalarizeHostRegion(Region &r) {
  Block &blk = r.front();
  Operation *term = blk.getTerminator();
  SmallVector<Operation *> old;
  for (Operation &inner : blk.without_terminator())
    old.push_back(&inner);
  OpBuilder ob(term);
  ImplicitLocOpBuilder b(term->getLoc(), ob);
  Value xa = blk.getArgument(0);
  Value t = blk.getNumArguments() > 1 ? blk.getArgument(1) : Value();
  auto x = [&](int64_t j) -> Value {
    return vector::ExtractOp::create(b, xa, ArrayRef<int64_t>{j});
  };
  auto readCap = [&](Value cap, ArrayRef<Value> pos) -> Value {
    return tensor::ExtractOp::create(b, cap, pos);
  };
  RowScalarizer sc(b, r, x, t, readCap);
  auto yt = cast<VectorType>(term->getOperand(0).getType());
  SmallVector<Value> els;
  for (int64_t f = 0; f < yt.getNumElements(); ++f)
    els.push_back(sc.result(f));
  Value y = vector::FromElementsOp::create(b, yt, els);
  term->setOperand(0, y);
  for (Operation *o : llvm::reverse(old))
    o->erase();
}
