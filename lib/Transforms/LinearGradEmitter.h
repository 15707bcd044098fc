//===- LinearGradEmitter.h - shared parts of the linear backward -*- C++
//-*-===//
//
// Part of attnc. The lowerings of attn.linear_attention_grad on the CPU
// (LinearReferenceBackward.cpp: quadratic; LinearChunkedBackward.cpp:
// chunked) share everything but the pass over (query, key) pairs: the
// feature rows a = phi_q(scale q), c = phi_k(k) and cumulative log-gates L
// per head ([N, F], the scalar gate kinds repeated over F), the per-pair
// contributions, the initial and final state terms, the pull-back through
// the feature maps and the gates' reverse cumulative sums. All gradients
// accumulate in f64.
//
//===----------------------------------------------------------------------===//
#ifndef ATTNC_LIB_TRANSFORMS_LINEARGRADEMITTER_H
#define ATTNC_LIB_TRANSFORMS_LINEARGRADEMITTER_H

#include "attnc/Transforms/AttnLowering.h"

#include "mlir/Dialect/MemRef/IR/MemRef.h"

namespace mlir::attn {

/// Emits the backward of one attn.linear_attention_grad; subclasses say how
/// the pairs of a head are visited.
class LinearGradEmitter : protected LinearOpView {
public:
  LinearGradEmitter(LinearAttentionGradOp grad, Operation *view,
                    ImplicitLocOpBuilder &b)
      : LinearOpView(view), grad(grad), b(b), e(b) {}
  virtual ~LinearGradEmitter() = default;
  /// Lowers the op (and erases it).
  void emit();

protected:
  /// The gradients of head (bi, hi) from every visible (t, s) pair: da,
  /// dc, dL (per head) and dv (global); dn and dz first (rowGradients).
  virtual void pairsOfHead(Value bi, Value hi, Value hkv) = 0;

  Value tok(Value t);
  Value f64c(double x) {
    return arith::ConstantOp::create(b, b.getF64FloatAttr(x));
  }
  Value ext(Value x) {
    return x.getType().isF64() ? x : arith::ExtFOp::create(b, f64, x);
  }
  Value load(Value buf, ValueRange idx) {
    return ext(memref::LoadOp::create(b, buf, idx));
  }
  void add(Value buf, ValueRange idx, Value x) {
    Value old = memref::LoadOp::create(b, buf, idx);
    memref::StoreOp::create(b, e.addf(old, x), buf, idx);
  }
  Value negf(Value x) { return arith::NegFOp::create(b, x); }
  /// sum_{i < len} x[xi..., i] * y[yi..., i] in f64.
  Value dot(Value x, ValueRange xi, Value y, ValueRange yi, int64_t len);
  /// Runs `body` for i in [0, len).
  void each(int64_t len, const std::function<void(Value)> &body) {
    e.loop(c0, e.idx(len), body);
  }
  /// L_t[f].
  Value cumAt(Value t, Value fi) { return load(cum, {t, fi}); }

  /// dn_t, dz_t from z_t and dO_t . n_t (normalize), or dn_t = dO_t.
  void storeRowGradients(Value bi, Value hi, Value t, Value z, Value don);
  /// The initial state's part of dO_t . n_t: sum_f a_t[f] e^{L_t[f]}
  /// (S_0[f, :] . dO_t).
  Value initialStateRow(Value bi, Value hi, Value t);
  /// (z, dO_t . n) of query t over keys s in [lb, ub): sum_s A_ts and
  /// sum_s A_ts (dO_t . v_s).
  SmallVector<Value> rowSums(Value bi, Value hi, Value hkv, Value t, Value lb,
                             Value ub);
  /// A_ts = sum_f a_t[f] W_ts[f] c_s[f]; W_ts into w.
  Value pairWeight(Value t, Value s);
  /// The contributions of key s to query t (same chunk or not).
  void pair(Value hkv, Value bi, Value t, Value s);

  LinearAttentionGradOp grad;
  ImplicitLocOpBuilder &b;
  Emitter e;
  Type f64;
  Value c0, c1, n, batch, group, dO, dFin;
  // Per head: a, c [N, F] f32; L, da, dc, dL [N, F], dn [N, Dv], dz [N]
  // f64; w [F] and jvpRow [F] scratch.
  Value a, c, cum, da, dc, dL, dn, dz, w, jvpRow;
  // Accumulators of the results.
  Value dq, dk, dvAcc, dDecay, dInit;

private:
  void setup();
  void finish();
  void prepareHead(Value bi, Value hi, Value hkv);
  void initialStateTerms(Value bi, Value hi);
  void finalStateTerms(Value bi, Value hi, Value hkv);
  /// dst[idx..., :] += factor * J^T seed[row, :] for the map `jvp` at
  /// argument x (identity without a map).
  void pullBack(Region *map, Region *jvp, Value x, Value t, Value seed,
                Value row, Value factor, Value dst, ValueRange idx);
  void gateGradients(Value bi, Value hi);
};

} // namespace mlir::attn

#endif // ATTNC_LIB_TRANSFORMS_LINEARGRADEMITTER_H
