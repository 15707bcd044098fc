//===- GradKernel.cpp - shared parts of the attention backward kernels ----===//
//
// Part of attnc. See GradKernel.h.
//
//===----------------------------------------------------------------------===//

#include "GradKernel.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"

#include <limits>

using namespace mlir;
using namespace mlir::attn;
using namespace mlir::attn::detail;
using arith::CmpFPredicate;
using arith::CmpIPredicate;

static constexpr double kLog2e = 1.4426950408889634;

GradKernelArgs mlir::attn::detail::bindGradArgs(const GradKernelConfig &cfg,
                                                Block &entry) {
  GradKernelArgs args;
  unsigned a = 0;
  StridedTensor *tensors[] = {&args.q,  &args.k,  &args.v,  &args.o,
                              &args.dO, &args.dq, &args.dk, &args.dv};
  for (int i = 0; i < 5; ++i)
    tensors[i]->mem = entry.getArgument(a++);
  args.lse = entry.getArgument(a++);
  for (int i = 5; i < 8; ++i)
    tensors[i]->mem = entry.getArgument(a++);
  for (Value cap : cfg.fwd.captures)
    args.capMap.map(cap, entry.getArgument(a++));
  for (int g = 0, e = cfg.numGrads(); g < e; ++g)
    args.captureGrads.push_back(entry.getArgument(a++));
  args.delta = entry.getArgument(a++);
  if (cfg.useMap)
    args.blockMap = entry.getArgument(a++);
  args.batch = entry.getArgument(a++);
  args.nq = entry.getArgument(a++);
  args.nk = entry.getArgument(a++);
  for (StridedTensor *t : tensors)
    for (int i = 0; i < 3; ++i)
      t->strides[i] = entry.getArgument(a++);
  return args;
}

/// ldmatrix of `smem` at (row, col).
static Value ldmatrixAt(MmaSync &tc, SharedTile smem, Value row, Value col,
                        int64_t count, bool trans) {
  return tc.ldmatrix(smem.mem, ValueRange{smem.buf, row, col}, count, trans);
}

void GradKernelBase::stageRows(const StridedTensor &src, Value head,
                               Value firstRow, Value rowLimit, int64_t rows,
                               int64_t width, SharedTile smem) {
  CpAsyncTile tile;
  tile.rows = rows;
  tile.width = width;
  tile.threads = threads;
  tile.tid = ids.tid;
  tile.zero = ids.c0;
  tile.firstRow = firstRow;
  tile.rowLimit = rowLimit;
  tile.smem = smem.mem;
  tile.buffer = smem.buf;
  tile.clampTailRows = true;
  stageTile(b, src, ids.bi, head, tile);
}

SmallVector<SmallVector<Value>> GradKernelBase::loadRowFragments(
    const StridedTensor &src, Value head, Value firstRow, Value rowLimit,
    int64_t rows, int64_t width, SharedTile smem, int64_t stage) {
  Value lrow = remui(ids.lane, 16);
  Value lhalf = e.muli(e.divi(ids.lane, cIdx(16)), cIdx(8));
  Value wrow = e.muli(ids.warp, cIdx(16));
  SmallVector<Value> vecs(width / 16);
  for (int64_t r0 = 0; r0 < rows; r0 += stage) {
    int64_t n = std::min(stage, rows - r0);
    stageRows(src, head, e.addi(firstRow, cIdx(r0)), rowLimit, n, width, smem);
    commitGroup(b);
    waitGroups(b, 0);
    gpu::BarrierOp::create(b);
    Value inRound = b.createOrFold<arith::AndIOp>(
        e.cmpi(CmpIPredicate::uge, wrow, cIdx(r0)),
        e.cmpi(CmpIPredicate::ult, wrow, cIdx(r0 + n)));
    Value local = e.select(inRound, e.subi(wrow, cIdx(r0)), ids.c0);
    for (int64_t kk = 0; kk < width / 16; ++kk) {
      Value f = ldmatrixAt(tc, smem, e.addi(local, lrow),
                           e.addi(cIdx(kk * 16), lhalf), 4, false);
      vecs[kk] = r0 == 0 ? f : e.select(inRound, f, vecs[kk]);
    }
    gpu::BarrierOp::create(b);
  }
  SmallVector<SmallVector<Value>> frags;
  for (Value f : vecs)
    frags.push_back(tc.operands(f, 4));
  return frags;
}

SmallVector<Frag> GradKernelBase::mulBt(ArrayRef<SmallVector<Value>> a,
                                        SharedTile smem, int64_t n, int64_t k) {
  Value row8 = remui(ids.lane, 8);
  Value row = e.addi(row8, e.muli(e.divi(ids.lane, cIdx(16)), cIdx(8)));
  Value col = e.muli(remui(e.divi(ids.lane, cIdx(8)), 2), cIdx(8));
  Value zero = e.f32(0.0);
  SmallVector<Frag> c(n / 8, Frag{zero, zero, zero, zero});
  for (int64_t nb = 0; nb < n / 8; nb += 2) {
    bool pair = nb + 1 < n / 8;
    for (int64_t kk = 0; kk < k / 16; ++kk) {
      Value f = ldmatrixAt(tc, smem, e.addi(cIdx(nb * 8), pair ? row : row8),
                           e.addi(cIdx(kk * 16), col), pair ? 4 : 2, false);
      SmallVector<Value> ops = tc.operands(f, pair ? 4 : 2);
      c[nb] = tc.mma(a[kk], {ops[0], ops[1]}, c[nb]);
      if (pair)
        c[nb + 1] = tc.mma(a[kk], {ops[2], ops[3]}, c[nb + 1]);
    }
  }
  return c;
}

void GradKernelBase::mulB(SmallVector<Frag> &acc, ArrayRef<Value> aC,
                          SharedTile smem, int64_t k, int64_t n) {
  Value vrow = remui(ids.lane, 16);
  Value vcol = e.muli(e.divi(ids.lane, cIdx(16)), cIdx(8));
  for (int64_t kk = 0; kk < k / 16; ++kk) {
    int64_t n0 = 2 * kk, n1 = 2 * kk + 1;
    SmallVector<Value> aOps = {tc.pack(aC[n0 * 4 + 0], aC[n0 * 4 + 1]),
                               tc.pack(aC[n0 * 4 + 2], aC[n0 * 4 + 3]),
                               tc.pack(aC[n1 * 4 + 0], aC[n1 * 4 + 1]),
                               tc.pack(aC[n1 * 4 + 2], aC[n1 * 4 + 3])};
    for (int64_t nd = 0; nd < n / 8; nd += 2) {
      bool pair = nd + 1 < n / 8;
      Value f = ldmatrixAt(tc, smem, e.addi(cIdx(kk * 16), vrow),
                           pair ? e.addi(cIdx(nd * 8), vcol) : cIdx(nd * 8),
                           pair ? 4 : 2, true);
      SmallVector<Value> ops = tc.operands(f, pair ? 4 : 2);
      acc[nd] = tc.mma(aOps, {ops[0], ops[1]}, acc[nd]);
      if (pair)
        acc[nd + 1] = tc.mma(aOps, {ops[2], ops[3]}, acc[nd + 1]);
    }
  }
}

Value GradKernelBase::tileClass(Value i0, Value i1, Value j0, Value j1) {
  if (!cfg.masked())
    return cIdx(2);
  if (!gcfg.useMap)
    return classify(queryPosition(i0), queryPosition(i1), j0, j1);
  // The block map's classes of the map tiles covering the tile: empty if
  // all are, full if all are, else partial.
  int64_t mq = gcfg.mapCfg.bq, mk = gcfg.mapCfg.bkv;
  Value numQT = e.ceilDiv(args.nq, cIdx(mq)),
        numKT = e.ceilDiv(args.nk, cIdx(mk));
  Value qt0 = e.divi(i0, cIdx(mq)), qt1 = e.divi(i1, cIdx(mq));
  Value kt0 = e.divi(j0, cIdx(mk)), kt1 = e.divi(j1, cIdx(mk));
  SmallVector<Value> span = e.loop(
      qt0, e.addi(qt1, ids.c1), ids.c1, {cIdx(2), ids.c0},
      [&](Value qt, ValueRange it) {
        return e.loop(kt0, e.addi(kt1, ids.c1), ids.c1, it,
                      [&](Value kt, ValueRange acc) -> SmallVector<Value> {
                        Value c = mapClass(qt, kt, numQT, numKT);
                        return {e.mini(acc[0], c),
                                e.select(e.cmpi(CmpIPredicate::ugt, c, acc[1]),
                                         c, acc[1])};
                      });
      });
  Value allEmpty = e.cmpi(CmpIPredicate::eq, span[1], ids.c0);
  Value allFull = e.cmpi(CmpIPredicate::eq, span[0], cIdx(2));
  return e.select(allEmpty, ids.c0, e.select(allFull, cIdx(2), ids.c1));
}

SmallVector<Value>
GradKernelBase::scaledScores(ArrayRef<Value> raw,
                             llvm::function_ref<ElementPos(int64_t)> pos,
                             Value checkMask) {
  double scale = op.getEffectiveScale();
  SmallVector<Value> x;
  for (auto [i, r] : llvm::enumerate(raw)) {
    if (!op.hasScoreRegion()) {
      x.push_back(e.mulf(r, e.f32(scale * kLog2e)));
      continue;
    }
    ElementPos p = pos(i);
    Value s = inlineRegion(op.getScore(), {e.mulf(r, e.f32(scale)), ids.bi,
                                           ids.h, queryPosition(p.qi), p.kj});
    x.push_back(e.mulf(s, e.f32(kLog2e)));
  }
  SmallVector<Type> types(x.size(), b.getF32Type());
  auto masked = [&] {
    SmallVector<Value> out;
    for (auto [i, v] : llvm::enumerate(x)) {
      ElementPos p = pos(i);
      Value keep = b.createOrFold<arith::AndIOp>(
          e.cmpi(CmpIPredicate::ult, p.qi, args.nq),
          e.cmpi(CmpIPredicate::ult, p.kj, args.nk));
      if (cfg.masked())
        keep = b.createOrFold<arith::AndIOp>(keep,
                                             maskAt(queryPosition(p.qi), p.kj));
      out.push_back(e.select(keep, v, ids.negInf));
    }
    return out;
  };
  return e.ifElse(checkMask, types, masked,
                  [&] { return SmallVector<Value>(x); });
}

SiteSums::SiteSums(ImplicitLocOpBuilder &b, ArrayRef<Value> targets, Value lane)
    : b(b), e(b), lane(lane) {
  for (Value mem : targets) {
    Run r;
    r.mem = mem;
    r.acc = e.f32(0.0);
    r.has = e.i1(false);
    r.idx.assign(cast<MemRefType>(mem.getType()).getRank(), e.idx(0));
    runs.push_back(r);
  }
}

void SiteSums::atomicAdd(const Run &r, Value val, ValueRange idx) {
  memref::AtomicRMWOp::create(b, arith::AtomicRMWKind::addf, val, r.mem, idx);
}

void SiteSums::add(unsigned grad, Value live, Value val, ValueRange idx) {
  Run &r = runs[grad];
  Value same = r.has;
  for (auto [a, c] : llvm::zip(idx, r.idx))
    same = b.createOrFold<arith::AndIOp>(same, e.cmpi(CmpIPredicate::eq, a, c));
  Value notSame = b.createOrFold<arith::XOrIOp>(same, e.i1(true));
  Value flush = b.createOrFold<arith::AndIOp>(
      live, b.createOrFold<arith::AndIOp>(r.has, notSame));
  Run old = r;
  e.ifThen(flush, [&] { atomicAdd(old, old.acc, old.idx); });
  r.acc = e.select(live, e.select(same, e.addf(r.acc, val), val), r.acc);
  for (auto [c, a] : llvm::zip(r.idx, idx))
    c = e.select(live, a, c);
  r.has = b.createOrFold<arith::OrIOp>(r.has, live);
}

void SiteSums::finish() {
  Type i32 = b.getI32Type();
  for (Run &r : runs) {
    // One i32 key per gradient element; -1 for a lane without a sum.
    auto type = cast<MemRefType>(r.mem.getType());
    Value flat = e.idx(0);
    for (auto [d, i] : llvm::enumerate(r.idx))
      flat = e.addi(e.muli(flat, e.idx(type.getDimSize(d))), i);
    Value key = e.select(r.has, arith::IndexCastOp::create(b, i32, flat),
                         arith::ConstantIntOp::create(b, i32, -1));
    // The warp agrees when the minimum and maximum keys are equal and
    // valid.
    Value lo = key, hi = key;
    for (int32_t m = 1; m < 32; m *= 2) {
      lo = arith::MinSIOp::create(b, lo, shuffleXor(b, lo, m));
      hi = arith::MaxSIOp::create(b, hi, shuffleXor(b, hi, m));
    }
    Value uniform = b.createOrFold<arith::AndIOp>(
        e.cmpi(CmpIPredicate::eq, lo, hi),
        e.cmpi(CmpIPredicate::sge, lo,
               arith::ConstantIntOp::create(b, i32, 0)));
    Value sum = r.acc;
    for (int32_t m = 1; m < 32; m *= 2)
      sum = e.addf(sum, shuffleXor(b, sum, m));
    Value leader = e.cmpi(CmpIPredicate::eq, lane, e.idx(0));
    Value one = b.createOrFold<arith::AndIOp>(uniform, leader);
    Value own = b.createOrFold<arith::AndIOp>(
        b.createOrFold<arith::XOrIOp>(uniform, e.i1(true)), r.has);
    e.ifThen(one, [&] { atomicAdd(r, sum, r.idx); });
    e.ifThen(own, [&] { atomicAdd(r, r.acc, r.idx); });
  }
}

Value GradKernelBase::scoreGrad(Value raw, Value p, Value dp, Value delta,
                                ElementPos pos, SiteSums *sums) {
  Value zero = e.f32(0.0);
  Value dsOut = e.mulf(p, e.subf(dp, delta));
  if (!grad.hasScoreRegion())
    return dsOut;
  double scale = op.getEffectiveScale();
  IRMapping map;
  Region &region = grad.getScoreGrad();
  inlineRegion(
      region,
      {e.mulf(raw, e.f32(scale)), ids.bi, ids.h, queryPosition(pos.qi), pos.kj},
      map);
  SmallVector<Value> g;
  for (Value y : region.front().getTerminator()->getOperands())
    g.push_back(map.lookupOrDefault(y));
  Value live = e.cmpf(CmpFPredicate::ONE, p, zero);
  unsigned at = 1;
  for (int64_t c : grad.getCaptureSites()) {
    Value capture = grad.getCaptures()[c];
    int pos = gcfg.gradOfCapture[llvm::find(cfg.captures, capture) -
                                 cfg.captures.begin()];
    int64_t rank =
        cast<MemRefType>(gargs.captureGrads[pos].getType()).getRank();
    SmallVector<Value> idx(g.begin() + at + 1, g.begin() + at + 1 + rank);
    if (sums)
      sums->add(pos, live, e.mulf(dsOut, g[at]), idx);
    at += 1 + rank;
  }
  return e.select(live, e.mulf(dsOut, g[0]), zero);
}

Value GradKernelBase::rowValue(Value mem, Value qi, Value h) {
  Value inRange = e.cmpi(CmpIPredicate::ult, qi, args.nq);
  Value safe = e.select(inRange, qi, ids.c0);
  Value idx =
      e.addi(e.muli(e.addi(e.muli(ids.bi, cIdx(cfg.hq)), h), args.nq), safe);
  return memref::LoadOp::create(b, mem, ValueRange{idx});
}

Value GradKernelBase::lse2Of(Value qi, Value h) {
  Value inf = e.f32(std::numeric_limits<double>::infinity());
  Value lse = rowValue(gargs.lse, qi, h);
  Value dead =
      b.createOrFold<arith::OrIOp>(e.cmpi(CmpIPredicate::uge, qi, args.nq),
                                   e.cmpf(CmpFPredicate::OEQ, lse, ids.negInf));
  return e.select(dead, inf, e.mulf(lse, e.f32(kLog2e)));
}

Value GradKernelBase::deltaOf(Value qi, Value h) {
  Value d = rowValue(gargs.delta, qi, h);
  return e.select(e.cmpi(CmpIPredicate::ult, qi, args.nq), d, e.f32(0.0));
}

void GradKernelBase::storeRows(const StridedTensor &dst, Value head,
                               Value rowBase, Value limit, ArrayRef<Frag> acc,
                               double scale, const AccLayout &layout) {
  Type elem = cfg.elem;
  for (int r = 0; r < 2; ++r) {
    Value row = e.addi(rowBase, r == 0 ? layout.r0 : layout.r1);
    e.ifThen(e.cmpi(CmpIPredicate::ult, row, limit), [&] {
      for (auto [nd, f] : llvm::enumerate(acc)) {
        Value x0 = e.mulf(f[2 * r], e.f32(scale));
        Value x1 = e.mulf(f[2 * r + 1], e.f32(scale));
        Value pair = vector::FromElementsOp::create(
            b, VectorType::get({2}, elem),
            ValueRange{arith::TruncFOp::create(b, elem, x0),
                       arith::TruncFOp::create(b, elem, x1)});
        Value off = dst.offset(e, ids.bi, head, row,
                               e.addi(cIdx(int64_t(nd) * 8), layout.lcol));
        vector::StoreOp::create(b, pair, dst.mem, ValueRange{off});
      }
    });
  }
}

AccLayout GradKernelBase::accLayout() {
  AccLayout acc;
  acc.r0 = e.addi(e.muli(ids.warp, cIdx(16)), e.divi(ids.lane, cIdx(4)));
  acc.r1 = e.addi(acc.r0, cIdx(8));
  acc.lcol = e.muli(remui(ids.lane, 4), cIdx(2));
  return acc;
}

AttnKernelArgs mlir::attn::detail::forwardArgsOf(const GradKernelArgs &g) {
  AttnKernelArgs a;
  a.q = g.q.mem;
  a.k = g.k.mem;
  a.v = g.v.mem;
  a.qT = g.q;
  a.kT = g.k;
  a.vT = g.v;
  a.oT = g.o;
  a.lse = g.lse;
  a.batch = g.batch;
  a.nq = g.nq;
  a.nk = g.nk;
  a.capMap = g.capMap;
  a.blockMap = g.blockMap;
  return a;
}

SmallVector<Value> mlir::attn::detail::flattenFrags(ArrayRef<Frag> frags) {
  SmallVector<Value> out;
  for (const Frag &f : frags)
    out.append(f.begin(), f.end());
  return out;
}

SmallVector<Frag> mlir::attn::detail::unflattenFrags(ValueRange v, size_t from,
                                                     int64_t n) {
  SmallVector<Frag> out(n);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t el = 0; el < 4; ++el)
      out[i][el] = v[from + i * 4 + el];
  return out;
}
