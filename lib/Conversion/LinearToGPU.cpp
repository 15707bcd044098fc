//===- LinearToGPU.cpp - linear attention / scans to a tensor-core kernel -===//
//
// Part of attnc. See LinearToGPU.h and docs/linear-gpu.md.
//
// The chunked algorithm, per (batch b, head h, Dv slice): chunks of C = 64
// tokens walked in order (reverse order for the backward sweep of a
// bidirectional scan) by one thread block of 4 warps; the F x Dv_slice
// state S lives in registers (f32, warp w owns feature rows
// [w F/4, (w+1) F/4)) and, rounded to the input type, in shared memory for
// the product with the queries. With cumulative log-gates L (inside the
// chunk, in log2 units):
//   A     = (phi(Q) phi(K)^T) . causal . exp2(L_i - L_j)        (16 rows/warp)
//   O     = exp2(L_i) (phi(Q) S) + A V
//   S    <- exp2(L_last) S + (phi(K) . exp2(L_last - L_j))^T V
// (backward sweep: keys j > i, exp2(L_j - L_i), exp2(L_last - L_i) on the
// state term, exp2(L_j) on the update). The next chunk's Q, K, V tiles are
// fetched with cp.async while this one is computed (two buffers). With
// `normalize` the value tile gets a column of ones, so the same mma
// instructions carry the normalizer sum (and z = sum phi(k) in the state).
// Register fragments follow the PTX mma.m16n8k16 layouts (see
// AttnToGPU.cpp): A (row) from ldmatrix.x4, B (col) from ldmatrix(.trans),
// C in f32; phi(K)^T as the A operand of the state update comes from
// ldmatrix.x4.trans of the row-major K tile.
// GLA (per-token, per-feature log-gates [B, H, N, F]): the f32 gate tile is
// staged with the chunk and scanned per feature (L, cumulative from the
// chunk start); Q and K are scaled in shared memory by exp2(L_i) and
// exp2(-L_j) (chunk-start reference), so the scores need only the causal
// mask, and S <- diag(exp2(L_last)) (S + K~^T V). Exact while each chunk's
// cumulative log-gate stays >= about -70 nats (docs/linear-gpu.md).
// Feature maps that are not elementwise, read captures or change the feature
// dim (Hedgehog, Performer, cosFormer): a feature kernel <name>_phi runs
// first, one thread per (b, t, head) row evaluating the region as unrolled
// scalar code (RowScalarizer), and writes phi(q), phi(k) to workspaces that
// the chunked kernel reads with the identity map (LinearSpec::workspace).
//
//===----------------------------------------------------------------------===//

#include "attnc/Conversion/LinearToGPU.h"
#include "GpuKernelEmitter.h"
#include "attnc/Transforms/AttnLowering.h"
#include "attnc/Transforms/LoweringUtils.h"
#include "attnc/Transforms/Passes.h"

#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/LLVMIR/NVVMDialect.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/NVGPU/IR/NVGPUDialect.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/IR/IRMapping.h"
#include "mlir/IR/Matchers.h"

#include "llvm/ADT/StringSet.h"
#include "llvm/Support/Debug.h"
#include "llvm/Support/raw_ostream.h"

namespace mlir::attn {
#define GEN_PASS_DEF_CONVERTATTNLINEARTOGPU
#include "Attn/AttnPasses.h.inc"
} // namespace mlir::attn

using namespace mlir;
using namespace mlir::attn;
using arith::CmpIPredicate;

namespace {

constexpr int64_t kChunk = 64;
constexpr int64_t kWarps = 4;
constexpr int64_t kThreads = kWarps * 32;
constexpr double kLog2e = 1.4426950408889634;

using Decay = LinearDecay;

/// The parts of a linear op the kernel needs.
struct LinearSpec : LinearOpView {
  bool hasCaptures = false, hasOrder = false;
  /// The chunked kernel of a feature-kernel op: q and k are the workspaces
  /// phi(q), phi(k) ([B, H, N, F], [B, Hkv, N, F], contiguous; d == f), no
  /// feature map, scale 1 (both applied by the feature kernel).
  bool workspace = false;

  explicit LinearSpec(Operation *o) : LinearOpView(o) {
    hasCaptures = !captures.empty();
    hasOrder = bool(order);
  }
};

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

/// Whether the op's feature maps need the per-row feature kernel (a
/// workspace pass before the chunked kernel): they read captured tensors,
/// change the feature dimension, or are not elementwise.
bool needsFeatureKernel(const LinearSpec &s) {
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

// Upper bound on the scalar code one feature-map evaluation unrolls to
// (every vector value's elements, summed over the region's ops).
constexpr int64_t kMaxUnrolledElements = 1 << 17;

int64_t numElements(Type t) {
  if (auto vt = dyn_cast<VectorType>(t))
    return vt.getNumElements();
  return 1;
}

/// The first op of a feature-map region the feature kernel cannot evaluate
/// (null when it can), with the reason in `why`.
Operation *firstUnscalarizable(Region &r, ArrayRef<Value> captures,
                               std::string &why) {
  int64_t total = 0;
  Operation *bad = nullptr;
  auto isCapture = [&](Value v) { return llvm::is_contained(captures, v); };
  r.walk([&](Operation *inner) -> WalkResult {
    if (inner->getBlock() != &r.front()) {
      why = "nested regions";
      bad = inner->getParentOp();
      return WalkResult::interrupt();
    }
    if (inner == r.front().getTerminator())
      return WalkResult::advance();
    for (Type t : inner->getResultTypes()) {
      if (isa<ShapedType>(t) && !isa<VectorType>(t)) {
        why = "non-vector shaped result";
        bad = inner;
        return WalkResult::interrupt();
      }
      if (auto vt = dyn_cast<VectorType>(t))
        if (vt.isScalable()) {
          why = "scalable vector";
          bad = inner;
          return WalkResult::interrupt();
        }
      total += numElements(t);
    }
    for (Value o : inner->getOperands()) {
      if (r.isAncestor(o.getParentRegion()))
        continue;
      // From above: a capture (read by transfer_read) or a constant.
      bool ok = isCapture(o) ? isa<vector::TransferReadOp>(inner)
                             : matchPattern(o, m_Constant()) &&
                                   !isa<ShapedType>(o.getType());
      if (!ok) {
        why = "a value from above that is not a capture or a scalar constant";
        bad = inner;
        return WalkResult::interrupt();
      }
    }
    if (auto tr = dyn_cast<vector::TransferReadOp>(inner)) {
      auto st = dyn_cast<RankedTensorType>(tr.getBase().getType());
      if (!isCapture(tr.getBase()) || !st || !st.hasStaticShape() ||
          !isa<FloatType>(st.getElementType()) || tr.getMask() ||
          !tr.getPermutationMap().isMinorIdentity()) {
        why = "transfer_read of other than a static-shaped float capture "
              "with a minor identity map and no mask";
        bad = inner;
        return WalkResult::interrupt();
      }
      VectorType vt = tr.getVectorType();
      int64_t lead = st.getRank() - vt.getRank();
      for (int64_t d = 0; d < vt.getRank(); ++d) {
        if (tr.isDimInBounds(d))
          continue;
        APInt c;
        if (!matchPattern(tr.getIndices()[lead + d], m_ConstantInt(&c)) ||
            c.getSExtValue() + vt.getDimSize(d) > st.getDimSize(lead + d)) {
          why = "transfer_read that may be out of bounds";
          bad = inner;
          return WalkResult::interrupt();
        }
      }
      return WalkResult::advance();
    }
    if (auto sh = dyn_cast<vector::ShuffleOp>(inner)) {
      if (sh.getV1VectorType().getRank() != 1 ||
          sh.getV2VectorType().getRank() != 1) {
        why = "shuffle of other than rank-1 vectors";
        bad = inner;
        return WalkResult::interrupt();
      }
      return WalkResult::advance();
    }
    if (auto ex = dyn_cast<vector::ExtractOp>(inner)) {
      if (!ex.getDynamicPosition().empty()) {
        why = "extract at a dynamic position";
        bad = inner;
        return WalkResult::interrupt();
      }
      return WalkResult::advance();
    }
    if (auto red = dyn_cast<vector::ReductionOp>(inner)) {
      if (!isa<FloatType>(red.getType()) ||
          cast<VectorType>(red.getVector().getType()).getRank() != 1) {
        why = "non-float reduction";
        bad = inner;
        return WalkResult::interrupt();
      }
      return WalkResult::advance();
    }
    if (auto mr = dyn_cast<vector::MultiDimReductionOp>(inner)) {
      if (!isa<FloatType>(getElementTypeOrSelf(mr.getType()))) {
        why = "non-float reduction";
        bad = inner;
        return WalkResult::interrupt();
      }
      return WalkResult::advance();
    }
    if (isa<vector::BroadcastOp, vector::FMAOp>(inner))
      return WalkResult::advance();
    if (isa<arith::ArithDialect, math::MathDialect>(inner->getDialect()) &&
        inner->getNumRegions() == 0) {
      // Elementwise on vectors (all vector operands/results of one shape)
      // or scalar.
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
      if (same && elementwise)
        return WalkResult::advance();
    }
    why = "not supported in feature maps on GPU";
    bad = inner;
    return WalkResult::interrupt();
  });
  if (!bad && total > kMaxUnrolledElements) {
    why = "too large to unroll (" + std::to_string(total) + " elements)";
    bad = r.getParentOp();
  }
  return bad;
}

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

  Value compute(Value v, int64_t flat) {
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
    if (auto bc = dyn_cast<vector::BroadcastOp>(op)) {
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
    if (auto tr = dyn_cast<vector::TransferReadOp>(op)) {
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
    if (auto mr = dyn_cast<vector::MultiDimReductionOp>(op)) {
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
    if (auto red = dyn_cast<vector::ReductionOp>(op)) {
      int64_t count =
          cast<VectorType>(red.getVector().getType()).getNumElements();
      Value acc = red.getAcc() ? get(red.getAcc(), 0) : Value();
      for (int64_t i = 0; i < count; ++i) {
        Value el = get(red.getVector(), i);
        acc = acc ? vector::makeArithReduction(b, b.getLoc(), red.getKind(), el,
                                               acc)
                  : el;
      }
      return acc;
    }
    if (auto sh = dyn_cast<vector::ShuffleOp>(op)) {
      int64_t m = sh.getMask()[flat];
      int64_t n1 = sh.getV1VectorType().getNumElements();
      if (m < 0)
        return arith::ConstantOp::create(
            b, b.getZeroAttr(sh.getResultVectorType().getElementType()));
      return m < n1 ? get(sh.getV1(), m) : get(sh.getV2(), m - n1);
    }
    if (auto ex = dyn_cast<vector::ExtractOp>(op)) {
      VectorType st = ex.getSourceVectorType();
      SmallVector<int64_t> idx(ex.getStaticPosition());
      if (auto rt = dyn_cast<VectorType>(ex.getType()))
        llvm::append_range(idx, delinearize(flat, rt.getShape()));
      return get(ex.getSource(), linearize(idx, st.getShape()));
    }
    if (auto fma = dyn_cast<vector::FMAOp>(op))
      return math::FmaOp::create(b, get(fma.getLhs(), flat),
                                 get(fma.getRhs(), flat),
                                 get(fma.getAcc(), flat));
    // arith / math, elementwise or scalar: the op on this element.
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
};

class LinearGpuEmitter {
public:
  LinearGpuEmitter(const LinearSpec &s, ImplicitLocOpBuilder &b, int64_t dvs)
      : s(s), b(b), e(b), dvs(dvs) {}

  void emit(gpu::GPUFuncOp func);

  const LinearSpec &s;
  ImplicitLocOpBuilder &b;
  Emitter e;
  int64_t dvs;
  bool bf16 = true;
  Type elem;
  int64_t nV = 0;    // n-tiles of 8 in the value/state/output tiles
  int64_t mTile = 0; // state m-tiles of 16 rows per warp

  Value q, k, v, decay, init, o, fin, batch, n;
  Value qs[3], ks[3], vs[3], os[3], gs[3];
  Value sQ, sK, sV, sS, sL, sG; // sG: GLA's per-feature gates [2][C][D]
  Value sQw, sKw, sVw, sSw;     // the same tiles as 32-bit words
  Value tid, lane, warp, g4, t4, bi, hi, hkv, dv0, gHead, sliceIdx;
  Value scratch; // f32, bidirectional with normalize (see sweep)
  Value c0, c1;
  Value orderOn; // N == the token order's length (null without an order)

  /// The storage row of scan position `pos` (tokenRow).
  Value tok(Value pos) { return tokenRow(b, e, s.order, orderOn, pos); }

  Value cIdx(int64_t x) { return e.idx(x); }
  Value remu(Value x, int64_t m) {
    return b.createOrFold<arith::RemUIOp>(x, cIdx(m));
  }
  Value ex2(Value x) { return mlir::attn::detail::ex2Approx(b, x); }
  Value i32(Value idx) {
    return arith::IndexCastOp::create(b, b.getI32Type(), idx);
  }
  Value shfl(Value x, Value offset, gpu::ShuffleMode mode) {
    Value w = arith::ConstantIntOp::create(b, b.getI32Type(), 32);
    return gpu::ShuffleOp::create(b, x, offset, w, mode).getShuffleResult();
  }
  Value goff(Value *st, Value hIdx, Value row, Value col) {
    return e.addi(e.addi(e.muli(bi, st[0]), e.muli(hIdx, st[1])),
                  e.addi(e.muli(row, st[2]), col));
  }

  /// cp.async of rows [r0, r0 + kChunk) (zero-filled from row `limit` on),
  /// columns [col0, col0 + width) of a strided [B, H, N, *] tensor into
  /// smem[buf][row][0, width), one commit group per call site group.
  /// Rows are scan positions; with a token order (and `permute`) the row
  /// read is the token's storage row.
  void stage(Value gmem, Value *st, Value hIdx, Value r0, Value limit,
             Value col0, Value smem, Value buf, int64_t width,
             bool permute = true) {
    int64_t vec = 16 / (cast<MemRefType>(smem.getType())
                            .getElementType()
                            .getIntOrFloatBitWidth() /
                        8);
    int64_t perRow = width / vec, total = kChunk * perRow;
    Type tokenTy = nvgpu::DeviceAsyncTokenType::get(b.getContext());
    for (int64_t it = 0; it * kThreads < total; ++it) {
      Value c = e.addi(tid, cIdx(it * kThreads));
      Value row = e.divi(c, cIdx(perRow));
      Value col = e.muli(remu(c, perRow), cIdx(vec));
      Value grow = e.addi(r0, row);
      Value valid = e.cmpi(CmpIPredicate::ult, grow, limit);
      Value safeRow = e.select(valid, grow, c0);
      if (permute)
        safeRow = tok(safeRow);
      Value srcElems = e.select(valid, cIdx(vec), c0);
      Value off = goff(st, hIdx, safeRow, e.addi(col0, col));
      (void)nvgpu::DeviceAsyncCopyOp::create(
          b, tokenTy, smem, ValueRange{buf, row, col}, gmem, ValueRange{off},
          b.getIndexAttr(vec), srcElems, UnitAttr::get(b.getContext()));
    }
  }
  /// ldmatrix (x4 or x2, optionally transposed) at (buf, row, col) per lane;
  /// returns the 2-element registers.
  SmallVector<Value> ldm(Value smem, ValueRange idx, int64_t count,
                         bool trans) {
    Value f = nvgpu::LdMatrixOp::create(b, VectorType::get({count, 2}, elem),
                                        smem, idx, b.getBoolAttr(trans),
                                        b.getI32IntegerAttr(count));
    SmallVector<Value> out;
    for (int64_t i = 0; i < count; ++i)
      out.push_back(vector::ExtractOp::create(b, f, ArrayRef<int64_t>{i}));
    return out;
  }
  /// A vector<2 x elem> register as an mma operand.
  Value opnd(Value pair) {
    return bf16 ? Value(LLVM::BitcastOp::create(b, b.getI32Type(), pair))
                : pair;
  }
  SmallVector<Value> opnds(ArrayRef<Value> pairs) {
    SmallVector<Value> out;
    for (Value p : pairs)
      out.push_back(opnd(p));
    return out;
  }
  Value pack(Value x, Value y) {
    Value pair = vector::FromElementsOp::create(
        b, VectorType::get({2}, elem),
        ValueRange{arith::TruncFOp::create(b, elem, x),
                   arith::TruncFOp::create(b, elem, y)});
    return opnd(pair);
  }
  /// A register pair scaled elementwise by (w0, w1), as an mma operand.
  Value scalePair(Value pair, Value w0, Value w1) {
    Type v2f = VectorType::get({2}, b.getF32Type());
    Value x = arith::ExtFOp::create(b, v2f, pair);
    Value w = vector::FromElementsOp::create(b, v2f, ValueRange{w0, w1});
    Value y = arith::MulFOp::create(b, x, w);
    return opnd(arith::TruncFOp::create(b, VectorType::get({2}, elem), y));
  }
  using Frag = std::array<Value, 4>;
  Frag mma(ArrayRef<Value> a, ArrayRef<Value> bOps, const Frag &c) {
    Type f32 = b.getF32Type();
    auto resTy =
        LLVM::LLVMStructType::getLiteral(b.getContext(), {f32, f32, f32, f32});
    NVVM::MMATypes t = bf16 ? NVVM::MMATypes::bf16 : NVVM::MMATypes::f16;
    auto m = NVVM::MmaOp::create(
        b, resTy, a, bOps, ValueRange{c[0], c[1], c[2], c[3]},
        ArrayRef<int64_t>{16, 8, 16}, std::nullopt, std::nullopt,
        std::array<NVVM::MMATypes, 2>{t, t},
        std::array<NVVM::MMALayout, 2>{NVVM::MMALayout::row,
                                       NVVM::MMALayout::col});
    Frag out;
    for (int64_t i = 0; i < 4; ++i)
      out[i] =
          LLVM::ExtractValueOp::create(b, m.getResult(), ArrayRef<int64_t>{i});
    return out;
  }
  Frag zeroFrag() {
    Value z = e.f32(0.0);
    return {z, z, z, z};
  }

  /// Applies a feature-map region to one f32 element: every op is applied
  /// to scalars (the region is elementwise, checked before).
  Value applyScalar(Region &r, Value x, Value t);
  /// phi (and the query scale) applied in place to the Q and K tiles of
  /// buffer `buf`; rows at or past n become 0.
  void transformTiles(Value buf, Value t0);
  /// GLA: the raw per-feature log-gates of buffer `buf` become cumulative
  /// log2-gates inside the chunk, in place (one thread per feature).
  void cumFeatureGates(Value buf);
  /// Gates of chunk rows 2 lane, 2 lane + 1 (0 past n), loaded now.
  std::pair<Value, Value> loadGates(Value t0, Value real);
  /// Cumulative log2-gates of the chunk into sL[buf] (warp 0 writes).
  void storeCumGates(std::pair<Value, Value> g, Value buf);
  /// The state fragments into sS, rounded to the element type.
  void storeStateSmem(ArrayRef<Value> state);
  /// One sweep over the chunks; returns the final state registers.
  SmallVector<Value> sweep(bool forward, SmallVector<Value> state);
  void issueChunk(Value t0, Value real, Value buf);
};
} // namespace

Value LinearGpuEmitter::applyScalar(Region &r, Value x, Value t) {
  Block &blk = r.front();
  IRMapping map;
  map.map(blk.getArgument(0), x);
  if (blk.getNumArguments() > 1)
    map.map(blk.getArgument(1), t);
  for (Operation &inner : blk.without_terminator()) {
    if (auto cst = dyn_cast<arith::ConstantOp>(inner)) {
      if (auto dense = dyn_cast<DenseElementsAttr>(cst.getValue())) {
        // Elementwise maps use splat constants; a non-splat one was
        // refused by checkLinearGpuSupport.
        map.map(cst.getResult(),
                arith::ConstantOp::create(
                    b, cast<TypedAttr>(dense.getSplatValue<Attribute>())));
        continue;
      }
    }
    if (auto bc = dyn_cast<vector::BroadcastOp>(inner)) {
      map.map(bc.getResult(), map.lookupOrDefault(bc.getSource()));
      continue;
    }
    // Elementwise on vector<F>: the same op on the scalar element.
    Operation *created = b.clone(inner, map);
    for (OpResult r : created->getResults())
      r.setType(getElementTypeOrSelf(r.getType()));
  }
  return map.lookupOrDefault(blk.getTerminator()->getOperand(0));
}

void LinearGpuEmitter::transformTiles(Value buf, Value t0) {
  // Shared memory is read and written as 32-bit words (element pairs):
  // vector loads of workgroup memrefs do not convert at module level.
  int64_t perRow = s.d / 2, total = kChunk * perRow;
  Type v2 = VectorType::get({2}, elem);
  Type v2f = VectorType::get({2}, b.getF32Type());
  // GLA (chunk-start reference): q~ = phi(q) exp2(L_i), k~ = phi(k)
  // exp2(-L_j) per feature, L the cumulative log2-gates of the chunk; then
  // q~ k~^T = sum_f q k exp2(L_if - L_jf) and q~ S is the inter-chunk term.
  // exp2(-L_j) is capped at 2^126 (finite; exact while L_j >= -126).
  bool dimGates = s.kind == Decay::TokenDim;
  for (int which = 0; which < 2; ++which) {
    Region *r = which == 0 ? s.fq : s.fk;
    Value tile = which == 0 ? sQw : sKw;
    if (!r && !dimGates)
      continue;
    for (int64_t it = 0; it * kThreads < total; ++it) {
      Value c = e.addi(tid, cIdx(it * kThreads));
      Value row = e.divi(c, cIdx(perRow));
      Value col = remu(c, perRow);
      Value t = e.addi(t0, row);
      Value valid = e.cmpi(CmpIPredicate::ult, t, n);
      Value word = memref::LoadOp::create(b, tile, ValueRange{buf, row, col});
      Value xf = arith::ExtFOp::create(
          b, v2f, Value(LLVM::BitcastOp::create(b, v2, word)));
      SmallVector<Value> out;
      for (int64_t i = 0; i < 2; ++i) {
        Value x = vector::ExtractOp::create(b, xf, ArrayRef<int64_t>{i});
        if (r && which == 0 && s.scale != 1.0)
          x = e.mulf(x, e.f32(s.scale));
        Value y = r ? applyScalar(*r, x, t) : x;
        if (dimGates) {
          Value feat = e.addi(e.muli(col, cIdx(2)), cIdx(i));
          Value l = memref::LoadOp::create(b, sG, ValueRange{buf, row, feat});
          Value ex = which == 0
                         ? l
                         : arith::MinimumFOp::create(
                               b, arith::NegFOp::create(b, l), e.f32(126.0));
          y = e.mulf(y, ex2(ex));
        }
        out.push_back(e.select(valid, y, e.f32(0.0)));
      }
      Value yf = vector::FromElementsOp::create(b, v2f, out);
      Value packed = LLVM::BitcastOp::create(
          b, b.getI32Type(), Value(arith::TruncFOp::create(b, v2, yf)));
      memref::StoreOp::create(b, packed, tile, ValueRange{buf, row, col});
    }
  }
}

void LinearGpuEmitter::cumFeatureGates(Value buf) {
  // Thread f < D scans feature f down the 64 rows, 8 rows per step (the
  // loads of a step are independent). log2 units.
  e.ifThen(e.cmpi(CmpIPredicate::ult, tid, cIdx(s.d)), [&] {
    e.loop(c0, cIdx(kChunk / 8), c1, ValueRange{e.f32(0.0)},
           [&](Value r8, ValueRange it) -> SmallVector<Value> {
             Value acc = it[0];
             Value base = e.muli(r8, cIdx(8));
             Value g[8];
             for (int u = 0; u < 8; ++u)
               g[u] = memref::LoadOp::create(
                   b, sG, ValueRange{buf, e.addi(base, cIdx(u)), tid});
             for (int u = 0; u < 8; ++u) {
               acc = e.addf(acc, e.mulf(g[u], e.f32(kLog2e)));
               memref::StoreOp::create(
                   b, acc, sG, ValueRange{buf, e.addi(base, cIdx(u)), tid});
             }
             return {acc};
           });
  });
}

std::pair<Value, Value> LinearGpuEmitter::loadGates(Value t0, Value real) {
  Value zero = e.f32(0.0);
  if (s.kind == Decay::None || s.kind == Decay::TokenDim)
    return {zero, zero};
  Value out[2];
  for (int i = 0; i < 2; ++i) {
    Value t = e.addi(t0, e.addi(e.muli(lane, cIdx(2)), cIdx(i)));
    Value valid =
        b.createOrFold<arith::AndIOp>(real, e.cmpi(CmpIPredicate::ult, t, n));
    if (s.kind == Decay::Head) {
      out[i] = e.select(valid, gHead, zero);
      continue;
    }
    Value off = goff(gs, hi, tok(e.select(valid, t, c0)), c0);
    Value g = memref::LoadOp::create(b, decay, ValueRange{off});
    out[i] = e.select(valid, g, zero);
  }
  return {out[0], out[1]};
}

void LinearGpuEmitter::storeCumGates(std::pair<Value, Value> g, Value buf) {
  if (s.kind == Decay::None || s.kind == Decay::TokenDim)
    return;
  Value a0 = g.first, pair = e.addf(g.first, g.second);
  Value x = pair;
  Value lane32 = i32(lane);
  for (int32_t off = 1; off < 32; off *= 2) {
    Value offV = arith::ConstantIntOp::create(b, b.getI32Type(), off);
    Value y = shfl(x, offV, gpu::ShuffleMode::UP);
    Value take = arith::CmpIOp::create(b, CmpIPredicate::sge, lane32, offV);
    x = e.select(take, e.addf(x, y), x);
  }
  Value excl = e.subf(x, pair);
  Value l0 = e.mulf(e.addf(excl, a0), e.f32(kLog2e));
  Value l1 = e.mulf(x, e.f32(kLog2e));
  Value first = e.cmpi(CmpIPredicate::eq, warp, c0);
  e.ifThen(first, [&] {
    Value r0 = e.muli(lane, cIdx(2));
    memref::StoreOp::create(b, l0, sL, ValueRange{buf, r0});
    memref::StoreOp::create(b, l1, sL, ValueRange{buf, e.addi(r0, c1)});
  });
}

void LinearGpuEmitter::storeStateSmem(ArrayRef<Value> state) {
  Type v2 = VectorType::get({2}, elem);
  for (int64_t mt = 0; mt < mTile; ++mt)
    for (int64_t nd = 0; nd < nV; ++nd)
      for (int r = 0; r < 2; ++r) {
        const Value *f = &state[(mt * nV + nd) * 4];
        Value row = e.addi(e.muli(warp, cIdx(mTile * 16)),
                           e.addi(cIdx(mt * 16 + r * 8), g4));
        Value col = e.addi(cIdx(nd * 4), t4); // in element pairs
        Value pair = vector::FromElementsOp::create(
            b, v2,
            ValueRange{arith::TruncFOp::create(b, elem, f[2 * r]),
                       arith::TruncFOp::create(b, elem, f[2 * r + 1])});
        memref::StoreOp::create(
            b, Value(LLVM::BitcastOp::create(b, b.getI32Type(), pair)), sSw,
            ValueRange{row, col});
      }
}

void LinearGpuEmitter::issueChunk(Value t0, Value real, Value buf) {
  Value limit = e.select(real, n, c0);
  // The feature kernel's workspaces are already in scan order.
  stage(q, qs, hi, t0, limit, c0, sQ, buf, s.d, !s.workspace);
  stage(k, ks, hkv, t0, limit, c0, sK, buf, s.d, !s.workspace);
  stage(v, vs, hkv, t0, limit, dv0, sV, buf, dvs);
  if (s.kind == Decay::TokenDim)
    stage(decay, gs, hi, t0, limit, c0, sG, buf, s.d);
  NVVM::CpAsyncCommitGroupOp::create(b);
}

SmallVector<Value> LinearGpuEmitter::sweep(bool fwd, SmallVector<Value> st) {
  Value cC = cIdx(kChunk);
  Value chunks = e.ceilDiv(n, cC);
  Value any = e.cmpi(CmpIPredicate::ugt, chunks, c0);
  Value firstChunk =
      fwd ? c0 : e.select(any, e.subi(chunks, c1), c0); // chunk index
  Value firstT0 = e.muli(firstChunk, cC);
  issueChunk(firstT0, any, c0);
  storeCumGates(loadGates(firstT0, any), c0);
  storeStateSmem(st);
  Value zero = e.f32(0.0);

  SmallVector<Value> out = e.loop(
      c0, chunks, c1, st, [&](Value r, ValueRange it) -> SmallVector<Value> {
        SmallVector<Value> S(it.begin(), it.end());
        Value c = fwd ? r : e.subi(e.subi(chunks, c1), r);
        Value t0 = e.muli(c, cC);
        Value buf = remu(r, 2);
        Value nbuf = e.subi(c1, buf);
        Value hasNext = e.cmpi(CmpIPredicate::ult, e.addi(r, c1), chunks);
        Value nextT0 =
            fwd ? e.addi(t0, cC) : e.select(hasNext, e.subi(t0, cC), c0);
        issueChunk(nextT0, hasNext, nbuf);
        auto nextGates = loadGates(nextT0, hasNext);
        NVVM::CpAsyncWaitGroupOp::create(b, b.getI32IntegerAttr(1));
        gpu::BarrierOp::create(b);
        bool dimGates = s.kind == Decay::TokenDim;
        if (dimGates) {
          cumFeatureGates(buf);
          gpu::BarrierOp::create(b);
        }
        if (s.fq || s.fk || dimGates) {
          transformTiles(buf, t0);
          gpu::BarrierOp::create(b);
        }
        // Scalar gates (GLA's are folded into the Q and K tiles).
        bool gated = s.kind == Decay::Head || s.kind == Decay::Token;
        Value wrow = e.muli(warp, cIdx(16));
        Value lastL = gated ? Value(memref::LoadOp::create(
                                  b, sL, ValueRange{buf, cIdx(kChunk - 1)}))
                            : Value();
        Value rowL[2];
        for (int rr = 0; rr < 2; ++rr)
          rowL[rr] =
              gated ? Value(memref::LoadOp::create(
                          b, sL,
                          ValueRange{buf,
                                     e.addi(wrow, e.addi(g4, cIdx(rr * 8)))}))
                    : Value();

        // Q fragments (A operands) for this warp's 16 rows.
        Value lrow = remu(lane, 16);
        Value lhalf = e.muli(e.divi(lane, cIdx(16)), cIdx(8));
        SmallVector<SmallVector<Value>> qf;
        for (int64_t kk = 0; kk < s.d / 16; ++kk)
          qf.push_back(opnds(ldm(
              sQ,
              ValueRange{buf, e.addi(wrow, lrow), e.addi(cIdx(kk * 16), lhalf)},
              4, false)));

        // Intra-chunk scores, 16 columns (two n-blocks) at a time; blocks
        // the causal structure empties are skipped (warp-uniform).
        Value krow8 = remu(lane, 8);
        Value krow = e.addi(krow8, lhalf);
        Value kcol = e.muli(remu(e.divi(lane, cIdx(8)), 2), cIdx(8));
        int64_t pairs = kChunk / 16;
        auto needed = [&](int64_t p) -> Value {
          return fwd ? e.cmpi(CmpIPredicate::ule, cIdx(p), warp)
                     : e.cmpi(CmpIPredicate::uge, cIdx(p), warp);
        };
        SmallVector<Type> f8(8, b.getF32Type());
        SmallVector<Frag> sc(kChunk / 8);
        for (int64_t p = 0; p < pairs; ++p) {
          SmallVector<Value> res = e.ifElse(
              needed(p), f8,
              [&]() -> SmallVector<Value> {
                Frag s0 = zeroFrag(), s1 = zeroFrag();
                for (int64_t kk = 0; kk < s.d / 16; ++kk) {
                  SmallVector<Value> ops =
                      opnds(ldm(sK,
                                ValueRange{buf, e.addi(cIdx(p * 16), krow),
                                           e.addi(cIdx(kk * 16), kcol)},
                                4, false));
                  s0 = mma(qf[kk], {ops[0], ops[1]}, s0);
                  s1 = mma(qf[kk], {ops[2], ops[3]}, s1);
                }
                return {s0[0], s0[1], s0[2], s0[3], s1[0], s1[1], s1[2], s1[3]};
              },
              [&]() -> SmallVector<Value> {
                return SmallVector<Value>(8, zero);
              });
          sc[2 * p] = {res[0], res[1], res[2], res[3]};
          sc[2 * p + 1] = {res[4], res[5], res[6], res[7]};
        }
        // Causal mask and decay: A[i][j] = s * exp2(+-(L_i - L_j)).
        Value lcol = e.muli(t4, cIdx(2));
        for (int64_t nb = 0; nb < kChunk / 8; ++nb) {
          Value colL[2];
          for (int cc = 0; cc < 2; ++cc)
            colL[cc] =
                gated ? Value(memref::LoadOp::create(
                            b, sL,
                            ValueRange{buf, e.addi(cIdx(nb * 8 + cc), lcol)}))
                      : Value();
          for (int el = 0; el < 4; ++el) {
            Value i = e.addi(wrow, e.addi(g4, cIdx((el / 2) * 8)));
            Value j = e.addi(cIdx(nb * 8 + el % 2), lcol);
            Value keep = fwd ? e.cmpi(CmpIPredicate::ule, j, i)
                             : e.cmpi(CmpIPredicate::ugt, j, i);
            Value a = sc[nb][el];
            if (gated) {
              Value diff = fwd ? e.subf(rowL[el / 2], colL[el % 2])
                               : e.subf(colL[el % 2], rowL[el / 2]);
              a = e.mulf(a, ex2(diff));
            }
            sc[nb][el] = e.select(keep, a, zero);
          }
        }

        // O = (phi(Q) S) * exp2(row term) + A V.
        Value vrow = remu(lane, 16);
        SmallVector<Frag> acc(nV, zeroFrag());
        for (int64_t kk = 0; kk < s.d / 16; ++kk)
          for (int64_t nd = 0; nd < nV; nd += 2) {
            bool pair = nd + 1 < nV;
            SmallVector<Value> ops = opnds(ldm(
                sS,
                ValueRange{e.addi(cIdx(kk * 16), vrow),
                           pair ? e.addi(cIdx(nd * 8), lhalf) : cIdx(nd * 8)},
                pair ? 4 : 2, true));
            acc[nd] = mma(qf[kk], {ops[0], ops[1]}, acc[nd]);
            if (pair)
              acc[nd + 1] = mma(qf[kk], {ops[2], ops[3]}, acc[nd + 1]);
          }
        if (gated) {
          Value rs[2];
          for (int rr = 0; rr < 2; ++rr)
            rs[rr] = ex2(fwd ? rowL[rr] : e.subf(lastL, rowL[rr]));
          for (Frag &fr : acc)
            for (int el = 0; el < 4; ++el)
              fr[el] = e.mulf(fr[el], rs[el / 2]);
        }
        SmallVector<Type> accTypes(nV * 4, b.getF32Type());
        for (int64_t p = 0; p < pairs; ++p) {
          SmallVector<Value> flat;
          for (Frag &fr : acc)
            flat.append(fr.begin(), fr.end());
          SmallVector<Value> res = e.ifElse(
              needed(p), accTypes,
              [&]() -> SmallVector<Value> {
                int64_t n0 = 2 * p, n1 = 2 * p + 1;
                SmallVector<Value> aOps = {
                    pack(sc[n0][0], sc[n0][1]), pack(sc[n0][2], sc[n0][3]),
                    pack(sc[n1][0], sc[n1][1]), pack(sc[n1][2], sc[n1][3])};
                SmallVector<Frag> a2 = acc;
                for (int64_t nd = 0; nd < nV; nd += 2) {
                  bool pair = nd + 1 < nV;
                  SmallVector<Value> ops =
                      opnds(ldm(sV,
                                ValueRange{buf, e.addi(cIdx(p * 16), vrow),
                                           pair ? e.addi(cIdx(nd * 8), lhalf)
                                                : cIdx(nd * 8)},
                                pair ? 4 : 2, true));
                  a2[nd] = mma(aOps, {ops[0], ops[1]}, a2[nd]);
                  if (pair)
                    a2[nd + 1] = mma(aOps, {ops[2], ops[3]}, a2[nd + 1]);
                }
                SmallVector<Value> out;
                for (Frag &fr : a2)
                  out.append(fr.begin(), fr.end());
                return out;
              },
              [&]() -> SmallVector<Value> { return flat; });
          for (int64_t nd = 0; nd < nV; ++nd)
            for (int el = 0; el < 4; ++el)
              acc[nd][el] = res[nd * 4 + el];
        }

        // Store the chunk's rows of o (the scale of an identity feature map
        // and the normalizer applied here).
        Type v2 = VectorType::get({2}, elem);
        Type v2f = VectorType::get({2}, b.getF32Type());
        double outScale = s.fq || s.normalize ? 1.0 : s.scale;
        // Bidirectional with normalize: o = (num_f + num_b) / (den_f +
        // den_b). The forward sweep writes its f32 numerators and
        // denominators to the scratch (by scan position; each thread the
        // elements it rereads, the denominator by lane t4 == 0 of the row's
        // quad); the backward sweep adds its own, divides and writes o.
        bool biNorm = s.normalize && !s.causal;
        for (int rr = 0; rr < 2; ++rr) {
          Value inv, den;
          if (s.normalize) {
            // The normalizer is column 0 of the last n-tile (lane t4 == 0).
            den = acc[nV - 1][2 * rr];
            Value src = i32(e.subi(lane, t4));
            den = shfl(den, src, gpu::ShuffleMode::IDX);
            if (!biNorm) {
              Value nz = arith::CmpFOp::create(b, arith::CmpFPredicate::ONE,
                                               den, zero);
              inv = e.select(nz, e.divf(e.f32(1.0), den), zero);
            }
          }
          Value row = e.addi(t0, e.addi(wrow, e.addi(g4, cIdx(rr * 8))));
          Value inRange = e.cmpi(CmpIPredicate::ult, row, n);
          e.ifThen(inRange, [&] {
            Value orow = tok(row); // o in storage order
            // Scratch rows: (b, h, scan position) of [B, H, N, *].
            Value srow =
                biNorm
                    ? e.addi(e.muli(e.addi(e.muli(bi, cIdx(s.h)), hi), n), row)
                    : Value();
            if (biNorm) {
              // Denominators after the B H N Dv numerators, one per Dv slice.
              Value dOff = e.addi(
                  e.muli(e.muli(e.muli(batch, cIdx(s.h)), n), cIdx(s.dv)),
                  e.addi(e.muli(srow, cIdx(s.dv / dvs)), sliceIdx));
              if (fwd) {
                e.ifThen(e.cmpi(CmpIPredicate::eq, t4, c0), [&] {
                  memref::StoreOp::create(b, den, scratch, ValueRange{dOff});
                });
              } else {
                Value total = e.addf(
                    den, memref::LoadOp::create(b, scratch, ValueRange{dOff}));
                Value nz = arith::CmpFOp::create(b, arith::CmpFPredicate::ONE,
                                                 total, zero);
                inv = e.select(nz, e.divf(e.f32(1.0), total), zero);
              }
            }
            for (int64_t nd = 0; nd < dvs / 8; ++nd) {
              Value x0 = acc[nd][2 * rr], x1 = acc[nd][2 * rr + 1];
              if (biNorm) {
                Value sOff = e.addi(e.muli(srow, cIdx(s.dv)),
                                    e.addi(dv0, e.addi(cIdx(nd * 8), lcol)));
                if (fwd) {
                  Value num = vector::FromElementsOp::create(
                      b, v2f, ValueRange{x0, x1});
                  vector::StoreOp::create(b, num, scratch, ValueRange{sOff});
                  continue;
                }
                Value prev =
                    vector::LoadOp::create(b, v2f, scratch, ValueRange{sOff});
                x0 = e.addf(x0, vector::ExtractOp::create(
                                    b, prev, ArrayRef<int64_t>{0}));
                x1 = e.addf(x1, vector::ExtractOp::create(
                                    b, prev, ArrayRef<int64_t>{1}));
              }
              if (inv) {
                x0 = e.mulf(x0, inv);
                x1 = e.mulf(x1, inv);
              }
              if (outScale != 1.0) {
                x0 = e.mulf(x0, e.f32(outScale));
                x1 = e.mulf(x1, e.f32(outScale));
              }
              Value off =
                  goff(os, hi, orow, e.addi(dv0, e.addi(cIdx(nd * 8), lcol)));
              if (!s.causal && !fwd && !biNorm) {
                // Bidirectional: add the forward sweep's part (stored by
                // this same thread).
                Value prev = arith::ExtFOp::create(
                    b, v2f,
                    Value(vector::LoadOp::create(b, v2, o, ValueRange{off})));
                x0 = e.addf(x0, vector::ExtractOp::create(
                                    b, prev, ArrayRef<int64_t>{0}));
                x1 = e.addf(x1, vector::ExtractOp::create(
                                    b, prev, ArrayRef<int64_t>{1}));
              }
              Value pair = vector::FromElementsOp::create(
                  b, v2,
                  ValueRange{arith::TruncFOp::create(b, elem, x0),
                             arith::TruncFOp::create(b, elem, x1)});
              vector::StoreOp::create(b, pair, o, ValueRange{off});
            }
          });
        }

        // S <- exp2(L_last) S + (phi(K) w)^T V, w_j = exp2(L_last - L_j)
        // (forward) or exp2(L_j) (backward).
        if (gated) {
          Value dl = ex2(lastL);
          for (Value &x : S)
            x = e.mulf(x, dl);
        }
        for (int64_t kk = 0; kk < kChunk / 16; ++kk) {
          Value w[4];
          if (gated)
            for (int wi = 0; wi < 4; ++wi) {
              Value j = e.addi(cIdx(kk * 16 + (wi / 2) * 8 + wi % 2), lcol);
              Value lj = memref::LoadOp::create(b, sL, ValueRange{buf, j});
              w[wi] = ex2(fwd ? e.subf(lastL, lj) : lj);
            }
          SmallVector<SmallVector<Value>> aT;
          for (int64_t mt = 0; mt < mTile; ++mt) {
            Value d0 = e.addi(e.muli(warp, cIdx(mTile * 16)), cIdx(mt * 16));
            SmallVector<Value> regs = ldm(
                sK,
                ValueRange{buf, e.addi(cIdx(kk * 16), krow), e.addi(d0, kcol)},
                4, true);
            SmallVector<Value> ops;
            for (int ri = 0; ri < 4; ++ri)
              ops.push_back(gated ? scalePair(regs[ri], w[(ri / 2) * 2],
                                              w[(ri / 2) * 2 + 1])
                                  : opnd(regs[ri]));
            aT.push_back(ops);
          }
          for (int64_t nd = 0; nd < nV; nd += 2) {
            bool pair = nd + 1 < nV;
            SmallVector<Value> ops = opnds(ldm(
                sV,
                ValueRange{buf, e.addi(cIdx(kk * 16), vrow),
                           pair ? e.addi(cIdx(nd * 8), lhalf) : cIdx(nd * 8)},
                pair ? 4 : 2, true));
            for (int64_t mt = 0; mt < mTile; ++mt)
              for (int64_t x = 0; x < (pair ? 2 : 1); ++x) {
                Value *f = &S[(mt * nV + nd + x) * 4];
                Frag fr = {f[0], f[1], f[2], f[3]};
                fr = mma(aT[mt], {ops[2 * x], ops[2 * x + 1]}, fr);
                for (int el = 0; el < 4; ++el)
                  f[el] = fr[el];
              }
          }
        }
        // GLA: S <- diag(exp2(L_last)) (S + k~^T V), k~ = k exp2(-L_j):
        // each thread's state rows (features) scaled by their L_last.
        if (dimGates)
          for (int64_t mt = 0; mt < mTile; ++mt)
            for (int rr = 0; rr < 2; ++rr) {
              Value row = e.addi(e.muli(warp, cIdx(mTile * 16)),
                                 e.addi(cIdx(mt * 16 + rr * 8), g4));
              Value dl = ex2(memref::LoadOp::create(
                  b, sG, ValueRange{buf, cIdx(kChunk - 1), row}));
              for (int64_t nd = 0; nd < nV; ++nd)
                for (int el = 0; el < 2; ++el) {
                  Value &x = S[(mt * nV + nd) * 4 + rr * 2 + el];
                  x = e.mulf(x, dl);
                }
            }
        storeCumGates(nextGates, nbuf);
        gpu::BarrierOp::create(b); // every warp is done with sS and buf
        storeStateSmem(S);
        return S;
      });
  NVVM::CpAsyncWaitGroupOp::create(b, b.getI32IntegerAttr(0));
  gpu::BarrierOp::create(b);
  return out;
}

void LinearGpuEmitter::emit(gpu::GPUFuncOp func) {
  Block &entry = func.getBody().front();
  b.setInsertionPointToStart(&entry);
  elem = s.elem;
  bf16 = elem.isBF16();
  nV = dvs / 8 + (s.normalize ? 1 : 0);
  mTile = s.d / (16 * kWarps);
  unsigned a = 0;
  q = entry.getArgument(a++);
  k = entry.getArgument(a++);
  v = entry.getArgument(a++);
  if (s.decay)
    decay = entry.getArgument(a++);
  if (s.init)
    init = entry.getArgument(a++);
  o = entry.getArgument(a++);
  if (s.hasFinal)
    fin = entry.getArgument(a++);
  if (s.normalize && !s.causal)
    scratch = entry.getArgument(a++);
  batch = entry.getArgument(a++);
  n = entry.getArgument(a++);
  for (Value *st : {qs, ks, vs, os}) {
    if (s.workspace && (st == qs || st == ks))
      continue; // the contiguous workspaces: strides below
    for (int i = 0; i < 3; ++i)
      st[i] = entry.getArgument(a++);
  }
  if (s.kind == Decay::Token || s.kind == Decay::TokenDim)
    for (int i = 0; i < 3; ++i)
      gs[i] = entry.getArgument(a++);

  c0 = cIdx(0);
  c1 = cIdx(1);
  if (s.order)
    orderOn = e.cmpi(CmpIPredicate::eq, n, cIdx(s.order.getLength()));
  if (s.workspace) {
    // phi(q) [B, H, N, F] and phi(k) [B, Hkv, N, F], contiguous.
    qs[2] = ks[2] = cIdx(s.d);
    qs[1] = ks[1] = e.muli(n, cIdx(s.d));
    qs[0] = e.muli(qs[1], cIdx(s.h));
    ks[0] = e.muli(ks[1], cIdx(s.hk));
  }
  tid = gpu::ThreadIdOp::create(b, gpu::Dimension::x);
  lane = remu(tid, 32);
  warp = e.divi(tid, cIdx(32));
  g4 = e.divi(lane, cIdx(4));
  t4 = remu(lane, 4);
  Value slice = gpu::BlockIdOp::create(b, gpu::Dimension::x);
  sliceIdx = slice;
  hi = gpu::BlockIdOp::create(b, gpu::Dimension::y);
  bi = gpu::BlockIdOp::create(b, gpu::Dimension::z);
  hkv = e.divi(hi, cIdx(s.h / s.hk));
  dv0 = e.muli(slice, cIdx(dvs));
  if (s.kind == Decay::Head)
    gHead = memref::LoadOp::create(b, decay, ValueRange{hi});

  // Shared memory: Q, K, V tiles (two buffers each), the state, the
  // cumulative gates; rows padded by 8 elements against bank conflicts.
  auto wg =
      gpu::AddressSpaceAttr::get(b.getContext(), gpu::AddressSpace::Workgroup);
  Value base = gpu::DynamicSharedMemoryOp::create(
      b,
      MemRefType::get({ShapedType::kDynamic}, b.getI8Type(), AffineMap(), wg));
  int64_t offset = 0;
  auto view = [&](ArrayRef<int64_t> shape, Type t) {
    return memref::ViewOp::create(b, MemRefType::get(shape, t, AffineMap(), wg),
                                  base, cIdx(offset), ValueRange{});
  };
  // Each tile also gets a view as 32-bit words (element pairs).
  auto tile = [&](ArrayRef<int64_t> shape, Value &elems, Value *words) {
    elems = view(shape, elem);
    SmallVector<int64_t> w(shape);
    w.back() /= 2;
    if (words)
      *words = view(w, b.getI32Type());
    int64_t bytes = 2;
    for (int64_t x : shape)
      bytes *= x;
    offset += bytes;
  };
  tile({2, kChunk, s.d + 8}, sQ, &sQw);
  tile({2, kChunk, s.d + 8}, sK, &sKw);
  tile({2, kChunk, dvs + 8}, sV, &sVw);
  tile({s.d, dvs + 8}, sS, &sSw);
  sL = view({2, kChunk}, b.getF32Type());
  offset += 2 * kChunk * 4;
  if (s.kind == Decay::TokenDim)
    sG = view({2, kChunk, s.d}, b.getF32Type());

  if (s.normalize) {
    // The column of ones after the value columns of both V buffers (the
    // normalizer's sum rides along in the same mma instructions).
    // Words of element pairs: (1, 0), then (0, 0).
    Type v2 = VectorType::get({2}, elem);
    Value one = arith::ConstantOp::create(b, b.getFloatAttr(elem, 1.0));
    Value zeroE = arith::ConstantOp::create(b, b.getFloatAttr(elem, 0.0));
    Value w0 = LLVM::BitcastOp::create(
        b, b.getI32Type(),
        Value(vector::FromElementsOp::create(b, v2, ValueRange{one, zeroE})));
    Value wz = arith::ConstantIntOp::create(b, b.getI32Type(), 0);
    e.ifThen(e.cmpi(CmpIPredicate::ult, tid, cIdx(2 * kChunk)), [&] {
      Value bufI = e.divi(tid, cIdx(kChunk));
      Value row = remu(tid, kChunk);
      for (int64_t i = 0; i < 4; ++i)
        memref::StoreOp::create(b, i == 0 ? w0 : wz, sVw,
                                ValueRange{bufI, row, cIdx(dvs / 2 + i)});
    });
  }

  // The state: initial state (f32, [B, H, F, Dv] contiguous) or zeros.
  SmallVector<Value> S(mTile * nV * 4, e.f32(0.0));
  Type v2f = VectorType::get({2}, b.getF32Type());
  auto stateOff = [&](int64_t mt, int64_t nd, int rr) {
    Value row = e.addi(e.muli(warp, cIdx(mTile * 16)),
                       e.addi(cIdx(mt * 16 + rr * 8), g4));
    Value col = e.addi(dv0, e.addi(cIdx(nd * 8), e.muli(t4, cIdx(2))));
    Value bh = e.addi(e.muli(bi, cIdx(s.h)), hi);
    return e.addi(e.muli(e.addi(e.muli(bh, cIdx(s.f)), row), cIdx(s.dv)), col);
  };
  if (init)
    for (int64_t mt = 0; mt < mTile; ++mt)
      for (int64_t nd = 0; nd < dvs / 8; ++nd)
        for (int rr = 0; rr < 2; ++rr) {
          Value x = vector::LoadOp::create(b, v2f, init,
                                           ValueRange{stateOff(mt, nd, rr)});
          for (int el = 0; el < 2; ++el)
            S[(mt * nV + nd) * 4 + rr * 2 + el] =
                vector::ExtractOp::create(b, x, ArrayRef<int64_t>{el});
        }

  S = sweep(/*forward=*/true, S);
  if (fin)
    for (int64_t mt = 0; mt < mTile; ++mt)
      for (int64_t nd = 0; nd < dvs / 8; ++nd)
        for (int rr = 0; rr < 2; ++rr) {
          Value *f = &S[(mt * nV + nd) * 4 + rr * 2];
          Value x =
              vector::FromElementsOp::create(b, v2f, ValueRange{f[0], f[1]});
          vector::StoreOp::create(b, x, fin, ValueRange{stateOff(mt, nd, rr)});
        }
  if (!s.causal) {
    SmallVector<Value> zeros(S.size(), e.f32(0.0));
    (void)sweep(/*forward=*/false, zeros);
  }
  gpu::ReturnOp::create(b);
}

namespace {
constexpr int64_t kFeatureThreads = 128;

/// The feature kernel: thread (blockIdx.x * 128 + tid) of block row y
/// evaluates the query feature map (y < H, head y; scale first) or the key
/// feature map (head y - H) on token t of batch blockIdx.z and writes the F
/// features, rounded to the element type, to the workspace.
void emitFeatureKernel(const LinearSpec &s, gpu::GPUFuncOp func,
                       ImplicitLocOpBuilder &b) {
  Block &entry = func.getBody().front();
  b.setInsertionPointToStart(&entry);
  Emitter e(b);
  unsigned a = 0;
  Value q = entry.getArgument(a++), k = entry.getArgument(a++);
  DenseMap<Value, Value> caps;
  for (Value c : s.captures)
    caps[c] = entry.getArgument(a++);
  Value pq = entry.getArgument(a++), pk = entry.getArgument(a++);
  a++; // B (the grid's z)
  Value n = entry.getArgument(a++);
  Value qs[3], ks[3];
  for (Value *st : {qs, ks})
    for (int i = 0; i < 3; ++i)
      st[i] = entry.getArgument(a++);
  Value tid = gpu::ThreadIdOp::create(b, gpu::Dimension::x);
  Value bx = gpu::BlockIdOp::create(b, gpu::Dimension::x);
  Value by = gpu::BlockIdOp::create(b, gpu::Dimension::y);
  Value bz = gpu::BlockIdOp::create(b, gpu::Dimension::z);
  Value t = e.addi(e.muli(bx, e.idx(kFeatureThreads)), tid);
  Value valid = e.cmpi(CmpIPredicate::ult, t, n);
  // t is the scan position (the map's position argument, the workspace
  // row); with a token order the row read is the token's storage row.
  Value orderOn = s.order
                      ? e.cmpi(CmpIPredicate::eq, n, e.idx(s.order.getLength()))
                      : Value();
  Value srcRow = tokenRow(b, e, s.order, orderOn, t);
  Value isQ = e.cmpi(CmpIPredicate::ult, by, e.idx(s.h));
  Type elem = s.elem;
  Type v2 = VectorType::get({2}, elem);
  auto row = [&](Region *r, Value src, Value *st, Value head, Value dst,
                 int64_t heads, bool query) {
    Value base = e.addi(e.addi(e.muli(bz, st[0]), e.muli(head, st[1])),
                        e.muli(srcRow, st[2]));
    auto x = [&](int64_t j) -> Value {
      Value raw =
          memref::LoadOp::create(b, src, ValueRange{e.addi(base, e.idx(j))});
      Value xf = arith::ExtFOp::create(b, b.getF32Type(), raw);
      if (query && s.scale != 1.0)
        xf = e.mulf(xf, e.f32(s.scale));
      return xf;
    };
    Value dbase =
        e.muli(e.addi(e.muli(e.addi(e.muli(bz, e.idx(heads)), head), n), t),
               e.idx(s.f));
    // Captures: row-major f32/bf16/f16 memrefs (flattened).
    auto readCap = [&](Value cap, ArrayRef<Value> pos) -> Value {
      auto ct = cast<RankedTensorType>(cap.getType());
      Value off = e.idx(0);
      for (int64_t d = 0; d < ct.getRank(); ++d)
        off = e.addi(e.muli(off, e.idx(ct.getDimSize(d))), pos[d]);
      return memref::LoadOp::create(b, caps.lookup(cap), ValueRange{off});
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
      vector::StoreOp::create(b, pair, dst,
                              ValueRange{e.addi(dbase, e.idx(j))});
    }
  };
  e.ifThen(arith::AndIOp::create(b, valid, isQ),
           [&] { row(s.fq, q, qs, by, pq, s.h, true); });
  Value isK = e.cmpi(CmpIPredicate::uge, by, e.idx(s.h));
  e.ifThen(arith::AndIOp::create(b, valid, isK),
           [&] { row(s.fk, k, ks, e.subi(by, e.idx(s.h)), pk, s.hk, false); });
  gpu::ReturnOp::create(b);
}
} // namespace

namespace {
/// The spec op's feature map, rewritten in place into the same computation
/// on scalars (vector.extract of the row, tensor.extract of captures,
/// vector.from_elements of the features): the GPU pipeline later lowers
/// the host function's vector code to LLVM, where n-D vectors (W x's
/// vector<F x D>) would leave the region with LLVM arrays, which attn
/// regions do not allow.
void scalarizeHostRegion(Region &r) {
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
} // namespace

LogicalResult mlir::attn::checkLinearGpuSupport(Operation *op,
                                                int64_t dvSlice) {
  LinearSpec s(op);
  auto sched = op->getAttrOfType<ScheduleAttr>("schedule");
  if (!sched)
    return op->emitOpError() << "needs #attn.schedule before GPU code "
                                "generation (run attn-select-schedule)";
  if (sched.getTarget() == Target::Cpu)
    return op->emitOpError() << "has a CPU schedule; select a GPU target "
                                "(sm_80 or sm_90a) for GPU code generation";
  if (!s.elem.isBF16() && !s.elem.isF16())
    return op->emitOpError()
           << "GPU kernels take bf16 or f16 inputs, got " << s.elem;
  if (failed(detail::checkGpuRegionOps(op)))
    return failure();
  bool feat = needsFeatureKernel(s);
  if (!feat && ((s.d != 64 && s.d != 128) || (s.dv != 64 && s.dv != 128)))
    return op->emitOpError()
           << "GPU linear-attention kernels need head dims 64 or 128, got "
           << s.d << " and " << s.dv;
  if (feat && ((s.f != 64 && s.f != 128) || (s.dv != 64 && s.dv != 128)))
    return op->emitOpError()
           << "GPU linear-attention kernels need a feature dim and a value "
              "dim of 64 or 128, got "
           << s.f << " and " << s.dv;
  if (feat && s.d > 256)
    return op->emitOpError() << "GPU feature kernels read head dims up to "
                                "256, got "
                             << s.d;
  if (dvSlice != 32 && dvSlice != 64)
    return op->emitOpError()
           << "GPU dv-slice must be 32 or 64, got " << dvSlice;
  if (s.dv % dvSlice != 0)
    return op->emitOpError()
           << "value dim " << s.dv << " is not a multiple of the dv-slice "
           << dvSlice;
  if (s.kind == Decay::TokenDim && !s.causal)
    return op->emitOpError() << "bidirectional per-token, per-feature decay "
                                "(GLA) is not supported on GPU";
  for (Region *r : {s.fq, s.fk}) {
    if (!r || !feat)
      continue;
    std::string why;
    if (Operation *bad = firstUnscalarizable(*r, s.captures, why))
      return op->emitOpError() << "feature map op '" << bad->getName()
                               << "' cannot run on GPU: " << why;
  }
  return success();
}

int64_t mlir::attn::defaultLinearDvSlice(Operation *op) {
  // Measured on an H100 (2026-11-23, B=4 T=8192 H=16 D=Dv=128 bf16): causal
  // per-token scalar gates (Mamba2 / simple GLA) 0.471 ms with 32 columns
  // against 0.501 with 64 (twice the blocks hide the gate scan and the
  // per-row exponentials); every other kernel was faster with 64 (identity
  // 0.325 vs 0.391, elu+1 normalized 0.885 vs 0.917, RetNet 0.394 vs 0.445,
  // bidirectional scan 1.002 vs 1.138).
  LinearSpec s(op);
  if (s.kind == Decay::Token && s.causal && s.dv % 32 == 0)
    return 32;
  return 64;
}

namespace {
/// `t` as the ABI spells element types (bf16, f16, f32, i1, ...).
std::string typeName(Type t) {
  std::string out;
  llvm::raw_string_ostream os(out);
  os << t;
  return out;
}

/// A 1-D memref argument of element type `el`.
attnc::abi::Arg memArg(StringRef name, Type el) {
  return {name.str(),
          el.isF32() ? attnc::abi::ArgKind::MemrefF32
                     : attnc::abi::ArgKind::Memref,
          typeName(el), 1, 0};
}

attnc::abi::Arg scalarArg(StringRef name) {
  return {name.str(), attnc::abi::ArgKind::Scalar, "", 0, 0};
}

/// The ABI of `s`'s chunked kernel without its arguments: sizes, the grid
/// (Dv / dvSlice, H, B), shared memory and, bidirectional with normalize,
/// the caller's f32 scratch: the forward sweep's numerators [B, H, N, Dv]
/// then its denominators [B, H, N, Dv / dv_slice] (by scan position), fully
/// written before read. `d`: the head dim the kernel reads (the feature dim
/// with a feature kernel).
attnc::abi::LinearKernel linearAbi(const LinearSpec &s, StringRef name,
                                   int64_t dvSlice, int64_t d) {
  using attnc::abi::SizeExpr;
  attnc::abi::LinearKernel k;
  k.dtype = s.elem.isBF16() ? "bf16" : "f16";
  k.heads = s.h;
  k.headsKv = s.hk;
  k.headDim = s.d;
  k.valueDim = s.dv;
  k.featureDim = s.f;
  k.chunk = kChunk;
  k.dvSlice = dvSlice;
  switch (s.kind) {
  case Decay::None:
    k.decay = attnc::abi::Decay::None;
    break;
  case Decay::Head:
    k.decay = attnc::abi::Decay::Head;
    break;
  case Decay::Token:
    k.decay = attnc::abi::Decay::Token;
    break;
  case Decay::TokenDim:
    k.decay = attnc::abi::Decay::TokenDim;
    break;
  }
  k.causal = s.causal;
  k.normalize = s.normalize;
  k.scale = s.scale;
  k.main.kernel = name.str();
  k.main.grid = {SizeExpr::constant(s.dv / dvSlice), SizeExpr::of("H"),
                 SizeExpr::of("B")};
  k.main.block = {kThreads, 1, 1};
  k.main.dynamicSharedBytes =
      (2 * 2 * kChunk * (d + 8) + 2 * kChunk * (dvSlice + 8) +
       d * (dvSlice + 8)) *
          2 +
      2 * kChunk * 4 + (s.kind == Decay::TokenDim ? 2 * kChunk * d * 4 : 0);
  if (s.normalize && !s.causal)
    k.scratch = attnc::abi::Buffer{"scratch",
                                   "f32",
                                   {SizeExpr::of("B"), SizeExpr::constant(s.h),
                                    SizeExpr::of("N"),
                                    SizeExpr::constant(s.dv + s.dv / dvSlice)}};
  return k;
}

/// The workspaces phi(q) [B, H, N, F] and phi(k) [B, Hkv, N, F] of a
/// feature kernel.
void addWorkspaces(const LinearSpec &s, attnc::abi::LinearKernel &k) {
  using attnc::abi::SizeExpr;
  for (auto [n, heads] :
       {std::pair<const char *, int64_t>{"phi_q", s.h}, {"phi_k", s.hk}})
    k.workspace.push_back(
        attnc::abi::Buffer{n,
                           k.dtype,
                           {SizeExpr::of("B"), SizeExpr::constant(heads),
                            SizeExpr::of("N"), SizeExpr::constant(s.f)}});
}
} // namespace

FailureOr<attnc::abi::LinearKernel>
mlir::attn::buildLinearKernel(Operation *op, ModuleOp module, StringRef name,
                              int64_t dvSlice) {
  if (failed(checkLinearGpuSupport(op, dvSlice)))
    return failure();
  LinearSpec s(op);
  // With a feature kernel the chunked kernel reads phi(q), phi(k) from the
  // workspaces: an identity map on F features, scale 1.
  bool feat = needsFeatureKernel(s);
  LinearSpec cs = s;
  if (feat) {
    cs.workspace = true;
    cs.d = s.f;
    cs.fq = cs.fk = nullptr;
    cs.scale = 1.0;
  }
  MLIRContext *ctx = op->getContext();
  ctx->loadDialect<gpu::GPUDialect, nvgpu::NVGPUDialect, NVVM::NVVMDialect,
                   LLVM::LLVMDialect, memref::MemRefDialect, scf::SCFDialect,
                   vector::VectorDialect, math::MathDialect,
                   tensor::TensorDialect>();
  Builder bld(ctx);
  Type idx = bld.getIndexType(), f32 = bld.getF32Type();
  SmallVector<Type> argTypes;
  attnc::abi::LinearKernel abi = linearAbi(s, name, dvSlice, cs.d);
  auto mem = [&](StringRef n, Type el) {
    argTypes.push_back(MemRefType::get({ShapedType::kDynamic}, el));
    abi.main.args.push_back(memArg(n, el));
  };
  mem(feat ? "phi_q" : "q", s.elem);
  mem(feat ? "phi_k" : "k", s.elem);
  mem("v", s.elem);
  if (s.decay)
    mem("decay", f32);
  if (s.init)
    mem("initial_state", f32);
  mem("o", s.elem);
  if (s.hasFinal)
    mem("final_state", f32);
  if (abi.scratch)
    mem("scratch", f32);
  SmallVector<StringRef> scalars = {"B", "N"};
  if (!feat)
    scalars.append({"q_stride_b", "q_stride_h", "q_stride_n", "k_stride_b",
                    "k_stride_h", "k_stride_n"});
  scalars.append({"v_stride_b", "v_stride_h", "v_stride_n", "o_stride_b",
                  "o_stride_h", "o_stride_n"});
  if (s.kind == Decay::Token || s.kind == Decay::TokenDim)
    scalars.append({"g_stride_b", "g_stride_h", "g_stride_n"});
  for (StringRef n : scalars) {
    argTypes.push_back(idx);
    abi.main.args.push_back(scalarArg(n));
  }
  // The feature kernel: its parameters (q, k, the captures, the workspaces,
  // sizes and strides).
  std::string phiName = name.str() + "_phi";
  SmallVector<Type> phiTypes;
  if (feat) {
    attnc::abi::Launch &phi = abi.featureKernel.emplace();
    phi.kernel = phiName;
    phi.grid = {attnc::abi::SizeExpr::of("N", kFeatureThreads),
                attnc::abi::SizeExpr::constant(s.h + s.hk),
                attnc::abi::SizeExpr::of("B")};
    phi.block = {kFeatureThreads, 1, 1};
    addWorkspaces(s, abi);
    auto pmem = [&](StringRef n, Type el) {
      phiTypes.push_back(MemRefType::get({ShapedType::kDynamic}, el));
      phi.args.push_back(memArg(n, el));
    };
    pmem("q", s.elem);
    pmem("k", s.elem);
    for (auto [i, c] : llvm::enumerate(s.captures)) {
      auto ct = cast<RankedTensorType>(c.getType());
      std::string cn = "capture" + std::to_string(i);
      pmem(cn, ct.getElementType());
      attnc::abi::Buffer &buf = abi.captures.emplace_back();
      buf.name = cn;
      buf.dtype = typeName(ct.getElementType());
      for (int64_t d : ct.getShape())
        buf.shape.push_back(
            attnc::abi::SizeExpr::constant(ShapedType::isDynamic(d) ? -1 : d));
    }
    pmem("phi_q", s.elem);
    pmem("phi_k", s.elem);
    for (StringRef n : {"B", "N", "q_stride_b", "q_stride_h", "q_stride_n",
                        "k_stride_b", "k_stride_h", "k_stride_n"}) {
      phiTypes.push_back(idx);
      phi.args.push_back(scalarArg(n));
    }
  }
  std::string abiJson =
      attnc::abi::formatJson(attnc::abi::toJson(abi), /*lines=*/false);

  OpBuilder ob(ctx);
  ob.setInsertionPointToEnd(module.getBody());
  module->setAttr(gpu::GPUDialect::getContainerModuleAttrName(),
                  UnitAttr::get(ctx));
  auto gpuModule =
      gpu::GPUModuleOp::create(ob, op->getLoc(), (name + "_kernels").str());
  ob.setInsertionPointToStart(gpuModule.getBody());
  auto func = gpu::GPUFuncOp::create(ob, op->getLoc(), name,
                                     ob.getFunctionType(argTypes, {}));
  func->setAttr(gpu::GPUDialect::getKernelFuncAttrName(), ob.getUnitAttr());
  func->setAttr(NVVM::NVVMDialect::getMinctasmAttrName(),
                ob.getI32IntegerAttr(1));
  func.setKnownBlockSizeAttr(
      ob.getDenseI32ArrayAttr({int32_t(kThreads), 1, 1}));
  func->setAttr("attn.abi", ob.getStringAttr(abiJson));
  ImplicitLocOpBuilder b(op->getLoc(), ob);
  LinearGpuEmitter em(cs, b, dvSlice);
  em.emit(func);
  if (feat) {
    // After the chunked kernel (whose attn.abi describes both).
    ob.setInsertionPointAfter(func);
    auto pf = gpu::GPUFuncOp::create(ob, op->getLoc(), phiName,
                                     ob.getFunctionType(phiTypes, {}));
    pf->setAttr(gpu::GPUDialect::getKernelFuncAttrName(), ob.getUnitAttr());
    pf.setKnownBlockSizeAttr(
        ob.getDenseI32ArrayAttr({int32_t(kFeatureThreads), 1, 1}));
    ImplicitLocOpBuilder pb(op->getLoc(), ob);
    emitFeatureKernel(s, pf, pb);
    if (s.fq)
      scalarizeHostRegion(*s.fq);
    if (s.fk && s.fk != s.fq)
      scalarizeHostRegion(*s.fk);
  }
  op->setAttr("attn.gpu_kernel", ob.getStringAttr(name));
  return abi;
}

#define DEBUG_TYPE "convert-attn-linear-to-gpu"
namespace {
struct ConvertAttnLinearToGPUPass
    : public mlir::attn::impl::ConvertAttnLinearToGPUBase<
          ConvertAttnLinearToGPUPass> {
  using Base::Base;
  void runOnOperation() override {
    ModuleOp module = getOperation();
    SmallVector<std::pair<Operation *, std::string>> work;
    llvm::StringMap<int> perFunc;
    module.walk([&](Operation *op) {
      if (!isa<LinearAttentionOp, ScanOp>(op) || op->hasAttr("attn.gpu_kernel"))
        return;
      auto func = op->getParentOfType<FunctionOpInterface>();
      std::string name = func ? func.getName().str() : "linear";
      int count = perFunc[name]++;
      if (count)
        name += "_" + std::to_string(count);
      work.push_back({op, name});
    });
    // Kernel modules are @<name>_kernels; convert-attn-to-gpu names the
    // module of an attn.attention in the same function (MATE's TESA branch)
    // alike: on a clash, @<name>_linear_kernels (then _linear_1, ...).
    llvm::StringSet<> taken;
    for (auto &[op, name] : work)
      taken.insert(name);
    for (auto &[op, name] : work) {
      if (!module.lookupSymbol(name + "_kernels"))
        continue;
      std::string base = name + "_linear", cand = base;
      for (int i = 1;
           module.lookupSymbol(cand + "_kernels") || taken.contains(cand); ++i)
        cand = base + "_" + std::to_string(i);
      taken.insert(cand);
      name = cand;
    }
    for (auto &[op, name] : work) {
      // An explicit dv-slice wins; otherwise the measured default.
      int64_t ds =
          dvSlice.hasValue() ? int64_t(dvSlice) : defaultLinearDvSlice(op);
      LLVM_DEBUG(llvm::dbgs() << "kernel '" << name << "' for "
                              << op->getAttr("schedule") << ", dv slice " << ds
                              << "\n");
      if (failed(buildLinearKernel(op, module, name, ds)))
        return signalPassFailure();
    }
  }
};
} // namespace
