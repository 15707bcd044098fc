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
  /// The q and dO tiles (dkdvBuffers of each).
  Value sQ, sDO;
};

/// One q tile of one query head (`ids.h`) against the block's keys.
class GradDkDvStep : public GradKernelBase {
public:
  GradDkDvStep(const GradKernelConfig &gcfg, ImplicitLocOpBuilder &b,
               const GradKernelArgs &gargs, AttnThreadIds ids,
               const KvBlock &blk)
      : GradKernelBase(gcfg, b, gargs, ids, gcfg.dkdvThreads()), blk(blk) {}

  /// The class of q tile `i0` against the block's keys.
  Value classOf(Value i0);
  /// dK then dV (C fragments, flattened) updated by the q tile at `i0`
  /// staged in buffer `buf`.
  SmallVector<Value> tileStep(Value i0, Value cls, ValueRange st, Value buf);

private:
  const KvBlock &blk;
};

class GradDkDvKernel : public GradKernelBase {
public:
  GradDkDvKernel(const GradKernelConfig &gcfg, ImplicitLocOpBuilder &b,
                 const GradKernelArgs &gargs, AttnThreadIds ids)
      : GradKernelBase(gcfg, b, gargs, ids, gcfg.dkdvThreads()) {}

  void emit(Value sQ, Value sDO);

private:
  KvBlock blk;
  /// The q tiles [lo, hi) of the block's visits, for every head of the
  /// group (the range of the group's first head unless the mask depends on
  /// the head).
  Value qLo, qSpan;

  /// The (query head, first row) of visit `t` (head-major).
  std::pair<Value, Value> visit(Value t);
  /// cp.async of visit `t`'s q and dO rows (zero-filled unless `real`) into
  /// buffer `buf`, one commit group.
  void issueVisit(Value t, Value real, Value buf);
  void qTileRange();
  SmallVector<Value> loopStep(Value t, Value total, ValueRange st);
};
} // namespace

Value GradDkDvStep::classOf(Value i0) {
  Value i1 = e.subi(e.mini(e.addi(i0, cIdx(gcfg.qStep)), args.nq), ids.c1);
  return tileClass(i0, i1, blk.j0, blk.jLast);
}

SmallVector<Value> GradDkDvStep::tileStep(Value i0, Value cls, ValueRange st,
                                          Value buf) {
  int64_t step = gcfg.qStep, d = cfg.d, dv = cfg.dv;
  SharedTile sQ{blk.sQ, buf}, sDO{blk.sDO, buf};
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
  SmallVector<Value> raw = flattenFrags(mulBt(blk.kFrags, sQ, step, d));
  Value checkMask = b.createOrFold<arith::OrIOp>(
      e.cmpi(CmpIPredicate::ne, cls, cIdx(2)),
      b.createOrFold<arith::OrIOp>(
          e.cmpi(CmpIPredicate::ugt, e.addi(i0, cIdx(step)), args.nq),
          e.cmpi(CmpIPredicate::ugt, e.addi(blk.j0, cIdx(gcfg.bkv)), args.nk)));
  SmallVector<Value> x = scaledScores(raw, pos, checkMask);
  SmallVector<Value> p;
  for (auto [i, xi] : llvm::enumerate(x))
    p.push_back(ex2Approx(b, e.subf(xi, lse2[col(i)])));
  SmallVector<Frag> dK = unflattenFrags(st, 0, d / 8);
  SmallVector<Frag> dV = unflattenFrags(st, d / 8 * 4, dv / 8);
  mulB(dV, p, sDO, step, dv);
  SmallVector<Value> dp = flattenFrags(mulBt(blk.vFrags, sDO, step, dv));
  SmallVector<Value> ds;
  for (size_t i = 0; i < p.size(); ++i)
    ds.push_back(scoreGrad(raw[i], p[i], dp[i], delta[col(i)], pos(i),
                           /*sums=*/nullptr));
  mulB(dK, ds, sQ, step, d);
  SmallVector<Value> out = flattenFrags(dK);
  out.append(flattenFrags(dV));
  return out;
}

std::pair<Value, Value> GradDkDvKernel::visit(Value t) {
  int64_t group = cfg.hq / cfg.hkv;
  Value span =
      e.select(e.cmpi(CmpIPredicate::eq, qSpan, ids.c0), ids.c1, qSpan);
  Value g = e.divi(t, span);
  Value qt = e.addi(qLo, b.createOrFold<arith::RemUIOp>(t, span));
  return {e.addi(e.muli(ids.h, cIdx(group)), g), e.muli(qt, cIdx(gcfg.qStep))};
}

void GradDkDvKernel::issueVisit(Value t, Value real, Value buf) {
  auto [h, i0] = visit(t);
  Value limit = e.select(real, args.nq, ids.c0);
  stageRows(gargs.q, h, i0, limit, gcfg.qStep, cfg.d, {blk.sQ, buf});
  stageRows(gargs.dO, h, i0, limit, gcfg.qStep, cfg.dv, {blk.sDO, buf});
  commitGroup(b);
}

void GradDkDvKernel::qTileRange() {
  int64_t step = gcfg.qStep, group = cfg.hq / cfg.hkv;
  Value numQT = e.ceilDiv(args.nq, cIdx(step));
  qLo = ids.c0;
  qSpan = numQT;
  if (!cfg.masked() || cfg.ms.head)
    return;
  AttnThreadIds headIds = ids;
  headIds.h = e.muli(ids.h, cIdx(group));
  GradDkDvStep first(gcfg, b, gargs, headIds, blk);
  auto [lo, hi] = nonEmptySpan(ids.c0, numQT, [&](Value qt) {
    return first.classOf(e.muli(qt, cIdx(step)));
  });
  Value empty = e.cmpi(CmpIPredicate::uge, lo, hi);
  qLo = e.select(empty, ids.c0, lo);
  qSpan = e.select(empty, ids.c0, e.subi(hi, lo));
}

SmallVector<Value> GradDkDvKernel::loopStep(Value t, Value total,
                                            ValueRange st) {
  Value buf = remui(t, 2);
  Value next = e.addi(t, ids.c1);
  issueVisit(next, e.cmpi(CmpIPredicate::ult, next, total),
             e.subi(ids.c1, buf));
  waitGroups(b, 1);
  gpu::BarrierOp::create(b);
  auto [h, i0] = visit(t);
  AttnThreadIds headIds = ids;
  headIds.h = h;
  GradDkDvStep head(gcfg, b, gargs, headIds, blk);
  Value cls = head.classOf(i0);
  SmallVector<Type> types(st.getTypes());
  SmallVector<Value> out = e.ifElse(
      e.cmpi(CmpIPredicate::ne, cls, ids.c0), types,
      [&] { return head.tileStep(i0, cls, st, buf); },
      [&] { return SmallVector<Value>(st); });
  gpu::BarrierOp::create(b); // every warp is done with this buffer
  return out;
}

void GradDkDvKernel::emit(Value sQ, Value sDO) {
  int64_t d = cfg.d, dv = cfg.dv, bkv = gcfg.bkv, step = gcfg.qStep;
  // The grid is (kv tile, kv head, batch): bindThreadIds' q tile and head
  // are the kv tile and kv head here.
  Value hk = ids.h;
  blk.sQ = sQ;
  blk.sDO = sDO;
  blk.acc = accLayout();
  blk.j0 = e.muli(ids.qt, cIdx(bkv));
  blk.jLast = e.subi(e.mini(e.addi(blk.j0, cIdx(bkv)), args.nk), ids.c1);
  SharedTile stage{sQ, ids.c0};
  blk.kFrags =
      loadRowFragments(gargs.k, hk, blk.j0, args.nk, bkv, d, stage, step);
  blk.vFrags =
      loadRowFragments(gargs.v, hk, blk.j0, args.nk, bkv, dv, stage, step);
  qTileRange();
  Value total = e.muli(qSpan, cIdx(cfg.hq / cfg.hkv));
  issueVisit(ids.c0, e.cmpi(CmpIPredicate::ult, ids.c0, total), ids.c0);
  SmallVector<Value> init((d + dv) / 8 * 4, e.f32(0.0));
  SmallVector<Value> st =
      e.loop(ids.c0, total, ids.c1, init,
             [&](Value t, ValueRange it) { return loopStep(t, total, it); });
  waitGroups(b, 0);
  storeRows(gargs.dk, hk, blk.j0, args.nk, unflattenFrags(st, 0, d / 8),
            op.getEffectiveScale(), blk.acc);
  storeRows(gargs.dv, hk, blk.j0, args.nk,
            unflattenFrags(st, d / 8 * 4, dv / 8), 1.0, blk.acc);
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
