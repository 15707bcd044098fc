//===- DeltaRule.cpp - CPU lowerings of attn.delta_rule -------------------===//
//
// Part of attnc. Two lowerings of the delta rule that check each other:
//  - the recurrence, token by token (the oracle and the decode form):
//      w = S^T k_t, u_t = beta_t (v_t - a_t w), S <- a_t S + k_t u_t^T,
//      o_t = S^T (scale q_t);
//  - the chunked (WY / UT) form: with S_0 the state entering a chunk and
//    L_i the chunk's cumulative log-gates, the new values solve the unit
//    lower-triangular system
//      u_i = beta_i (v_i - e^{L_i} S_0^T k_i
//                    - sum_{j<i} e^{L_i - L_j} (k_i . k_j) u_j)
//    by forward substitution; then
//      o_i = e^{L_i} S_0^T (scale q_i) + sum_{j<=i} e^{L_i - L_j}
//            (scale q_i . k_j) u_j,
//      S   <- e^{L_last} S_0 + sum_j e^{L_last - L_j} k_j u_j^T.
//    Every exponent is a difference of cumulative log-gates (<= 0).
// Both accumulate in f32 with the state [D, Dv] in a buffer.
//
//===----------------------------------------------------------------------===//

#include "DeltaRuleOperands.h"
#include "attnc/Transforms/AttnLowering.h"

#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"

using namespace mlir;
using namespace mlir::attn;

namespace {
struct DeltaLowering : DeltaRuleOperands {
  DeltaLowering(DeltaRuleOp op, ImplicitLocOpBuilder &b) : op(op), b(b), e(b) {}

  DeltaRuleOp op;
  ImplicitLocOpBuilder &b;
  Emitter e;
  Value o, fin, c0, c1;
  /// The q/k head of the value head being lowered.
  Value qkHead;
  /// Sets qkHead for value head hi.
  void enterHead(Value hi) { qkHead = qkHeadOf(e, hi); }
  float scale = 1.0f;
  /// The state [D, Dv] (f32).
  Value state;

  void setup();
  void finish();
  Value zeros(int64_t len) { return e.splat(e.f32(0.0), len); }
  /// Whether only the final state is wanted (nothing reads o, as in
  /// attnc.distributed.delta_rule's state call): o is then not computed.
  bool stateOnly() { return fin && op.getO().use_empty(); }
  /// The log-gate g_t (0 without a decay).
  Value logGateOrZero(Value bi, Value hi, Value t) {
    Value g = logGate(e, bi, hi, t);
    return g ? g : e.f32(0.0);
  }
  /// state <- initial_state (or 0).
  void resetState(Value bi, Value hi);
  /// S^T x for the row x = buf[idx..., :] (D elements, read one by one).
  Value stateTimes(Value buf, SmallVector<Value> idx);
  void writeFinalState(Value bi, Value hi);

  void recurrentHead(Value bi, Value hi);
  // The chunked form's buffers: the chunk's cumulative log-gates [C] and
  // new values u [C, Dv].
  Value chunkL, chunkU;
  void chunkGates(Value bi, Value hi, Value t0, Value len);
  void chunkValues(Value bi, Value hi, Value t0, Value len);
  void chunkOutputs(Value bi, Value hi, Value t0, Value len);
  void chunkState(Value bi, Value hi, Value t0, Value len);

  LogicalResult lowerRecurrent();
  LogicalResult lowerChunked(int64_t chunk);
};
} // namespace

void DeltaLowering::setup() {
  readOperands(e, op);
  scale = op.getEffectiveScale();
  c0 = e.idx(0);
  c1 = e.idx(1);
  o = e.allocLike(op.getO().getType(), {batch, e.idx(h), n, e.idx(dv)});
  if (op.getFinalState())
    fin = e.allocLike(op.getFinalState().getType(),
                      {batch, e.idx(h), e.idx(d), e.idx(dv)});
  state = e.alloc({d, dv}, e.f32Type(), {});
}

void DeltaLowering::finish() {
  memref::DeallocOp::create(b, state);
  SmallVector<Value> results = {e.toTensor(o, op.getO().getType())};
  if (fin)
    results.push_back(e.toTensor(fin, op.getFinalState().getType()));
  op->replaceAllUsesWith(results);
  op->erase();
}

void DeltaLowering::resetState(Value bi, Value hi) {
  e.loop(c0, e.idx(d), [&](Value di) {
    Value row = init ? e.readRowF32(init, {bi, hi, di, c0}, dv) : zeros(dv);
    e.writeRowF32(row, state, {di, c0});
  });
}

Value DeltaLowering::stateTimes(Value buf, SmallVector<Value> idx) {
  idx.push_back(c0);
  return e.loop(c0, e.idx(d), c1, {zeros(dv)},
                [&](Value di, ValueRange it) -> SmallVector<Value> {
                  idx.back() = di;
                  Value x = e.loadF32(buf, idx);
                  Value row = e.readRowF32(state, {di, c0}, dv);
                  return {vector::FMAOp::create(b, e.splat(x, dv), row, it[0])};
                })[0];
}

void DeltaLowering::writeFinalState(Value bi, Value hi) {
  if (!fin)
    return;
  e.loop(c0, e.idx(d), [&](Value di) {
    e.writeRowF32(e.readRowF32(state, {di, c0}, dv), fin, {bi, hi, di, c0});
  });
}

void DeltaLowering::recurrentHead(Value bi, Value hi) {
  enterHead(hi);
  resetState(bi, hi);
  e.loop(c0, n, [&](Value t) {
    Value a = e.exp(logGateOrZero(bi, hi, t));
    Value bt = e.loadF32(beta, {bi, hi, t});
    Value w = stateTimes(k, {bi, qkHead, t});
    Value vt = e.readRowF32(v, {bi, hi, t, c0}, dv);
    Value u = e.mulf(e.splat(bt, dv), e.subf(vt, e.mulf(e.splat(a, dv), w)));
    // S <- a S + k_t u^T
    e.loop(c0, e.idx(d), [&](Value di) {
      Value kd = e.loadF32(k, {bi, qkHead, t, di});
      Value row = e.readRowF32(state, {di, c0}, dv);
      e.writeRowF32(vector::FMAOp::create(b, e.splat(kd, dv), u,
                                          e.mulf(e.splat(a, dv), row)),
                    state, {di, c0});
    });
    if (stateOnly())
      return;
    Value out =
        e.mulf(stateTimes(q, {bi, qkHead, t}), e.splat(e.f32(scale), dv));
    e.writeRowF32(out, o, {bi, hi, t, c0});
  });
  writeFinalState(bi, hi);
}

LogicalResult DeltaLowering::lowerRecurrent() {
  setup();
  e.loop(c0, batch, [&](Value bi) {
    e.loop(c0, e.idx(h), [&](Value hi) { recurrentHead(bi, hi); });
  });
  finish();
  return success();
}

void DeltaLowering::chunkGates(Value bi, Value hi, Value t0, Value len) {
  e.loop(c0, len, c1, {e.f32(0.0)},
         [&](Value i, ValueRange it) -> SmallVector<Value> {
           Value l = e.addf(it[0], logGateOrZero(bi, hi, e.addi(t0, i)));
           memref::StoreOp::create(b, l, chunkL, ValueRange{i});
           return {l};
         });
}

/// sum_{x < d} buf1[i1..., x] * buf2[i2..., x] in f32.
static Value rowDot(Emitter &e, int64_t d, Value buf1, SmallVector<Value> i1,
                    Value buf2, SmallVector<Value> i2) {
  Value c0 = e.idx(0);
  i1.push_back(c0);
  i2.push_back(c0);
  return e.dot(e.readRowF32(buf1, i1, d), e.readRowF32(buf2, i2, d));
}

void DeltaLowering::chunkValues(Value bi, Value hi, Value t0, Value len) {
  e.loop(c0, len, [&](Value i) {
    Value t = e.addi(t0, i);
    Value li = memref::LoadOp::create(b, chunkL, ValueRange{i});
    Value fromState =
        e.mulf(e.splat(e.exp(li), dv), stateTimes(k, {bi, qkHead, t}));
    Value r = e.subf(e.readRowF32(v, {bi, hi, t, c0}, dv), fromState);
    r = e.loop(
        c0, i, c1, {r}, [&](Value j, ValueRange it) -> SmallVector<Value> {
          Value lj = memref::LoadOp::create(b, chunkL, ValueRange{j});
          Value kk =
              rowDot(e, d, k, {bi, qkHead, t}, k, {bi, qkHead, e.addi(t0, j)});
          Value c = e.mulf(e.exp(e.subf(li, lj)), kk);
          Value uj = e.readRowF32(chunkU, {j, c0}, dv);
          return {e.subf(it[0], e.mulf(e.splat(c, dv), uj))};
        })[0];
    Value bt = e.loadF32(beta, {bi, hi, t});
    e.writeRowF32(e.mulf(e.splat(bt, dv), r), chunkU, {i, c0});
  });
}

void DeltaLowering::chunkOutputs(Value bi, Value hi, Value t0, Value len) {
  Value sc = e.f32(scale);
  e.loop(c0, len, [&](Value i) {
    Value t = e.addi(t0, i);
    Value li = memref::LoadOp::create(b, chunkL, ValueRange{i});
    Value out = e.mulf(e.splat(e.exp(li), dv), stateTimes(q, {bi, qkHead, t}));
    out = e.loop(c0, e.addi(i, c1), c1, {out},
                 [&](Value j, ValueRange it) -> SmallVector<Value> {
                   Value lj = memref::LoadOp::create(b, chunkL, ValueRange{j});
                   Value qk = rowDot(e, d, q, {bi, qkHead, t}, k,
                                     {bi, qkHead, e.addi(t0, j)});
                   Value c = e.mulf(e.exp(e.subf(li, lj)), qk);
                   Value uj = e.readRowF32(chunkU, {j, c0}, dv);
                   return {vector::FMAOp::create(b, e.splat(c, dv), uj, it[0])};
                 })[0];
    e.writeRowF32(e.mulf(out, e.splat(sc, dv)), o, {bi, hi, t, c0});
  });
}

void DeltaLowering::chunkState(Value bi, Value hi, Value t0, Value len) {
  Value last = memref::LoadOp::create(b, chunkL, ValueRange{e.subi(len, c1)});
  Value decayAll = e.splat(e.exp(last), dv);
  e.loop(c0, e.idx(d), [&](Value di) {
    Value row = e.mulf(decayAll, e.readRowF32(state, {di, c0}, dv));
    row = e.loop(c0, len, c1, {row},
                 [&](Value j, ValueRange it) -> SmallVector<Value> {
                   Value lj = memref::LoadOp::create(b, chunkL, ValueRange{j});
                   Value kd = e.loadF32(k, {bi, qkHead, e.addi(t0, j), di});
                   Value c = e.mulf(e.exp(e.subf(last, lj)), kd);
                   Value uj = e.readRowF32(chunkU, {j, c0}, dv);
                   return {vector::FMAOp::create(b, e.splat(c, dv), uj, it[0])};
                 })[0];
    e.writeRowF32(row, state, {di, c0});
  });
}

LogicalResult DeltaLowering::lowerChunked(int64_t chunk) {
  setup();
  chunkL = e.alloc({chunk}, e.f32Type(), {});
  chunkU = e.alloc({chunk, dv}, e.f32Type(), {});
  Value c = e.idx(chunk);
  e.loop(c0, batch, [&](Value bi) {
    e.loop(c0, e.idx(h), [&](Value hi) {
      enterHead(hi);
      resetState(bi, hi);
      e.loop(c0, n, c, {}, [&](Value t0, ValueRange) -> SmallVector<Value> {
        Value len = e.mini(c, e.subi(n, t0));
        chunkGates(bi, hi, t0, len);
        chunkValues(bi, hi, t0, len);
        if (!stateOnly())
          chunkOutputs(bi, hi, t0, len);
        chunkState(bi, hi, t0, len);
        return {};
      });
      writeFinalState(bi, hi);
    });
  });
  memref::DeallocOp::create(b, chunkL);
  memref::DeallocOp::create(b, chunkU);
  finish();
  return success();
}

LogicalResult mlir::attn::lowerDeltaRuleRecurrent(DeltaRuleOp op) {
  ImplicitLocOpBuilder b(op.getLoc(), op);
  return DeltaLowering(op, b).lowerRecurrent();
}

LogicalResult mlir::attn::lowerDeltaRuleChunked(DeltaRuleOp op) {
  auto sched = op.getScheduleAttr();
  int64_t chunk = sched ? sched.getBlockQ() : 64;
  if (chunk <= 0)
    return op.emitOpError() << "has a schedule with chunk length " << chunk;
  ImplicitLocOpBuilder b(op.getLoc(), op);
  return DeltaLowering(op, b).lowerChunked(chunk);
}
