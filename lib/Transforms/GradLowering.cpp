//===- GradLowering.cpp - shared parts of the attention backward ----------===//
//
// Part of attnc. See GradLowering.h.
//
//===----------------------------------------------------------------------===//

#include "attnc/Transforms/GradLowering.h"

#include "mlir/Dialect/MemRef/IR/MemRef.h"

using namespace mlir;
using namespace mlir::attn;

void mlir::attn::forEachIndex(Emitter &e, Value buf,
                              const std::function<void(ValueRange)> &body) {
  auto type = cast<MemRefType>(buf.getType());
  SmallVector<Value> ivs;
  std::function<void(int64_t)> nest = [&](int64_t d) {
    if (d == type.getRank()) {
      body(ivs);
      return;
    }
    e.loop(e.idx(0), e.dim(buf, d), [&](Value iv) {
      ivs.push_back(iv);
      nest(d + 1);
      ivs.pop_back();
    });
  };
  nest(0);
}

Value mlir::attn::zeroedBuffer(Emitter &e, ArrayRef<int64_t> shape, Type acc,
                               ArrayRef<Value> dims) {
  SmallVector<Value> dyn;
  for (auto [size, dim] : llvm::zip(shape, dims))
    if (ShapedType::isDynamic(size))
      dyn.push_back(dim);
  Value buf = e.alloc(shape, acc, dyn);
  Value zero = arith::ConstantOp::create(e.b, e.b.getFloatAttr(acc, 0.0));
  forEachIndex(e, buf, [&](ValueRange idx) {
    memref::StoreOp::create(e.b, zero, buf, idx);
  });
  return buf;
}

GradBuffers mlir::attn::makeGradBuffers(Emitter &e, AttentionGradOp op,
                                        Type acc) {
  GradBuffers gb;
  gb.acc = acc;
  gb.q = e.toBuffer(op.getQ());
  gb.k = e.toBuffer(op.getK());
  gb.v = e.toBuffer(op.getV());
  gb.o = e.toBuffer(op.getO());
  gb.lse = e.toBuffer(op.getLse());
  gb.dO = e.toBuffer(op.getDO());
  if (Value dlse = op.getDLse())
    gb.dLse = e.toBuffer(dlse);
  gb.batch = e.dim(gb.q, 0);
  gb.nq = e.dim(gb.q, 2);
  gb.nk = e.dim(gb.k, 2);
  gb.hq = op.getNumQueryHeads();
  gb.hkv = op.getNumKvHeads();
  gb.d = op.getHeadDim();
  gb.dv = op.getValueDim();
  int64_t dyn = ShapedType::kDynamic;
  gb.dq = zeroedBuffer(e, {dyn, gb.hq, dyn, gb.d}, acc,
                       {gb.batch, Value(), gb.nq, Value()});
  gb.dk = zeroedBuffer(e, {dyn, gb.hkv, dyn, gb.d}, acc,
                       {gb.batch, Value(), gb.nk, Value()});
  gb.dvAcc = zeroedBuffer(e, {dyn, gb.hkv, dyn, gb.dv}, acc,
                          {gb.batch, Value(), gb.nk, Value()});
  gb.gradOfCapture.assign(op.getCaptures().size(), -1);
  for (unsigned c : op.getGradCaptureIndices()) {
    Value capture = e.toBuffer(op.getCaptures()[c]);
    auto type = cast<MemRefType>(capture.getType());
    SmallVector<Value> dims;
    for (int64_t d = 0; d < type.getRank(); ++d)
      dims.push_back(type.isDynamicDim(d) ? e.dim(capture, d) : Value());
    gb.gradOfCapture[c] = gb.captureGrads.size();
    gb.captureGrads.push_back(zeroedBuffer(e, type.getShape(), acc, dims));
  }
  return gb;
}

Value mlir::attn::convertBufferTo(Emitter &e, Value acc, Type tensorType) {
  auto t = cast<RankedTensorType>(tensorType);
  SmallVector<Value> dims;
  for (int64_t d = 0; d < t.getRank(); ++d)
    dims.push_back(t.isDynamicDim(d) ? e.dim(acc, d) : Value());
  Value out = e.allocLike(t, dims);
  Type elem = t.getElementType();
  forEachIndex(e, acc, [&](ValueRange idx) {
    Value x = memref::LoadOp::create(e.b, acc, idx);
    // f64 -> bf16/f16 through f32 (the CPU runtime has no __truncdfbf2).
    if (x.getType().isF64() && !elem.isF32() && !elem.isF64())
      x = arith::TruncFOp::create(e.b, e.b.getF32Type(), x);
    if (x.getType() != elem)
      x = arith::TruncFOp::create(e.b, elem, x);
    memref::StoreOp::create(e.b, x, out, idx);
  });
  memref::DeallocOp::create(e.b, acc);
  return e.toTensor(out, t);
}

void mlir::attn::finishGrad(Emitter &e, AttentionGradOp op,
                            const GradBuffers &gb) {
  SmallVector<Value> results = {
      convertBufferTo(e, gb.dq, op.getDq().getType()),
      convertBufferTo(e, gb.dk, op.getDk().getType()),
      convertBufferTo(e, gb.dvAcc, op.getDv().getType())};
  for (auto [buf, result] : llvm::zip(gb.captureGrads, op.getCaptureGrads()))
    results.push_back(convertBufferTo(e, buf, result.getType()));
  op->replaceAllUsesWith(results);
  op->erase();
}

Value mlir::attn::chainScore(Emitter &e, AttentionGradOp op,
                             const GradBuffers &gb, Value dsOut, Value s,
                             Value bi, Value h, Value i, Value j) {
  if (!op.hasScoreRegion())
    return dsOut;
  auto widen = [&](Value x) -> Value {
    return x.getType() == gb.acc ? x : arith::ExtFOp::create(e.b, gb.acc, x);
  };
  SmallVector<Value> g = e.inlineRegion(op.getScoreGrad(), {s, bi, h, i, j});
  unsigned pos = 1;
  for (int64_t c : op.getCaptureSites()) {
    Value grad = gb.captureGrads[gb.gradOfCapture[c]];
    int64_t rank = cast<MemRefType>(grad.getType()).getRank();
    Value partial = widen(g[pos]);
    ValueRange idx = ValueRange(g).slice(pos + 1, rank);
    Value old = memref::LoadOp::create(e.b, grad, idx);
    memref::StoreOp::create(e.b, e.addf(old, e.mulf(dsOut, partial)), grad,
                            idx);
    pos += 1 + rank;
  }
  return e.mulf(dsOut, widen(g[0]));
}
