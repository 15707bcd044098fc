//===- DeltaRuleBackward.cpp - CPU lowering of attn.delta_rule_grad -------===//
//
// Part of attnc. The backward of the delta rule by a reverse sweep over the
// tokens (the chain rule of the op's description), in f64. The states the
// sweep needs are recomputed: a forward sweep keeps only the state entering
// each chunk of C tokens (the schedule's block_q, default 64); the reverse
// sweep recomputes one chunk's C + 1 states, w_t and u_t from its entry
// state, then walks the chunk backwards. Memory per head: (N / C + C + 2)
// states of D x Dv; time: two forward sweeps and one reverse sweep,
// O(N D Dv).
//
//===----------------------------------------------------------------------===//

#include "DeltaRuleOperands.h"
#include "attnc/Transforms/AttnLowering.h"
#include "attnc/Transforms/GradLowering.h"

#include "mlir/Dialect/MemRef/IR/MemRef.h"

using namespace mlir;
using namespace mlir::attn;

namespace {
class DeltaGrad : DeltaRuleOperands {
public:
  DeltaGrad(DeltaRuleGradOp op, ImplicitLocOpBuilder &b, int64_t chunk)
      : op(op), b(b), e(b), chunk(chunk) {}
  void emit();

private:
  DeltaRuleGradOp op;
  ImplicitLocOpBuilder &b;
  Emitter e;
  int64_t chunk;
  Type f64;
  /// The q/k head of the value head being differentiated.
  Value qkHead;
  Value dO, dFin, c0, c1, scale;
  // Results (f64 accumulators).
  Value dq, dk, dvAcc, dBeta, dDecay, dInit;
  // Per head: the entry state of every chunk [chunks + 1, D, Dv]; one
  // chunk's states [C + 1, D, Dv], w and u [C, Dv]; dS [D, Dv]; du, dw [Dv].
  Value ckpt, states, wBuf, uBuf, dS, du, dw;

  void setup();
  void finish();
  Value f64c(double x) {
    return arith::ConstantOp::create(b, b.getF64FloatAttr(x));
  }
  Value load(Value buf, ValueRange idx) {
    Value x = memref::LoadOp::create(b, buf, idx);
    return x.getType().isF64() ? x : arith::ExtFOp::create(b, f64, x);
  }
  void store(Value x, Value buf, ValueRange idx) {
    memref::StoreOp::create(b, x, buf, idx);
  }
  void add(Value buf, ValueRange idx, Value x) {
    store(e.addf(memref::LoadOp::create(b, buf, idx), x), buf, idx);
  }
  /// sum_{i < len} term(i) in f64.
  Value sum(int64_t len, const std::function<Value(Value)> &term) {
    return e.loop(c0, e.idx(len), c1, {f64c(0.0)},
                  [&](Value i, ValueRange it) -> SmallVector<Value> {
                    return {e.addf(it[0], term(i))};
                  })[0];
  }
  /// a_t = exp(g_t) (1 without a decay).
  Value gateAt(Value bi, Value hi, Value t);
  /// The tokens [t0, t0 + len) of chunk `ci`.
  std::pair<Value, Value> chunkRange(Value ci);
  /// states[0] <- ckpt[ci]; then states[i + 1], w_i, u_i for the chunk.
  void recomputeChunk(Value bi, Value hi, Value ci);
  /// The reverse step of token t (row i of the chunk).
  void reverseStep(Value bi, Value hi, Value i, Value t);
  void head(Value bi, Value hi);
};
} // namespace

void DeltaGrad::setup() {
  f64 = b.getF64Type();
  c0 = e.idx(0);
  c1 = e.idx(1);
  readOperands(e, op);
  scale = f64c(op.getEffectiveScale());
  dO = e.toBuffer(op.getDO());
  if (op.getDFinalState())
    dFin = e.toBuffer(op.getDFinalState());
  int64_t dyn = ShapedType::kDynamic;
  dq = zeroedBuffer(e, {dyn, hq, dyn, d}, f64, {batch, {}, n, {}});
  dk = zeroedBuffer(e, {dyn, hq, dyn, d}, f64, {batch, {}, n, {}});
  dvAcc = zeroedBuffer(e, {dyn, h, dyn, dv}, f64, {batch, {}, n, {}});
  dBeta = zeroedBuffer(e, {dyn, h, dyn}, f64, {batch, {}, n});
  if (decay) {
    bool perHead = cast<MemRefType>(decay.getType()).getRank() == 1;
    dDecay = perHead ? zeroedBuffer(e, {h}, f64, {Value()})
                     : zeroedBuffer(e, {dyn, h, dyn}, f64, {batch, {}, n});
  }
  if (init)
    dInit = zeroedBuffer(e, {dyn, h, d, dv}, f64, {batch, {}, {}, {}});
  Value chunks = e.ceilDiv(n, e.idx(chunk));
  ckpt = e.alloc({dyn, d, dv}, f64, {e.addi(chunks, c1)});
  states = e.alloc({chunk + 1, d, dv}, f64, {});
  wBuf = e.alloc({chunk, dv}, f64, {});
  uBuf = e.alloc({chunk, dv}, f64, {});
  dS = e.alloc({d, dv}, f64, {});
  du = e.alloc({dv}, f64, {});
  dw = e.alloc({dv}, f64, {});
}

void DeltaGrad::finish() {
  for (Value buf : {ckpt, states, wBuf, uBuf, dS, du, dw})
    memref::DeallocOp::create(b, buf);
  SmallVector<Value> results = {
      convertBufferTo(e, dq, op.getDq().getType()),
      convertBufferTo(e, dk, op.getDk().getType()),
      convertBufferTo(e, dvAcc, op.getDv().getType()),
      convertBufferTo(e, dBeta, op.getDBeta().getType())};
  if (dDecay)
    results.push_back(convertBufferTo(e, dDecay, op.getDDecay().getType()));
  if (dInit)
    results.push_back(
        convertBufferTo(e, dInit, op.getDInitialState().getType()));
  op->replaceAllUsesWith(results);
  op->erase();
}

Value DeltaGrad::gateAt(Value bi, Value hi, Value t) {
  Value g = logGate(e, bi, hi, t);
  return g ? e.exp(arith::ExtFOp::create(b, f64, g)) : f64c(1.0);
}

std::pair<Value, Value> DeltaGrad::chunkRange(Value ci) {
  Value c = e.idx(chunk);
  Value t0 = e.muli(ci, c);
  return {t0, e.mini(c, e.subi(n, t0))};
}

void DeltaGrad::recomputeChunk(Value bi, Value hi, Value ci) {
  auto [t0, len] = chunkRange(ci);
  Value dIdx = e.idx(d), dvIdx = e.idx(dv);
  e.loop(c0, dIdx, [&](Value x) {
    e.loop(c0, dvIdx, [&](Value y) {
      store(load(ckpt, {ci, x, y}), states, {c0, x, y});
    });
  });
  e.loop(c0, len, [&](Value i) {
    Value t = e.addi(t0, i), next = e.addi(i, c1);
    Value a = gateAt(bi, hi, t), bt = load(beta, {bi, hi, t});
    e.loop(c0, dvIdx, [&](Value y) {
      Value w = sum(d, [&](Value x) {
        return e.mulf(load(k, {bi, qkHead, t, x}), load(states, {i, x, y}));
      });
      store(w, wBuf, {i, y});
      Value u = e.mulf(bt, e.subf(load(v, {bi, hi, t, y}), e.mulf(a, w)));
      store(u, uBuf, {i, y});
    });
    e.loop(c0, dIdx, [&](Value x) {
      Value kx = load(k, {bi, qkHead, t, x});
      e.loop(c0, dvIdx, [&](Value y) {
        Value s = e.addf(e.mulf(a, load(states, {i, x, y})),
                         e.mulf(kx, load(uBuf, {i, y})));
        store(s, states, {next, x, y});
      });
    });
  });
}

void DeltaGrad::reverseStep(Value bi, Value hi, Value i, Value t) {
  Value dIdx = e.idx(d), dvIdx = e.idx(dv), next = e.addi(i, c1);
  Value a = gateAt(bi, hi, t), bt = load(beta, {bi, hi, t});
  // o_t = S_t^T (scale q_t): dq_t = scale S_t dO_t, dS += scale q_t dO_t^T.
  e.loop(c0, dIdx, [&](Value x) {
    Value g = sum(dv, [&](Value y) {
      return e.mulf(load(states, {next, x, y}), load(dO, {bi, hi, t, y}));
    });
    add(dq, {bi, qkHead, t, x}, e.mulf(scale, g));
    Value qx = e.mulf(scale, load(q, {bi, qkHead, t, x}));
    e.loop(c0, dvIdx, [&](Value y) {
      add(dS, {x, y}, e.mulf(qx, load(dO, {bi, hi, t, y})));
    });
  });
  // S_t = a S_{t-1} + k u^T, u = beta (v - a w), w = S_{t-1}^T k:
  // du = dS^T k, dv = beta du, dw = -a beta du, dbeta = du . (v - a w).
  Value negAB = arith::NegFOp::create(b, e.mulf(a, bt));
  SmallVector<Value> sums = e.loop(
      c0, dvIdx, c1, {f64c(0.0), f64c(0.0)},
      [&](Value y, ValueRange it) -> SmallVector<Value> {
        Value g = sum(d, [&](Value x) {
          return e.mulf(load(k, {bi, qkHead, t, x}), load(dS, {x, y}));
        });
        store(g, du, {y});
        store(e.mulf(bt, g), dvAcc, {bi, hi, t, y});
        store(e.mulf(negAB, g), dw, {y});
        Value w = load(wBuf, {i, y});
        Value r = e.subf(load(v, {bi, hi, t, y}), e.mulf(a, w));
        return {e.addf(it[0], e.mulf(g, r)), e.addf(it[1], e.mulf(g, w))};
      });
  store(sums[0], dBeta, {bi, hi, t});
  // dk = dS u + S_{t-1} dw; <dS, S_{t-1}> for the gate.
  Value dsDotS =
      e.loop(c0, dIdx, c1, {f64c(0.0)},
             [&](Value x, ValueRange it) -> SmallVector<Value> {
               Value g = sum(dv, [&](Value y) {
                 return e.addf(e.mulf(load(dS, {x, y}), load(uBuf, {i, y})),
                               e.mulf(load(states, {i, x, y}), load(dw, {y})));
               });
               add(dk, {bi, qkHead, t, x}, g);
               Value s = sum(dv, [&](Value y) {
                 return e.mulf(load(dS, {x, y}), load(states, {i, x, y}));
               });
               return {e.addf(it[0], s)};
             })[0];
  if (dDecay) {
    // dg = a (<dS, S_{t-1}> - beta du . w)
    Value dg = e.mulf(a, e.subf(dsDotS, e.mulf(bt, sums[1])));
    if (cast<MemRefType>(dDecay.getType()).getRank() == 1)
      add(dDecay, {hi}, dg);
    else
      store(dg, dDecay, {bi, hi, t});
  }
  // dS_{t-1} = a dS + k dw^T.
  e.loop(c0, dIdx, [&](Value x) {
    Value kx = load(k, {bi, qkHead, t, x});
    e.loop(c0, dvIdx, [&](Value y) {
      store(e.addf(e.mulf(a, load(dS, {x, y})), e.mulf(kx, load(dw, {y}))), dS,
            {x, y});
    });
  });
}

void DeltaGrad::head(Value bi, Value hi) {
  qkHead = qkHeadOf(e, hi);
  Value dIdx = e.idx(d), dvIdx = e.idx(dv);
  Value chunks = e.ceilDiv(n, e.idx(chunk));
  e.loop(c0, dIdx, [&](Value x) {
    e.loop(c0, dvIdx, [&](Value y) {
      store(init ? load(init, {bi, hi, x, y}) : f64c(0.0), ckpt, {c0, x, y});
      store(dFin ? load(dFin, {bi, hi, x, y}) : f64c(0.0), dS, {x, y});
    });
  });
  // Forward sweep: the entry state of every chunk.
  e.loop(c0, chunks, [&](Value ci) {
    recomputeChunk(bi, hi, ci);
    Value len = chunkRange(ci).second, next = e.addi(ci, c1);
    e.loop(c0, dIdx, [&](Value x) {
      e.loop(c0, dvIdx, [&](Value y) {
        store(load(states, {len, x, y}), ckpt, {next, x, y});
      });
    });
  });
  // Reverse sweep, chunk by chunk and token by token.
  e.loop(c0, chunks, [&](Value r) {
    Value ci = e.subi(e.subi(chunks, c1), r);
    recomputeChunk(bi, hi, ci);
    auto [t0, len] = chunkRange(ci);
    e.loop(c0, len, [&](Value ri) {
      Value i = e.subi(e.subi(len, c1), ri);
      reverseStep(bi, hi, i, e.addi(t0, i));
    });
  });
  if (dInit)
    e.loop(c0, dIdx, [&](Value x) {
      e.loop(c0, dvIdx, [&](Value y) {
        store(load(dS, {x, y}), dInit, {bi, hi, x, y});
      });
    });
}

void DeltaGrad::emit() {
  setup();
  e.loop(c0, batch, [&](Value bi) {
    e.loop(c0, e.idx(h), [&](Value hi) { head(bi, hi); });
  });
  finish();
}

LogicalResult mlir::attn::lowerDeltaRuleGrad(DeltaRuleGradOp op,
                                             int64_t chunk) {
  if (chunk <= 0)
    return op.emitOpError() << "has a schedule with chunk length " << chunk;
  ImplicitLocOpBuilder b(op.getLoc(), op);
  DeltaGrad(op, b, chunk).emit();
  return success();
}
