//===- Reference.cpp - convert-attn-to-reference --------------------------===//
//
// Part of attnc. The naive definitions: every numerical test compares against
// these. They are deliberately simple: scalar loops, f32 accumulation, the
// full score row of each query.
//
//===----------------------------------------------------------------------===//

#include "attnc/Transforms/AttnLowering.h"
#include "attnc/Transforms/Passes.h"

#include "mlir/Dialect/Bufferization/IR/Bufferization.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "llvm/Support/Debug.h"

#include <limits>

namespace mlir::attn {
#define GEN_PASS_DEF_CONVERTATTNTOREFERENCE
#include "Attn/AttnPasses.h.inc"
} // namespace mlir::attn

#define DEBUG_TYPE "convert-attn-to-reference"

using namespace mlir;
using namespace mlir::attn;
using arith::CmpFPredicate;
using arith::CmpIPredicate;

static void clearOutputs(Emitter &e, const AttentionBuffers &io);

AttentionBuffers mlir::attn::makeAttentionBuffers(Emitter &e, AttentionOp op) {
  AttentionBuffers io;
  io.q = e.toBuffer(op.getQ());
  io.k = e.toBuffer(op.getK());
  io.v = e.toBuffer(op.getV());
  io.batch = e.dim(io.q, 0);
  io.nq = e.dim(io.q, 2);
  io.nk = e.dim(io.k, 2);
  if (op.isVarlen()) {
    io.cuQ = e.toBuffer(op.getCuSeqlensQ());
    io.cuK = e.toBuffer(op.getCuSeqlensK());
    io.batch = e.subi(e.dim(io.cuQ, 0), e.idx(1));
  }
  if (op.isPaged()) {
    io.table = e.toBuffer(op.getPageTable());
    io.pageSize = op.getPageSize();
    io.nk = e.muli(e.dim(io.table, 1), e.idx(io.pageSize));
  }
  if (op.getSinks())
    io.sinks = e.toBuffer(op.getSinks());
  if (op.getKvLens())
    io.kvLens = e.toBuffer(op.getKvLens());
  io.hq = op.getNumQueryHeads();
  io.hkv = op.getNumKvHeads();
  io.d = op.getHeadDim();
  io.dv = op.getValueDim();
  Value rows = e.dim(io.q, 0);
  io.o = e.allocLike(op.getO().getType(),
                     {rows, e.idx(io.hq), io.nq, e.idx(io.dv)});
  if (op.getLse())
    io.lse = e.allocLike(op.getLse().getType(), {rows, e.idx(io.hq), io.nq});
  if (io.cuQ)
    clearOutputs(e, io);
  return io;
}

/// Packed sequences: o = 0 and lse = -inf on every row (the sequences'
/// rows are overwritten).
static void clearOutputs(Emitter &e, const AttentionBuffers &io) {
  Value c0 = e.idx(0);
  Value negInf = e.f32(-std::numeric_limits<float>::infinity());
  e.loop(c0, e.idx(io.hq), [&](Value h) {
    e.loop(c0, io.nq, [&](Value i) {
      e.loop(c0, e.idx(io.dv), [&](Value d) {
        e.storeF32(e.f32(0.0), io.o, {c0, h, i, d});
      });
      if (io.lse)
        memref::StoreOp::create(e.b, negInf, io.lse, ValueRange{c0, h, i});
    });
  });
}

Value AttentionBuffers::storageBatch(Emitter &e, Value bi) const {
  return cuQ ? e.idx(0) : bi;
}

AttentionBuffers::Sequence AttentionBuffers::sequence(Emitter &e, Operation *op,
                                                      Value bi) const {
  if (!cuQ)
    return {e.idx(0), nq, e.idx(0), keysOf(e, op, bi)};
  auto [qStart, qCount] = packedRows(e, cuQ, bi, nq);
  auto [kStart, kCount] = packedRows(e, cuK, bi, nk);
  return {qStart, qCount, kStart, kCount};
}

Value AttentionBuffers::keysOf(Emitter &e, Operation *op, Value bi) const {
  return kvLens ? sequenceKeys(e, op, kvLens, bi, nq, nk) : nk;
}

SmallVector<Value, 4> AttentionBuffers::keyIndex(Emitter &e, Value bi, Value hk,
                                                 Value j, Value col) const {
  if (!table)
    return {bi, hk, j, col};
  Value s = e.idx(pageSize);
  Value slot = memref::LoadOp::create(e.b, table, ValueRange{bi, e.divi(j, s)});
  Value page = arith::IndexCastOp::create(e.b, e.b.getIndexType(), slot);
  return {page, hk, e.b.createOrFold<arith::RemUIOp>(j, s), col};
}

void mlir::attn::finishAttention(Emitter &e, AttentionOp op,
                                 const AttentionBuffers &io) {
  SmallVector<Value> results = {e.toTensor(io.o, op.getO().getType())};
  if (op.getLse())
    results.push_back(e.toTensor(io.lse, op.getLse().getType()));
  op->replaceAllUsesWith(results);
  op->erase();
}

LogicalResult mlir::attn::lowerAttentionToReference(AttentionOp op) {
  ImplicitLocOpBuilder b(op.getLoc(), op);
  Emitter e(b);
  AttentionBuffers io = makeAttentionBuffers(e, op);
  const float negInf = -std::numeric_limits<float>::infinity();
  Value row = e.alloc({ShapedType::kDynamic}, e.f32Type(), {io.nk});
  Value acc = e.alloc({io.dv}, e.f32Type(), {});
  Value c0 = e.idx(0), c1 = e.idx(1);
  Value group = e.idx(io.hq / io.hkv);
  Value scale = e.f32(op.getEffectiveScale());
  e.loop(c0, io.batch, [&](Value bi) {
    AttentionBuffers::Sequence seq = io.sequence(e, op, bi);
    Value nk = seq.nk, sb = io.storageBatch(e, bi);
    // Key `j` of the sequence in k and v.
    auto key = [&](Value hk, Value j, Value d) {
      return io.keyIndex(e, sb, hk, e.addi(seq.kStart, j), d);
    };
    e.loop(c0, e.idx(io.hq), [&](Value h) {
      Value hk = e.divi(h, group);
      e.loop(c0, seq.nq, [&](Value i) {
        Value qi = e.addi(seq.qStart, i);
        // Pass 1: the score row and its maximum.
        Value m = e.loop(
            c0, nk, c1, {e.f32(negInf)},
            [&](Value j, ValueRange it) -> SmallVector<Value> {
              Value s =
                  e.loop(c0, e.idx(io.d), c1, {e.f32(0.0)},
                         [&](Value d, ValueRange acc) -> SmallVector<Value> {
                           Value x = e.loadF32(io.q, {sb, h, qi, d});
                           Value y = e.loadF32(io.k, key(hk, j, d));
                           return {e.addf(acc[0], e.mulf(x, y))};
                         })[0];
              s = e.mulf(s, scale);
              Value pos = queryPosition(e, op, i, seq.nq, nk);
              if (op.hasScoreRegion())
                s = e.inlineRegion(op.getScore(), {s, bi, h, pos, j})[0];
              if (op.hasMaskRegion()) {
                Value keep = e.inlineRegion(op.getMask(), {bi, h, pos, j})[0];
                s = e.select(keep, s, e.f32(negInf));
              }
              memref::StoreOp::create(b, s, row, ValueRange{j});
              return {e.maxf(it[0], s)};
            })[0];
        // A sink joins the maximum and (below) the sum.
        Value sink;
        if (io.sinks) {
          sink = memref::LoadOp::create(b, io.sinks, ValueRange{h});
          m = e.maxf(m, sink);
        }
        // Pass 2: exponentials against the max, weighted sum of values.
        Value empty = e.cmpf(CmpFPredicate::OEQ, m, e.f32(negInf));
        Value msafe = e.select(empty, e.f32(0.0), m);
        e.loop(c0, e.idx(io.dv), [&](Value d) {
          memref::StoreOp::create(b, e.f32(0.0), acc, ValueRange{d});
        });
        Value l =
            e.loop(c0, nk, c1, {e.f32(0.0)},
                   [&](Value j, ValueRange it) -> SmallVector<Value> {
                     Value s = memref::LoadOp::create(b, row, ValueRange{j});
                     Value p = e.exp(e.subf(s, msafe));
                     e.loop(c0, e.idx(io.dv), [&](Value d) {
                       Value a = memref::LoadOp::create(b, acc, ValueRange{d});
                       Value vv = e.loadF32(io.v, key(hk, j, d));
                       memref::StoreOp::create(b, e.addf(a, e.mulf(p, vv)), acc,
                                               ValueRange{d});
                     });
                     return {e.addf(it[0], p)};
                   })[0];
        if (sink)
          l = e.addf(l, e.exp(e.subf(sink, msafe)));
        Value any = e.cmpf(CmpFPredicate::OGT, l, e.f32(0.0));
        Value inv = e.select(any, e.divf(e.f32(1.0), l), e.f32(0.0));
        e.loop(c0, e.idx(io.dv), [&](Value d) {
          Value a = memref::LoadOp::create(b, acc, ValueRange{d});
          e.storeF32(e.mulf(a, inv), io.o, {sb, h, qi, d});
        });
        if (io.lse) {
          Value lse = e.select(any, e.addf(msafe, e.log(l)), e.f32(negInf));
          memref::StoreOp::create(b, lse, io.lse, ValueRange{sb, h, qi});
        }
      });
    });
  });
  memref::DeallocOp::create(b, row);
  memref::DeallocOp::create(b, acc);
  finishAttention(e, op, io);
  return success();
}

namespace {
struct ConvertAttnToReferencePass
    : public mlir::attn::impl::ConvertAttnToReferenceBase<
          ConvertAttnToReferencePass> {
  void runOnOperation() override {
    SmallVector<Operation *> ops;
    getOperation()->walk([&](Operation *op) {
      if (isa<AttentionOp, AttentionGradOp, LinearAttentionOp,
              LinearAttentionGradOp, ScanOp, CombineStatesOp, DeltaRuleOp,
              DeltaRuleGradOp>(op))
        ops.push_back(op);
    });
    for (Operation *op : ops) {
      if (auto delta = dyn_cast<DeltaRuleOp>(op)) {
        if (failed(lowerDeltaRuleRecurrent(delta)))
          return signalPassFailure();
        continue;
      }
      if (auto grad = dyn_cast<DeltaRuleGradOp>(op)) {
        if (failed(lowerDeltaRuleGrad(grad, /*chunk=*/1)))
          return signalPassFailure();
        continue;
      }
      if (auto combine = dyn_cast<CombineStatesOp>(op)) {
        if (failed(lowerCombineStates(combine)))
          return signalPassFailure();
        continue;
      }
      if (auto grad = dyn_cast<LinearAttentionGradOp>(op)) {
        if (failed(lowerLinearGradToReference(grad)))
          return signalPassFailure();
        continue;
      }
      if (auto grad = dyn_cast<AttentionGradOp>(op)) {
        if (failed(lowerAttentionGradToReference(grad)))
          return signalPassFailure();
        continue;
      }
      LLVM_DEBUG(llvm::dbgs() << "reference lowering of " << op->getName()
                              << " at " << op->getLoc() << "\n");
      LogicalResult r = isa<AttentionOp>(op)
                            ? lowerAttentionToReference(cast<AttentionOp>(op))
                            : lowerLinearToReference(op);
      if (failed(r))
        return signalPassFailure();
    }
  }
};
} // namespace
