//===- AttnToGPU.cpp - attn.attention to a tensor-core GPU kernel ---------===//
//
// Part of attnc. See AttnToGPU.h. Register fragments follow the PTX
// mma.m16n8k16 layouts, which the kernel records in its
// `attn.fragments` attribute:
//   A (16x16, row):  lane holds rows lane/4 and lane/4+8, cols (lane%4)*2+{0,1}
//                    and +8 (4 registers of 2 elements);
//   B (16x8, col):   lane holds k = (lane%4)*2+{0,1} (+8), n = lane/4;
//   C (16x8, f32):   lane holds row lane/4: cols (lane%4)*2+{0,1}, and the
//                    same cols of row lane/4+8.
// The C layout of S = Q K^T is reused as the A layout of P for P V.
//
//===----------------------------------------------------------------------===//

#include "attnc/Dialect/Attn/SpecFunctions.h"
#include "attnc/Conversion/AttnToGPU.h"
#include "GpuKernelEmitter.h"
#include "attnc/Analysis/MaskAnalysis.h"
#include "attnc/Target/TargetDesc.h"
#include "attnc/Transforms/LoweringUtils.h"
#include "attnc/Transforms/Passes.h"

#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/LLVMIR/NVVMDialect.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/NVGPU/IR/NVGPUDialect.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/IR/IRMapping.h"

#include "llvm/Support/Debug.h"

#include <limits>

namespace mlir::attn {
#define GEN_PASS_DEF_CONVERTATTNTOGPU
#include "Attn/AttnPasses.h.inc"
} // namespace mlir::attn

using namespace mlir;
using namespace mlir::attn;
using arith::CmpFPredicate;
using arith::CmpIPredicate;

using namespace mlir::attn::detail;

void GpuKernelEmitter::stageTile(Value gmem, Value *strides, Value hIdx,
                                 Value r0, Value n, Value smem, int64_t rows,
                                 int64_t width) {
  int64_t chunksPerRow = width / 8;
  int64_t total = rows * chunksPerRow;
  int64_t threads = warps * 32;
  Type tokenTy = nvgpu::DeviceAsyncTokenType::get(b.getContext());
  for (int64_t it = 0; it * threads < total; ++it) {
    Value c = e.addi(tid, cIdx(it * threads));
    Value row = e.divi(c, cIdx(chunksPerRow));
    Value col =
        e.muli(b.createOrFold<arith::RemUIOp>(c, cIdx(chunksPerRow)), cIdx(8));
    Value grow = e.addi(r0, row);
    Value valid = e.cmpi(CmpIPredicate::ult, grow, n);
    if (total % threads != 0)
      valid = b.createOrFold<arith::AndIOp>(
          valid, e.cmpi(CmpIPredicate::ult, c, cIdx(total)));
    Value safeRow = e.select(valid, grow, c0);
    Value srcElems = e.select(valid, cIdx(8), c0);
    Value rowIn = e.select(e.cmpi(CmpIPredicate::ult, c, cIdx(total)), row, c0);
    Value off = gOffset(strides, hIdx, safeRow, col);
    // The async token is not used: groups are committed and waited for with
    // cp.async.commit_group / wait_group, which need no SSA dependence.
    (void)nvgpu::DeviceAsyncCopyOp::create(
        b, tokenTy, smem, ValueRange{rowIn, col}, gmem, ValueRange{off},
        b.getIndexAttr(8), srcElems, UnitAttr::get(b.getContext()));
  }
  NVVM::CpAsyncCommitGroupOp::create(b);
}

SmallVector<Value> GpuKernelEmitter::operands(Value frag, int64_t count) {
  SmallVector<Value> out;
  for (int64_t i = 0; i < count; ++i) {
    Value pair = vector::ExtractOp::create(b, frag, ArrayRef<int64_t>{i});
    if (bf16)
      pair = LLVM::BitcastOp::create(b, b.getI32Type(), pair);
    out.push_back(pair);
  }
  return out;
}

Value GpuKernelEmitter::pack(Value x, Value y) {
  Value xe = arith::TruncFOp::create(b, elem, x);
  Value ye = arith::TruncFOp::create(b, elem, y);
  Value pair = vector::FromElementsOp::create(b, VectorType::get({2}, elem),
                                              ValueRange{xe, ye});
  if (bf16)
    pair = LLVM::BitcastOp::create(b, b.getI32Type(), pair);
  return pair;
}

Frag GpuKernelEmitter::mma(ArrayRef<Value> a, ArrayRef<Value> bOps,
                           const Frag &c) {
  Type f32 = b.getF32Type();
  auto resTy =
      LLVM::LLVMStructType::getLiteral(b.getContext(), {f32, f32, f32, f32});
  NVVM::MMATypes t = bf16 ? NVVM::MMATypes::bf16 : NVVM::MMATypes::f16;
  auto mmaOp =
      NVVM::MmaOp::create(b, resTy, a, bOps, ValueRange{c[0], c[1], c[2], c[3]},
                          ArrayRef<int64_t>{16, 8, 16}, std::nullopt,
                          std::nullopt, std::array<NVVM::MMATypes, 2>{t, t},
                          std::array<NVVM::MMALayout, 2>{NVVM::MMALayout::row,
                                                         NVVM::MMALayout::col});
  Frag out;
  for (int64_t i = 0; i < 4; ++i)
    out[i] = LLVM::ExtractValueOp::create(b, mmaOp.getResult(),
                                          ArrayRef<int64_t>{i});
  return out;
}

Value GpuKernelEmitter::inlineRegion(Region &region, ValueRange args) {
  IRMapping map;
  return inlineRegion(region, args, map);
}

Value GpuKernelEmitter::inlineRegion(Region &region, ValueRange args,
                                     IRMapping &map) {
  Block &blk = region.front();
  map.map(blk.getArguments(), args);
  for (Operation &inner : blk.without_terminator()) {
    if (auto ex = dyn_cast<tensor::ExtractOp>(inner)) {
      if (Value mem = capMap.lookupOrNull(ex.getTensor())) {
        SmallVector<Value> idx;
        for (Value i : ex.getIndices())
          idx.push_back(map.lookupOrDefault(i));
        map.map(ex.getResult(),
                memref::LoadOp::create(b, mem, idx).getResult());
        continue;
      }
    }
    if (auto tanh = dyn_cast<math::TanhOp>(inner);
        tanh && tanh.getType().isF32()) {
      // The hardware tanh (sm_75+, max rel. error ~2^-11) instead of
      // libdevice's polynomial: well inside bf16/f16 tolerances.
      Value x = map.lookupOrDefault(tanh.getOperand());
      map.map(tanh.getResult(), ptxUnaryF32(b, "tanh.approx.f32", x));
      continue;
    }
    if (auto abs = dyn_cast<math::AbsIOp>(inner)) {
      // |x| as arith: math.absi on index has no NVVM lowering.
      Value x = map.lookupOrDefault(abs.getOperand());
      Value zero = arith::ConstantOp::create(b, b.getZeroAttr(x.getType()));
      Value neg = arith::SubIOp::create(b, zero, x);
      Value isNeg = arith::CmpIOp::create(b, CmpIPredicate::slt, x, zero);
      map.map(abs.getResult(),
              arith::SelectOp::create(b, isNeg, neg, x).getResult());
      continue;
    }
    b.clone(inner, map);
  }
  return map.lookupOrDefault(blk.getTerminator()->getOperand(0));
}

bool GpuKernelEmitter::rolledMask() {
  if (!op.hasMaskRegion())
    return false;
  // Constants cost nothing per element: count the other operations.
  int64_t n = llvm::count_if(op.getMask().front(), [](Operation &o) {
    return !o.hasTrait<OpTrait::ConstantLike>();
  });
  return n > 8;
}

SmallVector<Value> GpuKernelEmitter::maskWords(Value full, Value j0, Value r0,
                                               Value r1, Value lcol,
                                               int64_t n) {
  Type i32 = b.getI32Type();
  int64_t nWords = (n + 31) / 32;
  SmallVector<Type> wordTypes(nWords, i32);
  return e.ifElse(
      full, wordTypes,
      [&] {
        return SmallVector<Value>(nWords,
                                  arith::ConstantIntOp::create(b, i32, -1));
      },
      [&] {
        SmallVector<Value> words(nWords,
                                 arith::ConstantIntOp::create(b, i32, 0));
        // One n8 block (2 rows x 2 columns) per iteration: what depends on
        // the row only is loop-invariant (hoisted), what depends on the
        // column only is shared by the block's two rows.
        Value qa = e.addi(i0, r0), qb = e.addi(i0, r1);
        return e.loop(
            c0, cIdx(n / 4), c1, words,
            [&](Value blk, ValueRange w) -> SmallVector<Value> {
              Value jb = e.addi(j0, e.addi(e.muli(blk, cIdx(8)), lcol));
              Value nib = arith::ConstantIntOp::create(b, i32, 0);
              for (int64_t el = 0; el < 4; ++el) {
                Value qi = el < 2 ? qa : qb;
                Value kj = e.addi(jb, cIdx(el % 2));
                Value keep = e.cmpi(CmpIPredicate::ult, kj, nk);
                keep = b.createOrFold<arith::AndIOp>(
                    keep, inlineRegion(op.getMask(), {bi, h, qi, kj}));
                nib = arith::OrIOp::create(
                    b, nib,
                    arith::ShLIOp::create(
                        b, arith::ExtUIOp::create(b, i32, keep),
                        arith::ConstantIntOp::create(b, i32, el)));
              }
              // Element 4 blk + el is bit (blk % 8) * 4 + el of word blk / 8.
              Value sh = arith::IndexCastUIOp::create(
                  b, i32,
                  e.muli(b.createOrFold<arith::RemUIOp>(blk, cIdx(8)),
                         cIdx(4)));
              Value bits = arith::ShLIOp::create(b, nib, sh);
              Value wi = e.divi(blk, cIdx(8));
              SmallVector<Value> out;
              for (int64_t k = 0; k < nWords; ++k)
                out.push_back(e.select(e.cmpi(CmpIPredicate::eq, wi, cIdx(k)),
                                       arith::OrIOp::create(b, w[k], bits),
                                       w[k]));
              return out;
            });
      });
}

SmallVector<Value> GpuKernelEmitter::applyMask(Value full, Value j0, Value r0,
                                               Value r1, Value lcol,
                                               ArrayRef<Value> scored,
                                               ArrayRef<Value> words) {
  Type i32 = b.getI32Type();
  SmallVector<Type> types(scored.size(), b.getF32Type());
  return e.ifElse(
      full, types, [&] { return SmallVector<Value>(scored); },
      [&] {
        SmallVector<Value> out;
        Value zero32 = arith::ConstantIntOp::create(b, i32, 0);
        for (auto [i, x] : llvm::enumerate(scored)) {
          Value keep;
          if (!words.empty()) {
            Value bit = arith::AndIOp::create(
                b, words[i / 32],
                arith::ConstantIntOp::create(b, i32,
                                             int32_t(uint32_t(1) << (i % 32))));
            keep = e.cmpi(CmpIPredicate::ne, bit, zero32);
          } else {
            int64_t blk = i / 4, el = i % 4;
            Value qi = e.addi(i0, el < 2 ? r0 : r1);
            Value kj = e.addi(j0, e.addi(cIdx(blk * 8 + el % 2), lcol));
            keep = e.cmpi(CmpIPredicate::ult, kj, nk);
            if (op.hasMaskRegion())
              keep = b.createOrFold<arith::AndIOp>(
                  keep, inlineRegion(op.getMask(), {bi, h, qi, kj}));
          }
          out.push_back(e.select(keep, x, negInf));
        }
        return out;
      });
}

Value GpuKernelEmitter::bindIndices() {
  c0 = cIdx(0);
  c1 = cIdx(1);
  negInf = e.f32(-std::numeric_limits<float>::infinity());
  tid = gpu::ThreadIdOp::create(b, gpu::Dimension::x);
  lane = b.createOrFold<arith::RemUIOp>(tid, cIdx(32));
  warp = e.divi(tid, cIdx(32));
  Value qt = gpu::BlockIdOp::create(b, gpu::Dimension::x);
  h = gpu::BlockIdOp::create(b, gpu::Dimension::y);
  bi = gpu::BlockIdOp::create(b, gpu::Dimension::z);
  hk = e.divi(h, cIdx(hq / hkv));
  i0 = e.muli(qt, cIdx(bq));
  return qt;
}

Value GpuKernelEmitter::classify(Value i0v, Value i1v, Value j0v, Value j1v) {
  IRBackend be(b);
  auto [mayTrue, mayFalse] =
      evalTileMask(be, op, ms, bi, h, i0v, i1v, j0v, j1v);
  Value two = cIdx(2), one = cIdx(1);
  return e.select(mayTrue, e.select(mayFalse, one, two), c0);
}

Value GpuKernelEmitter::maskAt(Value i, Value j) {
  return emitMaskAt(b, op, ms, bi, h, i, j,
                    [&](Region &region, ValueRange args, IRMapping &map) {
                      inlineRegion(region, args, map);
                    });
}

/// Index of the (b, h) slice of the block map (0 when the mask depends on
/// neither).
static Value mapSlice(Emitter &e, const MaskStructure &ms, Value bi, Value h,
                      int64_t hq) {
  Value s = e.idx(0);
  if (ms.batch)
    s = bi;
  if (ms.head)
    s = e.addi(e.muli(s, e.idx(hq)), h);
  return s;
}

Value GpuKernelEmitter::mapClass(Value qt, Value kt, Value numQT, Value numKT) {
  Value slice = mapSlice(e, ms, bi, h, hq);
  Value idx = e.addi(e.muli(e.addi(e.muli(slice, numQT), qt), numKT), kt);
  Value c = memref::LoadOp::create(b, blockMap, ValueRange{idx});
  return arith::IndexCastUIOp::create(
      b, b.getIndexType(), arith::ExtUIOp::create(b, b.getI32Type(), c));
}

void GpuKernelEmitter::bindArguments(Block &entry) {
  unsigned a = 0;
  q = entry.getArgument(a++);
  k = entry.getArgument(a++);
  v = entry.getArgument(a++);
  o = entry.getArgument(a++);
  if (op.getLse())
    lse = entry.getArgument(a++);
  for (Value cap : captures)
    capMap.map(cap, entry.getArgument(a++));
  if (needsMap)
    blockMap = entry.getArgument(a++);
  batch = entry.getArgument(a++);
  nq = entry.getArgument(a++);
  nk = entry.getArgument(a++);
  for (Value *s : {qs, ks, vs, os})
    for (int i = 0; i < 3; ++i)
      s[i] = entry.getArgument(a++);
}

GpuKernelEmitter::SoftmaxStep
GpuKernelEmitter::onlineSoftmax(ArrayRef<Value> x, ArrayRef<Value> mOld,
                                ArrayRef<Value> lOld, bool fold,
                                Value qkScale) {
  Value zero = e.f32(0.0);
  SoftmaxStep st;
  Value mSafe[2];
  for (int r = 0; r < 2; ++r) {
    Value mx = x[2 * r];
    for (size_t i = 0; i < x.size(); ++i)
      if ((i % 4) / 2 == size_t(r) && i != size_t(2 * r))
        mx = e.maxf(mx, x[i]);
    mx = e.maxf(mx, shflXor(mx, 1));
    mx = e.maxf(mx, shflXor(mx, 2));
    if (fold)
      mx = e.mulf(mx, qkScale);
    mx = e.maxf(mOld[r], mx);
    st.m[r] = mx;
    mSafe[r] = e.select(e.cmpf(CmpFPredicate::OEQ, mx, negInf), zero, mx);
    st.alpha[r] = ex2(e.subf(mOld[r], mSafe[r]));
    st.l[r] = e.mulf(lOld[r], st.alpha[r]);
  }
  st.p.resize(x.size());
  for (size_t i = 0; i < x.size(); ++i) {
    int r = (i % 4) / 2;
    Value arg =
        fold ? Value(math::FmaOp::create(b, x[i], qkScale,
                                         arith::NegFOp::create(b, mSafe[r])))
             : e.subf(x[i], mSafe[r]);
    st.p[i] = ex2(arg);
    st.l[r] = e.addf(st.l[r], st.p[i]);
  }
  return st;
}

void GpuKernelEmitter::emitEpilogue(ArrayRef<Value> m, ArrayRef<Value> l,
                                    llvm::function_ref<Value(int64_t)> acc,
                                    Value r0, Value r1, Value lcol) {
  const double ln2 = 0.6931471805599453;
  Value zero = e.f32(0.0);
  for (int r = 0; r < 2; ++r) {
    Value sum = l[r];
    sum = e.addf(sum, shflXor(sum, 1));
    sum = e.addf(sum, shflXor(sum, 2));
    Value any = e.cmpf(CmpFPredicate::OGT, sum, zero);
    Value inv = e.select(any, e.divf(e.f32(1.0), sum), zero);
    Value row = e.addi(i0, r == 0 ? r0 : r1);
    Value inRange = e.cmpi(CmpIPredicate::ult, row, nq);
    e.ifThen(inRange, [&] {
      for (int64_t nd = 0; nd < dv / 8; ++nd) {
        Value x0 = e.mulf(acc(nd * 4 + 2 * r), inv);
        Value x1 = e.mulf(acc(nd * 4 + 2 * r + 1), inv);
        Value pair = vector::FromElementsOp::create(
            b, VectorType::get({2}, elem),
            ValueRange{arith::TruncFOp::create(b, elem, x0),
                       arith::TruncFOp::create(b, elem, x1)});
        Value off = gOffset(os, h, row, e.addi(cIdx(nd * 8), lcol));
        vector::StoreOp::create(b, pair, o, ValueRange{off});
      }
      if (lse) {
        Value first = e.cmpi(CmpIPredicate::eq, lcol, c0);
        e.ifThen(first, [&] {
          Value val =
              e.select(any, e.mulf(e.addf(m[r], lg2(sum)), e.f32(ln2)), negInf);
          Value idx = e.addi(e.muli(e.addi(e.muli(bi, cIdx(hq)), h), nq), row);
          memref::StoreOp::create(b, val, lse, ValueRange{idx});
        });
      }
    });
  }
}

namespace {
/// A conjunct `cap_a[.., i, ..] == cap_b[.., j, ..]` of a mask region (a
/// document mask): the extract reading at the query index i and the one
/// reading at the key index j, each indexed otherwise only by b, h or
/// constants, holding integers of at most 32 bits.
struct CaptureEquality {
  tensor::ExtractOp atI, atJ;
};

std::optional<CaptureEquality> findCaptureEquality(AttentionOp op) {
  if (!op.hasMaskRegion())
    return std::nullopt;
  Block &blk = op.getMask().front();
  Value iArg = blk.getArgument(2), jArg = blk.getArgument(3);
  auto indexedBy = [&](tensor::ExtractOp ex, Value want, Value other) {
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
  };
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
    if (indexedBy(x, iArg, jArg) && indexedBy(y, jArg, iArg))
      return CaptureEquality{x, y};
    if (indexedBy(y, iArg, jArg) && indexedBy(x, jArg, iArg))
      return CaptureEquality{y, x};
  }
  return std::nullopt;
}
} // namespace

void GpuKernelEmitter::emitBlockMap(gpu::GPUFuncOp func) {
  Block &entry = func.getBody().front();
  b.setInsertionPointToStart(&entry);
  unsigned a = 0;
  for (Value cap : captures)
    capMap.map(cap, entry.getArgument(a++));
  blockMap = entry.getArgument(a++);
  ++a; // the slice count: the grid's z extent carries it
  nq = entry.getArgument(a++);
  nk = entry.getArgument(a++);
  Value flags = func.getWorkgroupAttributions()[0];
  c0 = cIdx(0);
  c1 = cIdx(1);
  tid = gpu::ThreadIdOp::create(b, gpu::Dimension::x);
  Value qt = gpu::BlockIdOp::create(b, gpu::Dimension::x);
  Value kt = gpu::BlockIdOp::create(b, gpu::Dimension::y);
  Value slice = gpu::BlockIdOp::create(b, gpu::Dimension::z);
  bi = ms.batch ? (ms.head ? e.divi(slice, cIdx(hq)) : slice) : c0;
  h = ms.head ? b.createOrFold<arith::RemUIOp>(slice, cIdx(hq)) : c0;
  Value i0v = e.muli(qt, cIdx(bq)), j0v = e.muli(kt, cIdx(bkv));
  Value rows = e.mini(cIdx(bq), e.subi(nq, i0v));
  Value cols = e.mini(cIdx(bkv), e.subi(nk, j0v));
  // The tile's last row and column (inclusive bounds).
  Value i1v = e.subi(e.addi(i0v, rows), c1),
        j1v = e.subi(e.addi(j0v, cols), c1);
  Value cls = classify(i0v, i1v, j0v, j1v);
  Value first = e.cmpi(CmpIPredicate::eq, tid, c0);
  Type i32 = b.getI32Type();
  Value zero32 = arith::ConstantIntOp::create(b, i32, 0);
  std::optional<CaptureEquality> capEq = findCaptureEquality(op);
  e.ifThen(first, [&] {
    memref::StoreOp::create(b, zero32, flags, ValueRange{c0});
    memref::StoreOp::create(b, zero32, flags, ValueRange{c1});
    if (capEq)
      for (int64_t k = 0; k < 4; ++k)
        memref::StoreOp::create(b,
                                arith::ConstantIntOp::create(
                                    b, i32,
                                    k % 2 == 0
                                        ? std::numeric_limits<int32_t>::max()
                                        : std::numeric_limits<int32_t>::min()),
                                flags, ValueRange{cIdx(2 + k)});
  });
  gpu::BarrierOp::create(b);
  Value partial = e.cmpi(CmpIPredicate::eq, cls, c1);
  Value evaluate = partial;
  SmallVector<std::tuple<Value, Value, Value>> known;
  if (capEq) {
    // A document mask: the ranges of the values the tile's rows and columns
    // read (one pass over its rows and columns instead of all its elements).
    int64_t threads = warps * 32;
    auto readAt = [&](tensor::ExtractOp ex, Value idx) {
      Block &blk = op.getMask().front();
      Value args[4] = {bi, h, idx, idx};
      SmallVector<Value> ix;
      for (Value v : ex.getIndices()) {
        if (auto arg = dyn_cast<BlockArgument>(v);
            arg && arg.getOwner() == &blk)
          ix.push_back(args[arg.getArgNumber()]);
        else
          ix.push_back(b.clone(*v.getDefiningOp())->getResult(0));
      }
      Value x = memref::LoadOp::create(b, capMap.lookup(ex.getTensor()), ix);
      if (x.getType() != i32)
        x = arith::ExtSIOp::create(b, i32, x);
      return x;
    };
    e.ifThen(partial, [&] {
      e.loop(tid, e.addi(rows, cols), cIdx(threads), ValueRange{},
             [&](Value t, ValueRange) -> SmallVector<Value> {
               Value isRow = e.cmpi(CmpIPredicate::ult, t, rows);
               e.ifElse(
                   isRow, {},
                   [&] {
                     Value x = readAt(capEq->atI, e.addi(i0v, t));
                     memref::AtomicRMWOp::create(b, arith::AtomicRMWKind::mins,
                                                 x, flags, ValueRange{cIdx(2)});
                     memref::AtomicRMWOp::create(b, arith::AtomicRMWKind::maxs,
                                                 x, flags, ValueRange{cIdx(3)});
                     return SmallVector<Value>{};
                   },
                   [&] {
                     Value x = readAt(capEq->atJ, e.addi(j0v, e.subi(t, rows)));
                     memref::AtomicRMWOp::create(b, arith::AtomicRMWKind::mins,
                                                 x, flags, ValueRange{cIdx(4)});
                     memref::AtomicRMWOp::create(b, arith::AtomicRMWKind::maxs,
                                                 x, flags, ValueRange{cIdx(5)});
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
    known.push_back({capEq->atI.getResult(), slot(2), slot(3)});
    known.push_back({capEq->atJ.getResult(), slot(4), slot(5)});
  }
  // Reads of captured integers at indices that are the same for every
  // element of the tile (a block layout read at (i / 128, j / 128) on a
  // 128 x 128 tile): one load each, made only where the indices' intervals
  // over the tile are points.
  if (op.hasMaskRegion()) {
    IRBackend be(b);
    IntervalEvaluator<IRBackend> ev(be);
    Block &blk = op.getMask().front();
    ev.bind(blk.getArgument(0), bi, bi);
    ev.bind(blk.getArgument(1), h, h);
    ev.bind(blk.getArgument(2), i0v, i1v);
    ev.bind(blk.getArgument(3), j0v, j1v);
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
                memref::LoadOp::create(b, capMap.lookup(ex.getTensor()), at);
            // index_cast sign-extends any integer width to index (an extsi
            // to i32 first was invalid on i32 captures).
            return SmallVector<Value>{
                arith::IndexCastOp::create(b, b.getIndexType(), v)};
          },
          [&] { return SmallVector<Value>{c0}; })[0];
      known.push_back({ex.getResult(),
                       e.select(use, x, cIdx(-(int64_t(1) << 40))),
                       e.select(use, x, cIdx(int64_t(1) << 40))});
    });
  }
  if (!known.empty()) {
    // The mask over the tile with those reads bound to their ranges:
    // disjoint document ranges make the tile empty; one document on both
    // sides leaves the rest of the mask (a causal mask's class, say); a
    // block layout's value decides its block. Only tiles still undecided
    // are evaluated per element.
    IRBackend be(b);
    auto [mayTrue, mayFalse] =
        evalTileMask(be, op, ms, bi, h, i0v, i1v, j0v, j1v, ArrayRef(known));
    Value ranged = e.select(mayTrue, e.select(mayFalse, c1, cIdx(2)), c0);
    cls = e.select(partial, ranged, cls);
    partial = e.cmpi(CmpIPredicate::eq, cls, c1);
    evaluate = partial;
  }
  // Tiles the intervals leave undecided: every element, in parallel. Each
  // thread takes 4 x 4 blocks of elements: the mask regions of a block read
  // their captures at 4 rows and 4 columns, so loads of captured data shared
  // by a row or a column are made once, not 16 times (LLVM merges them).
  // Elements past Nq/Nk evaluate the mask at the last row/column (always in
  // bounds) and do not count.
  e.ifThen(evaluate, [&] {
    int64_t threads = warps * 32;
    constexpr int64_t kMicro = 4;
    int64_t perRow = bkv / kMicro;
    Value blocks = e.muli(e.ceilDiv(rows, cIdx(kMicro)), cIdx(perRow));
    Value lastR = e.subi(rows, c1), lastC = e.subi(cols, c1);
    SmallVector<Value> any = e.loop(
        tid, blocks, cIdx(threads), {zero32, zero32},
        [&](Value u, ValueRange it) -> SmallVector<Value> {
          Value r0b = e.muli(e.divi(u, cIdx(perRow)), cIdx(kMicro));
          Value c0b = e.muli(b.createOrFold<arith::RemUIOp>(u, cIdx(perRow)),
                             cIdx(kMicro));
          Value anyT = it[0], anyF = it[1];
          for (int64_t a = 0; a < kMicro; ++a)
            for (int64_t bb = 0; bb < kMicro; ++bb) {
              Value r = e.addi(r0b, cIdx(a)), c = e.addi(c0b, cIdx(bb));
              Value in = b.createOrFold<arith::AndIOp>(
                  e.cmpi(CmpIPredicate::ult, r, rows),
                  e.cmpi(CmpIPredicate::ult, c, cols));
              Value m = maskAt(e.addi(i0v, e.mini(r, lastR)),
                               e.addi(j0v, e.mini(c, lastC)));
              Value res = b.createOrFold<arith::AndIOp>(in, m);
              Value isFalse = b.createOrFold<arith::AndIOp>(
                  in, b.createOrFold<arith::XOrIOp>(m, e.i1(true)));
              // Accumulated in i32: 16 elements of i1 flags at once
              // outnumber the predicate registers.
              anyT = arith::OrIOp::create(b, anyT,
                                          arith::ExtUIOp::create(b, i32, res));
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
  gpu::BarrierOp::create(b);
  e.ifThen(first, [&] {
    Value anyTrue =
        e.cmpi(CmpIPredicate::ne,
               memref::LoadOp::create(b, flags, ValueRange{c0}), zero32);
    Value anyFalse =
        e.cmpi(CmpIPredicate::ne,
               memref::LoadOp::create(b, flags, ValueRange{c1}), zero32);
    Value exact = e.select(anyTrue, e.select(anyFalse, c1, cIdx(2)), c0);
    Value finalCls = e.select(partial, exact, cls);
    Value numQT = gpu::GridDimOp::create(b, gpu::Dimension::x);
    Value numKT = gpu::GridDimOp::create(b, gpu::Dimension::y);
    Value idx = e.addi(e.muli(e.addi(e.muli(slice, numQT), qt), numKT), kt);
    Value c8 = arith::TruncIOp::create(
        b, b.getI8Type(),
        arith::IndexCastUIOp::create(b, b.getI32Type(), finalCls));
    memref::StoreOp::create(b, c8, blockMap, ValueRange{idx});
  });
  gpu::ReturnOp::create(b);
}

LogicalResult GpuKernelEmitter::emit(gpu::GPUFuncOp func) {
  Block &entry = func.getBody().front();
  b.setInsertionPointToStart(&entry);
  bindArguments(entry);
  sK = func.getWorkgroupAttributions()[0];
  sV = func.getWorkgroupAttributions()[1];

  const double log2e = 1.4426950408889634;
  Value qt = bindIndices();

  // Q: staged through sK (bkv rows at a time), then held in registers as A
  // fragments for the whole kernel.
  Value lrow = b.createOrFold<arith::RemUIOp>(lane, cIdx(16));
  Value lhalf = e.muli(e.divi(lane, cIdx(16)), cIdx(8));
  Value wrow = e.muli(warp, cIdx(16));
  SmallVector<Value> qVec(d / 16);
  for (int64_t r0 = 0; r0 < bq; r0 += bkv) {
    int64_t rows = std::min(bkv, bq - r0);
    stageTile(q, qs, h, e.addi(i0, cIdx(r0)), nq, sK, rows, d);
    waitGroups(0);
    gpu::BarrierOp::create(b);
    Value inRound = b.createOrFold<arith::AndIOp>(
        e.cmpi(CmpIPredicate::uge, wrow, cIdx(r0)),
        e.cmpi(CmpIPredicate::ult, wrow, cIdx(r0 + rows)));
    Value local = e.select(inRound, e.subi(wrow, cIdx(r0)), c0);
    for (int64_t kk = 0; kk < d / 16; ++kk) {
      Value f = nvgpu::LdMatrixOp::create(
          b, VectorType::get({4, 2}, elem), sK,
          ValueRange{e.addi(local, lrow), e.addi(cIdx(kk * 16), lhalf)},
          b.getBoolAttr(false), b.getI32IntegerAttr(4));
      qVec[kk] = r0 == 0 ? f : e.select(inRound, f, qVec[kk]);
    }
    gpu::BarrierOp::create(b);
  }
  SmallVector<SmallVector<Value>> qFrags;
  for (Value f : qVec)
    qFrags.push_back(operands(f, 4));

  // kv-tile range of this q tile: the span of its non-empty tiles.
  Value numKT = e.ceilDiv(nk, cIdx(bkv));
  Value numQTv = e.ceilDiv(nq, cIdx(bq));
  Value i1 = e.subi(e.mini(e.addi(i0, cIdx(bq)), nq), c1);
  bool masked = ms.kind != MaskKind::none;
  Value lo = c0, hi = numKT;
  if (masked) {
    SmallVector<Value> range =
        e.loop(c0, numKT, c1, {numKT, c0},
               [&](Value kt, ValueRange it) -> SmallVector<Value> {
                 Value j0 = e.muli(kt, cIdx(bkv));
                 Value j1 = e.subi(e.mini(e.addi(j0, cIdx(bkv)), nk), c1);
                 Value cls = needsMap ? mapClass(qt, kt, numQTv, numKT)
                                      : classify(i0, i1, j0, j1);
                 Value nonEmpty = e.cmpi(CmpIPredicate::ne, cls, c0);
                 return {e.select(nonEmpty, e.mini(it[0], kt), it[0]),
                         e.select(nonEmpty, e.addi(kt, c1), it[1])};
               });
    lo = range[0];
    hi = range[1];
  }

  // Loop state: O fragments (dv/8 of them), row max and partial sums for
  // the two rows a lane holds.
  int64_t nO = dv / 8, nS = bkv / 8;
  Value zero = e.f32(0.0);
  SmallVector<Value> init;
  for (int64_t i = 0; i < nO * 4; ++i)
    init.push_back(zero);
  init.append({negInf, negInf, zero, zero});
  Value r0 = e.addi(wrow, e.divi(lane, cIdx(4)));
  Value r1 = e.addi(r0, cIdx(8));
  Value lcol = e.muli(b.createOrFold<arith::RemUIOp>(lane, cIdx(4)), cIdx(2));
  double scale = op.getEffectiveScale();
  Value qkScale = e.f32(op.hasScoreRegion() ? scale : scale * log2e);
  bool fold = !op.hasScoreRegion() && scale > 0;

  // Software pipeline: K and V of a tile are separate cp.async groups; the
  // next tile's K is fetched while this tile's P V runs, its V while the
  // next S = Q K^T runs. Past the last tile the copies zero-fill (no reads).
  auto issue = [&](Value kt, Value real, Value src, Value *strides, Value smem,
                   int64_t width) {
    Value j0 = e.muli(kt, cIdx(bkv));
    stageTile(src, strides, hk, j0, e.select(real, nk, c0), smem, bkv, width);
  };
  auto classOf = [&](Value kt) -> Value {
    if (!masked)
      return cIdx(2);
    if (needsMap)
      return mapClass(qt, kt, numQTv, numKT);
    Value j0 = e.muli(kt, cIdx(bkv));
    Value j1 = e.subi(e.mini(e.addi(j0, cIdx(bkv)), nk), c1);
    return classify(i0, i1, j0, j1);
  };
  // The first visited tile at or after `from` (hi if none) and its class:
  // the loop below runs over visited tiles only, so empty tiles inside the
  // range are neither loaded nor waited for, and each tile is classified
  // once.
  auto nextVisited = [&](Value from) -> std::pair<Value, Value> {
    if (!masked)
      return {from, cIdx(2)};
    if (!needsMap) {
      // Index masks: the range is tight and interval classes are a few
      // integer ops; empty tiles inside it are skipped by `visit` (their
      // prefetch is wasted, rare for affine masks). Scanning ahead here
      // costs more than it saves (measured on causal).
      Value inRange = e.cmpi(CmpIPredicate::ult, from, hi);
      Value cls = e.ifElse(
          inRange, {b.getIndexType()},
          [&] { return SmallVector<Value>{classOf(from)}; },
          [&] { return SmallVector<Value>{c0}; })[0];
      return {from, cls};
    }
    Type idxTy = b.getIndexType();
    auto w = scf::WhileOp::create(b, TypeRange{idxTy, idxTy}, ValueRange{from});
    OpBuilder::InsertionGuard guard(b);
    Block *before = b.createBlock(&w.getBefore(), {}, {idxTy}, {b.getLoc()});
    b.setInsertionPointToEnd(before);
    Value j = before->getArgument(0);
    Value inRange = e.cmpi(CmpIPredicate::ult, j, hi);
    Value cls = e.ifElse(
        inRange, {idxTy}, [&] { return SmallVector<Value>{classOf(j)}; },
        [&] { return SmallVector<Value>{c0}; })[0];
    Value more = b.createOrFold<arith::AndIOp>(
        inRange, e.cmpi(CmpIPredicate::eq, cls, c0));
    scf::ConditionOp::create(b, more, ValueRange{j, cls});
    Block *after = b.createBlock(&w.getAfter(), {}, {idxTy, idxTy},
                                 {b.getLoc(), b.getLoc()});
    b.setInsertionPointToEnd(after);
    scf::YieldOp::create(b, ValueRange{e.addi(after->getArgument(0), c1)});
    return {w.getResult(0), w.getResult(1)};
  };
  auto [first, firstCls] = nextVisited(lo);
  Value firstReal = e.cmpi(CmpIPredicate::ult, first, hi);
  issue(first, firstReal, k, ks, sK, d);
  issue(first, firstReal, v, vs, sV, dv);
  SmallVector<Value> whileInit = {first, firstCls};
  whileInit.append(init.begin(), init.end());
  SmallVector<Value> whileOut = e.whileLoop(
      whileInit,
      [&](ValueRange it) { return e.cmpi(CmpIPredicate::ult, it[0], hi); },
      [&](ValueRange it) -> SmallVector<Value> {
        Value kt = it[0];
        Value cls = it[1];
        ValueRange st = it.drop_front(2);
        Value j0 = e.muli(kt, cIdx(bkv));
        Value visit = e.cmpi(CmpIPredicate::ne, cls, c0);
        SmallVector<Type> types(st.getTypes());
        auto [nextKt, nextCls] = nextVisited(e.addi(kt, c1));
        Value nextReal = e.cmpi(CmpIPredicate::ult, nextKt, hi);
        waitGroups(1); // this tile's K has landed
        gpu::BarrierOp::create(b);
        SmallVector<Type> scoreTypes(nS * 4, b.getF32Type());
        SmallVector<Value> x = e.ifElse(
            visit, scoreTypes,
            [&]() -> SmallVector<Value> {
              // S = Q K^T for this warp's 16 rows. One ldmatrix.x4 gives
              // the B fragments of two 8-column blocks.
              Value krow8 = b.createOrFold<arith::RemUIOp>(lane, cIdx(8));
              Value krow =
                  e.addi(krow8, e.muli(e.divi(lane, cIdx(16)), cIdx(8)));
              Value kcol = e.muli(b.createOrFold<arith::RemUIOp>(
                                      e.divi(lane, cIdx(8)), cIdx(2)),
                                  cIdx(8));
              // A rolled mask is evaluated into bits before S exists, as in
              // the sm_90a kernel.
              Value full;
              SmallVector<Value> words;
              auto fullTile = [&] {
                Value complete =
                    e.cmpi(CmpIPredicate::ule, e.addi(j0, cIdx(bkv)), nk);
                return b.createOrFold<arith::AndIOp>(
                    complete, e.cmpi(CmpIPredicate::eq, cls, cIdx(2)));
              };
              if (rolledMask()) {
                full = fullTile();
                words = maskWords(full, j0, r0, r1, lcol, nS * 4);
              }
              SmallVector<Frag> s(nS, Frag{zero, zero, zero, zero});
              for (int64_t nb = 0; nb < nS; nb += 2) {
                bool pair = nb + 1 < nS;
                for (int64_t kk = 0; kk < d / 16; ++kk) {
                  Value f = nvgpu::LdMatrixOp::create(
                      b, VectorType::get({pair ? 4 : 2, 2}, elem), sK,
                      ValueRange{e.addi(cIdx(nb * 8), pair ? krow : krow8),
                                 e.addi(cIdx(kk * 16), kcol)},
                      b.getBoolAttr(false), b.getI32IntegerAttr(pair ? 4 : 2));
                  SmallVector<Value> ops = operands(f, pair ? 4 : 2);
                  s[nb] = mma(qFrags[kk], {ops[0], ops[1]}, s[nb]);
                  if (pair)
                    s[nb + 1] = mma(qFrags[kk], {ops[2], ops[3]}, s[nb + 1]);
                }
              }
              // Scores in log2 units; masked elements -inf. Full tiles (and
              // complete ones) skip the mask code.
              SmallVector<Value> flat;
              for (const Frag &f : s)
                flat.append(f.begin(), f.end());
              // Scale and score region for every element (once), then the
              // mask only on partial (or ragged) tiles.
              SmallVector<Value> scored;
              auto index = [&](int64_t nb, int64_t el) {
                return std::make_pair(
                    e.addi(i0, el < 2 ? r0 : r1),
                    e.addi(j0, e.addi(cIdx(nb * 8 + (el % 2)), lcol)));
              };
              for (int64_t nb = 0; nb < nS; ++nb)
                for (int64_t el = 0; el < 4; ++el) {
                  // Without a score region the scale is folded into the
                  // exponent below (one FMA instead of a multiply and a
                  // subtraction per element).
                  Value x = fold ? flat[nb * 4 + el]
                                 : e.mulf(flat[nb * 4 + el], qkScale);
                  if (op.hasScoreRegion()) {
                    auto [i, j] = index(nb, el);
                    x = e.mulf(inlineRegion(op.getScore(), {x, bi, h, i, j}),
                               e.f32(log2e));
                  }
                  scored.push_back(x);
                }
              if (!full)
                full = fullTile();
              return applyMask(full, j0, r0, r1, lcol, scored, words);
            },
            [&]() -> SmallVector<Value> {
              return SmallVector<Value>(nS * 4, negInf);
            });
        gpu::BarrierOp::create(b); // every warp is done with sK
        issue(nextKt, nextReal, k, ks, sK, d);
        waitGroups(1); // this tile's V has landed
        gpu::BarrierOp::create(b);
        SmallVector<Value> next = e.ifElse(
            visit, types,
            [&]() -> SmallVector<Value> {
              SoftmaxStep sm = onlineSoftmax(x, {st[nO * 4], st[nO * 4 + 1]},
                                             {st[nO * 4 + 2], st[nO * 4 + 3]},
                                             fold, qkScale);
              ArrayRef<Value> p = sm.p;
              Value *alpha = sm.alpha;
              SmallVector<Frag> acc(nO);
              for (int64_t nd = 0; nd < nO; ++nd)
                for (int64_t el = 0; el < 4; ++el)
                  acc[nd][el] = e.mulf(st[nd * 4 + el], alpha[el / 2]);
              // O += P V: P's C fragments become A fragments; one
              // ldmatrix.x4.trans gives the B fragments of two d-blocks.
              Value vrow = b.createOrFold<arith::RemUIOp>(lane, cIdx(16));
              Value vcol = e.muli(e.divi(lane, cIdx(16)), cIdx(8));
              for (int64_t kk = 0; kk < bkv / 16; ++kk) {
                int64_t n0 = 2 * kk, n1 = 2 * kk + 1;
                SmallVector<Value> aOps = {pack(p[n0 * 4 + 0], p[n0 * 4 + 1]),
                                           pack(p[n0 * 4 + 2], p[n0 * 4 + 3]),
                                           pack(p[n1 * 4 + 0], p[n1 * 4 + 1]),
                                           pack(p[n1 * 4 + 2], p[n1 * 4 + 3])};
                for (int64_t nd = 0; nd < nO; nd += 2) {
                  bool pair = nd + 1 < nO;
                  Value f = nvgpu::LdMatrixOp::create(
                      b, VectorType::get({pair ? 4 : 2, 2}, elem), sV,
                      ValueRange{e.addi(cIdx(kk * 16), vrow),
                                 pair ? e.addi(cIdx(nd * 8), vcol)
                                      : cIdx(nd * 8)},
                      b.getBoolAttr(true), b.getI32IntegerAttr(pair ? 4 : 2));
                  SmallVector<Value> ops = operands(f, pair ? 4 : 2);
                  acc[nd] = mma(aOps, {ops[0], ops[1]}, acc[nd]);
                  if (pair)
                    acc[nd + 1] = mma(aOps, {ops[2], ops[3]}, acc[nd + 1]);
                }
              }
              SmallVector<Value> out;
              for (const Frag &f : acc)
                out.append(f.begin(), f.end());
              out.append({sm.m[0], sm.m[1], sm.l[0], sm.l[1]});
              return out;
            },
            [&]() -> SmallVector<Value> { return SmallVector<Value>(st); });
        gpu::BarrierOp::create(b); // every warp is done with sV
        issue(nextKt, nextReal, v, vs, sV, dv);
        SmallVector<Value> out = {nextKt, nextCls};
        out.append(next.begin(), next.end());
        return out;
      });
  SmallVector<Value> state(whileOut.begin() + 2, whileOut.end());
  waitGroups(0);

  emitEpilogue(
      {state[nO * 4], state[nO * 4 + 1]},
      {state[nO * 4 + 2], state[nO * 4 + 3]},
      [&](int64_t i) { return state[i]; }, r0, r1, lcol);
  gpu::ReturnOp::create(b);
  return success();
}

FailureOr<KernelInfo> mlir::attn::buildAttentionKernel(AttentionOp op,
                                                       ModuleOp module,
                                                       StringRef name) {
  ScheduleAttr sched = op.getScheduleAttr();
  if (!sched || !op.getMaskInfoAttr())
    return op.emitOpError()
           << "needs #attn.schedule and #attn.mask_info before GPU code "
              "generation (run attn-analyze-masks and attn-select-schedule)";
  if (sched.getTarget() == Target::Cpu)
    return op.emitOpError() << "has a CPU schedule; select a GPU target "
                               "(sm_80 or sm_90a) for GPU code generation";
  auto qType = cast<RankedTensorType>(op.getQ().getType());
  Type elem = qType.getElementType();
  if (!elem.isBF16() && !elem.isF16())
    return op.emitOpError()
           << "GPU kernels take bf16 or f16 inputs, got " << elem;
  if (failed(detail::checkGpuRegionOps(op)))
    return failure();
  int64_t d = op.getHeadDim(), dv = op.getValueDim();
  if (d % 16 != 0 || dv % 16 != 0 || d > 256 || dv > 256)
    return op.emitOpError() << "GPU kernels need head dims that are multiples "
                               "of 16 and at most 256, got "
                            << d << " and " << dv;
  int64_t bq = sched.getBlockQ(), bkv = sched.getBlockKv();
  if (bq % 16 != 0 || bq > 128 || bkv % 16 != 0)
    return op.emitOpError() << "GPU schedule needs block_q in {16, ..., 128} "
                               "and block_kv a multiple of 16, got "
                            << bq << "x" << bkv;
  int64_t warps = bq / 16;
  int64_t rowsK = bkv;
  int64_t elemBytes = 2;
  // sm_90a with the schedule's 128 (or 64) x 128 tiles: TMA + wgmma, one
  // warpgroup per 64 query rows (AttnToGPUSm90.cpp).
  const TargetDesc &tdesc = getTargetDesc(sched.getTarget());
  bool wgmma = tdesc.wgmma && sm90Tile(bq, bkv) && sm90Supports(true, d, dv);
  int64_t shared = wgmma ? sm90SharedBytes(bq, d, dv)
                         : mmaSyncSharedBytes(rowsK, d, dv, elemBytes);
  if (!wgmma && shared > kStaticSharedBytes)
    return op.emitOpError()
           << "the mma.sync kernel's " << bkv << "-row tiles of K and V need "
           << shared
           << " bytes of shared memory, past the 49152 (48 KB) of static "
              "shared memory a block may use: use a smaller block_kv";
  MLIRContext *ctx = op.getContext();
  ctx->loadDialect<gpu::GPUDialect, nvgpu::NVGPUDialect, NVVM::NVVMDialect,
                   LLVM::LLVMDialect, memref::MemRefDialect, scf::SCFDialect,
                   vector::VectorDialect>();

  KernelInfo info;
  info.name = name.str();
  info.target = stringifyTarget(sched.getTarget()).str();
  info.dtype = elem.isBF16() ? "bf16" : "f16";
  info.headDim = d;
  info.valueDim = dv;
  info.headsQ = op.getNumQueryHeads();
  info.headsKv = op.getNumKvHeads();
  info.blockQ = bq;
  info.blockKv = bkv;
  info.threads = warps * 32;
  info.sharedBytes = shared;
  info.lse = bool(op.getLse());
  info.scale = op.getEffectiveScale();
  info.maskKind = stringifyMaskKind(op.getMaskInfoAttr().getKind()).str();
  if (wgmma)
    info.variant = "wgmma";

  Builder bld(ctx);
  Type idx = bld.getIndexType();
  SmallVector<Type> argTypes;
  auto addMem = [&](StringRef n, Type el, ArrayRef<int64_t> shape) {
    argTypes.push_back(MemRefType::get(shape, el));
    std::string es;
    llvm::raw_string_ostream os(es);
    os << el;
    info.args.push_back({n.str(), "memref", es, int64_t(shape.size())});
  };
  for (StringRef n : {"q", "k", "v"}) {
    if (!wgmma) {
      addMem(n, elem, {ShapedType::kDynamic});
      continue;
    }
    // A CUtensorMap by value (attn-finalize-sm90 makes the pointer byval).
    argTypes.push_back(LLVM::LLVMPointerType::get(ctx));
    KernelArg ka{n.str(), "tensormap", info.dtype, 4};
    ka.boxRows = n == "q" ? bq : bkv;
    info.args.push_back(ka);
  }
  addMem("o", elem, {ShapedType::kDynamic});
  if (op.getLse())
    addMem("lse", bld.getF32Type(), {ShapedType::kDynamic});
  SmallVector<Value> captures = attentionKernelCaptures(op);
  for (auto [i, cap] : llvm::enumerate(captures)) {
    auto t = cast<RankedTensorType>(cap.getType());
    addMem("capture" + std::to_string(i), t.getElementType(), t.getShape());
  }
  MaskStructure ms = analyzeMaskStructure(op);
  bool needsMap = ms.kind == MaskKind::data || ms.kind == MaskKind::opaque;
  SmallVector<Type> mapArgTypes;
  if (needsMap) {
    mapArgTypes.assign(argTypes.begin() + (op.getLse() ? 5 : 4),
                       argTypes.end());
    info.mapArgs.assign(info.args.begin() + (op.getLse() ? 5 : 4),
                        info.args.end());
    addMem("block_map", bld.getI8Type(), {ShapedType::kDynamic});
    mapArgTypes.push_back(argTypes.back());
    info.mapArgs.push_back(info.args.back());
    for (StringRef n : {"slices", "Nq", "Nk"}) {
      mapArgTypes.push_back(idx);
      info.mapArgs.push_back({n.str(), "i64", "", 0});
    }
    info.mapKernel = (name + "_blockmap").str();
    info.mapSlices =
        ms.batch ? (ms.head ? "B*Hq" : "B") : (ms.head ? "Hq" : "1");
  }
  for (StringRef n :
       {"B", "Nq", "Nk", "q_stride_b", "q_stride_h", "q_stride_n", "k_stride_b",
        "k_stride_h", "k_stride_n", "v_stride_b", "v_stride_h", "v_stride_n",
        "o_stride_b", "o_stride_h", "o_stride_n"}) {
    argTypes.push_back(idx);
    info.args.push_back({n.str(), "i64", "", 0});
  }

  OpBuilder ob(ctx);
  ob.setInsertionPointToEnd(module.getBody());
  module->setAttr(gpu::GPUDialect::getContainerModuleAttrName(),
                  UnitAttr::get(ctx));
  auto gpuModule =
      gpu::GPUModuleOp::create(ob, op.getLoc(), (name + "_kernels").str());
  ob.setInsertionPointToStart(gpuModule.getBody());
  auto wg = gpu::AddressSpaceAttr::get(ctx, gpu::AddressSpace::Workgroup);
  Type sKTy = MemRefType::get({rowsK, d + 8}, elem, AffineMap(), wg);
  Type sVTy = MemRefType::get({bkv, dv + 8}, elem, AffineMap(), wg);
  // The wgmma kernel's scratch for reducing the kv-tile range: one (lo, hi)
  // pair per warp.
  Type redTy = MemRefType::get({2 * warps}, ob.getI32Type(), AffineMap(), wg);
  auto func = gpu::GPUFuncOp::create(
      ob, op.getLoc(), name, ob.getFunctionType(argTypes, {}),
      wgmma ? TypeRange{redTy} : TypeRange{sKTy, sVTy});
  if (wgmma) {
    func->setAttr("attn.tma_args", ob.getDenseI32ArrayAttr({0, 1, 2}));
    // 16-byte aligned: LLVM merges the reads of the per-warp pairs into
    // 16-byte vector loads.
    func.setWorkgroupAttributionAttr(0, LLVM::LLVMDialect::getAlignAttrName(),
                                     ob.getI64IntegerAttr(16));
  }
  func->setAttr(gpu::GPUDialect::getKernelFuncAttrName(), ob.getUnitAttr());
  // `.minnctapersm 1`: otherwise ptxas may cap registers at 128 to fit more
  // blocks per SM, and spill (seen for softcap, d = 64, sm_80).
  func->setAttr(NVVM::NVVMDialect::getMinctasmAttrName(),
                ob.getI32IntegerAttr(1));
  func.setKnownBlockSizeAttr(
      ob.getDenseI32ArrayAttr({int32_t(warps * 32), 1, 1}));
  if (wgmma)
    func->setAttr(
        "attn.fragments",
        ob.getDictionaryAttr({
            ob.getNamedAttr("q",
                            ob.getStringAttr("smem, TMA 128B swizzle, "
                                             "wgmma descriptor (K-major)")),
            ob.getNamedAttr("k",
                            ob.getStringAttr("smem, TMA 128B swizzle, "
                                             "wgmma descriptor (K-major)")),
            ob.getNamedAttr("s", ob.getStringAttr("wgmma.m64n128.D.f32")),
            ob.getNamedAttr("p",
                            ob.getStringAttr("wgmma.m64nNk16.A.regs (from D)")),
            ob.getNamedAttr("v",
                            ob.getStringAttr("smem, TMA 128B swizzle, "
                                             "wgmma descriptor (MN-major)")),
            ob.getNamedAttr("o", ob.getStringAttr("wgmma.m64nDv.D.f32")),
        }));
  else
    func->setAttr(
        "attn.fragments",
        ob.getDictionaryAttr({
            ob.getNamedAttr(
                "q", ob.getStringAttr("mma.m16n8k16.A.row (ldmatrix.x4)")),
            ob.getNamedAttr(
                "k", ob.getStringAttr("mma.m16n8k16.B.col (ldmatrix.x2)")),
            ob.getNamedAttr("s", ob.getStringAttr("mma.m16n8.C.f32")),
            ob.getNamedAttr("p",
                            ob.getStringAttr("mma.m16n8k16.A.row (from C)")),
            ob.getNamedAttr("v", ob.getStringAttr(
                                     "mma.m16n8k16.B.col (ldmatrix.x2.trans)")),
            ob.getNamedAttr("o", ob.getStringAttr("mma.m16n8.C.f32")),
        }));
  ImplicitLocOpBuilder b(op.getLoc(), ob);
  auto setup = [&](GpuKernelEmitter &em) {
    em.d = d;
    em.dv = dv;
    em.hq = info.headsQ;
    em.hkv = info.headsKv;
    em.bq = bq;
    em.bkv = bkv;
    em.warps = warps;
    em.elem = elem;
    em.bf16 = elem.isBF16();
    em.needsMap = needsMap;
    em.captures = captures;
  };
  if (needsMap) {
    OpBuilder::InsertionGuard guard(ob);
    // any-true, any-false, and the row / column ranges of a document mask.
    Type flagsTy = MemRefType::get({6}, ob.getI32Type(), AffineMap(), wg);
    auto mapFunc = gpu::GPUFuncOp::create(ob, op.getLoc(), info.mapKernel,
                                          ob.getFunctionType(mapArgTypes, {}),
                                          TypeRange{flagsTy});
    mapFunc->setAttr(gpu::GPUDialect::getKernelFuncAttrName(),
                     ob.getUnitAttr());
    mapFunc.setKnownBlockSizeAttr(
        ob.getDenseI32ArrayAttr({int32_t(warps * 32), 1, 1}));
    ImplicitLocOpBuilder mb(op.getLoc(), ob);
    GpuKernelEmitter mapEmitter(op, mb);
    setup(mapEmitter);
    mapEmitter.emitBlockMap(mapFunc);
  }
  GpuKernelEmitter emitter(op, b);
  setup(emitter);
  if (failed(wgmma ? emitter.emitSm90(func) : emitter.emit(func)))
    return failure();
  return info;
}

#define DEBUG_TYPE "convert-attn-to-gpu"
namespace {
struct ConvertAttnToGPUPass
    : public mlir::attn::impl::ConvertAttnToGPUBase<ConvertAttnToGPUPass> {
  void runOnOperation() override {
    ModuleOp module = getOperation();
    SmallVector<std::pair<AttentionOp, std::string>> work;
    module.walk([&](AttentionOp op) {
      auto func = op->getParentOfType<FunctionOpInterface>();
      std::string name = func ? func.getName().str() : "attention";
      work.push_back({op, name});
    });
    for (auto &[op, name] : work) {
      LLVM_DEBUG(llvm::dbgs() << "kernel '" << name << "' for "
                              << op.getScheduleAttr() << "\n");
      if (failed(buildAttentionKernel(op, module, name)))
        return signalPassFailure();
    }
  }
};
} // namespace
