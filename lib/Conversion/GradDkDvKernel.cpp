//===- GradDkDvKernel.cpp - the dk/dv kernel of the attention backward ----===//
//
// Part of attnc. See GradKernel.h. One block per (kv tile, kv head, batch),
// 16 key rows per warp, computing the transposed tiles (rows are keys):
//  - load: k and v staged through shared memory into A fragments;
//  - for each query head of the group, for each q tile of qStep rows the
//    mask leaves non-empty: q and dO staged by cp.async, S^T = K Q^T,
//    P^T = exp(S^T - lse) (mask on partial tiles), dV += P^T dO,
//    dP^T = V dO^T, dS^T = P^T (dP^T - D) through score_grad,
//    dK += dS^T Q;
//  - epilogue: dk = scale dK, dv = dV.
// The group's heads are summed in registers: deterministic, no atomics.
//
//===----------------------------------------------------------------------===//

#include "GradKernel.h"

#include "mlir/Dialect/Arith/IR/Arith.h"

using namespace mlir;
using namespace mlir::attn;
using namespace mlir::attn::detail;
using arith::CmpIPredicate;

namespace {
/// What every step of a block reads and never changes.
struct KvBlock {
  SmallVector<SmallVector<Value>> kFrags, vFrags;
  AccLayout acc;
  /// The block's first and last (inclusive) key rows.
  Value j0, jLast;
  /// The q and dO tiles.
  Value sQ, sDO;
};

/// The steps of one query head (`ids.h`) against the block's keys.
class GradDkDvStep : public GradKernelBase {
public:
  GradDkDvStep(const GradKernelConfig &gcfg, ImplicitLocOpBuilder &b,
               const GradKernelArgs &gargs, AttnThreadIds ids,
               const KvBlock &blk)
      : GradKernelBase(gcfg, b, gargs, ids, gcfg.dkdvThreads()), blk(blk) {}

  /// Loops over the head's non-empty q tiles; `st` holds dK then dV (C
  /// fragments, flattened).
  SmallVector<Value> run(ValueRange st);

private:
  const KvBlock &blk;
  SmallVector<Value> tileStep(Value i0, Value cls, ValueRange st);
};

class GradDkDvKernel : public GradKernelBase {
public:
  GradDkDvKernel(const GradKernelConfig &gcfg, ImplicitLocOpBuilder &b,
                 const GradKernelArgs &gargs, AttnThreadIds ids)
      : GradKernelBase(gcfg, b, gargs, ids, gcfg.dkdvThreads()) {}

  void emit(Value sQ, Value sDO);
};
} // namespace

static SmallVector<Frag> unflatten(ValueRange v, size_t from, int64_t n) {
  SmallVector<Frag> out(n);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t el = 0; el < 4; ++el)
      out[i][el] = v[from + i * 4 + el];
  return out;
}

SmallVector<Value> GradDkDvStep::tileStep(Value i0, Value cls, ValueRange st) {
  int64_t step = gcfg.qStep, d = cfg.d, dv = cfg.dv;
  stageRows(gargs.q, ids.h, i0, args.nq, step, d, blk.sQ);
  stageRows(gargs.dO, ids.h, i0, args.nq, step, dv, blk.sDO);
  waitGroups(b, 0);
  gpu::BarrierOp::create(b);
  const AccLayout &acc = blk.acc;
  // Per column: the query row, its lse (log2 units) and D.
  SmallVector<Value> qi, lse2, delta;
  for (int64_t c = 0; c < step / 8 * 2; ++c) {
    qi.push_back(e.addi(i0, e.addi(cIdx(c / 2 * 8 + c % 2), acc.lcol)));
    lse2.push_back(lse2Of(qi.back(), ids.h));
    delta.push_back(deltaOf(qi.back(), ids.h));
  }
  auto col = [](int64_t i) { return i / 4 * 2 + i % 2; };
  auto pos = [&](int64_t i) {
    return ElementPos{qi[col(i)], e.addi(blk.j0, i % 4 < 2 ? acc.r0 : acc.r1)};
  };
  SmallVector<Value> raw;
  for (const Frag &f : mulBt(blk.kFrags, blk.sQ, step, d))
    raw.append(f.begin(), f.end());
  Value checkMask = b.createOrFold<arith::OrIOp>(
      e.cmpi(CmpIPredicate::ne, cls, cIdx(2)),
      b.createOrFold<arith::OrIOp>(
          e.cmpi(CmpIPredicate::ugt, e.addi(i0, cIdx(step)), args.nq),
          e.cmpi(CmpIPredicate::ugt, e.addi(blk.j0, cIdx(gcfg.bkv)), args.nk)));
  SmallVector<Value> x = scaledScores(raw, pos, checkMask);
  SmallVector<Value> p;
  for (auto [i, xi] : llvm::enumerate(x))
    p.push_back(ex2Approx(b, e.subf(xi, lse2[col(i)])));
  SmallVector<Frag> dK = unflatten(st, 0, d / 8);
  SmallVector<Frag> dV = unflatten(st, d / 8 * 4, dv / 8);
  mulB(dV, p, blk.sDO, step, dv);
  SmallVector<Value> dp;
  for (const Frag &f : mulBt(blk.vFrags, blk.sDO, step, dv))
    dp.append(f.begin(), f.end());
  SmallVector<Value> ds;
  for (size_t i = 0; i < p.size(); ++i)
    ds.push_back(scoreGrad(raw[i], p[i], dp[i], delta[col(i)], pos(i),
                           /*captureGrads=*/false));
  mulB(dK, ds, blk.sQ, step, d);
  gpu::BarrierOp::create(b); // every warp is done with sQ and sDO
  SmallVector<Value> out;
  for (const Frag &f : dK)
    out.append(f.begin(), f.end());
  for (const Frag &f : dV)
    out.append(f.begin(), f.end());
  return out;
}

SmallVector<Value> GradDkDvStep::run(ValueRange st) {
  int64_t step = gcfg.qStep;
  Value numQT = e.ceilDiv(args.nq, cIdx(step));
  SmallVector<Type> types(st.getTypes());
  return e.loop(ids.c0, numQT, ids.c1, st,
                [&](Value qt, ValueRange it) -> SmallVector<Value> {
                  Value i0 = e.muli(qt, cIdx(step));
                  Value i1 =
                      e.subi(e.mini(e.addi(i0, cIdx(step)), args.nq), ids.c1);
                  Value cls = tileClass(i0, i1, blk.j0, blk.jLast);
                  return e.ifElse(
                      e.cmpi(CmpIPredicate::ne, cls, ids.c0), types,
                      [&] { return tileStep(i0, cls, it); },
                      [&] { return SmallVector<Value>(it); });
                });
}

void GradDkDvKernel::emit(Value sQ, Value sDO) {
  int64_t d = cfg.d, dv = cfg.dv, bkv = gcfg.bkv, step = gcfg.qStep;
  // The grid is (kv tile, kv head, batch): bindThreadIds' q tile and head
  // are the kv tile and kv head here.
  Value hk = ids.h;
  KvBlock blk;
  blk.sQ = sQ;
  blk.sDO = sDO;
  blk.acc = accLayout();
  blk.j0 = e.muli(ids.qt, cIdx(bkv));
  blk.jLast = e.subi(e.mini(e.addi(blk.j0, cIdx(bkv)), args.nk), ids.c1);
  blk.kFrags = loadRowFragments(gargs.k, hk, blk.j0, args.nk, bkv, d, sQ, step);
  blk.vFrags =
      loadRowFragments(gargs.v, hk, blk.j0, args.nk, bkv, dv, sQ, step);
  int64_t group = cfg.hq / cfg.hkv;
  SmallVector<Value> init((d + dv) / 8 * 4, e.f32(0.0));
  SmallVector<Value> st =
      e.loop(ids.c0, cIdx(group), ids.c1, init,
             [&](Value g, ValueRange it) -> SmallVector<Value> {
               AttnThreadIds headIds = ids;
               headIds.h = e.addi(e.muli(hk, cIdx(group)), g);
               headIds.hk = hk;
               return GradDkDvStep(gcfg, b, gargs, headIds, blk).run(it);
             });
  storeRows(gargs.dk, hk, blk.j0, args.nk, unflatten(st, 0, d / 8),
            op.getEffectiveScale(), blk.acc);
  storeRows(gargs.dv, hk, blk.j0, args.nk, unflatten(st, d / 8 * 4, dv / 8),
            1.0, blk.acc);
  gpu::ReturnOp::create(b);
}

LogicalResult
mlir::attn::detail::emitGradDkDvKernel(const GradKernelConfig &cfg,
                                       gpu::GPUFuncOp func) {
  Block &entry = func.getBody().front();
  auto b = ImplicitLocOpBuilder::atBlockBegin(cfg.grad.getLoc(), &entry);
  GradKernelArgs args = bindGradArgs(cfg, entry);
  AttnThreadIds ids = bindThreadIds(cfg.fwd, b);
  GradDkDvKernel(cfg, b, args, ids)
      .emit(func.getWorkgroupAttributions()[0],
            func.getWorkgroupAttributions()[1]);
  return success();
}
