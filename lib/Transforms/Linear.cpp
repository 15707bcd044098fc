//===- Linear.cpp - lowerings of attn.linear_attention and attn.scan ------===//
//
// Part of attnc. Two lowerings of the same computation, so that each checks
// the other:
//  - the reference (quadratic) form: o_t = sum_s w(t,s) (phi_q(q_t).phi_k(k_s))
//  v_s
//    with w(t,s) = exp(-|L_t - L_s|) from cumulative log-gates L;
//  - the recurrent form: S_t = diag(a_t) S_{t-1} + phi_k(k_t) v_t^T,
//    o_t = S_t^T phi_q(q_t), plus a backward recurrence for bidirectional
//    scans. It carries the state token by token (the decode form);
//  - the chunked form: the sequence in chunks of C tokens; inside a chunk the
//    quadratic form with the decay matrix built from the chunk's cumulative
//    log-gates, across chunks the F x Dv state. Every exponent is a
//    difference L_i - L_j <= 0 of cumulative log-gates (gates <= 0), so
//    nothing overflows however long the sequence.
//
//===----------------------------------------------------------------------===//

#include "attnc/Transforms/AttnLowering.h"

#include "mlir/Dialect/Bufferization/IR/Bufferization.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"

using namespace mlir;
using namespace mlir::attn;
using arith::CmpFPredicate;
using arith::CmpIPredicate;

namespace {
using DecayKind = LinearDecay;

struct LinearLowering : LinearOpView {
  LinearLowering(Operation *op, ImplicitLocOpBuilder &b)
      : LinearOpView(op), b(b), e(b) {}

  ImplicitLocOpBuilder &b;
  Emitter e;
  Value o, fin;
  Value batch, n, c0, c1;

  void setup();
  void finish();
  /// Whether only the final state is wanted (LASP-2's state phase): a
  /// causal op whose output nothing reads; its rows are then not computed.
  bool stateOnly() {
    return causal && hasFinal && op->getResult(0).use_empty();
  }
  Value phiQ(Value bi, Value hi, Value t);
  Value phiK(Value bi, Value hkv, Value t);
  /// The storage index of the token the scan visits at step s (the op's
  /// token order; the identity without one, or when the sequence length is
  /// not the order's).
  Value tok(Value s);
  /// Log-gate at t: scalar f32 (Head, Token) or vector<F> (TokenDim).
  Value logGate(Value bi, Value hi, Value t);
  Value indexToF32(Value x) {
    Value i = arith::IndexCastOp::create(b, b.getI64Type(), x);
    return arith::SIToFPOp::create(b, b.getF32Type(), i);
  }
  Value absf(Value x) { return math::AbsFOp::create(b, x); }
  Value negExpAbs(Value x) { // exp(-|x|)
    return e.exp(arith::NegFOp::create(b, absf(x)));
  }
  Value zerosF(int64_t len) { return e.splat(e.f32(0.0), len); }

  // The F x Dv state, the normalizer's z and a row buffer of phi(q) shared
  // by the recurrent and chunked lowerings.
  Value state, z, pqBuf;
  void allocState();
  /// state <- initial_state (or 0 with `fromInit` false or no initial
  /// state), z <- 0.
  void resetState(Value bi, Value hi, bool fromInit);
  /// (S^T pq, pq . z)
  std::pair<Value, Value> readState(Value pq);
  /// The final-state result (when the op has one) <- state.
  void writeFinalState(Value bi, Value hi);
  /// o at token t <- out (divided by den with `normalize`).
  void writeOut(Value out, Value den, Value bi, Value hi, Value t);

  /// h / hk: query heads per key/value head.
  Value kvGroup;

  // The reference lowering: phi(k) of every token and the cumulative
  // log-gates L, [N] or [N, F] (Token and TokenDim decays only).
  Value refPhiK, refCum;
  void allocReferenceBuffers();
  /// refPhiK <- phi(k), refCum <- L for head (bi, hi).
  void storeKeysAndGates(Value bi, Value hi, Value hkv);
  /// L_t: scalar (Head/Token) or vector<F> (TokenDim).
  Value cumGate(Value bi, Value hi, Value t);
  /// o at token t from every key it sees (and the decayed initial state).
  void referenceRow(Value bi, Value hi, Value hkv, Value t);
  /// The final state of head (bi, hi).
  void referenceFinalState(Value bi, Value hi, Value hkv);
  /// Row fi of the final state of a non-empty sequence; lLast = L_{N-1}.
  void referenceFinalRow(Value bi, Value hi, Value hkv, Value lLast, Value fi);

  // The chunked lowering: phi(q), phi(k) and v of one chunk, the chunk's
  // cumulative log-gates L_i = g_{t0} + ... + g_{t0+i} ([C] or [C, F]), and
  // for bidirectional scans the forward pass's outputs and normalizers.
  bool vecGate = false;
  Value chunkLen, fIdx;
  Value chunkQ, chunkK, chunkV, chunkGates, fwdOut, fwdNorm;
  void allocChunkBuffers(int64_t chunk);
  /// L_i (scalar or vector<F>).
  Value gateAt(Value i);
  /// L_i[fi] (scalar).
  Value gateAtF(Value i, Value fi);
  /// x * exp(l), l scalar or vector<F>, x vector<F>.
  Value scaleByExp(Value x, Value l);
  /// The chunk of `len` tokens from t0 into the chunk buffers.
  void loadChunk(Value bi, Value hi, Value hkv, Value t0, Value len);
  /// The keys j in [lb, ub) of the chunk for query i, the weight folded into
  /// the dot product: pq . (pk * exp(sign * (L_i - L_j))). Returns (out, den).
  SmallVector<Value> intraChunk(Value pq, Value li, Value lb, Value ub,
                                bool forward);
  /// S <- exp(G) S + sum_j exp(G - L_j) (forward) or exp(L_j) (backward)
  /// pk_j v_j^T, and z likewise; G = L_{len-1}.
  void updateChunkState(Value len, bool forward);
  /// Keys j <= i, the state from the chunks before.
  void chunkedForward(Value bi, Value hi, Value hkv);
  /// The outputs of the chunk's rows [t0, t0 + len), loaded by loadChunk:
  /// intra-chunk terms plus the state of the chunks before.
  void chunkOutputs(Value bi, Value hi, Value t0, Value len);
  /// Keys j > i, the state from the chunks after.
  void chunkedBackward(Value bi, Value hi, Value hkv);

  LogicalResult lowerReference();
  LogicalResult lowerRecurrent();
  LogicalResult lowerChunked(int64_t chunk);
};
} // namespace

LinearOpView::LinearOpView(Operation *o) : op(o) {
  auto lin = cast<LinearOpInterface>(o);
  q = lin.getQ();
  k = lin.getK();
  v = lin.getV();
  decay = lin.getDecay();
  init = lin.getInitialState();
  fq = lin.getQueryMap();
  fk = lin.getKeyMap();
  scale = lin.getEffectiveScale();
  order = lin.getOrderAttr();
  normalize = lin.getNormalize();
  causal = lin.getDirection() == Direction::causal;
  f = lin.getFeatureDim();
  captures = llvm::to_vector(lin.getCapturedValues());
  hasFinal = bool(lin.getFinalState());
  auto qt = cast<RankedTensorType>(q.getType());
  h = qt.getDimSize(1);
  d = qt.getDimSize(3);
  hk = cast<RankedTensorType>(k.getType()).getDimSize(1);
  dv = cast<RankedTensorType>(v.getType()).getDimSize(3);
  elem = qt.getElementType();
  if (decay) {
    int64_t rank = cast<RankedTensorType>(decay.getType()).getRank();
    kind = rank == 1   ? LinearDecay::Head
           : rank == 3 ? LinearDecay::Token
                       : LinearDecay::TokenDim;
  }
}

void LinearLowering::setup() {
  q = e.toBuffer(q);
  k = e.toBuffer(k);
  v = e.toBuffer(v);
  if (decay)
    decay = e.toBuffer(decay);
  if (init)
    init = e.toBuffer(init);
  c0 = e.idx(0);
  c1 = e.idx(1);
  batch = e.dim(q, 0);
  n = e.dim(q, 2);
  o = e.allocLike(op->getResult(0).getType(), {batch, e.idx(h), n, e.idx(dv)});
  if (op->getNumResults() > 1)
    fin = e.allocLike(op->getResult(1).getType(),
                      {batch, e.idx(h), e.idx(f), e.idx(dv)});
}

void LinearLowering::finish() {
  SmallVector<Value> results = {e.toTensor(o, op->getResult(0).getType())};
  if (fin)
    results.push_back(e.toTensor(fin, op->getResult(1).getType()));
  op->replaceAllUsesWith(results);
  op->erase();
}

Value mlir::attn::tokenRow(ImplicitLocOpBuilder &b, Emitter &e,
                           TokenOrderAttr order, Value orderOn, Value pos) {
  if (!order)
    return pos;
  ArrayRef<int64_t> grid = order.getGrid(), perm = order.getPerm();
  int64_t rank = grid.size();
  SmallVector<int64_t> stride(rank, 1);
  for (int64_t i = rank - 2; i >= 0; --i)
    stride[i] = stride[i + 1] * grid[i + 1];
  Value c0 = e.idx(0);
  Value review = e.idx(order.getReview());
  Value isGrid =
      order.getReview() ? e.cmpi(CmpIPredicate::uge, pos, review) : Value();
  Value rem =
      order.getReview() ? e.select(isGrid, e.subi(pos, review), c0) : pos;
  Value phys = c0;
  for (int64_t i = rank - 1; i >= 0; --i) {
    Value size = e.idx(grid[perm[i]]);
    Value digit = i == 0 ? rem : b.createOrFold<arith::RemUIOp>(rem, size);
    if (i > 0)
      rem = b.createOrFold<arith::DivUIOp>(rem, size);
    phys = e.addi(phys, e.muli(digit, e.idx(stride[perm[i]])));
  }
  Value use = isGrid ? b.createOrFold<arith::AndIOp>(isGrid, orderOn) : orderOn;
  return e.select(use, e.addi(review, phys), pos);
}

Value LinearLowering::tok(Value s) {
  if (!order)
    return s;
  return tokenRow(b, e, order,
                  e.cmpi(CmpIPredicate::eq, n, e.idx(order.getLength())), s);
}

Value LinearLowering::phiQ(Value bi, Value hi, Value t) {
  Value x = e.mulf(e.readRowF32(q, {bi, hi, tok(t), c0}, d),
                   e.splat(e.f32(scale), d));
  return applyFeatureMap(e, fq, x, t);
}

Value LinearLowering::phiK(Value bi, Value hkv, Value t) {
  Value x = e.readRowF32(k, {bi, hkv, tok(t), c0}, d);
  return applyFeatureMap(e, fk, x, t);
}

Value LinearLowering::logGate(Value bi, Value hi, Value t) {
  switch (kind) {
  case DecayKind::None:
    return e.f32(0.0);
  case DecayKind::Head:
    return memref::LoadOp::create(b, decay, ValueRange{hi});
  case DecayKind::Token:
    return memref::LoadOp::create(b, decay, ValueRange{bi, hi, tok(t)});
  case DecayKind::TokenDim:
    return e.readRowF32(decay, {bi, hi, tok(t), c0}, f);
  }
  return Value();
}

void LinearLowering::allocState() {
  state = e.alloc({f, dv}, e.f32Type(), {});
  z = e.alloc({f}, e.f32Type(), {});
  pqBuf = e.alloc({f}, e.f32Type(), {});
}

void LinearLowering::resetState(Value bi, Value hi, bool fromInit) {
  e.loop(c0, e.idx(f), [&](Value fi) {
    Value row = fromInit && init ? e.readRowF32(init, {bi, hi, fi, c0}, dv)
                                 : zerosF(dv);
    e.writeRowF32(row, state, {fi, c0});
    memref::StoreOp::create(b, e.f32(0.0), z, ValueRange{fi});
  });
}

std::pair<Value, Value> LinearLowering::readState(Value pq) {
  e.writeRowF32(pq, pqBuf, {c0});
  Value out =
      e.loop(c0, e.idx(f), c1, {zerosF(dv)},
             [&](Value fi, ValueRange it) -> SmallVector<Value> {
               Value c = memref::LoadOp::create(b, pqBuf, ValueRange{fi});
               Value row = e.readRowF32(state, {fi, c0}, dv);
               return {vector::FMAOp::create(b, e.splat(c, dv), row, it[0])};
             })[0];
  return {out, e.dot(pq, e.readRowF32(z, {c0}, f))};
}

void LinearLowering::writeFinalState(Value bi, Value hi) {
  if (!fin)
    return;
  e.loop(c0, e.idx(f), [&](Value fi) {
    e.writeRowF32(e.readRowF32(state, {fi, c0}, dv), fin, {bi, hi, fi, c0});
  });
}

void LinearLowering::writeOut(Value out, Value den, Value bi, Value hi,
                              Value t) {
  if (normalize) {
    Value nz = e.cmpf(CmpFPredicate::ONE, den, e.f32(0.0));
    Value inv = e.select(nz, e.divf(e.f32(1.0), den), e.f32(0.0));
    out = e.mulf(out, e.splat(inv, dv));
  }
  e.writeRowF32(out, o, {bi, hi, tok(t), c0});
}

void LinearLowering::allocReferenceBuffers() {
  refPhiK = e.alloc({ShapedType::kDynamic, f}, e.f32Type(), {n});
  if (kind == DecayKind::Token)
    refCum = e.alloc({ShapedType::kDynamic}, e.f32Type(), {n});
  if (kind == DecayKind::TokenDim)
    refCum = e.alloc({ShapedType::kDynamic, f}, e.f32Type(), {n});
  pqBuf = e.alloc({f}, e.f32Type(), {});
  kvGroup = e.idx(h / hk);
}

void LinearLowering::storeKeysAndGates(Value bi, Value hi, Value hkv) {
  e.loop(c0, n, [&](Value s) {
    e.writeRowF32(phiK(bi, hkv, s), refPhiK, {s, c0});
  });
  if (!refCum)
    return;
  Value zero = kind == DecayKind::Token ? e.f32(0.0) : zerosF(f);
  e.loop(c0, n, c1, {zero}, [&](Value t, ValueRange it) {
    Value acc = e.addf(it[0], logGate(bi, hi, t));
    if (kind == DecayKind::Token)
      memref::StoreOp::create(b, acc, refCum, ValueRange{t});
    else
      e.writeRowF32(acc, refCum, {t, c0});
    return SmallVector<Value>{acc};
  });
}

Value LinearLowering::cumGate(Value bi, Value hi, Value t) {
  switch (kind) {
  case DecayKind::None:
    return e.f32(0.0);
  case DecayKind::Head:
    return e.mulf(e.addf(indexToF32(t), e.f32(1.0)), logGate(bi, hi, t));
  case DecayKind::Token:
    return memref::LoadOp::create(b, refCum, ValueRange{t});
  case DecayKind::TokenDim:
    return e.readRowF32(refCum, {t, c0}, f);
  }
  return Value();
}

void LinearLowering::referenceRow(Value bi, Value hi, Value hkv, Value t) {
  Value pq = phiQ(bi, hi, t);
  Value lt = cumGate(bi, hi, t);
  Value ub = causal ? e.addi(t, c1) : n;
  SmallVector<Value> acc = e.loop(
      c0, ub, c1, {zerosF(dv), e.f32(0.0)},
      [&](Value s, ValueRange it) -> SmallVector<Value> {
        Value pk = e.readRowF32(refPhiK, {s, c0}, f);
        Value a;
        if (kind == DecayKind::TokenDim) {
          a = e.dot(e.mulf(pq, negExpAbs(e.subf(lt, cumGate(bi, hi, s)))), pk);
        } else {
          a = e.dot(pq, pk);
          if (kind != DecayKind::None)
            a = e.mulf(a, negExpAbs(e.subf(lt, cumGate(bi, hi, s))));
        }
        Value vs = e.readRowF32(v, {bi, hkv, tok(s), c0}, dv);
        return {vector::FMAOp::create(b, e.splat(a, dv), vs, it[0]),
                e.addf(it[1], a)};
      });
  Value out = acc[0];
  if (init) {
    // The initial state, decayed by every gate up to t.
    Value w = kind == DecayKind::None ? e.f32(1.0) : e.exp(lt);
    Value pqw =
        kind == DecayKind::TokenDim ? e.mulf(pq, w) : e.mulf(pq, e.splat(w, f));
    e.writeRowF32(pqw, pqBuf, {c0});
    out =
        e.loop(c0, e.idx(f), c1, {out},
               [&](Value fi, ValueRange it) -> SmallVector<Value> {
                 Value c = memref::LoadOp::create(b, pqBuf, ValueRange{fi});
                 Value row = e.readRowF32(init, {bi, hi, fi, c0}, dv);
                 return {vector::FMAOp::create(b, e.splat(c, dv), row, it[0])};
               })[0];
  }
  if (normalize) {
    Value nz = e.cmpf(CmpFPredicate::ONE, acc[1], e.f32(0.0));
    Value inv = e.select(nz, e.divf(e.f32(1.0), acc[1]), e.f32(0.0));
    out = e.mulf(out, e.splat(inv, dv));
  }
  e.writeRowF32(out, o, {bi, hi, tok(t), c0});
}

void LinearLowering::referenceFinalRow(Value bi, Value hi, Value hkv,
                                       Value lLast, Value fi) {
  auto scalarAt = [&](Value l) {
    return kind == DecayKind::TokenDim ? Value(vector::ExtractOp::create(
                                             b, l, ArrayRef<OpFoldResult>{fi}))
                                       : l;
  };
  Value lLastF = scalarAt(lLast);
  Value row = e.loop(
      c0, n, c1, {zerosF(dv)},
      [&](Value s, ValueRange it) -> SmallVector<Value> {
        Value w = kind == DecayKind::None
                      ? e.f32(1.0)
                      : e.exp(e.subf(lLastF, scalarAt(cumGate(bi, hi, s))));
        Value pkf = memref::LoadOp::create(b, refPhiK, ValueRange{s, fi});
        Value vs = e.readRowF32(v, {bi, hkv, tok(s), c0}, dv);
        return {
            vector::FMAOp::create(b, e.splat(e.mulf(pkf, w), dv), vs, it[0])};
      })[0];
  if (init) {
    Value w0 = kind == DecayKind::None ? e.f32(1.0) : e.exp(lLastF);
    Value s0 = e.readRowF32(init, {bi, hi, fi, c0}, dv);
    row = vector::FMAOp::create(b, e.splat(w0, dv), s0, row);
  }
  e.writeRowF32(row, fin, {bi, hi, fi, c0});
}

void LinearLowering::referenceFinalState(Value bi, Value hi, Value hkv) {
  Value nonEmpty = e.cmpi(CmpIPredicate::sgt, n, c0);
  e.ifElse(
      nonEmpty, {},
      [&] {
        Value lLast = cumGate(bi, hi, e.subi(n, c1));
        e.loop(c0, e.idx(f),
               [&](Value fi) { referenceFinalRow(bi, hi, hkv, lLast, fi); });
        return SmallVector<Value>();
      },
      [&] {
        e.loop(c0, e.idx(f), [&](Value fi) {
          Value row =
              init ? e.readRowF32(init, {bi, hi, fi, c0}, dv) : zerosF(dv);
          e.writeRowF32(row, fin, {bi, hi, fi, c0});
        });
        return SmallVector<Value>();
      });
}

LogicalResult LinearLowering::lowerReference() {
  setup();
  allocReferenceBuffers();
  e.loop(c0, batch, [&](Value bi) {
    e.loop(c0, e.idx(h), [&](Value hi) {
      Value hkv = e.divi(hi, kvGroup);
      storeKeysAndGates(bi, hi, hkv);
      if (!stateOnly())
        e.loop(c0, n, [&](Value t) { referenceRow(bi, hi, hkv, t); });
      if (fin)
        referenceFinalState(bi, hi, hkv);
    });
  });
  for (Value buf : {refPhiK, refCum, pqBuf})
    if (buf)
      memref::DeallocOp::create(b, buf);
  finish();
  return success();
}

LogicalResult LinearLowering::lowerRecurrent() {
  setup();
  allocState();
  Value pkBuf = e.alloc({f}, e.f32Type(), {});
  Value aBuf = e.alloc({f}, e.f32Type(), {});
  Value fwd, fwdDen;
  if (!causal) {
    fwd = e.alloc({ShapedType::kDynamic, dv}, e.f32Type(), {n});
    fwdDen = e.alloc({ShapedType::kDynamic}, e.f32Type(), {n});
  }
  Value group = e.idx(h / hk);
  Value fIdx = e.idx(f);

  // a_t per feature into aBuf (1 when there is no decay).
  auto storeDecay = [&](Value bi, Value hi, Value t) {
    if (kind == DecayKind::TokenDim) {
      e.writeRowF32(e.exp(logGate(bi, hi, t)), aBuf, {c0});
      return Value();
    }
    return kind == DecayKind::None ? e.f32(1.0) : e.exp(logGate(bi, hi, t));
  };
  auto decayAt = [&](Value scalarA, Value fi) {
    return scalarA ? scalarA
                   : Value(memref::LoadOp::create(b, aBuf, ValueRange{fi}));
  };
  // S <- a (S + [pre] k v^T) with pre = true (backward) or S <- a S + k v^T.
  auto update = [&](Value scalarA, Value vt, bool addBeforeDecay) {
    e.loop(c0, fIdx, [&](Value fi) {
      Value a = decayAt(scalarA, fi);
      Value kf = memref::LoadOp::create(b, pkBuf, ValueRange{fi});
      Value row = e.readRowF32(state, {fi, c0}, dv);
      Value zf = memref::LoadOp::create(b, z, ValueRange{fi});
      Value newRow, newZ;
      if (addBeforeDecay) {
        newRow = e.mulf(vector::FMAOp::create(b, e.splat(kf, dv), vt, row),
                        e.splat(a, dv));
        newZ = e.mulf(e.addf(zf, kf), a);
      } else {
        newRow = vector::FMAOp::create(b, e.splat(kf, dv), vt,
                                       e.mulf(row, e.splat(a, dv)));
        newZ = e.addf(e.mulf(zf, a), kf);
      }
      e.writeRowF32(newRow, state, {fi, c0});
      memref::StoreOp::create(b, newZ, z, ValueRange{fi});
    });
  };
  e.loop(c0, batch, [&](Value bi) {
    e.loop(c0, e.idx(h), [&](Value hi) {
      Value hkv = e.divi(hi, group);
      resetState(bi, hi, /*fromInit=*/true);
      // Forward scan.
      e.loop(c0, n, [&](Value t) {
        Value scalarA = storeDecay(bi, hi, t);
        e.writeRowF32(phiK(bi, hkv, t), pkBuf, {c0});
        Value vt = e.readRowF32(v, {bi, hkv, tok(t), c0}, dv);
        update(scalarA, vt, /*addBeforeDecay=*/false);
        auto [out, den] = readState(phiQ(bi, hi, t));
        if (causal) {
          writeOut(out, den, bi, hi, t);
        } else {
          e.writeRowF32(out, fwd, {t, c0});
          memref::StoreOp::create(b, den, fwdDen, ValueRange{t});
        }
      });
      writeFinalState(bi, hi);
      if (causal)
        return;
      // Backward scan: B_t = sum_{s>t} prod_{r=t+1..s} a_r k_s v_s^T.
      resetState(bi, hi, /*fromInit=*/false);
      e.loop(c0, n, [&](Value r) {
        Value t = e.subi(e.subi(n, c1), r);
        auto [out, den] = readState(phiQ(bi, hi, t));
        out = e.addf(out, e.readRowF32(fwd, {t, c0}, dv));
        den = e.addf(den, memref::LoadOp::create(b, fwdDen, ValueRange{t}));
        writeOut(out, den, bi, hi, t);
        Value scalarA = storeDecay(bi, hi, t);
        e.writeRowF32(phiK(bi, hkv, t), pkBuf, {c0});
        Value vt = e.readRowF32(v, {bi, hkv, tok(t), c0}, dv);
        update(scalarA, vt, /*addBeforeDecay=*/true);
      });
    });
  });
  for (Value buf : {state, z, pkBuf, pqBuf, aBuf, fwd, fwdDen})
    if (buf)
      memref::DeallocOp::create(b, buf);
  finish();
  return success();
}

void LinearLowering::allocChunkBuffers(int64_t chunk) {
  vecGate = kind == DecayKind::TokenDim;
  chunkLen = e.idx(chunk);
  fIdx = e.idx(f);
  kvGroup = e.idx(h / hk);
  chunkQ = e.alloc({chunk, f}, e.f32Type(), {});
  chunkK = e.alloc({chunk, f}, e.f32Type(), {});
  chunkV = e.alloc({chunk, dv}, e.f32Type(), {});
  // Cumulative log-gates inside the chunk: L_i = g_{t0} + ... + g_{t0+i}.
  if (kind != DecayKind::None)
    chunkGates = vecGate ? e.alloc({chunk, f}, e.f32Type(), {})
                         : e.alloc({chunk}, e.f32Type(), {});
  allocState();
  if (!causal) {
    fwdOut = e.alloc({ShapedType::kDynamic, dv}, e.f32Type(), {n});
    fwdNorm = e.alloc({ShapedType::kDynamic}, e.f32Type(), {n});
  }
}

Value LinearLowering::gateAt(Value i) {
  return vecGate ? e.readRowF32(chunkGates, {i, c0}, f)
                 : Value(memref::LoadOp::create(b, chunkGates, ValueRange{i}));
}

Value LinearLowering::gateAtF(Value i, Value fi) {
  return vecGate ? memref::LoadOp::create(b, chunkGates, ValueRange{i, fi})
                 : memref::LoadOp::create(b, chunkGates, ValueRange{i});
}

Value LinearLowering::scaleByExp(Value x, Value l) {
  return vecGate ? e.mulf(x, e.exp(l)) : e.mulf(x, e.splat(e.exp(l), f));
}

void LinearLowering::loadChunk(Value bi, Value hi, Value hkv, Value t0,
                               Value len) {
  Value zero = vecGate ? zerosF(f) : e.f32(0.0);
  e.loop(c0, len, c1, {zero}, [&](Value i, ValueRange it) {
    Value t = e.addi(t0, i);
    e.writeRowF32(phiQ(bi, hi, t), chunkQ, {i, c0});
    e.writeRowF32(phiK(bi, hkv, t), chunkK, {i, c0});
    e.writeRowF32(e.readRowF32(v, {bi, hkv, tok(t), c0}, dv), chunkV, {i, c0});
    if (kind == DecayKind::None)
      return SmallVector<Value>{it[0]};
    Value acc = e.addf(it[0], logGate(bi, hi, t));
    if (vecGate)
      e.writeRowF32(acc, chunkGates, {i, c0});
    else
      memref::StoreOp::create(b, acc, chunkGates, ValueRange{i});
    return SmallVector<Value>{acc};
  });
}

SmallVector<Value> LinearLowering::intraChunk(Value pq, Value li, Value lb,
                                              Value ub, bool forward) {
  return e.loop(lb, ub, c1, {zerosF(dv), e.f32(0.0)},
                [&](Value j, ValueRange it) -> SmallVector<Value> {
                  Value pk = e.readRowF32(chunkK, {j, c0}, f);
                  Value a;
                  if (kind == DecayKind::None) {
                    a = e.dot(pq, pk);
                  } else {
                    Value lj = gateAt(j);
                    Value diff = forward ? e.subf(li, lj) : e.subf(lj, li);
                    a = vecGate ? e.dot(e.mulf(pq, e.exp(diff)), pk)
                                : e.mulf(e.dot(pq, pk), e.exp(diff));
                  }
                  Value vj = e.readRowF32(chunkV, {j, c0}, dv);
                  return {vector::FMAOp::create(b, e.splat(a, dv), vj, it[0]),
                          e.addf(it[1], a)};
                });
}

void LinearLowering::updateChunkState(Value len, bool forward) {
  Value last = e.subi(len, c1);
  e.loop(c0, fIdx, [&](Value fi) {
    Value gLast = kind == DecayKind::None ? Value() : gateAtF(last, fi);
    Value decayF = gLast ? e.exp(gLast) : e.f32(1.0);
    Value row = e.mulf(e.readRowF32(state, {fi, c0}, dv), e.splat(decayF, dv));
    Value zf = e.mulf(memref::LoadOp::create(b, z, ValueRange{fi}), decayF);
    SmallVector<Value> acc =
        e.loop(c0, len, c1, {row, zf},
               [&](Value j, ValueRange it) -> SmallVector<Value> {
                 Value w = memref::LoadOp::create(b, chunkK, ValueRange{j, fi});
                 if (gLast) {
                   Value lj = gateAtF(j, fi);
                   w = e.mulf(w, e.exp(forward ? e.subf(gLast, lj) : lj));
                 }
                 Value vj = e.readRowF32(chunkV, {j, c0}, dv);
                 return {vector::FMAOp::create(b, e.splat(w, dv), vj, it[0]),
                         e.addf(it[1], w)};
               });
    e.writeRowF32(acc[0], state, {fi, c0});
    memref::StoreOp::create(b, acc[1], z, ValueRange{fi});
  });
}

void LinearLowering::chunkedForward(Value bi, Value hi, Value hkv) {
  e.loop(c0, n, chunkLen, {}, [&](Value t0, ValueRange) {
    Value len = e.mini(chunkLen, e.subi(n, t0));
    loadChunk(bi, hi, hkv, t0, len);
    if (!stateOnly())
      chunkOutputs(bi, hi, t0, len);
    updateChunkState(len, /*forward=*/true);
    return SmallVector<Value>();
  });
}

void LinearLowering::chunkOutputs(Value bi, Value hi, Value t0, Value len) {
  e.loop(c0, len, [&](Value i) {
    Value t = e.addi(t0, i);
    Value pq = e.readRowF32(chunkQ, {i, c0}, f);
    Value li = kind == DecayKind::None ? Value() : gateAt(i);
    SmallVector<Value> acc = intraChunk(pq, li, c0, e.addi(i, c1), true);
    auto [so, sd] = readState(li ? scaleByExp(pq, li) : pq);
    Value out = e.addf(acc[0], so), den = e.addf(acc[1], sd);
    if (causal) {
      writeOut(out, den, bi, hi, t);
    } else {
      e.writeRowF32(out, fwdOut, {t, c0});
      memref::StoreOp::create(b, den, fwdNorm, ValueRange{t});
    }
  });
}

void LinearLowering::chunkedBackward(Value bi, Value hi, Value hkv) {
  Value chunks = e.ceilDiv(n, chunkLen);
  e.loop(c0, chunks, [&](Value r) {
    Value t0 = e.muli(e.subi(e.subi(chunks, c1), r), chunkLen);
    Value len = e.mini(chunkLen, e.subi(n, t0));
    loadChunk(bi, hi, hkv, t0, len);
    Value gLast = kind == DecayKind::None ? Value() : gateAt(e.subi(len, c1));
    e.loop(c0, len, [&](Value i) {
      Value t = e.addi(t0, i);
      Value pq = e.readRowF32(chunkQ, {i, c0}, f);
      Value li = kind == DecayKind::None ? Value() : gateAt(i);
      SmallVector<Value> acc = intraChunk(pq, li, e.addi(i, c1), len, false);
      auto [so, sd] = readState(li ? scaleByExp(pq, e.subf(gLast, li)) : pq);
      Value out = e.addf(e.addf(acc[0], so), e.readRowF32(fwdOut, {t, c0}, dv));
      Value den = e.addf(e.addf(acc[1], sd),
                         memref::LoadOp::create(b, fwdNorm, ValueRange{t}));
      writeOut(out, den, bi, hi, t);
    });
    updateChunkState(len, /*forward=*/false);
  });
}

LogicalResult LinearLowering::lowerChunked(int64_t chunk) {
  setup();
  allocChunkBuffers(chunk);
  e.loop(c0, batch, [&](Value bi) {
    e.loop(c0, e.idx(h), [&](Value hi) {
      Value hkv = e.divi(hi, kvGroup);
      resetState(bi, hi, /*fromInit=*/true);
      // Forward: keys j <= i, the state from the chunks before.
      chunkedForward(bi, hi, hkv);
      writeFinalState(bi, hi);
      if (causal)
        return;
      // Backward: keys j > i, the state from the chunks after.
      resetState(bi, hi, /*fromInit=*/false);
      chunkedBackward(bi, hi, hkv);
    });
  });
  for (Value buf :
       {chunkQ, chunkK, chunkV, chunkGates, state, z, pqBuf, fwdOut, fwdNorm})
    if (buf)
      memref::DeallocOp::create(b, buf);
  finish();
  return success();
}

LogicalResult mlir::attn::lowerLinearToReference(Operation *op) {
  ImplicitLocOpBuilder b(op->getLoc(), op);
  LinearLowering l(op, b);
  return l.lowerReference();
}

LogicalResult mlir::attn::lowerLinearRecurrent(Operation *op) {
  ImplicitLocOpBuilder b(op->getLoc(), op);
  LinearLowering l(op, b);
  return l.lowerRecurrent();
}

LogicalResult mlir::attn::lowerLinearChunked(Operation *op) {
  auto sched = op->getAttrOfType<ScheduleAttr>("schedule");
  int64_t chunk = sched ? sched.getBlockQ() : 64;
  if (chunk <= 0)
    return op->emitOpError() << "has a schedule with chunk length " << chunk;
  ImplicitLocOpBuilder b(op->getLoc(), op);
  LinearLowering l(op, b);
  return l.lowerChunked(chunk);
}
