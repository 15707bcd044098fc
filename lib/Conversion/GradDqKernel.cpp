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
               Value sV, ValueRange sharedGrads)
      : GradKernelBase(gcfg, b, gargs, ids, gcfg.fwd.threads()), sK(sK), sV(sV),
        sharedGrads(sharedGrads) {}

  void emit();

private:
  /// K (and first q, dO) and V tiles of kvStep rows, dqBuffers of each.
  const Value sK, sV;
  /// Shared copies of the capture gradients (sharedCaptureGrads), else
  /// empty.
  SmallVector<Value> sharedGrads;
  SmallVector<SmallVector<Value>> qFrags, doFrags;
  AccLayout acc;
  /// Per accumulator row (r0, r1): lse * log2 e and D.
  Value lse2[2], delta[2];

  /// D of this thread's two rows from o and dO in global memory (reduced
  /// over the quad), stored into the workspace by the quad's first lane.
  void computeDelta();
  /// Calls `body` with the indices of every element of `mem` (a static
  /// shape) this thread owns (a block-strided loop).
  void forOwnElements(Value mem, llvm::function_ref<void(ValueRange)> body);
  /// Zeroes the shared copies of the capture gradients and redirects
  /// scoreGrad's atomics to them.
  void privatizeCaptureGrads();
  /// Adds the shared copies' nonzero elements into the global gradients.
  void flushCaptureGrads();
  /// [lo, hi) of the kv tiles the q tile visits.
  std::pair<Value, Value> kvRange(Value numKT, Value lastRow);
  /// cp.async of kv tile `kt` (zero-filled unless `real`) into buffer
  /// `buf`, one commit group.
  void issueTile(Value kt, Value real, Value buf);
  /// One visited kv tile in buffer `buf`: dQ (flattened C fragments)
  /// updated.
  SmallVector<Value> tileStep(Value kt, Value cls, ValueRange dQ, Value buf);
  /// The loop body over [lo, hi): fetch, classify, compute.
  SmallVector<Value> loopStep(Value kt, Value lo, Value hi, Value lastRow,
                              ValueRange dQ);
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
  return nonEmptySpan(ids.c0, numKT, [&](Value kt) {
    Value j0 = e.muli(kt, cIdx(step));
    Value j1 = e.subi(e.mini(e.addi(j0, cIdx(step)), args.nk), ids.c1);
    return tileClass(ids.i0, lastRow, j0, j1);
  });
}

void GradDqKernel::issueTile(Value kt, Value real, Value buf) {
  int64_t step = gcfg.kvStep;
  Value j0 = e.muli(kt, cIdx(step));
  Value limit = e.select(real, args.nk, ids.c0);
  stageRows(gargs.k, ids.hk, j0, limit, step, cfg.d, {sK, buf});
  stageRows(gargs.v, ids.hk, j0, limit, step, cfg.dv, {sV, buf});
  commitGroup(b);
}

SmallVector<Value> GradDqKernel::tileStep(Value kt, Value cls, ValueRange dQ,
                                          Value buf) {
  int64_t step = gcfg.kvStep, d = cfg.d, dv = cfg.dv;
  Value j0 = e.muli(kt, cIdx(step));
  SmallVector<Frag> s = mulBt(qFrags, {sK, buf}, step, d);
  SmallVector<Frag> dp = mulBt(doFrags, {sV, buf}, step, dv);
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
  // Partial tiles, and tiles past Nk, check the mask per element.
  Value checkMask = b.createOrFold<arith::OrIOp>(
      e.cmpi(CmpIPredicate::ne, cls, cIdx(2)),
      e.cmpi(CmpIPredicate::ugt, e.addi(j0, cIdx(step)), args.nk));
  SmallVector<Value> x = scaledScores(raw, pos, checkMask);
  SmallVector<Value> ds;
  SiteSums sums(b, gradTargets, ids.lane);
  for (auto [i, xi] : llvm::enumerate(x)) {
    int r = (i % 4) / 2;
    Value p = ex2Approx(b, e.subf(xi, lse2[r]));
    ds.push_back(scoreGrad(raw[i], p, dpFlat[i], delta[r], pos(i), &sums));
  }
  sums.finish();
  SmallVector<Frag> next = unflattenFrags(dQ, 0, d / 8);
  mulB(next, ds, {sK, buf}, step, d);
  return flattenFrags(next);
}

SmallVector<Value> GradDqKernel::loopStep(Value kt, Value lo, Value hi,
                                          Value lastRow, ValueRange dQ) {
  int64_t step = gcfg.kvStep;
  Value buf = ids.c0;
  if (gcfg.dqBuffers == 2) {
    // The next tile's K and V land in the other buffer while this one is
    // computed (past the last tile the copies zero-fill and read nothing).
    buf = remui(e.subi(kt, lo), 2);
    Value next = e.addi(kt, ids.c1);
    issueTile(next, e.cmpi(CmpIPredicate::ult, next, hi), e.subi(ids.c1, buf));
    waitGroups(b, 1);
  } else {
    issueTile(kt, e.i1(true), buf);
    waitGroups(b, 0);
  }
  gpu::BarrierOp::create(b);
  Value j0 = e.muli(kt, cIdx(step));
  Value j1 = e.subi(e.mini(e.addi(j0, cIdx(step)), args.nk), ids.c1);
  Value cls = tileClass(ids.i0, lastRow, j0, j1);
  SmallVector<Type> types(dQ.getTypes());
  SmallVector<Value> out = e.ifElse(
      e.cmpi(CmpIPredicate::ne, cls, ids.c0), types,
      [&] { return tileStep(kt, cls, dQ, buf); },
      [&] { return SmallVector<Value>(dQ); });
  gpu::BarrierOp::create(b); // every warp is done with this buffer
  return out;
}

void GradDqKernel::forOwnElements(Value mem,
                                  llvm::function_ref<void(ValueRange)> body) {
  auto type = cast<MemRefType>(mem.getType());
  Value n = cIdx(type.getNumElements());
  e.loop(ids.tid, n, cIdx(threads), {},
         [&](Value flat, ValueRange) -> SmallVector<Value> {
           SmallVector<Value> idx(type.getRank());
           Value rest = flat;
           for (int64_t d = type.getRank() - 1; d >= 0; --d) {
             idx[d] = remui(rest, type.getDimSize(d));
             rest = e.divi(rest, cIdx(type.getDimSize(d)));
           }
           body(idx);
           return {};
         });
}

void GradDqKernel::privatizeCaptureGrads() {
  if (sharedGrads.empty())
    return;
  Value zero = e.f32(0.0);
  for (Value mem : sharedGrads)
    forOwnElements(mem, [&](ValueRange idx) {
      memref::StoreOp::create(b, zero, mem, idx);
    });
  gpu::BarrierOp::create(b);
  gradTargets.assign(sharedGrads.begin(), sharedGrads.end());
}

void GradDqKernel::flushCaptureGrads() {
  if (sharedGrads.empty())
    return;
  gpu::BarrierOp::create(b);
  Value zero = e.f32(0.0);
  for (auto [local, global] : llvm::zip(sharedGrads, gargs.captureGrads))
    forOwnElements(local, [&](ValueRange idx) {
      Value x = memref::LoadOp::create(b, local, idx);
      e.ifThen(e.cmpf(arith::CmpFPredicate::ONE, x, zero), [&] {
        memref::AtomicRMWOp::create(b, arith::AtomicRMWKind::addf, x, global,
                                    idx);
      });
    });
}

void GradDqKernel::emit() {
  int64_t d = cfg.d, dv = cfg.dv, step = gcfg.kvStep;
  acc = accLayout();
  SharedTile stage{sK, ids.c0};
  qFrags =
      loadRowFragments(gargs.q, ids.h, ids.i0, args.nq, cfg.bq, d, stage, step);
  doFrags = loadRowFragments(gargs.dO, ids.h, ids.i0, args.nq, cfg.bq, dv,
                             stage, step);
  computeDelta();
  privatizeCaptureGrads();
  Value numKT = e.ceilDiv(args.nk, cIdx(step));
  Value lastRow = e.subi(e.mini(e.addi(ids.i0, cIdx(cfg.bq)), args.nq), ids.c1);
  auto [lo, hi] = kvRange(numKT, lastRow);
  if (gcfg.dqBuffers == 2)
    issueTile(lo, e.cmpi(CmpIPredicate::ult, lo, hi), ids.c0);
  SmallVector<Value> init(d / 8 * 4, e.f32(0.0));
  SmallVector<Value> dQ =
      e.loop(lo, hi, ids.c1, init, [&](Value kt, ValueRange it) {
        return loopStep(kt, lo, hi, lastRow, it);
      });
  waitGroups(b, 0);
  flushCaptureGrads();
  storeRows(gargs.dq, ids.h, ids.i0, args.nq, unflattenFrags(dQ, 0, d / 8),
            op.getEffectiveScale(), acc);
  gpu::ReturnOp::create(b);
}

LogicalResult mlir::attn::detail::emitGradDqKernel(const GradKernelConfig &cfg,
                                                   gpu::GPUFuncOp func) {
  Block &entry = func.getBody().front();
  auto b = ImplicitLocOpBuilder::atBlockBegin(cfg.grad.getLoc(), &entry);
  GradKernelArgs args = bindGradArgs(cfg, entry);
  AttnThreadIds ids = bindThreadIds(cfg.fwd, b);
  if (cfg.fwd.masked()) {
    // The last q tiles first: under causal-like masks they visit the most
    // kv tiles, and the light ones then fill the last wave.
    Emitter e(b);
    Value numQT = e.ceilDiv(args.nq, e.idx(cfg.fwd.bq));
    ids.qt = e.subi(e.subi(numQT, ids.c1), ids.qt);
    ids.i0 = e.muli(ids.qt, e.idx(cfg.fwd.bq));
  }
  ArrayRef<BlockArgument> shared = func.getWorkgroupAttributions();
  GradDqKernel(cfg, b, args, ids, shared[0], shared[1], shared.drop_front(2))
      .emit();
  return success();
}
