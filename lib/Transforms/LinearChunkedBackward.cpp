//===- LinearChunkedBackward.cpp - chunked attn.linear_attention_grad -----===//
//
// Part of attnc. The CPU backward of linear attention and scans in chunks
// of C tokens, O(N C (F + Dv) + N F Dv) per head instead of the
// reference's O(N^2 F). Pairs inside a chunk are visited one by one (as in
// the reference); pairs across chunks go through F x Dv states (with
// F-vector normalizer parts), each a decayed sum of outer products anchored
// at a chunk boundary. With W = e^{L_later - L_earlier} (every exponent a
// later minus an earlier cumulative gate, so <= 0):
//  - H = sum of earlier keys c_s v_s^T: each query's normalizer z_t and
//    dO_t . n_t (so dn_t, dz_t), then da_t, and + a_t da_t into dL_t;
//  - G = sum of later queries a_t dn_t^T: each key's dv_s and dc_s, and
//    - c_s dc_s into dL_s.
// Bidirectional ops add the mirror images: R = later keys (read by a
// query's normalizer in a first reverse sweep, and by its da, with - into
// dL_t) and P = earlier queries (a key's dv and dc, + into dL_s).
// Sweeps: causal, forward (H) then backward (G); bidirectional, backward
// (R: normalizers), forward (H, P), backward (G, R).
//
//===----------------------------------------------------------------------===//

#include "LinearGradEmitter.h"

using namespace mlir;
using namespace mlir::attn;
using arith::CmpIPredicate;

namespace {
/// An F x Dv decayed sum of outer products x_r y_r^T and its normalizer
/// part sum x_r[f] zy_r.
struct ChunkState {
  Value m, z;
};

class ChunkedLinearGrad : public LinearGradEmitter {
public:
  ChunkedLinearGrad(LinearAttentionGradOp grad, Operation *view,
                    ImplicitLocOpBuilder &b, int64_t chunk)
      : LinearGradEmitter(grad, view, b), chunk(chunk) {}

private:
  void pairsOfHead(Value bi, Value hi, Value hkv) override;

  /// e^{L_late[f] - L_early[f]}, with L_{-1} = 0 (early may be t0 - 1 with
  /// t0 = 0).
  Value decay(Value early, Value late, Value fi);
  /// Runs `body(t0, t1)` over the chunks, forwards or backwards.
  void chunks(bool backwards, const std::function<void(Value, Value)> &body);
  ChunkState allocState();
  void clear(ChunkState st);
  void release(ChunkState st);
  /// Moves `st` past chunk [t0, t1): forwards from anchor t0 - 1 to t1 - 1,
  /// backwards from t1 - 1 to t0 - 1, adding the chunk's keys (c_r v_r^T,
  /// normalizer c_r) or queries (a_r dn_r^T, normalizer a_r dz_r).
  void fold(ChunkState st, Value bi, Value hkv, Value t0, Value t1,
            bool queries, bool forward);
  /// W_f and the row it weighs, for token `t` read against a state anchored
  /// at `anchor` (before t when `stateEarlier`).
  Value weight(Value t, Value anchor, bool stateEarlier, Value fi) {
    return stateEarlier ? decay(anchor, t, fi) : decay(t, anchor, fi);
  }
  /// (z, dO_t . n) of query t from a key state.
  SmallVector<Value> rowFromKeys(ChunkState st, Value bi, Value hi, Value t,
                                 Value anchor, bool stateEarlier,
                                 ValueRange acc);
  /// da_t (and dL_t) from a key state.
  void queryFromKeys(ChunkState st, Value t, Value anchor, bool stateEarlier);
  /// dv_s, dc_s (and dL_s) from a query state.
  void keyFromQueries(ChunkState st, Value bi, Value hkv, Value s, Value anchor,
                      bool stateEarlier);
  /// Rows (dn, dz), the pairs inside the chunk and da from H; for
  /// bidirectional ops, keys from P.
  void forwardChunk(Value bi, Value hi, Value hkv, Value t0, Value t1);

  int64_t chunk;
  ChunkState keysBefore, queriesBefore, keysAfter, queriesAfter;
  /// Bidirectional: each query's normalizer and dO . n over the keys after
  /// its chunk ([N] f64).
  Value zLater, donLater;
};
} // namespace

Value ChunkedLinearGrad::decay(Value early, Value late, Value fi) {
  Value valid = e.cmpi(CmpIPredicate::sge, early, c0);
  Value le = e.select(valid, cumAt(e.select(valid, early, c0), fi), f64c(0.0));
  return e.exp(e.subf(cumAt(late, fi), le));
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

ChunkState ChunkedLinearGrad::allocState() {
  ChunkState st{e.alloc({f, dv}, f64, {}), e.alloc({f}, f64, {})};
  return st;
}

void ChunkedLinearGrad::clear(ChunkState st) {
  each(f, [&](Value fi) {
    memref::StoreOp::create(b, f64c(0.0), st.z, ValueRange{fi});
    each(dv, [&](Value j) {
      memref::StoreOp::create(b, f64c(0.0), st.m, ValueRange{fi, j});
    });
  });
}

void ChunkedLinearGrad::release(ChunkState st) {
  memref::DeallocOp::create(b, st.m);
  memref::DeallocOp::create(b, st.z);
}

void ChunkedLinearGrad::fold(ChunkState st, Value bi, Value hkv, Value t0,
                             Value t1, bool queries, bool forward) {
  Value before = e.subi(t0, c1), last = e.subi(t1, c1);
  Value from = forward ? before : last, to = forward ? last : before;
  each(f, [&](Value fi) {
    Value keep = forward ? decay(from, to, fi) : decay(to, from, fi);
    each(dv, [&](Value j) {
      memref::StoreOp::create(b, e.mulf(keep, load(st.m, {fi, j})), st.m,
                              ValueRange{fi, j});
    });
    Value z = e.mulf(keep, load(st.z, {fi}));
    z = e.loop(t0, t1, c1, {z},
               [&](Value r, ValueRange it) -> SmallVector<Value> {
                 Value w = forward ? decay(r, to, fi) : decay(to, r, fi);
                 Value xw = e.mulf(load(queries ? a : c, {r, fi}), w);
                 each(dv, [&](Value j) {
                   Value y = queries ? load(dn, {r, j})
                                     : load(v, {bi, hkv, tok(r), j});
                   add(st.m, {fi, j}, e.mulf(xw, y));
                 });
                 Value zy = queries ? e.mulf(xw, load(dz, {r})) : xw;
                 return {e.addf(it[0], zy)};
               })[0];
    memref::StoreOp::create(b, z, st.z, ValueRange{fi});
  });
}

SmallVector<Value> ChunkedLinearGrad::rowFromKeys(ChunkState st, Value bi,
                                                  Value hi, Value t,
                                                  Value anchor,
                                                  bool stateEarlier,
                                                  ValueRange acc) {
  return e.loop(c0, e.idx(f), c1, acc,
                [&](Value fi, ValueRange it) -> SmallVector<Value> {
                  Value aw = e.mulf(load(a, {t, fi}),
                                    weight(t, anchor, stateEarlier, fi));
                  Value mdo = dot(st.m, {fi}, dO, {bi, hi, tok(t)}, dv);
                  return {e.addf(it[0], e.mulf(aw, load(st.z, {fi}))),
                          e.addf(it[1], e.mulf(aw, mdo))};
                });
}

void ChunkedLinearGrad::queryFromKeys(ChunkState st, Value t, Value anchor,
                                      bool stateEarlier) {
  each(f, [&](Value fi) {
    Value r = e.addf(dot(st.m, {fi}, dn, {t}, dv),
                     e.mulf(load(st.z, {fi}), load(dz, {t})));
    Value wr = e.mulf(weight(t, anchor, stateEarlier, fi), r);
    add(da, {t, fi}, wr);
    // The later token's L gets +, the earlier one's -.
    Value term = e.mulf(load(a, {t, fi}), wr);
    add(dL, {t, fi}, stateEarlier ? term : negf(term));
  });
}

void ChunkedLinearGrad::keyFromQueries(ChunkState st, Value bi, Value hkv,
                                       Value s, Value anchor,
                                       bool stateEarlier) {
  each(f, [&](Value fi) {
    Value w = weight(s, anchor, stateEarlier, fi);
    Value cw = e.mulf(load(c, {s, fi}), w);
    each(dv, [&](Value j) {
      add(dvAcc, {bi, hkv, tok(s), j}, e.mulf(cw, load(st.m, {fi, j})));
    });
    Value r =
        e.addf(dot(st.m, {fi}, v, {bi, hkv, tok(s)}, dv), load(st.z, {fi}));
    add(dc, {s, fi}, e.mulf(w, r));
    Value term = e.mulf(cw, r);
    add(dL, {s, fi}, stateEarlier ? term : negf(term));
  });
}

void ChunkedLinearGrad::forwardChunk(Value bi, Value hi, Value hkv, Value t0,
                                     Value t1) {
  Value before = e.subi(t0, c1);
  e.loop(t0, t1, [&](Value t) {
    Value ub = causal ? e.addi(t, c1) : t1;
    SmallVector<Value> acc = rowSums(bi, hi, hkv, t, t0, ub);
    acc =
        rowFromKeys(keysBefore, bi, hi, t, before, /*stateEarlier=*/true, acc);
    if (!causal)
      acc = {e.addf(acc[0], load(zLater, {t})),
             e.addf(acc[1], load(donLater, {t}))};
    Value don = acc[1];
    if (init)
      don = e.addf(don, initialStateRow(bi, hi, t));
    storeRowGradients(bi, hi, t, acc[0], don);
    e.loop(t0, ub, [&](Value s) { pair(hkv, bi, t, s); });
    queryFromKeys(keysBefore, t, before, /*stateEarlier=*/true);
  });
  if (!causal)
    e.loop(t0, t1, [&](Value s) {
      keyFromQueries(queriesBefore, bi, hkv, s, before, /*stateEarlier=*/true);
    });
}

void ChunkedLinearGrad::pairsOfHead(Value bi, Value hi, Value hkv) {
  keysBefore = allocState();
  queriesAfter = allocState();
  if (!causal) {
    keysAfter = allocState();
    queriesBefore = allocState();
    zLater = e.alloc({ShapedType::kDynamic}, f64, {n});
    donLater = e.alloc({ShapedType::kDynamic}, f64, {n});
    // Each query's normalizer and dO . n over the keys after its chunk.
    clear(keysAfter);
    chunks(/*backwards=*/true, [&](Value t0, Value t1) {
      Value last = e.subi(t1, c1);
      e.loop(t0, t1, [&](Value t) {
        SmallVector<Value> acc =
            rowFromKeys(keysAfter, bi, hi, t, last, /*stateEarlier=*/false,
                        {f64c(0.0), f64c(0.0)});
        memref::StoreOp::create(b, acc[0], zLater, ValueRange{t});
        memref::StoreOp::create(b, acc[1], donLater, ValueRange{t});
      });
      fold(keysAfter, bi, hkv, t0, t1, /*queries=*/false, /*forward=*/false);
    });
    clear(keysAfter);
    clear(queriesBefore);
  }
  clear(keysBefore);
  chunks(/*backwards=*/false, [&](Value t0, Value t1) {
    forwardChunk(bi, hi, hkv, t0, t1);
    fold(keysBefore, bi, hkv, t0, t1, /*queries=*/false, /*forward=*/true);
    if (!causal)
      fold(queriesBefore, bi, hkv, t0, t1, /*queries=*/true, /*forward=*/true);
  });
  clear(queriesAfter);
  chunks(/*backwards=*/true, [&](Value t0, Value t1) {
    Value last = e.subi(t1, c1);
    e.loop(t0, t1, [&](Value s) {
      keyFromQueries(queriesAfter, bi, hkv, s, last, /*stateEarlier=*/false);
      if (!causal)
        queryFromKeys(keysAfter, s, last, /*stateEarlier=*/false);
    });
    fold(queriesAfter, bi, hkv, t0, t1, /*queries=*/true, /*forward=*/false);
    if (!causal)
      fold(keysAfter, bi, hkv, t0, t1, /*queries=*/false, /*forward=*/false);
  });
  for (ChunkState st : {keysBefore, queriesAfter})
    release(st);
  if (!causal) {
    release(keysAfter);
    release(queriesBefore);
    memref::DeallocOp::create(b, zLater);
    memref::DeallocOp::create(b, donLater);
  }
}

LogicalResult mlir::attn::lowerLinearGradChunked(LinearAttentionGradOp op,
                                                 int64_t chunk) {
  ImplicitLocOpBuilder b(op.getLoc(), op);
  LinearAttentionOp view = op.createForwardView();
  ChunkedLinearGrad(op, view, b, chunk).emit();
  view->erase();
  return success();
}
