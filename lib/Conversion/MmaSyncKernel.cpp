//===- MmaSyncKernel.cpp - the mma.sync attention kernel ------------------===//
//
// Part of attnc. FlashAttention-2 on mma.sync m16n8k16 (sm_80 instructions,
// which Hopper runs too): one thread block per (q tile, head, batch), 16
// query rows per warp; as the split-KV kernel, one block per (packed q tile,
// kv slice, batch x kv head) (AttnKernel.h, AttnKernelConfig::splitKv).
// Phases:
//  - load: Q staged through shared memory once, held as A fragments;
//  - the range of non-empty kv tiles, then a loop over the visited tiles
//    with K and V fetched by cp.async one tile ahead (separate groups);
//  - scores: S = Q K^T, scale and score region, the mask on partial tiles;
//  - online softmax and P V (P's C fragments become A fragments);
//  - epilogue: normalize, store o and lse.
// Register fragments follow the PTX mma.m16n8k16 layouts, which the kernel
// records in its `attn.fragments` attribute:
//   A (16x16, row):  lane holds rows lane/4 and lane/4+8, cols (lane%4)*2+{0,1}
//                    and +8 (4 registers of 2 elements);
//   B (16x8, col):   lane holds k = (lane%4)*2+{0,1} (+8), n = lane/4;
//   C (16x8, f32):   lane holds row lane/4: cols (lane%4)*2+{0,1}, and the
//                    same cols of row lane/4+8.
// The C layout of S = Q K^T is reused as the A layout of P for P V.
//
//===----------------------------------------------------------------------===//

#include "AttnKernel.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/SCF/IR/SCF.h"

using namespace mlir;
using namespace mlir::attn;
using namespace mlir::attn::detail;
using arith::CmpIPredicate;

namespace {
/// What the loop over kv tiles reads and never changes.
struct LoopInvariants {
  /// Q's A fragments per 16-wide k-step.
  SmallVector<SmallVector<Value>> qFrags;
  TileRange range;
  AccLayout acc;
  Value zero;
  /// Scale folded into the exponent (no score region, positive scale).
  bool fold;
  Value qkScale;
  /// Split-KV kernels: whether this warp holds packed rows (the others only
  /// help load the tiles).
  Value warpActive;
};

/// This lane's ldmatrix rows (one block of 8 keys, or two) and column of
/// the K tile.
struct KeyFragmentIndex {
  Value row8, row, col;
};

class MmaSyncKernel : public AttnKernelBase {
public:
  MmaSyncKernel(const AttnKernelConfig &cfg, ImplicitLocOpBuilder &b,
                AttnKernelArgs args, AttnThreadIds ids, Value sK, Value sV)
      : AttnKernelBase(cfg, b, std::move(args), ids), sK(sK), sV(sV) {}

  void emit();

private:
  /// Shared tiles of K (Q first) and V, rows padded by 8 elements.
  const Value sK, sV;

  /// Q staged through sK (bkv rows at a time) into A fragments; `wrow` is
  /// this warp's first row.
  SmallVector<SmallVector<Value>> loadQueryFragments(Value wrow, Value lrow,
                                                     Value lhalf);
  TileRange tileRange();
  /// A split-KV kernel's rows (query positions of the packed rows) and kv
  /// slice.
  void splitKvRange(TileRange &range);
  /// The first visited tile at or after `from` (hi if none) and its class.
  std::pair<Value, Value> nextVisited(const TileRange &range, Value from);
  /// cp.async of kv tile `kt` of `src` into `smem` (zero-filled unless
  /// `real`), one commit group.
  void issue(Value kt, Value real, const StridedTensor &src, Value smem,
             int64_t width);
  /// One tile's scores (log2 units, masked elements -inf).
  SmallVector<Value> scores(const LoopInvariants &inv, Value j0, Value cls);
  KeyFragmentIndex keyFragmentIndex();
  /// S = Q K^T for this warp's 16 rows.
  SmallVector<Frag> qkProduct(const LoopInvariants &inv,
                              const KeyFragmentIndex &k);
  /// The softmax step and O = alpha O + P V; `st` holds the O fragments,
  /// then m and l of the two rows.
  SmallVector<Value> softmaxAndPV(const LoopInvariants &inv, ArrayRef<Value> x,
                                  ValueRange st);
  /// The loop body over visited tiles: (kt, cls, state) -> next.
  SmallVector<Value> tileStep(const LoopInvariants &inv, ValueRange it);
};
} // namespace

SmallVector<SmallVector<Value>>
MmaSyncKernel::loadQueryFragments(Value wrow, Value lrow, Value lhalf) {
  int64_t d = cfg.d, bq = cfg.bq, bkv = cfg.bkv;
  SmallVector<Value> qVec(d / 16);
  for (int64_t r0 = 0; r0 < bq; r0 += bkv) {
    int64_t rows = std::min(bkv, bq - r0);
    CpAsyncTile tile;
    tile.rows = rows;
    tile.width = d;
    tile.threads = cfg.threads();
    tile.tid = ids.tid;
    tile.zero = ids.c0;
    tile.firstRow = e.addi(ids.i0, cIdx(r0));
    tile.rowLimit = args.nq;
    tile.smem = sK;
    tile.clampTailRows = true;
    auto packedSource = [&](Value p) -> std::pair<Value, Value> {
      RowPos q = packedRow(p);
      return {q.h, q.i};
    };
    if (cfg.splitKv) {
      tile.rowLimit = e.muli(args.nq, cIdx(cfg.group()));
      tile.rowSource = packedSource;
    }
    stageTile(b, args.qT, ids.bi, ids.h, tile);
    commitGroup(b);
    waitGroups(b, 0);
    gpu::BarrierOp::create(b);
    Value inRound = b.createOrFold<arith::AndIOp>(
        e.cmpi(CmpIPredicate::uge, wrow, cIdx(r0)),
        e.cmpi(CmpIPredicate::ult, wrow, cIdx(r0 + rows)));
    Value local = e.select(inRound, e.subi(wrow, cIdx(r0)), ids.c0);
    for (int64_t kk = 0; kk < d / 16; ++kk) {
      Value f = tc.ldmatrix(
          sK, ValueRange{e.addi(local, lrow), e.addi(cIdx(kk * 16), lhalf)}, 4,
          false);
      qVec[kk] = r0 == 0 ? f : e.select(inRound, f, qVec[kk]);
    }
    gpu::BarrierOp::create(b);
  }
  SmallVector<SmallVector<Value>> qFrags;
  for (Value f : qVec)
    qFrags.push_back(tc.operands(f, 4));
  return qFrags;
}

TileRange MmaSyncKernel::tileRange() {
  TileRange range;
  Value nk = args.nk;
  range.numKT = e.ceilDiv(nk, cIdx(cfg.bkv));
  range.numQT = e.ceilDiv(args.nq, cIdx(cfg.bq));
  range.firstRow = ids.i0;
  range.lastRow = e.subi(e.mini(e.addi(ids.i0, cIdx(cfg.bq)), args.nq), ids.c1);
  range.lo = ids.c0;
  range.hi = range.numKT;
  if (cfg.splitKv)
    splitKvRange(range);
  range.firstRow = queryPosition(range.firstRow);
  range.lastRow = queryPosition(range.lastRow);
  if (!cfg.masked())
    return range;
  std::tie(range.lo, range.hi) = nonEmptySpan(
      range.lo, range.hi, [&](Value kt) { return classOf(range, kt); });
  return range;
}

void MmaSyncKernel::splitKvRange(TileRange &range) {
  // Query positions of the packed rows; the kv slice's tiles:
  // [slice * per, (slice + 1) * per) with per = ceil(numKT / slices).
  int64_t g = cfg.group();
  Value packed = e.muli(args.nq, cIdx(g));
  range.firstRow = e.divi(ids.i0, cIdx(g));
  range.lastRow = e.divi(
      e.subi(e.mini(e.addi(ids.i0, cIdx(cfg.bq)), packed), ids.c1), cIdx(g));
  Value slices = gpu::GridDimOp::create(b, gpu::Dimension::y);
  Value per = e.ceilDiv(range.numKT, slices);
  range.lo = e.mini(e.muli(ids.slice, per), range.numKT);
  range.hi = e.mini(e.addi(range.lo, per), range.numKT);
}

std::pair<Value, Value> MmaSyncKernel::nextVisited(const TileRange &range,
                                                   Value from) {
  // The loop runs over visited tiles only, so empty tiles inside the range
  // are neither loaded nor waited for, and each tile is classified once.
  if (!cfg.masked())
    return {from, cIdx(2)};
  Value c0 = ids.c0;
  if (!cfg.needsMap) {
    // Index masks: the range is tight and interval classes are a few
    // integer ops; empty tiles inside it are skipped by `visit` (their
    // prefetch is wasted, rare for affine masks). Scanning ahead here
    // costs more than it saves (measured on causal).
    Value inRange = e.cmpi(CmpIPredicate::ult, from, range.hi);
    Value cls = e.ifElse(
        inRange, {b.getIndexType()},
        [&] { return SmallVector<Value>{classOf(range, from)}; },
        [&] { return SmallVector<Value>{c0}; })[0];
    return {from, cls};
  }
  Type idxTy = b.getIndexType();
  auto w = scf::WhileOp::create(b, TypeRange{idxTy, idxTy}, ValueRange{from});
  OpBuilder::InsertionGuard guard(b);
  Block *before = b.createBlock(&w.getBefore(), {}, {idxTy}, {b.getLoc()});
  b.setInsertionPointToEnd(before);
  Value j = before->getArgument(0);
  Value inRange = e.cmpi(CmpIPredicate::ult, j, range.hi);
  Value cls = e.ifElse(
      inRange, {idxTy}, [&] { return SmallVector<Value>{classOf(range, j)}; },
      [&] { return SmallVector<Value>{c0}; })[0];
  Value more = b.createOrFold<arith::AndIOp>(
      inRange, e.cmpi(CmpIPredicate::eq, cls, c0));
  scf::ConditionOp::create(b, more, ValueRange{j, cls});
  Block *after = b.createBlock(&w.getAfter(), {}, {idxTy, idxTy},
                               {b.getLoc(), b.getLoc()});
  b.setInsertionPointToEnd(after);
  scf::YieldOp::create(b, ValueRange{e.addi(after->getArgument(0), ids.c1)});
  return {w.getResult(0), w.getResult(1)};
}

void MmaSyncKernel::issue(Value kt, Value real, const StridedTensor &src,
                          Value smem, int64_t width) {
  CpAsyncTile tile;
  tile.rows = cfg.bkv;
  tile.width = width;
  tile.threads = cfg.threads();
  tile.tid = ids.tid;
  tile.zero = ids.c0;
  tile.firstRow = e.muli(kt, cIdx(cfg.bkv));
  tile.rowLimit = e.select(real, args.nk, ids.c0);
  tile.smem = smem;
  tile.clampTailRows = true;
  auto pageRow = [&](Value row) { return pagedKeyRow(row); };
  if (op.isPaged())
    tile.pageRow = pageRow;
  stageTile(b, src, ids.bi, ids.hk, tile);
  commitGroup(b);
}

KeyFragmentIndex MmaSyncKernel::keyFragmentIndex() {
  Value lane = ids.lane;
  KeyFragmentIndex k;
  k.row8 = remui(lane, 8);
  k.row = e.addi(k.row8, e.muli(e.divi(lane, cIdx(16)), cIdx(8)));
  // In the order the kernel has always created them (the same PTX).
  Value eight = cIdx(8), two = cIdx(2);
  Value octet = e.divi(lane, cIdx(8));
  k.col = e.muli(b.createOrFold<arith::RemUIOp>(octet, two), eight);
  return k;
}

SmallVector<Frag> MmaSyncKernel::qkProduct(const LoopInvariants &inv,
                                           const KeyFragmentIndex &k) {
  int64_t nS = cfg.bkv / 8;
  Value zero = inv.zero;
  SmallVector<Frag> s(nS, Frag{zero, zero, zero, zero});
  for (int64_t nb = 0; nb < nS; nb += 2) {
    bool pair = nb + 1 < nS;
    for (int64_t kk = 0; kk < cfg.d / 16; ++kk) {
      Value f =
          tc.ldmatrix(sK,
                      ValueRange{e.addi(cIdx(nb * 8), pair ? k.row : k.row8),
                                 e.addi(cIdx(kk * 16), k.col)},
                      pair ? 4 : 2, false);
      SmallVector<Value> ops = tc.operands(f, pair ? 4 : 2);
      s[nb] = tc.mma(inv.qFrags[kk], {ops[0], ops[1]}, s[nb]);
      if (pair)
        s[nb + 1] = tc.mma(inv.qFrags[kk], {ops[2], ops[3]}, s[nb + 1]);
    }
  }
  return s;
}

SmallVector<Value> MmaSyncKernel::scores(const LoopInvariants &inv, Value j0,
                                         Value cls) {
  int64_t nS = cfg.bkv / 8;
  auto fullTile = [&] {
    Value complete =
        e.cmpi(CmpIPredicate::ule, e.addi(j0, cIdx(cfg.bkv)), args.nk);
    return b.createOrFold<arith::AndIOp>(
        complete, e.cmpi(CmpIPredicate::eq, cls, cIdx(2)));
  };
  KeyFragmentIndex k = keyFragmentIndex();
  // A rolled mask is evaluated into bits before S exists, as in the sm_90a
  // kernel.
  Value full;
  SmallVector<Value> words;
  if (rolledMask()) {
    full = fullTile();
    words = maskWords(full, j0, inv.acc, nS * 4);
  }
  SmallVector<Frag> s = qkProduct(inv, k);
  // Scores in log2 units; masked elements -inf. Full tiles (and complete
  // ones) skip the mask code.
  SmallVector<Value> flat;
  for (const Frag &f : s)
    flat.append(f.begin(), f.end());
  SmallVector<Value> scored = scoreElements(
      nS * 4, [&](int64_t i) { return flat[i]; }, j0, inv.acc, inv.fold,
      inv.qkScale);
  if (!full)
    full = fullTile();
  return applyMask(full, j0, inv.acc, scored, words);
}

SmallVector<Value> MmaSyncKernel::softmaxAndPV(const LoopInvariants &inv,
                                               ArrayRef<Value> x,
                                               ValueRange st) {
  int64_t nO = cfg.dv / 8;
  SoftmaxStep sm =
      onlineSoftmax(x, {st[nO * 4], st[nO * 4 + 1]},
                    {st[nO * 4 + 2], st[nO * 4 + 3]}, inv.fold, inv.qkScale);
  ArrayRef<Value> p = sm.p;
  SmallVector<Frag> acc(nO);
  for (int64_t nd = 0; nd < nO; ++nd)
    for (int64_t el = 0; el < 4; ++el)
      acc[nd][el] = e.mulf(st[nd * 4 + el], sm.alpha[el / 2]);
  // O += P V: P's C fragments become A fragments; one ldmatrix.x4.trans
  // gives the B fragments of two d-blocks.
  Value vrow = remui(ids.lane, 16);
  Value vcol = e.muli(e.divi(ids.lane, cIdx(16)), cIdx(8));
  for (int64_t kk = 0; kk < cfg.bkv / 16; ++kk) {
    int64_t n0 = 2 * kk, n1 = 2 * kk + 1;
    SmallVector<Value> aOps = {tc.pack(p[n0 * 4 + 0], p[n0 * 4 + 1]),
                               tc.pack(p[n0 * 4 + 2], p[n0 * 4 + 3]),
                               tc.pack(p[n1 * 4 + 0], p[n1 * 4 + 1]),
                               tc.pack(p[n1 * 4 + 2], p[n1 * 4 + 3])};
    for (int64_t nd = 0; nd < nO; nd += 2) {
      bool pair = nd + 1 < nO;
      Value f = tc.ldmatrix(
          sV,
          ValueRange{e.addi(cIdx(kk * 16), vrow),
                     pair ? e.addi(cIdx(nd * 8), vcol) : cIdx(nd * 8)},
          pair ? 4 : 2, true);
      SmallVector<Value> ops = tc.operands(f, pair ? 4 : 2);
      acc[nd] = tc.mma(aOps, {ops[0], ops[1]}, acc[nd]);
      if (pair)
        acc[nd + 1] = tc.mma(aOps, {ops[2], ops[3]}, acc[nd + 1]);
    }
  }
  SmallVector<Value> out;
  for (const Frag &f : acc)
    out.append(f.begin(), f.end());
  out.append({sm.m[0], sm.m[1], sm.l[0], sm.l[1]});
  return out;
}

SmallVector<Value> MmaSyncKernel::tileStep(const LoopInvariants &inv,
                                           ValueRange it) {
  Value kt = it[0];
  Value cls = it[1];
  ValueRange st = it.drop_front(2);
  Value j0 = e.muli(kt, cIdx(cfg.bkv));
  Value visit = e.cmpi(CmpIPredicate::ne, cls, ids.c0);
  if (inv.warpActive)
    visit = b.createOrFold<arith::AndIOp>(visit, inv.warpActive);
  SmallVector<Type> types(st.getTypes());
  auto [nextKt, nextCls] = nextVisited(inv.range, e.addi(kt, ids.c1));
  Value nextReal = e.cmpi(CmpIPredicate::ult, nextKt, inv.range.hi);
  waitGroups(b, 1); // this tile's K has landed
  gpu::BarrierOp::create(b);
  SmallVector<Type> scoreTypes(cfg.bkv / 2, b.getF32Type());
  SmallVector<Value> x = e.ifElse(
      visit, scoreTypes, [&] { return scores(inv, j0, cls); },
      [&] { return SmallVector<Value>(cfg.bkv / 2, ids.negInf); });
  gpu::BarrierOp::create(b); // every warp is done with sK
  issue(nextKt, nextReal, args.kT, sK, cfg.d);
  waitGroups(b, 1); // this tile's V has landed
  gpu::BarrierOp::create(b);
  SmallVector<Value> next = e.ifElse(
      visit, types, [&] { return softmaxAndPV(inv, x, st); },
      [&] { return SmallVector<Value>(st); });
  gpu::BarrierOp::create(b); // every warp is done with sV
  issue(nextKt, nextReal, args.vT, sV, cfg.dv);
  SmallVector<Value> out = {nextKt, nextCls};
  out.append(next.begin(), next.end());
  return out;
}

void MmaSyncKernel::emit() {
  const double log2e = 1.4426950408889634;
  LoopInvariants inv;
  // Load: Q held in registers as A fragments for the whole kernel.
  Value lrow = remui(ids.lane, 16);
  Value lhalf = e.muli(e.divi(ids.lane, cIdx(16)), cIdx(8));
  Value wrow = e.muli(ids.warp, cIdx(16));
  inv.qFrags = loadQueryFragments(wrow, lrow, lhalf);
  inv.range = tileRange();
  if (cfg.splitKv)
    inv.warpActive = e.cmpi(CmpIPredicate::ult, e.addi(ids.i0, wrow),
                            e.muli(args.nq, cIdx(cfg.group())));

  // Loop state: O fragments (dv/8 of them), row max and partial sums for
  // the two rows a lane holds.
  int64_t nO = cfg.dv / 8;
  inv.zero = e.f32(0.0);
  SmallVector<Value> init(nO * 4, inv.zero);
  init.append({ids.negInf, ids.negInf, inv.zero, inv.zero});
  inv.acc.r0 = e.addi(wrow, e.divi(ids.lane, cIdx(4)));
  inv.acc.r1 = e.addi(inv.acc.r0, cIdx(8));
  inv.acc.lcol = e.muli(remui(ids.lane, 4), cIdx(2));
  double scale = op.getEffectiveScale();
  inv.qkScale = e.f32(op.hasScoreRegion() ? scale : scale * log2e);
  inv.fold = !op.hasScoreRegion() && scale > 0;

  // Software pipeline: K and V of a tile are separate cp.async groups; the
  // next tile's K is fetched while this tile's P V runs, its V while the
  // next S = Q K^T runs. Past the last tile the copies zero-fill (no reads).
  auto [first, firstCls] = nextVisited(inv.range, inv.range.lo);
  Value firstReal = e.cmpi(CmpIPredicate::ult, first, inv.range.hi);
  issue(first, firstReal, args.kT, sK, cfg.d);
  issue(first, firstReal, args.vT, sV, cfg.dv);
  SmallVector<Value> whileInit = {first, firstCls};
  whileInit.append(init.begin(), init.end());
  SmallVector<Value> whileOut = e.whileLoop(
      whileInit,
      [&](ValueRange it) {
        return e.cmpi(CmpIPredicate::ult, it[0], inv.range.hi);
      },
      [&](ValueRange it) { return tileStep(inv, it); });
  SmallVector<Value> state(whileOut.begin() + 2, whileOut.end());
  waitGroups(b, 0);

  emitEpilogue(
      {state[nO * 4], state[nO * 4 + 1]},
      {state[nO * 4 + 2], state[nO * 4 + 3]},
      [&](int64_t i) { return state[i]; }, inv.acc);
  gpu::ReturnOp::create(b);
}

LogicalResult mlir::attn::detail::emitMmaSyncKernel(const AttnKernelConfig &cfg,
                                                    gpu::GPUFuncOp func) {
  Block &entry = func.getBody().front();
  auto b = ImplicitLocOpBuilder::atBlockBegin(cfg.op.getLoc(), &entry);
  AttnKernelArgs args = bindMainArgs(cfg, entry);
  Value sK = func.getWorkgroupAttributions()[0];
  Value sV = func.getWorkgroupAttributions()[1];
  AttnThreadIds ids = bindThreadIds(cfg, b);
  bindSequence(cfg, b, args, ids);
  MmaSyncKernel(cfg, b, std::move(args), ids, sK, sV).emit();
  return success();
}
