//===- ChunkedKernel.cpp - the chunked linear-attention kernel ------------===//
//
// Part of attnc. See LinearToGPU.h and docs/linear-gpu.md.
//
// The chunked algorithm, per (batch b, head h, Dv slice): chunks of C = 64
// tokens walked in order (reverse order for the backward sweep of a
// bidirectional scan) by one thread block of 4 warps; the F x Dv_slice
// state S lives in registers (f32, warp w owns feature rows
// [w F/4, (w+1) F/4)) and, rounded to the input type, in shared memory for
// the product with the queries. With cumulative log-gates L (inside the
// chunk, in log2 units):
//   A     = (phi(Q) phi(K)^T) . causal . exp2(L_i - L_j)        (16 rows/warp)
//   O     = exp2(L_i) (phi(Q) S) + A V
//   S    <- exp2(L_last) S + (phi(K) . exp2(L_last - L_j))^T V
// (backward sweep: keys j > i, exp2(L_j - L_i), exp2(L_last - L_i) on the
// state term, exp2(L_j) on the update). The next chunk's Q, K, V tiles are
// fetched with cp.async while this one is computed (two buffers). With
// `normalize` the value tile gets a column of ones, so the same mma
// instructions carry the normalizer sum (and z = sum phi(k) in the state).
// Register fragments follow the PTX mma.m16n8k16 layouts (see
// MmaSyncKernel.cpp): A (row) from ldmatrix.x4, B (col) from
// ldmatrix(.trans), C in f32; phi(K)^T as the A operand of the state update
// comes from ldmatrix.x4.trans of the row-major K tile.
// GLA (per-token, per-feature log-gates [B, H, N, F]): the f32 gate tile is
// staged with the chunk and scanned per feature (L, cumulative from the
// chunk start); Q and K are scaled in shared memory by exp2(L_i) and
// exp2(-L_j) (chunk-start reference), so the scores need only the causal
// mask, and S <- diag(exp2(L_last)) (S + K~^T V). Exact while each chunk's
// cumulative log-gate stays >= about -70 nats (docs/linear-gpu.md).
//
// Phases of a chunk: load (tiles of the next chunk, gates, feature maps in
// place), scores (Q K^T), mask (causal and decay), the inter-chunk output
// (phi(Q) S), A V, the epilogue (o, normalizer, the bidirectional scratch)
// and the state update.
//
//===----------------------------------------------------------------------===//

#include "LinearKernel.h"
#include "TensorCore.h"

#include "attnc/Transforms/LoweringUtils.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/IR/IRMapping.h"

using namespace mlir;
using namespace mlir::attn;
using namespace mlir::attn::detail;
using arith::CmpIPredicate;

namespace {
/// The chunked kernel's configuration, fixed before any IR is emitted.
struct ChunkedConfig {
  ChunkedConfig(const LinearSpec &s, int64_t dvs)
      : s(s), dvs(dvs), elem(s.elem), nV(dvs / 8 + (s.normalize ? 1 : 0)),
        mTile(s.d / (16 * kWarps)) {}

  const LinearSpec &s;
  /// Value columns per block (the Dv slice).
  int64_t dvs;
  Type elem;
  /// n-tiles of 8 in the value/state/output tiles (one more for the
  /// normalizer's column of ones).
  int64_t nV;
  /// State m-tiles of 16 rows per warp.
  int64_t mTile;

  /// Scalar gates ([H] or [B, H, N]); GLA's are folded into Q and K.
  bool gated() const { return s.kind == Decay::Head || s.kind == Decay::Token; }
  /// GLA's per-feature gates.
  bool dimGates() const { return s.kind == Decay::TokenDim; }
  /// Bidirectional with normalize: o = (num_f + num_b) / (den_f + den_b)
  /// through the caller's scratch.
  bool biNorm() const { return s.normalize && !s.causal; }
};

/// The kernel's arguments.
struct ChunkedArgs {
  StridedTensor q, k, v, o;
  /// The gates: [H] or, with strides, [B, H, N] / [B, H, N, F].
  StridedTensor g;
  Value init, fin, scratch, batch, n;
};

/// Constants and the thread and block indices.
struct ChunkedIds {
  Value c0, c1;
  /// N == the token order's length (null without an order).
  Value orderOn;
  Value tid, lane, warp, g4, t4;
  /// The Dv slice (the grid's x), the head (y), the batch (z), the kv head,
  /// the slice's first column and, for per-head gates, the head's gate.
  Value slice, hi, bi, hkv, dv0, gHead;
};

/// Shared memory: Q, K, V tiles (two buffers each), the state, the
/// cumulative gates; rows padded by 8 elements against bank conflicts.
struct ChunkedSmem {
  Value sQ, sK, sV, sS, sL;
  /// GLA's per-feature gates [2][C][D].
  Value sG;
  /// The same tiles as 32-bit words.
  Value sQw, sKw, sVw, sSw;
};

/// One chunk of a sweep: its position and buffers, then the values its
/// phases share, in the order the phases emit them.
struct Chunk {
  bool fwd;
  Value zero;
  Value t0, buf, nbuf;
  /// This warp's first row, the scalar gates of the chunk's last row and of
  /// this thread's two rows.
  Value wrow, lastL, rowL[2];
  /// Lane offsets of the ldmatrix addresses.
  Value lhalf, krow, kcol, vrow, lcol;
  /// Q's A fragments per 16-wide k-step.
  SmallVector<SmallVector<Value>> qf;
  /// The intra-chunk scores (then A), per n-block of 8 keys.
  SmallVector<Frag> sc;
  /// The output accumulators per n-tile.
  SmallVector<Frag> acc;
};

class ChunkedKernel {
public:
  ChunkedKernel(const ChunkedConfig &cfg, ImplicitLocOpBuilder &b,
                ChunkedArgs args, ChunkedIds ids, ChunkedSmem smem)
      : cfg(cfg), s(cfg.s), b(b), e(b), tc(b, cfg.elem), args(args), ids(ids),
        smem(smem) {}

  void emit();

private:
  const ChunkedConfig &cfg;
  const LinearSpec &s;
  ImplicitLocOpBuilder &b;
  Emitter e;
  MmaSync tc;
  const ChunkedArgs args;
  const ChunkedIds ids;
  const ChunkedSmem smem;

  Value cIdx(int64_t x) { return e.idx(x); }
  Value remu(Value x, int64_t m) {
    return b.createOrFold<arith::RemUIOp>(x, cIdx(m));
  }
  Value ex2(Value x) { return ex2Approx(b, x); }
  Value i32(Value idx) {
    return arith::IndexCastOp::create(b, b.getI32Type(), idx);
  }
  Frag zeroFrag() {
    Value z = e.f32(0.0);
    return {z, z, z, z};
  }
  /// The storage row of scan position `pos` (tokenRow).
  Value tok(Value pos) {
    Emitter te(b);
    return tokenRow(b, te, s.order, ids.orderOn, pos);
  }
  /// ldmatrix at `idx` of `tile`: the registers as mma operands.
  SmallVector<Value> ldmOperands(Value tile, ValueRange idx, int64_t count,
                                 bool trans) {
    return tc.operands(tc.ldmatrix(tile, idx, count, trans), count);
  }

  /// A register pair scaled elementwise by (w0, w1), as an mma operand.
  Value scalePair(Value pair, Value w0, Value w1) {
    Type v2f = VectorType::get({2}, b.getF32Type());
    Value x = arith::ExtFOp::create(b, v2f, pair);
    Value w = vector::FromElementsOp::create(b, v2f, ValueRange{w0, w1});
    Value y = arith::MulFOp::create(b, x, w);
    return tc.operand(
        arith::TruncFOp::create(b, VectorType::get({2}, cfg.elem), y));
  }

  // Setup.
  /// The column of ones after the value columns of both V buffers.
  void initOnesColumn();
  /// The state's offset in the [B, H, F, Dv] initial / final state.
  Value stateOffset(int64_t mt, int64_t nd, int rr);
  SmallVector<Value> loadInitialState();
  void storeFinalState(ArrayRef<Value> state);

  // Load.
  /// cp.async of rows [r0, r0 + C) (zero-filled from row `limit` on) of
  /// `src`'s head `head` into smem[buf]; with a token order (and `permute`)
  /// the row read is the token's storage row.
  void stage(const StridedTensor &src, Value head, Value r0, Value limit,
             Value col0, Value tile, Value buf, int64_t width,
             bool permute = true);
  void issueChunk(Value t0, Value real, Value buf);
  /// Applies a feature-map region to one f32 element: every op is applied
  /// to scalars (the region is elementwise, checked before).
  Value applyScalar(Region &r, Value x, Value t);
  /// phi (and the query scale) applied in place to the Q and K tiles of
  /// buffer `buf`; rows at or past n become 0.
  void transformTiles(Value buf, Value t0);
  /// GLA: the raw per-feature log-gates of buffer `buf` become cumulative
  /// log2-gates inside the chunk, in place (one thread per feature).
  void cumFeatureGates(Value buf);
  /// Gates of chunk rows 2 lane, 2 lane + 1 (0 past n), loaded now.
  std::pair<Value, Value> loadGates(Value t0, Value real);
  /// Cumulative log2-gates of the chunk into sL[buf] (warp 0 writes).
  void storeCumGates(std::pair<Value, Value> g, Value buf);
  /// The state fragments into sS, rounded to the element type.
  void storeStateSmem(ArrayRef<Value> state);

  // Phases of a chunk.
  /// Load: the next chunk's tiles are issued, this chunk's are waited for
  /// and transformed; returns the next chunk's gates.
  std::pair<Value, Value> beginChunk(Chunk &ch, Value r, Value chunks,
                                     Value cC);
  void chunkGates(Chunk &ch);
  void queryFragments(Chunk &ch);
  /// Whether key block pair `p` (16 keys) meets this warp's rows.
  Value pairNeeded(const Chunk &ch, int64_t p);
  void intraScores(Chunk &ch);
  void maskAndDecay(Chunk &ch);
  void interChunkOutput(Chunk &ch);
  void accumulateAV(Chunk &ch);
  void storeOutput(const Chunk &ch);
  void storeOutputRow(const Chunk &ch, int rr);
  void updateState(const Chunk &ch, SmallVectorImpl<Value> &S);
  /// One 16-key step of the state update.
  void stateUpdateStep(const Chunk &ch, int64_t kk, SmallVectorImpl<Value> &S);
  /// One sweep over the chunks; returns the final state registers.
  SmallVector<Value> sweep(bool forward, SmallVector<Value> state);
};
} // namespace

void ChunkedKernel::stage(const StridedTensor &src, Value head, Value r0,
                          Value limit, Value col0, Value tile, Value buf,
                          int64_t width, bool permute) {
  CpAsyncTile t;
  t.rows = kChunk;
  t.width = width;
  t.colOffset = col0;
  t.threads = kThreads;
  t.tid = ids.tid;
  t.zero = ids.c0;
  t.firstRow = r0;
  t.rowLimit = limit;
  t.smem = tile;
  t.buffer = buf;
  auto storage = [&](Value pos) { return tok(pos); };
  if (permute)
    t.storageRow = storage;
  stageTile(b, src, ids.bi, head, t);
}

void ChunkedKernel::issueChunk(Value t0, Value real, Value buf) {
  Value limit = e.select(real, args.n, ids.c0);
  Value c0 = ids.c0;
  // The feature kernel's workspaces are already in scan order.
  stage(args.q, ids.hi, t0, limit, c0, smem.sQ, buf, s.d, !s.workspace);
  stage(args.k, ids.hkv, t0, limit, c0, smem.sK, buf, s.d, !s.workspace);
  stage(args.v, ids.hkv, t0, limit, ids.dv0, smem.sV, buf, cfg.dvs);
  if (cfg.dimGates())
    stage(args.g, ids.hi, t0, limit, c0, smem.sG, buf, s.d);
  commitGroup(b);
}
Value ChunkedKernel::applyScalar(Region &r, Value x, Value t) {
  Block &blk = r.front();
  IRMapping map;
  map.map(blk.getArgument(0), x);
  if (blk.getNumArguments() > 1)
    map.map(blk.getArgument(1), t);
  for (Operation &inner : blk.without_terminator()) {
    if (auto cst = dyn_cast<arith::ConstantOp>(inner)) {
      if (auto dense = dyn_cast<DenseElementsAttr>(cst.getValue())) {
        // Elementwise maps use splat constants; a non-splat one was
        // refused by checkLinearGpuSupport.
        map.map(cst.getResult(),
                arith::ConstantOp::create(
                    b, cast<TypedAttr>(dense.getSplatValue<Attribute>())));
        continue;
      }
    }
    if (auto bc = dyn_cast<vector::BroadcastOp>(inner)) {
      map.map(bc.getResult(), map.lookupOrDefault(bc.getSource()));
      continue;
    }
    // Elementwise on vector<F>: the same op on the scalar element.
    Operation *created = b.clone(inner, map);
    for (OpResult r : created->getResults())
      r.setType(getElementTypeOrSelf(r.getType()));
  }
  return map.lookupOrDefault(blk.getTerminator()->getOperand(0));
}

void ChunkedKernel::transformTiles(Value buf, Value t0) {
  // Shared memory is read and written as 32-bit words (element pairs):
  // vector loads of workgroup memrefs do not convert at module level.
  int64_t perRow = s.d / 2, total = kChunk * perRow;
  Type v2 = VectorType::get({2}, cfg.elem);
  Type v2f = VectorType::get({2}, b.getF32Type());
  // GLA (chunk-start reference): q~ = phi(q) exp2(L_i), k~ = phi(k)
  // exp2(-L_j) per feature, L the cumulative log2-gates of the chunk; then
  // q~ k~^T = sum_f q k exp2(L_if - L_jf) and q~ S is the inter-chunk term.
  // exp2(-L_j) is capped at 2^126 (finite; exact while L_j >= -126).
  bool dimGates = cfg.dimGates();
  for (int which = 0; which < 2; ++which) {
    Region *r = which == 0 ? s.fq : s.fk;
    Value tile = which == 0 ? smem.sQw : smem.sKw;
    if (!r && !dimGates)
      continue;
    for (int64_t it = 0; it * kThreads < total; ++it) {
      Value c = e.addi(ids.tid, cIdx(it * kThreads));
      Value row = e.divi(c, cIdx(perRow));
      Value col = remu(c, perRow);
      Value t = e.addi(t0, row);
      Value valid = e.cmpi(CmpIPredicate::ult, t, args.n);
      Value word = memref::LoadOp::create(b, tile, ValueRange{buf, row, col});
      Value xf = arith::ExtFOp::create(
          b, v2f, Value(LLVM::BitcastOp::create(b, v2, word)));
      SmallVector<Value> out;
      for (int64_t i = 0; i < 2; ++i) {
        Value x = vector::ExtractOp::create(b, xf, ArrayRef<int64_t>{i});
        if (r && which == 0 && s.scale != 1.0)
          x = e.mulf(x, e.f32(s.scale));
        Value y = r ? applyScalar(*r, x, t) : x;
        if (dimGates) {
          Value feat = e.addi(e.muli(col, cIdx(2)), cIdx(i));
          Value l =
              memref::LoadOp::create(b, smem.sG, ValueRange{buf, row, feat});
          Value ex = which == 0
                         ? l
                         : arith::MinimumFOp::create(
                               b, arith::NegFOp::create(b, l), e.f32(126.0));
          y = e.mulf(y, ex2(ex));
        }
        out.push_back(e.select(valid, y, e.f32(0.0)));
      }
      Value yf = vector::FromElementsOp::create(b, v2f, out);
      Value packed = LLVM::BitcastOp::create(
          b, b.getI32Type(), Value(arith::TruncFOp::create(b, v2, yf)));
      memref::StoreOp::create(b, packed, tile, ValueRange{buf, row, col});
    }
  }
}

void ChunkedKernel::cumFeatureGates(Value buf) {
  // Thread f < D scans feature f down the 64 rows, 8 rows per step (the
  // loads of a step are independent). log2 units.
  e.ifThen(e.cmpi(CmpIPredicate::ult, ids.tid, cIdx(s.d)), [&] {
    e.loop(ids.c0, cIdx(kChunk / 8), ids.c1, ValueRange{e.f32(0.0)},
           [&](Value r8, ValueRange it) -> SmallVector<Value> {
             Value acc = it[0];
             Value base = e.muli(r8, cIdx(8));
             Value g[8];
             for (int u = 0; u < 8; ++u)
               g[u] = memref::LoadOp::create(
                   b, smem.sG, ValueRange{buf, e.addi(base, cIdx(u)), ids.tid});
             for (int u = 0; u < 8; ++u) {
               acc = e.addf(acc, e.mulf(g[u], e.f32(kLog2e)));
               memref::StoreOp::create(
                   b, acc, smem.sG,
                   ValueRange{buf, e.addi(base, cIdx(u)), ids.tid});
             }
             return {acc};
           });
  });
}

std::pair<Value, Value> ChunkedKernel::loadGates(Value t0, Value real) {
  Value zero = e.f32(0.0);
  if (!cfg.gated())
    return {zero, zero};
  Value out[2];
  for (int i = 0; i < 2; ++i) {
    Value t = e.addi(t0, e.addi(e.muli(ids.lane, cIdx(2)), cIdx(i)));
    Value valid = b.createOrFold<arith::AndIOp>(
        real, e.cmpi(CmpIPredicate::ult, t, args.n));
    if (s.kind == Decay::Head) {
      out[i] = e.select(valid, ids.gHead, zero);
      continue;
    }
    Value off = args.g.offset(e, ids.bi, ids.hi,
                              tok(e.select(valid, t, ids.c0)), ids.c0);
    Value g = memref::LoadOp::create(b, args.g.mem, ValueRange{off});
    out[i] = e.select(valid, g, zero);
  }
  return {out[0], out[1]};
}

void ChunkedKernel::storeCumGates(std::pair<Value, Value> g, Value buf) {
  if (!cfg.gated())
    return;
  Value a0 = g.first, pair = e.addf(g.first, g.second);
  Value x = pair;
  Value lane32 = i32(ids.lane);
  for (int32_t off = 1; off < 32; off *= 2) {
    Value offV = arith::ConstantIntOp::create(b, b.getI32Type(), off);
    Value y = shuffle(b, x, offV, gpu::ShuffleMode::UP);
    Value take = arith::CmpIOp::create(b, CmpIPredicate::sge, lane32, offV);
    x = e.select(take, e.addf(x, y), x);
  }
  Value excl = e.subf(x, pair);
  Value l0 = e.mulf(e.addf(excl, a0), e.f32(kLog2e));
  Value l1 = e.mulf(x, e.f32(kLog2e));
  Value first = e.cmpi(CmpIPredicate::eq, ids.warp, ids.c0);
  e.ifThen(first, [&] {
    Value r0 = e.muli(ids.lane, cIdx(2));
    memref::StoreOp::create(b, l0, smem.sL, ValueRange{buf, r0});
    memref::StoreOp::create(b, l1, smem.sL,
                            ValueRange{buf, e.addi(r0, ids.c1)});
  });
}

void ChunkedKernel::storeStateSmem(ArrayRef<Value> state) {
  Type v2 = VectorType::get({2}, cfg.elem);
  for (int64_t mt = 0; mt < cfg.mTile; ++mt)
    for (int64_t nd = 0; nd < cfg.nV; ++nd)
      for (int r = 0; r < 2; ++r) {
        const Value *f = &state[(mt * cfg.nV + nd) * 4];
        Value row = e.addi(e.muli(ids.warp, cIdx(cfg.mTile * 16)),
                           e.addi(cIdx(mt * 16 + r * 8), ids.g4));
        Value col = e.addi(cIdx(nd * 4), ids.t4); // in element pairs
        Value pair = vector::FromElementsOp::create(
            b, v2,
            ValueRange{arith::TruncFOp::create(b, cfg.elem, f[2 * r]),
                       arith::TruncFOp::create(b, cfg.elem, f[2 * r + 1])});
        memref::StoreOp::create(
            b, Value(LLVM::BitcastOp::create(b, b.getI32Type(), pair)),
            smem.sSw, ValueRange{row, col});
      }
}

std::pair<Value, Value> ChunkedKernel::beginChunk(Chunk &ch, Value r,
                                                  Value chunks, Value cC) {
  Value c0 = ids.c0, c1 = ids.c1;
  Value c = ch.fwd ? r : e.subi(e.subi(chunks, c1), r);
  ch.t0 = e.muli(c, cC);
  ch.buf = remu(r, 2);
  ch.nbuf = e.subi(c1, ch.buf);
  Value hasNext = e.cmpi(CmpIPredicate::ult, e.addi(r, c1), chunks);
  Value nextT0 =
      ch.fwd ? e.addi(ch.t0, cC) : e.select(hasNext, e.subi(ch.t0, cC), c0);
  issueChunk(nextT0, hasNext, ch.nbuf);
  std::pair<Value, Value> nextGates = loadGates(nextT0, hasNext);
  waitGroups(b, 1);
  gpu::BarrierOp::create(b);
  if (cfg.dimGates()) {
    cumFeatureGates(ch.buf);
    gpu::BarrierOp::create(b);
  }
  if (s.fq || s.fk || cfg.dimGates()) {
    transformTiles(ch.buf, ch.t0);
    gpu::BarrierOp::create(b);
  }
  return nextGates;
}

void ChunkedKernel::chunkGates(Chunk &ch) {
  bool gated = cfg.gated();
  ch.wrow = e.muli(ids.warp, cIdx(16));
  ch.lastL = gated ? Value(memref::LoadOp::create(
                         b, smem.sL, ValueRange{ch.buf, cIdx(kChunk - 1)}))
                   : Value();
  for (int rr = 0; rr < 2; ++rr)
    ch.rowL[rr] =
        gated ? Value(memref::LoadOp::create(
                    b, smem.sL,
                    ValueRange{ch.buf,
                               e.addi(ch.wrow, e.addi(ids.g4, cIdx(rr * 8)))}))
              : Value();
}

void ChunkedKernel::queryFragments(Chunk &ch) {
  // Q fragments (A operands) for this warp's 16 rows.
  Value lrow = remu(ids.lane, 16);
  ch.lhalf = e.muli(e.divi(ids.lane, cIdx(16)), cIdx(8));
  for (int64_t kk = 0; kk < s.d / 16; ++kk)
    ch.qf.push_back(ldmOperands(smem.sQ,
                                ValueRange{ch.buf, e.addi(ch.wrow, lrow),
                                           e.addi(cIdx(kk * 16), ch.lhalf)},
                                4, false));
}

Value ChunkedKernel::pairNeeded(const Chunk &ch, int64_t p) {
  return ch.fwd ? e.cmpi(CmpIPredicate::ule, cIdx(p), ids.warp)
                : e.cmpi(CmpIPredicate::uge, cIdx(p), ids.warp);
}

void ChunkedKernel::intraScores(Chunk &ch) {
  // 16 columns (two n-blocks) at a time; blocks the causal structure empties
  // are skipped (warp-uniform).
  Value krow8 = remu(ids.lane, 8);
  ch.krow = e.addi(krow8, ch.lhalf);
  ch.kcol = e.muli(remu(e.divi(ids.lane, cIdx(8)), 2), cIdx(8));
  int64_t pairs = kChunk / 16;
  SmallVector<Type> f8(8, b.getF32Type());
  ch.sc.resize(kChunk / 8);
  for (int64_t p = 0; p < pairs; ++p) {
    SmallVector<Value> res = e.ifElse(
        pairNeeded(ch, p), f8,
        [&]() -> SmallVector<Value> {
          Frag s0 = zeroFrag(), s1 = zeroFrag();
          for (int64_t kk = 0; kk < s.d / 16; ++kk) {
            SmallVector<Value> ops =
                ldmOperands(smem.sK,
                            ValueRange{ch.buf, e.addi(cIdx(p * 16), ch.krow),
                                       e.addi(cIdx(kk * 16), ch.kcol)},
                            4, false);
            s0 = tc.mma(ch.qf[kk], {ops[0], ops[1]}, s0);
            s1 = tc.mma(ch.qf[kk], {ops[2], ops[3]}, s1);
          }
          return {s0[0], s0[1], s0[2], s0[3], s1[0], s1[1], s1[2], s1[3]};
        },
        [&]() -> SmallVector<Value> { return SmallVector<Value>(8, ch.zero); });
    ch.sc[2 * p] = {res[0], res[1], res[2], res[3]};
    ch.sc[2 * p + 1] = {res[4], res[5], res[6], res[7]};
  }
}

void ChunkedKernel::maskAndDecay(Chunk &ch) {
  // A[i][j] = s * exp2(+-(L_i - L_j)) on the causal side, 0 elsewhere.
  bool gated = cfg.gated();
  ch.lcol = e.muli(ids.t4, cIdx(2));
  for (int64_t nb = 0; nb < kChunk / 8; ++nb) {
    Value colL[2];
    for (int cc = 0; cc < 2; ++cc)
      colL[cc] =
          gated ? Value(memref::LoadOp::create(
                      b, smem.sL,
                      ValueRange{ch.buf, e.addi(cIdx(nb * 8 + cc), ch.lcol)}))
                : Value();
    for (int el = 0; el < 4; ++el) {
      Value i = e.addi(ch.wrow, e.addi(ids.g4, cIdx((el / 2) * 8)));
      Value j = e.addi(cIdx(nb * 8 + el % 2), ch.lcol);
      Value keep = ch.fwd ? e.cmpi(CmpIPredicate::ule, j, i)
                          : e.cmpi(CmpIPredicate::ugt, j, i);
      Value a = ch.sc[nb][el];
      if (gated) {
        Value diff = ch.fwd ? e.subf(ch.rowL[el / 2], colL[el % 2])
                            : e.subf(colL[el % 2], ch.rowL[el / 2]);
        a = e.mulf(a, ex2(diff));
      }
      ch.sc[nb][el] = e.select(keep, a, ch.zero);
    }
  }
}

void ChunkedKernel::interChunkOutput(Chunk &ch) {
  // O = (phi(Q) S) * exp2(row term); A V is added next.
  int64_t nV = cfg.nV;
  ch.vrow = remu(ids.lane, 16);
  ch.acc.assign(nV, zeroFrag());
  for (int64_t kk = 0; kk < s.d / 16; ++kk)
    for (int64_t nd = 0; nd < nV; nd += 2) {
      bool pair = nd + 1 < nV;
      SmallVector<Value> ops = ldmOperands(
          smem.sS,
          ValueRange{e.addi(cIdx(kk * 16), ch.vrow),
                     pair ? e.addi(cIdx(nd * 8), ch.lhalf) : cIdx(nd * 8)},
          pair ? 4 : 2, true);
      ch.acc[nd] = tc.mma(ch.qf[kk], {ops[0], ops[1]}, ch.acc[nd]);
      if (pair)
        ch.acc[nd + 1] = tc.mma(ch.qf[kk], {ops[2], ops[3]}, ch.acc[nd + 1]);
    }
  if (!cfg.gated())
    return;
  Value rs[2];
  for (int rr = 0; rr < 2; ++rr)
    rs[rr] = ex2(ch.fwd ? ch.rowL[rr] : e.subf(ch.lastL, ch.rowL[rr]));
  for (Frag &fr : ch.acc)
    for (int el = 0; el < 4; ++el)
      fr[el] = e.mulf(fr[el], rs[el / 2]);
}

void ChunkedKernel::accumulateAV(Chunk &ch) {
  int64_t nV = cfg.nV;
  SmallVector<Type> accTypes(nV * 4, b.getF32Type());
  for (int64_t p = 0; p < kChunk / 16; ++p) {
    SmallVector<Value> flat;
    for (Frag &fr : ch.acc)
      flat.append(fr.begin(), fr.end());
    SmallVector<Value> res = e.ifElse(
        pairNeeded(ch, p), accTypes,
        [&]() -> SmallVector<Value> {
          int64_t n0 = 2 * p, n1 = 2 * p + 1;
          const SmallVector<Frag> &sc = ch.sc;
          SmallVector<Value> aOps = {
              tc.pack(sc[n0][0], sc[n0][1]), tc.pack(sc[n0][2], sc[n0][3]),
              tc.pack(sc[n1][0], sc[n1][1]), tc.pack(sc[n1][2], sc[n1][3])};
          SmallVector<Frag> a2 = ch.acc;
          for (int64_t nd = 0; nd < nV; nd += 2) {
            bool pair = nd + 1 < nV;
            SmallVector<Value> ops =
                ldmOperands(smem.sV,
                            ValueRange{ch.buf, e.addi(cIdx(p * 16), ch.vrow),
                                       pair ? e.addi(cIdx(nd * 8), ch.lhalf)
                                            : cIdx(nd * 8)},
                            pair ? 4 : 2, true);
            a2[nd] = tc.mma(aOps, {ops[0], ops[1]}, a2[nd]);
            if (pair)
              a2[nd + 1] = tc.mma(aOps, {ops[2], ops[3]}, a2[nd + 1]);
          }
          SmallVector<Value> out;
          for (Frag &fr : a2)
            out.append(fr.begin(), fr.end());
          return out;
        },
        [&]() -> SmallVector<Value> { return flat; });
    for (int64_t nd = 0; nd < nV; ++nd)
      for (int el = 0; el < 4; ++el)
        ch.acc[nd][el] = res[nd * 4 + el];
  }
}

void ChunkedKernel::storeOutput(const Chunk &ch) {
  // Bidirectional with normalize: o = (num_f + num_b) / (den_f + den_b).
  // The forward sweep writes its f32 numerators and denominators to the
  // scratch (by scan position; each thread the elements it rereads, the
  // denominator by lane t4 == 0 of the row's quad); the backward sweep adds
  // its own, divides and writes o.
  for (int rr = 0; rr < 2; ++rr)
    storeOutputRow(ch, rr);
}

void ChunkedKernel::storeOutputRow(const Chunk &ch, int rr) {
  // The scale of an identity feature map and the normalizer applied here.
  Type elem = cfg.elem;
  Type v2 = VectorType::get({2}, elem);
  Type v2f = VectorType::get({2}, b.getF32Type());
  double outScale = s.fq || s.normalize ? 1.0 : s.scale;
  bool fwd = ch.fwd, biNorm = cfg.biNorm();
  Value zero = ch.zero, lcol = ch.lcol;
  Value inv, den;
  if (s.normalize) {
    // The normalizer is column 0 of the last n-tile (lane t4 == 0).
    den = ch.acc[cfg.nV - 1][2 * rr];
    Value src = i32(e.subi(ids.lane, ids.t4));
    den = shuffle(b, den, src, gpu::ShuffleMode::IDX);
    if (!biNorm) {
      Value nz = arith::CmpFOp::create(b, arith::CmpFPredicate::ONE, den, zero);
      inv = e.select(nz, e.divf(e.f32(1.0), den), zero);
    }
  }
  Value row = e.addi(ch.t0, e.addi(ch.wrow, e.addi(ids.g4, cIdx(rr * 8))));
  Value inRange = e.cmpi(CmpIPredicate::ult, row, args.n);
  e.ifThen(inRange, [&] {
    Value orow = tok(row); // o in storage order
    // Scratch rows: (b, h, scan position) of [B, H, N, *].
    Value srow =
        biNorm
            ? e.addi(e.muli(e.addi(e.muli(ids.bi, cIdx(s.h)), ids.hi), args.n),
                     row)
            : Value();
    if (biNorm) {
      // Denominators after the B H N Dv numerators, one per Dv slice.
      Value dOff = e.addi(
          e.muli(e.muli(e.muli(args.batch, cIdx(s.h)), args.n), cIdx(s.dv)),
          e.addi(e.muli(srow, cIdx(s.dv / cfg.dvs)), ids.slice));
      if (fwd) {
        e.ifThen(e.cmpi(CmpIPredicate::eq, ids.t4, ids.c0), [&] {
          memref::StoreOp::create(b, den, args.scratch, ValueRange{dOff});
        });
      } else {
        Value total = e.addf(
            den, memref::LoadOp::create(b, args.scratch, ValueRange{dOff}));
        Value nz =
            arith::CmpFOp::create(b, arith::CmpFPredicate::ONE, total, zero);
        inv = e.select(nz, e.divf(e.f32(1.0), total), zero);
      }
    }
    for (int64_t nd = 0; nd < cfg.dvs / 8; ++nd) {
      Value x0 = ch.acc[nd][2 * rr], x1 = ch.acc[nd][2 * rr + 1];
      if (biNorm) {
        Value sOff = e.addi(e.muli(srow, cIdx(s.dv)),
                            e.addi(ids.dv0, e.addi(cIdx(nd * 8), lcol)));
        if (fwd) {
          Value num =
              vector::FromElementsOp::create(b, v2f, ValueRange{x0, x1});
          vector::StoreOp::create(b, num, args.scratch, ValueRange{sOff});
          continue;
        }
        Value prev =
            vector::LoadOp::create(b, v2f, args.scratch, ValueRange{sOff});
        x0 = e.addf(x0,
                    vector::ExtractOp::create(b, prev, ArrayRef<int64_t>{0}));
        x1 = e.addf(x1,
                    vector::ExtractOp::create(b, prev, ArrayRef<int64_t>{1}));
      }
      if (inv) {
        x0 = e.mulf(x0, inv);
        x1 = e.mulf(x1, inv);
      }
      if (outScale != 1.0) {
        x0 = e.mulf(x0, e.f32(outScale));
        x1 = e.mulf(x1, e.f32(outScale));
      }
      Value off = args.o.offset(e, ids.bi, ids.hi, orow,
                                e.addi(ids.dv0, e.addi(cIdx(nd * 8), lcol)));
      if (!s.causal && !fwd && !biNorm) {
        // Bidirectional: add the forward sweep's part (stored by this same
        // thread).
        Value prev = arith::ExtFOp::create(
            b, v2f,
            Value(vector::LoadOp::create(b, v2, args.o.mem, ValueRange{off})));
        x0 = e.addf(x0,
                    vector::ExtractOp::create(b, prev, ArrayRef<int64_t>{0}));
        x1 = e.addf(x1,
                    vector::ExtractOp::create(b, prev, ArrayRef<int64_t>{1}));
      }
      Value pair = vector::FromElementsOp::create(
          b, v2,
          ValueRange{arith::TruncFOp::create(b, elem, x0),
                     arith::TruncFOp::create(b, elem, x1)});
      vector::StoreOp::create(b, pair, args.o.mem, ValueRange{off});
    }
  });
}

void ChunkedKernel::stateUpdateStep(const Chunk &ch, int64_t kk,
                                    SmallVectorImpl<Value> &S) {
  bool gated = cfg.gated();
  int64_t nV = cfg.nV, mTile = cfg.mTile;
  Value w[4];
  if (gated)
    for (int wi = 0; wi < 4; ++wi) {
      Value j = e.addi(cIdx(kk * 16 + (wi / 2) * 8 + wi % 2), ch.lcol);
      Value lj = memref::LoadOp::create(b, smem.sL, ValueRange{ch.buf, j});
      w[wi] = ex2(ch.fwd ? e.subf(ch.lastL, lj) : lj);
    }
  // phi(K)^T (scaled by the weights) as A operands per state m-tile.
  SmallVector<SmallVector<Value>> aT;
  for (int64_t mt = 0; mt < mTile; ++mt) {
    Value d0 = e.addi(e.muli(ids.warp, cIdx(mTile * 16)), cIdx(mt * 16));
    SmallVector<Value> regs = tc.registers(
        tc.ldmatrix(smem.sK,
                    ValueRange{ch.buf, e.addi(cIdx(kk * 16), ch.krow),
                               e.addi(d0, ch.kcol)},
                    4, true),
        4);
    SmallVector<Value> ops;
    for (int ri = 0; ri < 4; ++ri)
      ops.push_back(
          gated ? scalePair(regs[ri], w[(ri / 2) * 2], w[(ri / 2) * 2 + 1])
                : tc.operand(regs[ri]));
    aT.push_back(ops);
  }
  for (int64_t nd = 0; nd < nV; nd += 2) {
    bool pair = nd + 1 < nV;
    SmallVector<Value> ops = ldmOperands(
        smem.sV,
        ValueRange{ch.buf, e.addi(cIdx(kk * 16), ch.vrow),
                   pair ? e.addi(cIdx(nd * 8), ch.lhalf) : cIdx(nd * 8)},
        pair ? 4 : 2, true);
    for (int64_t mt = 0; mt < mTile; ++mt)
      for (int64_t x = 0; x < (pair ? 2 : 1); ++x) {
        Value *f = &S[(mt * nV + nd + x) * 4];
        Frag fr = {f[0], f[1], f[2], f[3]};
        fr = tc.mma(aT[mt], {ops[2 * x], ops[2 * x + 1]}, fr);
        for (int el = 0; el < 4; ++el)
          f[el] = fr[el];
      }
  }
}

void ChunkedKernel::updateState(const Chunk &ch, SmallVectorImpl<Value> &S) {
  // S <- exp2(L_last) S + (phi(K) w)^T V, w_j = exp2(L_last - L_j)
  // (forward) or exp2(L_j) (backward).
  if (cfg.gated()) {
    Value dl = ex2(ch.lastL);
    for (Value &x : S)
      x = e.mulf(x, dl);
  }
  for (int64_t kk = 0; kk < kChunk / 16; ++kk)
    stateUpdateStep(ch, kk, S);
  if (!cfg.dimGates())
    return;
  // GLA: S <- diag(exp2(L_last)) (S + k~^T V), k~ = k exp2(-L_j): each
  // thread's state rows (features) scaled by their L_last.
  int64_t nV = cfg.nV, mTile = cfg.mTile;
  for (int64_t mt = 0; mt < mTile; ++mt)
    for (int rr = 0; rr < 2; ++rr) {
      Value row = e.addi(e.muli(ids.warp, cIdx(mTile * 16)),
                         e.addi(cIdx(mt * 16 + rr * 8), ids.g4));
      Value dl = ex2(memref::LoadOp::create(
          b, smem.sG, ValueRange{ch.buf, cIdx(kChunk - 1), row}));
      for (int64_t nd = 0; nd < nV; ++nd)
        for (int el = 0; el < 2; ++el) {
          Value &x = S[(mt * nV + nd) * 4 + rr * 2 + el];
          x = e.mulf(x, dl);
        }
    }
}

SmallVector<Value> ChunkedKernel::sweep(bool fwd, SmallVector<Value> st) {
  Value c0 = ids.c0, c1 = ids.c1;
  Value cC = cIdx(kChunk);
  Value chunks = e.ceilDiv(args.n, cC);
  Value any = e.cmpi(CmpIPredicate::ugt, chunks, c0);
  Value firstChunk =
      fwd ? c0 : e.select(any, e.subi(chunks, c1), c0); // chunk index
  Value firstT0 = e.muli(firstChunk, cC);
  issueChunk(firstT0, any, c0);
  storeCumGates(loadGates(firstT0, any), c0);
  storeStateSmem(st);
  Value zero = e.f32(0.0);

  SmallVector<Value> out = e.loop(
      c0, chunks, c1, st, [&](Value r, ValueRange it) -> SmallVector<Value> {
        SmallVector<Value> S(it.begin(), it.end());
        Chunk ch;
        ch.fwd = fwd;
        ch.zero = zero;
        std::pair<Value, Value> nextGates = beginChunk(ch, r, chunks, cC);
        chunkGates(ch);
        queryFragments(ch);
        intraScores(ch);
        maskAndDecay(ch);
        interChunkOutput(ch);
        accumulateAV(ch);
        storeOutput(ch);
        updateState(ch, S);
        storeCumGates(nextGates, ch.nbuf);
        gpu::BarrierOp::create(b); // every warp is done with sS and buf
        storeStateSmem(S);
        return S;
      });
  waitGroups(b, 0);
  gpu::BarrierOp::create(b);
  return out;
}

void ChunkedKernel::initOnesColumn() {
  // The normalizer's sum rides along in the same mma instructions. Words of
  // element pairs: (1, 0), then (0, 0).
  Type elem = cfg.elem;
  Type v2 = VectorType::get({2}, elem);
  Value one = arith::ConstantOp::create(b, b.getFloatAttr(elem, 1.0));
  Value zeroE = arith::ConstantOp::create(b, b.getFloatAttr(elem, 0.0));
  Value w0 = LLVM::BitcastOp::create(
      b, b.getI32Type(),
      Value(vector::FromElementsOp::create(b, v2, ValueRange{one, zeroE})));
  Value wz = arith::ConstantIntOp::create(b, b.getI32Type(), 0);
  e.ifThen(e.cmpi(CmpIPredicate::ult, ids.tid, cIdx(2 * kChunk)), [&] {
    Value bufI = e.divi(ids.tid, cIdx(kChunk));
    Value row = remu(ids.tid, kChunk);
    for (int64_t i = 0; i < 4; ++i)
      memref::StoreOp::create(b, i == 0 ? w0 : wz, smem.sVw,
                              ValueRange{bufI, row, cIdx(cfg.dvs / 2 + i)});
  });
}

Value ChunkedKernel::stateOffset(int64_t mt, int64_t nd, int rr) {
  Value row = e.addi(e.muli(ids.warp, cIdx(cfg.mTile * 16)),
                     e.addi(cIdx(mt * 16 + rr * 8), ids.g4));
  Value col = e.addi(ids.dv0, e.addi(cIdx(nd * 8), e.muli(ids.t4, cIdx(2))));
  Value bh = e.addi(e.muli(ids.bi, cIdx(s.h)), ids.hi);
  return e.addi(e.muli(e.addi(e.muli(bh, cIdx(s.f)), row), cIdx(s.dv)), col);
}

SmallVector<Value> ChunkedKernel::loadInitialState() {
  // The initial state (f32, [B, H, F, Dv] contiguous) or zeros.
  int64_t nV = cfg.nV;
  SmallVector<Value> S(cfg.mTile * nV * 4, e.f32(0.0));
  Type v2f = VectorType::get({2}, b.getF32Type());
  if (!args.init)
    return S;
  for (int64_t mt = 0; mt < cfg.mTile; ++mt)
    for (int64_t nd = 0; nd < cfg.dvs / 8; ++nd)
      for (int rr = 0; rr < 2; ++rr) {
        Value x = vector::LoadOp::create(b, v2f, args.init,
                                         ValueRange{stateOffset(mt, nd, rr)});
        for (int el = 0; el < 2; ++el)
          S[(mt * nV + nd) * 4 + rr * 2 + el] =
              vector::ExtractOp::create(b, x, ArrayRef<int64_t>{el});
      }
  return S;
}

void ChunkedKernel::storeFinalState(ArrayRef<Value> S) {
  Type v2f = VectorType::get({2}, b.getF32Type());
  for (int64_t mt = 0; mt < cfg.mTile; ++mt)
    for (int64_t nd = 0; nd < cfg.dvs / 8; ++nd)
      for (int rr = 0; rr < 2; ++rr) {
        const Value *f = &S[(mt * cfg.nV + nd) * 4 + rr * 2];
        Value x =
            vector::FromElementsOp::create(b, v2f, ValueRange{f[0], f[1]});
        vector::StoreOp::create(b, x, args.fin,
                                ValueRange{stateOffset(mt, nd, rr)});
      }
}

void ChunkedKernel::emit() {
  if (s.normalize)
    initOnesColumn();
  SmallVector<Value> S = loadInitialState();
  S = sweep(/*forward=*/true, S);
  if (args.fin)
    storeFinalState(S);
  if (!s.causal) {
    SmallVector<Value> zeros(S.size(), e.f32(0.0));
    (void)sweep(/*forward=*/false, zeros);
  }
  gpu::ReturnOp::create(b);
}

namespace {
/// The chunked kernel's arguments, constants and indices, in the order the
/// kernel has always emitted them.
std::pair<ChunkedArgs, ChunkedIds> bindChunkedKernel(const LinearSpec &s,
                                                     int64_t dvs, Block &entry,
                                                     ImplicitLocOpBuilder &b) {
  Emitter e(b);
  ChunkedArgs args;
  ChunkedIds ids;
  unsigned a = 0;
  args.q.mem = entry.getArgument(a++);
  args.k.mem = entry.getArgument(a++);
  args.v.mem = entry.getArgument(a++);
  if (s.decay)
    args.g.mem = entry.getArgument(a++);
  if (s.init)
    args.init = entry.getArgument(a++);
  args.o.mem = entry.getArgument(a++);
  if (s.hasFinal)
    args.fin = entry.getArgument(a++);
  if (s.normalize && !s.causal)
    args.scratch = entry.getArgument(a++);
  args.batch = entry.getArgument(a++);
  args.n = entry.getArgument(a++);
  for (StridedTensor *t : {&args.q, &args.k, &args.v, &args.o}) {
    if (s.workspace && (t == &args.q || t == &args.k))
      continue; // the contiguous workspaces: strides below
    for (int i = 0; i < 3; ++i)
      t->strides[i] = entry.getArgument(a++);
  }
  if (s.kind == Decay::Token || s.kind == Decay::TokenDim)
    for (int i = 0; i < 3; ++i)
      args.g.strides[i] = entry.getArgument(a++);

  ids.c0 = e.idx(0);
  ids.c1 = e.idx(1);
  if (s.order)
    ids.orderOn = e.cmpi(CmpIPredicate::eq, args.n, e.idx(s.order.getLength()));
  if (s.workspace) {
    // phi(q) [B, H, N, F] and phi(k) [B, Hkv, N, F], contiguous.
    args.q.strides[2] = args.k.strides[2] = e.idx(s.d);
    args.q.strides[1] = args.k.strides[1] = e.muli(args.n, e.idx(s.d));
    args.q.strides[0] = e.muli(args.q.strides[1], e.idx(s.h));
    args.k.strides[0] = e.muli(args.k.strides[1], e.idx(s.hk));
  }
  ids.tid = gpu::ThreadIdOp::create(b, gpu::Dimension::x);
  ids.lane = b.createOrFold<arith::RemUIOp>(ids.tid, e.idx(32));
  ids.warp = e.divi(ids.tid, e.idx(32));
  ids.g4 = e.divi(ids.lane, e.idx(4));
  ids.t4 = b.createOrFold<arith::RemUIOp>(ids.lane, e.idx(4));
  ids.slice = gpu::BlockIdOp::create(b, gpu::Dimension::x);
  ids.hi = gpu::BlockIdOp::create(b, gpu::Dimension::y);
  ids.bi = gpu::BlockIdOp::create(b, gpu::Dimension::z);
  ids.hkv = e.divi(ids.hi, e.idx(s.h / s.hk));
  ids.dv0 = e.muli(ids.slice, e.idx(dvs));
  if (s.kind == Decay::Head)
    ids.gHead = memref::LoadOp::create(b, args.g.mem, ValueRange{ids.hi});
  return {args, ids};
}

/// Views of the dynamic shared memory (ChunkedSmem).
ChunkedSmem allocateSmem(const LinearSpec &s, int64_t dvs,
                         ImplicitLocOpBuilder &b) {
  Emitter e(b);
  auto wg =
      gpu::AddressSpaceAttr::get(b.getContext(), gpu::AddressSpace::Workgroup);
  Value base = gpu::DynamicSharedMemoryOp::create(
      b,
      MemRefType::get({ShapedType::kDynamic}, b.getI8Type(), AffineMap(), wg));
  int64_t offset = 0;
  auto view = [&](ArrayRef<int64_t> shape, Type t) {
    return memref::ViewOp::create(b, MemRefType::get(shape, t, AffineMap(), wg),
                                  base, e.idx(offset), ValueRange{});
  };
  // Each tile also gets a view as 32-bit words (element pairs).
  auto tile = [&](ArrayRef<int64_t> shape, Value &elems, Value *words) {
    elems = view(shape, s.elem);
    SmallVector<int64_t> w(shape);
    w.back() /= 2;
    if (words)
      *words = view(w, b.getI32Type());
    int64_t bytes = 2;
    for (int64_t x : shape)
      bytes *= x;
    offset += bytes;
  };
  ChunkedSmem smem;
  tile({2, kChunk, s.d + 8}, smem.sQ, &smem.sQw);
  tile({2, kChunk, s.d + 8}, smem.sK, &smem.sKw);
  tile({2, kChunk, dvs + 8}, smem.sV, &smem.sVw);
  tile({s.d, dvs + 8}, smem.sS, &smem.sSw);
  smem.sL = view({2, kChunk}, b.getF32Type());
  offset += 2 * kChunk * 4;
  if (s.kind == Decay::TokenDim)
    smem.sG = view({2, kChunk, s.d}, b.getF32Type());
  return smem;
}
} // namespace

void mlir::attn::detail::emitChunkedKernel(const LinearSpec &s, int64_t dvSlice,
                                           gpu::GPUFuncOp func) {
  Block &entry = func.getBody().front();
  auto b = ImplicitLocOpBuilder::atBlockBegin(s.op->getLoc(), &entry);
  ChunkedConfig cfg(s, dvSlice);
  auto [args, ids] = bindChunkedKernel(s, dvSlice, entry, b);
  ChunkedSmem smem = allocateSmem(s, dvSlice, b);
  ChunkedKernel(cfg, b, args, ids, smem).emit();
}
