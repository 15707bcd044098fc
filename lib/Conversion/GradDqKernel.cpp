//===- GradDqKernel.cpp - the dq kernel of the attention backward ---------===//
//
// Part of attnc. See GradKernel.h. One block per (q tile, query head,
// batch), 16 query rows per warp (mma.sync m16n8k16). Phases:
//  - load: q and dO staged through shared memory into A fragments; D =
//    rowsum(dO * o) of the warp's rows from global memory, stored into the
//    workspace for the dkdv kernel; lse of the rows;
//  - the range of kv tiles the mask leaves non-empty (interval classes of
//    the forward), then per visited tile: K and V staged by cp.async,
//    S = Q K^T, P = exp(S - lse) (mask on partial tiles), dP = dO V^T,
//    dS = P (dP - D) through score_grad (capture gradients by atomics),
//    dQ += dS K;
//  - epilogue: dq = scale dQ.
// Deterministic: each dq element is summed by one thread in kv order.
//
//===----------------------------------------------------------------------===//

#include "GradKernel.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"

using namespace mlir;
using namespace mlir::attn;
using namespace mlir::attn::detail;
using arith::CmpIPredicate;

namespace {
class GradDqKernel : public GradKernelBase {
public:
  GradDqKernel(const GradKernelConfig &gcfg, ImplicitLocOpBuilder &b,
               const GradKernelArgs &gargs, AttnThreadIds ids, Value sK,
               Value sV)
      : GradKernelBase(gcfg, b, gargs, ids, gcfg.fwd.threads()), sK(sK),
        sV(sV) {}

  void emit();

private:
  /// K (and first q, dO) and V tiles of kvStep rows.
  const Value sK, sV;
  SmallVector<SmallVector<Value>> qFrags, doFrags;
  AccLayout acc;
  /// Per accumulator row (r0, r1): lse * log2 e and D.
  Value lse2[2], delta[2];

  /// D of this thread's two rows from o and dO in global memory (reduced
  /// over the quad), stored into the workspace by the quad's first lane.
  void computeDelta();
  /// [lo, hi) of the kv tiles the q tile visits.
  std::pair<Value, Value> kvRange(Value numKT, Value lastRow);
  /// One kv tile: dQ (flattened C fragments) updated.
  SmallVector<Value> tileStep(Value kt, Value cls, ValueRange dQ);
};
} // namespace

void GradDqKernel::computeDelta() {
  Value zero = e.f32(0.0);
  for (int r = 0; r < 2; ++r) {
    Value row = e.addi(ids.i0, r == 0 ? acc.r0 : acc.r1);
    Value inRange = e.cmpi(CmpIPredicate::ult, row, args.nq);
    Value safe = e.select(inRange, row, ids.c0);
    Value sum = zero;
    for (int64_t c = 0; c < cfg.dv / 8; ++c)
      for (int64_t el = 0; el < 2; ++el) {
        Value col = e.addi(cIdx(c * 8 + el), acc.lcol);
        auto load = [&](const StridedTensor &t) -> Value {
          Value off = t.offset(e, ids.bi, ids.h, safe, col);
          Value x = memref::LoadOp::create(b, t.mem, ValueRange{off});
          return arith::ExtFOp::create(b, b.getF32Type(), x);
        };
        sum = e.addf(sum, e.mulf(load(gargs.o), load(gargs.dO)));
      }
    sum = e.addf(sum, shuffleXor(b, sum, 1));
    sum = e.addf(sum, shuffleXor(b, sum, 2));
    delta[r] = e.select(inRange, sum, zero);
    lse2[r] = lse2Of(row, ids.h);
    Value first = e.cmpi(CmpIPredicate::eq, acc.lcol, ids.c0);
    e.ifThen(b.createOrFold<arith::AndIOp>(inRange, first), [&] {
      Value idx = e.addi(
          e.muli(e.addi(e.muli(ids.bi, cIdx(cfg.hq)), ids.h), args.nq), row);
      memref::StoreOp::create(b, sum, gargs.delta, ValueRange{idx});
    });
  }
}

std::pair<Value, Value> GradDqKernel::kvRange(Value numKT, Value lastRow) {
  if (!cfg.masked())
    return {ids.c0, numKT};
  int64_t step = gcfg.kvStep;
  SmallVector<Value> span =
      e.loop(ids.c0, numKT, ids.c1, {numKT, ids.c0},
             [&](Value kt, ValueRange it) -> SmallVector<Value> {
               Value j0 = e.muli(kt, cIdx(step));
               Value j1 =
                   e.subi(e.mini(e.addi(j0, cIdx(step)), args.nk), ids.c1);
               Value cls = tileClass(ids.i0, lastRow, j0, j1);
               Value nonEmpty = e.cmpi(CmpIPredicate::ne, cls, ids.c0);
               return {e.select(nonEmpty, e.mini(it[0], kt), it[0]),
                       e.select(nonEmpty, e.addi(kt, ids.c1), it[1])};
             });
  return {span[0], span[1]};
}

SmallVector<Value> GradDqKernel::tileStep(Value kt, Value cls, ValueRange dQ) {
  int64_t step = gcfg.kvStep, d = cfg.d, dv = cfg.dv;
  Value j0 = e.muli(kt, cIdx(step));
  stageRows(gargs.k, ids.hk, j0, args.nk, step, d, sK);
  stageRows(gargs.v, ids.hk, j0, args.nk, step, dv, sV);
  waitGroups(b, 0);
  gpu::BarrierOp::create(b);
  SmallVector<Frag> s = mulBt(qFrags, sK, step, d);
  SmallVector<Frag> dp = mulBt(doFrags, sV, step, dv);
  auto pos = [&](int64_t i) {
    int64_t blk = i / 4, el = i % 4;
    return ElementPos{e.addi(ids.i0, el < 2 ? acc.r0 : acc.r1),
                      e.addi(j0, e.addi(cIdx(blk * 8 + el % 2), acc.lcol))};
  };
  SmallVector<Value> raw, dpFlat;
  for (auto [f, g] : llvm::zip(s, dp)) {
    raw.append(f.begin(), f.end());
    dpFlat.append(g.begin(), g.end());
  }
  // Partial tiles, and tiles past Nq or Nk, check the mask per element.
  Value checkMask = b.createOrFold<arith::OrIOp>(
      e.cmpi(CmpIPredicate::ne, cls, cIdx(2)),
      e.cmpi(CmpIPredicate::ugt, e.addi(j0, cIdx(step)), args.nk));
  SmallVector<Value> x = scaledScores(raw, pos, checkMask);
  SmallVector<Value> ds;
  for (auto [i, xi] : llvm::enumerate(x)) {
    int r = (i % 4) / 2;
    Value p = ex2Approx(b, e.subf(xi, lse2[r]));
    ds.push_back(scoreGrad(raw[i], p, dpFlat[i], delta[r], pos(i),
                           /*captureGrads=*/true));
  }
  SmallVector<Frag> next(d / 8);
  for (int64_t nd = 0; nd < d / 8; ++nd)
    for (int64_t el = 0; el < 4; ++el)
      next[nd][el] = dQ[nd * 4 + el];
  mulB(next, ds, sK, step, d);
  gpu::BarrierOp::create(b); // every warp is done with sK and sV
  SmallVector<Value> out;
  for (const Frag &f : next)
    out.append(f.begin(), f.end());
  return out;
}

void GradDqKernel::emit() {
  int64_t d = cfg.d, dv = cfg.dv, step = gcfg.kvStep;
  acc = accLayout();
  qFrags =
      loadRowFragments(gargs.q, ids.h, ids.i0, args.nq, cfg.bq, d, sK, step);
  doFrags =
      loadRowFragments(gargs.dO, ids.h, ids.i0, args.nq, cfg.bq, dv, sK, step);
  computeDelta();
  Value numKT = e.ceilDiv(args.nk, cIdx(step));
  Value lastRow = e.subi(e.mini(e.addi(ids.i0, cIdx(cfg.bq)), args.nq), ids.c1);
  auto [lo, hi] = kvRange(numKT, lastRow);
  Value zero = e.f32(0.0);
  SmallVector<Value> init(d / 8 * 4, zero);
  SmallVector<Type> types(init.size(), b.getF32Type());
  SmallVector<Value> dQ = e.loop(
      lo, hi, ids.c1, init, [&](Value kt, ValueRange it) -> SmallVector<Value> {
        Value j0 = e.muli(kt, cIdx(step));
        Value j1 = e.subi(e.mini(e.addi(j0, cIdx(step)), args.nk), ids.c1);
        Value cls = tileClass(ids.i0, lastRow, j0, j1);
        return e.ifElse(
            e.cmpi(CmpIPredicate::ne, cls, ids.c0), types,
            [&] { return tileStep(kt, cls, it); },
            [&] { return SmallVector<Value>(it); });
      });
  SmallVector<Frag> out(d / 8);
  for (int64_t nd = 0; nd < d / 8; ++nd)
    for (int64_t el = 0; el < 4; ++el)
      out[nd][el] = dQ[nd * 4 + el];
  storeRows(gargs.dq, ids.h, ids.i0, args.nq, out, op.getEffectiveScale(), acc);
  gpu::ReturnOp::create(b);
}

LogicalResult mlir::attn::detail::emitGradDqKernel(const GradKernelConfig &cfg,
                                                   gpu::GPUFuncOp func) {
  Block &entry = func.getBody().front();
  auto b = ImplicitLocOpBuilder::atBlockBegin(cfg.grad.getLoc(), &entry);
  GradKernelArgs args = bindGradArgs(cfg, entry);
  AttnThreadIds ids = bindThreadIds(cfg.fwd, b);
  GradDqKernel(cfg, b, args, ids, func.getWorkgroupAttributions()[0],
               func.getWorkgroupAttributions()[1])
      .emit();
  return success();
}
