//===- LinearChunkedBackward.cpp - chunked attn.linear_attention_grad -----===//
//
// Part of attnc. The CPU backward of causal linear attention and scans in
// chunks of C tokens, O(N C (F + Dv) + N F Dv) per head instead of the
// reference's O(N^2 F). Pairs inside a chunk are visited one by one (as in
// the reference); pairs across chunks go through two F x Dv states (and
// their F-vector normalizer parts), every exponent a difference of
// cumulative log-gates of a later and an earlier token (<= 0):
//  - forward over chunks, H[f, :] = sum_{s <= p} e^{L_p - L_s} c_s[f] v_s
//    (p the last token before the chunk) gives each query's z_t and
//    dO_t . n_t (so dn_t, dz_t), then da_t[f] += e^{L_t - L_p} (H[f] . dn_t
//    + h[f] dz_t), and a_t[f] times that into dL_t;
//  - backward over chunks, G[f, :] = sum_{t > e} e^{L_t - L_e} a_t[f] dn_t
//    (e the chunk's last token) gives dv_s += c_s[f] e^{L_e - L_s} G[f],
//    dc_s[f] += e^{L_e - L_s} (G[f] . v_s + g[f]), and -c_s[f] times that
//    into dL_s.
// Bidirectional ops take the reference's pass over pairs (not chunked yet).
//
//===----------------------------------------------------------------------===//

#include "LinearGradEmitter.h"

using namespace mlir;
using namespace mlir::attn;
using arith::CmpIPredicate;

namespace {
class ChunkedLinearGrad : public LinearGradEmitter {
public:
  ChunkedLinearGrad(LinearAttentionGradOp grad, Operation *view,
                    ImplicitLocOpBuilder &b, int64_t chunk)
      : LinearGradEmitter(grad, view, b), chunk(chunk) {}

private:
  void pairsOfHead(Value bi, Value hi, Value hkv) override;
  /// e^{L_x[f] - L_y[f]}, L_{-1} = 0 (y may be -1 as t0 - 1 with t0 = 0).
  Value decayBetween(Value x, Value y, Value fi);
  /// Queries of chunk [t0, t1): rows, pairs inside, da from H.
  void forwardChunk(Value bi, Value hi, Value hkv, Value t0, Value t1);
  /// H <- decay(p -> t1 - 1) H + the chunk's keys.
  void updateForwardState(Value bi, Value hkv, Value t0, Value t1);
  /// Keys of chunk [t0, t1): dv, dc, dL from G.
  void backwardChunk(Value bi, Value hkv, Value t0, Value t1);
  /// G <- decay(t1 - 1 -> t0 - 1) G + the chunk's queries.
  void updateBackwardState(Value t0, Value t1);
  /// Runs `body(t0, t1)` over the chunks, forwards or backwards.
  void chunks(bool backwards, const std::function<void(Value, Value)> &body);
  /// Zeroes state and its normalizer part.
  void clearState();
  /// state[fi, :] *= keep; returns stateZ[fi] * keep.
  Value decayStateRow(Value fi, Value keep);

  int64_t chunk;
  Value state, stateZ; // [F, Dv] and [F] f64
};
} // namespace

Value ChunkedLinearGrad::decayBetween(Value x, Value y, Value fi) {
  Value valid = e.cmpi(CmpIPredicate::sge, y, c0);
  Value ly = e.select(valid, cumAt(e.select(valid, y, c0), fi), f64c(0.0));
  return e.exp(e.subf(cumAt(x, fi), ly));
}

void ChunkedLinearGrad::clearState() {
  each(f, [&](Value fi) {
    memref::StoreOp::create(b, f64c(0.0), stateZ, ValueRange{fi});
    each(dv, [&](Value j) {
      memref::StoreOp::create(b, f64c(0.0), state, ValueRange{fi, j});
    });
  });
}

Value ChunkedLinearGrad::decayStateRow(Value fi, Value keep) {
  each(dv, [&](Value j) {
    memref::StoreOp::create(b, e.mulf(keep, load(state, {fi, j})), state,
                            ValueRange{fi, j});
  });
  return e.mulf(keep, load(stateZ, {fi}));
}

void ChunkedLinearGrad::chunks(bool backwards,
                               const std::function<void(Value, Value)> &body) {
  Value size = e.idx(chunk);
  Value count = e.ceilDiv(n, size);
  e.loop(c0, count, [&](Value i) {
    Value ci = backwards ? e.subi(e.subi(count, c1), i) : i;
    Value t0 = e.muli(ci, size);
    body(t0, e.mini(e.addi(t0, size), n));
  });
}

void ChunkedLinearGrad::forwardChunk(Value bi, Value hi, Value hkv, Value t0,
                                     Value t1) {
  Value p = e.subi(t0, c1);
  e.loop(t0, t1, [&](Value t) {
    // z_t and dO_t . n_t: the keys of the chunk up to t, then the state.
    SmallVector<Value> acc = e.loop(
        t0, e.addi(t, c1), c1, {f64c(0.0), f64c(0.0)},
        [&](Value s, ValueRange it) -> SmallVector<Value> {
          Value pairA = pairWeight(t, s);
          Value dov = dot(dO, {bi, hi, tok(t)}, v, {bi, hkv, tok(s)}, dv);
          return {e.addf(it[0], pairA), e.addf(it[1], e.mulf(pairA, dov))};
        });
    acc = e.loop(c0, e.idx(f), c1, acc,
                 [&](Value fi, ValueRange it) -> SmallVector<Value> {
                   Value aw = e.mulf(load(a, {t, fi}), decayBetween(t, p, fi));
                   Value hdo = dot(state, {fi}, dO, {bi, hi, tok(t)}, dv);
                   return {e.addf(it[0], e.mulf(aw, load(stateZ, {fi}))),
                           e.addf(it[1], e.mulf(aw, hdo))};
                 });
    Value don = acc[1];
    if (init)
      don = e.addf(don, initialStateRow(bi, hi, t));
    storeRowGradients(bi, hi, t, acc[0], don);
    e.loop(t0, e.addi(t, c1), [&](Value s) { pair(hkv, bi, t, s); });
    each(f, [&](Value fi) {
      Value r = e.addf(dot(state, {fi}, dn, {t}, dv),
                       e.mulf(load(stateZ, {fi}), load(dz, {t})));
      Value wr = e.mulf(decayBetween(t, p, fi), r);
      add(da, {t, fi}, wr);
      add(dL, {t, fi}, e.mulf(load(a, {t, fi}), wr));
    });
  });
}

void ChunkedLinearGrad::updateForwardState(Value bi, Value hkv, Value t0,
                                           Value t1) {
  Value p = e.subi(t0, c1), last = e.subi(t1, c1);
  each(f, [&](Value fi) {
    Value z = decayStateRow(fi, decayBetween(last, p, fi));
    z = e.loop(
        t0, t1, c1, {z}, [&](Value s, ValueRange it) -> SmallVector<Value> {
          Value cw = e.mulf(load(c, {s, fi}),
                            e.exp(e.subf(cumAt(last, fi), cumAt(s, fi))));
          each(dv, [&](Value j) {
            add(state, {fi, j}, e.mulf(cw, load(v, {bi, hkv, tok(s), j})));
          });
          return {e.addf(it[0], cw)};
        })[0];
    memref::StoreOp::create(b, z, stateZ, ValueRange{fi});
  });
}

void ChunkedLinearGrad::backwardChunk(Value bi, Value hkv, Value t0, Value t1) {
  Value last = e.subi(t1, c1);
  e.loop(t0, t1, [&](Value s) {
    each(f, [&](Value fi) {
      Value wf = e.exp(e.subf(cumAt(last, fi), cumAt(s, fi)));
      Value cw = e.mulf(load(c, {s, fi}), wf);
      each(dv, [&](Value j) {
        add(dvAcc, {bi, hkv, tok(s), j}, e.mulf(cw, load(state, {fi, j})));
      });
      Value r = e.addf(dot(state, {fi}, v, {bi, hkv, tok(s)}, dv),
                       load(stateZ, {fi}));
      add(dc, {s, fi}, e.mulf(wf, r));
      add(dL, {s, fi}, negf(e.mulf(cw, r)));
    });
  });
}

void ChunkedLinearGrad::updateBackwardState(Value t0, Value t1) {
  Value p = e.subi(t0, c1), last = e.subi(t1, c1);
  // The first chunk's state is not read again.
  e.ifThen(e.cmpi(CmpIPredicate::sgt, t0, c0), [&] {
    each(f, [&](Value fi) {
      Value z = decayStateRow(fi, decayBetween(last, p, fi));
      z = e.loop(t0, t1, c1, {z},
                 [&](Value t, ValueRange it) -> SmallVector<Value> {
                   Value aw = e.mulf(load(a, {t, fi}),
                                     e.exp(e.subf(cumAt(t, fi), cumAt(p, fi))));
                   each(dv, [&](Value j) {
                     add(state, {fi, j}, e.mulf(aw, load(dn, {t, j})));
                   });
                   return {e.addf(it[0], e.mulf(aw, load(dz, {t})))};
                 })[0];
      memref::StoreOp::create(b, z, stateZ, ValueRange{fi});
    });
  });
}

void ChunkedLinearGrad::pairsOfHead(Value bi, Value hi, Value hkv) {
  state = e.alloc({f, dv}, f64, {});
  stateZ = e.alloc({f}, f64, {});
  clearState();
  chunks(/*backwards=*/false, [&](Value t0, Value t1) {
    forwardChunk(bi, hi, hkv, t0, t1);
    updateForwardState(bi, hkv, t0, t1);
  });
  clearState();
  chunks(/*backwards=*/true, [&](Value t0, Value t1) {
    backwardChunk(bi, hkv, t0, t1);
    updateBackwardState(t0, t1);
  });
  memref::DeallocOp::create(b, state);
  memref::DeallocOp::create(b, stateZ);
}

LogicalResult mlir::attn::lowerLinearGradChunked(LinearAttentionGradOp op,
                                                 int64_t chunk) {
  if (op.getDirection() != Direction::causal)
    return lowerLinearGradToReference(op);
  ImplicitLocOpBuilder b(op.getLoc(), op);
  LinearAttentionOp view = op.createForwardView();
  ChunkedLinearGrad(op, view, b, chunk).emit();
  view->erase();
  return success();
}
