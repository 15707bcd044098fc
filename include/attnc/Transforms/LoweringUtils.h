//===- LoweringUtils.h - helpers shared by the attn lowerings ----*- C++
//-*-===//
#ifndef ATTNC_TRANSFORMS_LOWERINGUTILS_H
#define ATTNC_TRANSFORMS_LOWERINGUTILS_H

#include "attnc/Dialect/Attn/Attn.h"
#include "mlir/IR/ImplicitLocOpBuilder.h"

#include <functional>

namespace mlir::attn {

/// A thin layer over ImplicitLocOpBuilder for loop nests on memrefs.
class Emitter {
public:
  explicit Emitter(ImplicitLocOpBuilder &b) : b(b) {}
  ImplicitLocOpBuilder &b;

  Value idx(int64_t v);
  Value f32(double v);
  Value i1(bool v);
  Type f32Type() { return b.getF32Type(); }

  /// bufferization.to_buffer with an identity-layout memref type.
  Value toBuffer(Value tensor);
  /// memref.alloc of `type`'s shape with `elem` (or its own element type).
  Value alloc(ArrayRef<int64_t> shape, Type elem, ValueRange dynSizes);
  /// memref.alloc for a value of `tensorType`; `dims` holds every dim's
  /// size (only the dynamic ones are used).
  Value allocLike(Type tensorType, ArrayRef<Value> dims);
  Value toTensor(Value buffer, Type tensorType);
  Value dim(Value memref, int64_t d);

  /// scf.for over [lb, ub) with `step`; the body may yield iteration values.
  using Body = std::function<SmallVector<Value>(Value, ValueRange)>;
  SmallVector<Value> loop(Value lb, Value ub, Value step, ValueRange init,
                          const Body &body);
  void loop(Value lb, Value ub, const std::function<void(Value)> &body);
  /// scf.while: `cond` sees the loop values and says whether to run `body`,
  /// which returns the next values; returns the final values.
  SmallVector<Value>
  whileLoop(ValueRange init, const std::function<Value(ValueRange)> &cond,
            const std::function<SmallVector<Value>(ValueRange)> &body);
  /// scf.if with results; both branches yield `types`.
  SmallVector<Value> ifElse(Value cond, TypeRange types,
                            const std::function<SmallVector<Value>()> &then,
                            const std::function<SmallVector<Value>()> &els);
  void ifThen(Value cond, const std::function<void()> &then);

  /// Scalar load/store converting to/from f32.
  Value loadF32(Value memref, ValueRange indices);
  void storeF32(Value value, Value memref, ValueRange indices);
  /// Reads `n` contiguous elements along the last dim as vector<n x f32>.
  Value readRowF32(Value memref, ValueRange indices, int64_t n);
  void writeRowF32(Value vec, Value memref, ValueRange indices);

  /// Clones the single block of `region` with its arguments bound to `args`
  /// at the insertion point; returns the values of its attn.yield.
  SmallVector<Value> inlineRegion(Region &region, ValueRange args);

  Value addf(Value x, Value y);
  Value subf(Value x, Value y);
  Value mulf(Value x, Value y);
  Value divf(Value x, Value y);
  Value maxf(Value x, Value y);
  Value addi(Value x, Value y);
  Value subi(Value x, Value y);
  Value muli(Value x, Value y);
  Value divi(Value x, Value y);
  Value mini(Value x, Value y);
  Value ceilDiv(Value x, Value y);
  Value cmpi(arith::CmpIPredicate p, Value x, Value y);
  Value cmpf(arith::CmpFPredicate p, Value x, Value y);
  Value select(Value c, Value x, Value y);
  Value exp(Value x);
  Value exp2(Value x);
  Value log(Value x);
  Value splat(Value scalar, int64_t n);
  Value dot(Value x, Value y); // vector<n x f32> . vector<n x f32> -> f32
};

/// Whether feature map `map` (null or empty: none) reads the token
/// position: its region takes (x, t) rather than (x).
bool mapReadsPosition(Region *map);
/// The arguments of feature map `map` (or of its tangent map, which takes
/// the same ones first) for row `x` of token `t`: (x), or (x, t) when the
/// map reads positions.
SmallVector<Value> featureMapArgs(Region &map, Value x, Value t);
/// phi(x) for row `x` of token `t` (`x` itself without a map).
Value applyFeatureMap(Emitter &e, Region *map, Value x, Value t);

/// The position the regions of `op` (attn.attention or attn.attention_grad)
/// see for query row `row`: row + nk - nq with `queries_at_end`, else row.
Value queryPosition(Emitter &e, Operation *op, Value row, Value nq, Value nk);
/// The key count of batch `bi` of an attention with `kv_lens` (`lens`, a
/// memref of i32): lens[bi] clamped into [0, nk], and to at least
/// min(nq, nk) with `queries_at_end`, so that positions and key indices
/// stay in range whatever the values.
Value sequenceKeys(Emitter &e, Operation *op, Value lens, Value bi, Value nq,
                   Value nk);
/// Rows [cu[bi], cu[bi + 1]) of a packed tensor of `total` rows (`cu`, a
/// memref of i32 offsets), clamped into [0, total] and to a count >= 0:
/// (first row, count).
std::pair<Value, Value> packedRows(Emitter &e, Value cu, Value bi, Value total);

} // namespace mlir::attn

#endif // ATTNC_TRANSFORMS_LOWERINGUTILS_H
