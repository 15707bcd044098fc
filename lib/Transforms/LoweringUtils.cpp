//===- LoweringUtils.cpp - helpers shared by the attn lowerings -----------===//

#include "attnc/Transforms/LoweringUtils.h"

#include "mlir/Dialect/Bufferization/IR/Bufferization.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/IR/IRMapping.h"

using namespace mlir;
using namespace mlir::attn;

Value Emitter::idx(int64_t v) { return arith::ConstantIndexOp::create(b, v); }
Value Emitter::f32(double v) {
  return arith::ConstantOp::create(b, b.getF32FloatAttr(static_cast<float>(v)));
}
Value Emitter::i1(bool v) {
  return arith::ConstantIntOp::create(b, b.getI1Type(), v ? 1 : 0);
}

Value Emitter::toBuffer(Value tensor) {
  auto t = cast<RankedTensorType>(tensor.getType());
  auto m = MemRefType::get(t.getShape(), t.getElementType());
  return bufferization::ToBufferOp::create(b, m, tensor, /*read_only=*/true);
}

Value Emitter::alloc(ArrayRef<int64_t> shape, Type elem, ValueRange dynSizes) {
  return memref::AllocOp::create(b, MemRefType::get(shape, elem), dynSizes);
}

Value Emitter::allocLike(Type tensorType, ArrayRef<Value> dims) {
  auto t = cast<RankedTensorType>(tensorType);
  SmallVector<Value> dyn;
  for (int64_t i = 0; i < t.getRank(); ++i)
    if (t.isDynamicDim(i))
      dyn.push_back(dims[i]);
  return alloc(t.getShape(), t.getElementType(), dyn);
}

Value Emitter::toTensor(Value buffer, Type tensorType) {
  return bufferization::ToTensorOp::create(b, tensorType, buffer,
                                           /*restrict=*/true,
                                           /*writable=*/true);
}

Value Emitter::dim(Value memref, int64_t d) {
  return memref::DimOp::create(b, memref, d);
}

SmallVector<Value> Emitter::loop(Value lb, Value ub, Value step,
                                 ValueRange init, const Body &body) {
  auto forOp = scf::ForOp::create(b, lb, ub, step, init);
  OpBuilder::InsertionGuard guard(b);
  Block *blk = forOp.getBody();
  if (!blk->empty() && isa<scf::YieldOp>(blk->back()))
    blk->back().erase();
  b.setInsertionPointToEnd(blk);
  SmallVector<Value> results =
      body(forOp.getInductionVar(), forOp.getRegionIterArgs());
  scf::YieldOp::create(b, results);
  return SmallVector<Value>(forOp.getResults());
}

void Emitter::loop(Value lb, Value ub, const std::function<void(Value)> &body) {
  loop(lb, ub, idx(1), {}, [&](Value iv, ValueRange) {
    body(iv);
    return SmallVector<Value>();
  });
}

SmallVector<Value>
Emitter::whileLoop(ValueRange init,
                   const std::function<Value(ValueRange)> &cond,
                   const std::function<SmallVector<Value>(ValueRange)> &body) {
  TypeRange types = init.getTypes();
  SmallVector<Location> locs(init.size(), b.getLoc());
  auto whileOp = scf::WhileOp::create(b, types, init);
  OpBuilder::InsertionGuard guard(b);
  Block *before = b.createBlock(&whileOp.getBefore(), {}, types, locs);
  b.setInsertionPointToEnd(before);
  Value c = cond(before->getArguments());
  scf::ConditionOp::create(b, c, before->getArguments());
  Block *after = b.createBlock(&whileOp.getAfter(), {}, types, locs);
  b.setInsertionPointToEnd(after);
  SmallVector<Value> next = body(after->getArguments());
  scf::YieldOp::create(b, next);
  return SmallVector<Value>(whileOp.getResults());
}

SmallVector<Value>
Emitter::ifElse(Value cond, TypeRange types,
                const std::function<SmallVector<Value>()> &then,
                const std::function<SmallVector<Value>()> &els) {
  auto ifOp = scf::IfOp::create(b, types, cond, /*withElseRegion=*/true);
  OpBuilder::InsertionGuard guard(b);
  for (int branch = 0; branch < 2; ++branch) {
    Block *blk = branch == 0 ? ifOp.thenBlock() : ifOp.elseBlock();
    if (!blk->empty() && isa<scf::YieldOp>(blk->back()))
      blk->back().erase();
    b.setInsertionPointToEnd(blk);
    SmallVector<Value> vals = branch == 0 ? then() : els();
    scf::YieldOp::create(b, vals);
  }
  return SmallVector<Value>(ifOp.getResults());
}

void Emitter::ifThen(Value cond, const std::function<void()> &then) {
  ifElse(
      cond, {},
      [&] {
        then();
        return SmallVector<Value>();
      },
      [] { return SmallVector<Value>(); });
}

Value Emitter::loadF32(Value memref, ValueRange indices) {
  Value v = memref::LoadOp::create(b, memref, indices);
  if (!v.getType().isF32())
    v = arith::ExtFOp::create(b, b.getF32Type(), v);
  return v;
}

void Emitter::storeF32(Value value, Value memref, ValueRange indices) {
  Type elem = cast<MemRefType>(memref.getType()).getElementType();
  if (elem != value.getType())
    value = arith::TruncFOp::create(b, elem, value);
  memref::StoreOp::create(b, value, memref, indices);
}

Value Emitter::readRowF32(Value memref, ValueRange indices, int64_t n) {
  Type elem = cast<MemRefType>(memref.getType()).getElementType();
  auto vt = VectorType::get({n}, elem);
  Value pad = arith::ConstantOp::create(b, b.getFloatAttr(elem, 0.0));
  Value v = vector::TransferReadOp::create(b, vt, memref, indices, pad,
                                           ArrayRef<bool>{true});
  if (!elem.isF32())
    v = arith::ExtFOp::create(b, VectorType::get({n}, b.getF32Type()), v);
  return v;
}

void Emitter::writeRowF32(Value vec, Value memref, ValueRange indices) {
  Type elem = cast<MemRefType>(memref.getType()).getElementType();
  auto vt = cast<VectorType>(vec.getType());
  if (!elem.isF32())
    vec = arith::TruncFOp::create(b, VectorType::get(vt.getShape(), elem), vec);
  vector::TransferWriteOp::create(b, vec, memref, indices,
                                  ArrayRef<bool>{true});
}

SmallVector<Value> Emitter::inlineRegion(Region &region, ValueRange args) {
  Block &blk = region.front();
  IRMapping map;
  map.map(blk.getArguments(), args);
  for (Operation &op : blk.without_terminator())
    b.clone(op, map);
  SmallVector<Value> results;
  for (Value v : blk.getTerminator()->getOperands())
    results.push_back(map.lookupOrDefault(v));
  return results;
}

Value Emitter::addf(Value x, Value y) { return arith::AddFOp::create(b, x, y); }
Value Emitter::subf(Value x, Value y) { return arith::SubFOp::create(b, x, y); }
Value Emitter::mulf(Value x, Value y) { return arith::MulFOp::create(b, x, y); }
Value Emitter::divf(Value x, Value y) { return arith::DivFOp::create(b, x, y); }
Value Emitter::maxf(Value x, Value y) {
  return arith::MaximumFOp::create(b, x, y);
}
Value Emitter::addi(Value x, Value y) {
  return b.createOrFold<arith::AddIOp>(x, y);
}
Value Emitter::subi(Value x, Value y) {
  return b.createOrFold<arith::SubIOp>(x, y);
}
Value Emitter::muli(Value x, Value y) {
  return b.createOrFold<arith::MulIOp>(x, y);
}
Value Emitter::divi(Value x, Value y) {
  return b.createOrFold<arith::DivUIOp>(x, y);
}
Value Emitter::mini(Value x, Value y) {
  return b.createOrFold<arith::MinSIOp>(x, y);
}
Value Emitter::ceilDiv(Value x, Value y) {
  return b.createOrFold<arith::CeilDivUIOp>(x, y);
}
Value Emitter::cmpi(arith::CmpIPredicate p, Value x, Value y) {
  return b.createOrFold<arith::CmpIOp>(p, x, y);
}
Value Emitter::cmpf(arith::CmpFPredicate p, Value x, Value y) {
  return arith::CmpFOp::create(b, p, x, y);
}
Value Emitter::select(Value c, Value x, Value y) {
  return b.createOrFold<arith::SelectOp>(c, x, y);
}
Value Emitter::exp(Value x) { return math::ExpOp::create(b, x); }
Value Emitter::exp2(Value x) { return math::Exp2Op::create(b, x); }
Value Emitter::log(Value x) { return math::LogOp::create(b, x); }
Value Emitter::splat(Value scalar, int64_t n) {
  return vector::BroadcastOp::create(b, VectorType::get({n}, scalar.getType()),
                                     scalar);
}
Value Emitter::dot(Value x, Value y) {
  Value prod = mulf(x, y);
  return vector::ReductionOp::create(b, vector::CombiningKind::ADD, prod);
}

Value mlir::attn::sequenceKeys(Emitter &e, Operation *op, Value lens, Value bi,
                               Value nq, Value nk) {
  Value n = memref::LoadOp::create(e.b, lens, ValueRange{bi});
  // Signed: a negative count becomes 0.
  n = arith::IndexCastOp::create(e.b, e.b.getIndexType(), n);
  Value lo = op->hasAttr("queries_at_end") ? e.mini(nq, nk) : e.idx(0);
  n = arith::MaxSIOp::create(e.b, n, lo);
  return e.mini(n, nk);
}

std::pair<Value, Value> mlir::attn::packedRows(Emitter &e, Value cu, Value bi,
                                               Value total) {
  auto offset = [&](Value at, Value lo) {
    Value x = memref::LoadOp::create(e.b, cu, ValueRange{at});
    x = arith::IndexCastOp::create(e.b, e.b.getIndexType(), x);
    return e.mini(arith::MaxSIOp::create(e.b, x, lo), total);
  };
  Value start = offset(bi, e.idx(0));
  Value end = offset(e.addi(bi, e.idx(1)), start);
  return {start, e.subi(end, start)};
}

Value mlir::attn::queryPosition(Emitter &e, Operation *op, Value row, Value nq,
                                Value nk) {
  if (!op->hasAttr("queries_at_end"))
    return row;
  return e.addi(row, e.subi(nk, nq));
}

bool mlir::attn::mapReadsPosition(Region *map) {
  return map && !map->empty() && map->front().getNumArguments() == 2;
}

SmallVector<Value> mlir::attn::featureMapArgs(Region &map, Value x, Value t) {
  if (mapReadsPosition(&map))
    return {x, t};
  return {x};
}

Value mlir::attn::applyFeatureMap(Emitter &e, Region *map, Value x, Value t) {
  if (!map || map->empty())
    return x;
  return e.inlineRegion(*map, featureMapArgs(*map, x, t))[0];
}
