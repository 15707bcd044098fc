//===- LinearGradEmitter.cpp - shared parts of the linear backward --------===//
//
// Part of attnc. See LinearGradEmitter.h; the formulas are in the
// description of attn.linear_attention_grad and in docs/backward.md.
//
//===----------------------------------------------------------------------===//

#include "LinearGradEmitter.h"
#include "attnc/Transforms/GradLowering.h"

using namespace mlir;
using namespace mlir::attn;
using arith::CmpIPredicate;

Value LinearGradEmitter::tok(Value t) {
  if (!order)
    return t;
  return tokenRow(b, e, order,
                  e.cmpi(CmpIPredicate::eq, n, e.idx(order.getLength())), t);
}

Value LinearGradEmitter::dot(Value x, ValueRange xi, Value y, ValueRange yi,
                             int64_t len) {
  return e.loop(c0, e.idx(len), c1, {f64c(0.0)},
                [&](Value i, ValueRange acc) -> SmallVector<Value> {
                  SmallVector<Value> xa(xi), ya(yi);
                  xa.push_back(i);
                  ya.push_back(i);
                  return {e.addf(acc[0], e.mulf(load(x, xa), load(y, ya)))};
                })[0];
}

void LinearGradEmitter::setup() {
  f64 = b.getF64Type();
  c0 = e.idx(0);
  c1 = e.idx(1);
  q = e.toBuffer(q);
  k = e.toBuffer(k);
  v = e.toBuffer(v);
  dO = e.toBuffer(grad.getDO());
  if (decay)
    decay = e.toBuffer(decay);
  if (init)
    init = e.toBuffer(init);
  if (Value fin = grad.getDFinalState())
    dFin = e.toBuffer(fin);
  batch = e.dim(q, 0);
  n = e.dim(q, 2);
  group = e.idx(h / hk);
  int64_t dyn = ShapedType::kDynamic;
  dq = zeroedBuffer(e, {dyn, h, dyn, d}, f64, {batch, {}, n, {}});
  dk = zeroedBuffer(e, {dyn, hk, dyn, d}, f64, {batch, {}, n, {}});
  dvAcc = zeroedBuffer(e, {dyn, hk, dyn, dv}, f64, {batch, {}, n, {}});
  if (decay) {
    auto type = cast<MemRefType>(decay.getType());
    SmallVector<Value> dims;
    for (int64_t i = 0; i < type.getRank(); ++i)
      dims.push_back(type.isDynamicDim(i) ? e.dim(decay, i) : Value());
    dDecay = zeroedBuffer(e, type.getShape(), f64, dims);
  }
  if (init)
    dInit = zeroedBuffer(e, {dyn, h, f, dv}, f64, {batch, {}, {}, {}});
  a = e.alloc({dyn, f}, e.f32Type(), {n});
  c = e.alloc({dyn, f}, e.f32Type(), {n});
  for (Value *buf : {&cum, &da, &dc, &dL})
    *buf = e.alloc({dyn, f}, f64, {n});
  dn = e.alloc({dyn, dv}, f64, {n});
  dz = e.alloc({dyn}, f64, {n});
  w = e.alloc({f}, f64, {});
  jvpRow = e.alloc({f}, e.f32Type(), {});
}

/// The feature rows, the cumulative log-gates and zeroed per-head
/// gradients of head (bi, hi).
void LinearGradEmitter::prepareHead(Value bi, Value hi, Value hkv) {
  Value scaleV = e.splat(e.f32(scale), d);
  e.loop(c0, n, [&](Value t) {
    Value x = e.mulf(e.readRowF32(q, {bi, hi, tok(t), c0}, d), scaleV);
    e.writeRowF32(applyFeatureMap(e, fq, x, t), a, {t, c0});
    Value y = e.readRowF32(k, {bi, hkv, tok(t), c0}, d);
    e.writeRowF32(applyFeatureMap(e, fk, y, t), c, {t, c0});
    each(f, [&](Value fi) {
      Value g = f64c(0.0);
      if (kind == LinearDecay::Head)
        g = load(decay, {hi});
      else if (kind == LinearDecay::Token)
        g = load(decay, {bi, hi, tok(t)});
      else if (kind == LinearDecay::TokenDim)
        g = load(decay, {bi, hi, tok(t), fi});
      Value first = e.cmpi(CmpIPredicate::eq, t, c0);
      Value before = e.select(first, c0, e.subi(t, c1));
      Value prev = e.select(first, f64c(0.0), load(cum, {before, fi}));
      memref::StoreOp::create(b, e.addf(prev, g), cum, ValueRange{t, fi});
      for (Value buf : {da, dc, dL})
        memref::StoreOp::create(b, f64c(0.0), buf, ValueRange{t, fi});
    });
  });
}

void LinearGradEmitter::storeRowGradients(Value bi, Value hi, Value t, Value z,
                                          Value don) {
  if (!normalize) {
    each(dv, [&](Value j) {
      memref::StoreOp::create(b, load(dO, {bi, hi, tok(t), j}), dn,
                              ValueRange{t, j});
    });
    memref::StoreOp::create(b, f64c(0.0), dz, ValueRange{t});
    return;
  }
  Value nonZero = e.cmpf(arith::CmpFPredicate::ONE, z, f64c(0.0));
  Value inv = e.select(nonZero, e.divf(f64c(1.0), z), f64c(0.0));
  // dO_t . o_t = (dO_t . n_t) / z_t; dz_t = -(dO_t . o_t) / z_t.
  memref::StoreOp::create(b, negf(e.mulf(e.mulf(don, inv), inv)), dz,
                          ValueRange{t});
  each(dv, [&](Value j) {
    memref::StoreOp::create(b, e.mulf(load(dO, {bi, hi, tok(t), j}), inv), dn,
                            ValueRange{t, j});
  });
}

Value LinearGradEmitter::initialStateRow(Value bi, Value hi, Value t) {
  return e.loop(c0, e.idx(f), c1, {f64c(0.0)},
                [&](Value fi, ValueRange in) -> SmallVector<Value> {
                  Value w0 = e.mulf(load(a, {t, fi}), e.exp(cumAt(t, fi)));
                  Value r = dot(init, {bi, hi, fi}, dO, {bi, hi, tok(t)}, dv);
                  return {e.addf(in[0], e.mulf(w0, r))};
                })[0];
}

SmallVector<Value> LinearGradEmitter::rowSums(Value bi, Value hi, Value hkv,
                                              Value t, Value lb, Value ub) {
  return e.loop(
      lb, ub, c1, {f64c(0.0), f64c(0.0)},
      [&](Value s, ValueRange it) -> SmallVector<Value> {
        Value pairA = pairWeight(t, s);
        Value dov = dot(dO, {bi, hi, tok(t)}, v, {bi, hkv, tok(s)}, dv);
        return {e.addf(it[0], pairA), e.addf(it[1], e.mulf(pairA, dov))};
      });
}

Value LinearGradEmitter::pairWeight(Value t, Value s) {
  return e.loop(c0, e.idx(f), c1, {f64c(0.0)},
                [&](Value fi, ValueRange in) -> SmallVector<Value> {
                  Value diff = e.subf(load(cum, {t, fi}), load(cum, {s, fi}));
                  Value wf = e.exp(
                      arith::NegFOp::create(b, math::AbsFOp::create(b, diff)));
                  memref::StoreOp::create(b, wf, w, ValueRange{fi});
                  return {e.addf(in[0], e.mulf(e.mulf(load(a, {t, fi}), wf),
                                               load(c, {s, fi})))};
                })[0];
}

/// The contributions of key s to query t.
void LinearGradEmitter::pair(Value hkv, Value bi, Value t, Value s) {
  Value pairA = pairWeight(t, s);
  Value dA = e.addf(dot(dn, {t}, v, {bi, hkv, tok(s)}, dv), load(dz, {t}));
  each(dv, [&](Value j) {
    add(dvAcc, {bi, hkv, tok(s), j}, e.mulf(pairA, load(dn, {t, j})));
  });
  // +1 on the later token's L, -1 on the earlier one's (0 on the diagonal).
  Value sign = e.select(
      e.cmpi(CmpIPredicate::ult, s, t), f64c(1.0),
      e.select(e.cmpi(CmpIPredicate::ugt, s, t), f64c(-1.0), f64c(0.0)));
  each(f, [&](Value fi) {
    Value dw = e.mulf(dA, load(w, {fi}));
    Value at = load(a, {t, fi}), cs = load(c, {s, fi});
    add(da, {t, fi}, e.mulf(dw, cs));
    add(dc, {s, fi}, e.mulf(dw, at));
    Value term = e.mulf(sign, e.mulf(dw, e.mulf(at, cs)));
    add(dL, {t, fi}, term);
    add(dL, {s, fi}, arith::NegFOp::create(b, term));
  });
}

/// o_t reads exp(L_t) S_0 (causal): terms of da, dL and dS_0.
void LinearGradEmitter::initialStateTerms(Value bi, Value hi) {
  e.loop(c0, n, [&](Value t) {
    each(f, [&](Value fi) {
      Value w0 = e.exp(load(cum, {t, fi}));
      Value r = dot(init, {bi, hi, fi}, dn, {t}, dv);
      Value at = load(a, {t, fi});
      add(da, {t, fi}, e.mulf(w0, r));
      add(dL, {t, fi}, e.mulf(e.mulf(at, w0), r));
      Value aw = e.mulf(at, w0);
      each(dv, [&](Value j) {
        add(dInit, {bi, hi, fi, j}, e.mulf(aw, load(dn, {t, j})));
      });
    });
  });
}

/// S_N = sum_s exp(L_N - L_s) c_s v_s^T + exp(L_N) S_0, read by dS_N.
void LinearGradEmitter::finalStateTerms(Value bi, Value hi, Value hkv) {
  e.ifThen(e.cmpi(CmpIPredicate::sgt, n, c0), [&] {
    Value last = e.subi(n, c1);
    e.loop(c0, n, [&](Value s) {
      each(f, [&](Value fi) {
        Value wf = e.exp(e.subf(load(cum, {last, fi}), load(cum, {s, fi})));
        Value r = dot(v, {bi, hkv, tok(s)}, dFin, {bi, hi, fi}, dv);
        Value cw = e.mulf(wf, load(c, {s, fi}));
        each(dv, [&](Value j) {
          add(dvAcc, {bi, hkv, tok(s), j},
              e.mulf(cw, load(dFin, {bi, hi, fi, j})));
        });
        add(dc, {s, fi}, e.mulf(wf, r));
        Value term = e.mulf(cw, r);
        add(dL, {last, fi}, term);
        add(dL, {s, fi}, arith::NegFOp::create(b, term));
      });
    });
    if (!init)
      return;
    each(f, [&](Value fi) {
      Value w0 = e.exp(load(cum, {last, fi}));
      each(dv, [&](Value j) {
        add(dInit, {bi, hi, fi, j}, e.mulf(w0, load(dFin, {bi, hi, fi, j})));
      });
      add(dL, {last, fi},
          e.mulf(w0, dot(init, {bi, hi, fi}, dFin, {bi, hi, fi}, dv)));
    });
  });
  // An empty sequence passes S_0 through: dS_0 = dS_N.
  if (init)
    e.ifThen(e.cmpi(CmpIPredicate::eq, n, c0), [&] {
      each(f, [&](Value fi) {
        each(dv, [&](Value j) {
          add(dInit, {bi, hi, fi, j}, load(dFin, {bi, hi, fi, j}));
        });
      });
    });
}

void LinearGradEmitter::pullBack(Region *map, Region *jvp, Value x, Value t,
                                 Value seed, Value row, Value factor, Value dst,
                                 ValueRange idx) {
  each(d, [&](Value di) {
    Value sum;
    if (!map) {
      sum = load(seed, {row, di});
    } else {
      Value onehot = vector::InsertOp::create(
          b, e.f32(1.0), e.splat(e.f32(0.0), d), ArrayRef<OpFoldResult>{di});
      SmallVector<Value> args = featureMapArgs(*map, x, t);
      args.push_back(onehot);
      e.writeRowF32(e.inlineRegion(*jvp, args)[0], jvpRow, {c0});
      sum = dot(jvpRow, {}, seed, {row}, f);
    }
    SmallVector<Value> at(idx);
    at.push_back(di);
    add(dst, at, e.mulf(factor, sum));
  });
}

/// dg from dL: reverse cumulative sums over the scan (per-token gates), or
/// sum_t (t + 1) dL_t (per-head gates); scalar gates sum dL over features.
void LinearGradEmitter::gateGradients(Value bi, Value hi) {
  if (kind == LinearDecay::None)
    return;
  auto rowSum = [&](Value t) {
    return e.loop(c0, e.idx(f), c1, {f64c(0.0)},
                  [&](Value fi, ValueRange in) -> SmallVector<Value> {
                    return {e.addf(in[0], load(dL, {t, fi}))};
                  })[0];
  };
  if (kind == LinearDecay::Head) {
    e.loop(c0, n, [&](Value t) {
      Value steps = arith::SIToFPOp::create(
          b, f64, arith::IndexCastOp::create(b, b.getI64Type(), e.addi(t, c1)));
      add(dDecay, {hi}, e.mulf(steps, rowSum(t)));
    });
    return;
  }
  // Runs over the scan backwards, t = N - 1 - i, carrying the suffix sum.
  auto reverseSum = [&](const std::function<Value(Value)> &dLAt,
                        const std::function<SmallVector<Value>(Value)> &at) {
    e.loop(c0, n, c1, {f64c(0.0)},
           [&](Value i, ValueRange run) -> SmallVector<Value> {
             Value t = e.subi(e.subi(n, c1), i);
             Value next = e.addf(run[0], dLAt(t));
             memref::StoreOp::create(b, next, dDecay, at(t));
             return {next};
           });
  };
  if (kind == LinearDecay::Token) {
    reverseSum(rowSum, [&](Value t) -> SmallVector<Value> {
      return {bi, hi, tok(t)};
    });
    return;
  }
  each(f, [&](Value fi) {
    reverseSum(
        [&](Value t) {
          return load(dL, {t, fi});
        },
        [&](Value t) -> SmallVector<Value> {
          return {bi, hi, tok(t), fi};
        });
  });
}

void LinearGradEmitter::finish() {
  for (Value buf : {a, c, cum, da, dc, dL, dn, dz, w, jvpRow})
    memref::DeallocOp::create(b, buf);
  SmallVector<Value> results = {
      convertBufferTo(e, dq, grad.getDq().getType()),
      convertBufferTo(e, dk, grad.getDk().getType()),
      convertBufferTo(e, dvAcc, grad.getDv().getType())};
  if (dDecay)
    results.push_back(convertBufferTo(e, dDecay, grad.getDDecay().getType()));
  if (dInit)
    results.push_back(
        convertBufferTo(e, dInit, grad.getDInitialState().getType()));
  grad->replaceAllUsesWith(results);
  grad->erase();
}

void LinearGradEmitter::emit() {
  setup();
  Region *jq = grad.getQueryJvp(), *jk = grad.getKeyJvp();
  Value scale64 = f64c(scale), one = f64c(1.0);
  e.loop(c0, batch, [&](Value bi) {
    e.loop(c0, e.idx(h), [&](Value hi) {
      Value hkv = e.divi(hi, group);
      prepareHead(bi, hi, hkv);
      pairsOfHead(bi, hi, hkv);
      if (init)
        initialStateTerms(bi, hi);
      if (dFin)
        finalStateTerms(bi, hi, hkv);
      Value scaleV = e.splat(e.f32(scale), d);
      e.loop(c0, n, [&](Value t) {
        Value x = e.mulf(e.readRowF32(q, {bi, hi, tok(t), c0}, d), scaleV);
        pullBack(fq, jq, x, t, da, t, scale64, dq, {bi, hi, tok(t)});
        Value y = e.readRowF32(k, {bi, hkv, tok(t), c0}, d);
        pullBack(fk, jk, y, t, dc, t, one, dk, {bi, hkv, tok(t)});
      });
      gateGradients(bi, hi);
    });
  });
  finish();
}
