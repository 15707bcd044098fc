//===- CombineStates.cpp - attn.combine_states ----------------------------===//
//
// Part of attnc. The verifier of the LASP-2 state-combine op: gathered
// states [W, B, H, F, Dv], log-decays [W, B, H] or [W, B, H, F], result
// [B, H, F, Dv], all f32.
//
//===----------------------------------------------------------------------===//

#include "attnc/Dialect/Attn/Attn.h"

using namespace mlir;
using namespace mlir::attn;

/// Whether static sizes `a` and `b` can be equal.
static bool compatible(int64_t a, int64_t b) {
  return ShapedType::isDynamic(a) || ShapedType::isDynamic(b) || a == b;
}

LogicalResult CombineStatesOp::verify() {
  auto states = cast<RankedTensorType>(getStates().getType());
  auto decays = cast<RankedTensorType>(getLogDecays().getType());
  auto result = cast<RankedTensorType>(getResult().getType());
  for (auto [what, t] :
       {std::pair<StringRef, RankedTensorType>{"states", states},
        {"log_decays", decays},
        {"result", result}})
    if (!t.getElementType().isF32())
      return emitOpError() << what << " must be f32, got " << t;
  if (states.getRank() != 5)
    return emitOpError() << "states must be [W, B, H, F, Dv], got " << states;
  if (result.getRank() != 4)
    return emitOpError() << "result must be [B, H, F, Dv], got " << result;
  if (decays.getRank() != 3 && decays.getRank() != 4)
    return emitOpError() << "log_decays must be [W, B, H] or [W, B, H, F], got "
                         << decays;
  ArrayRef<int64_t> s = states.getShape(), d = decays.getShape();
  for (int64_t i = 0; i < 4; ++i)
    if (!compatible(s[i + 1], result.getDimSize(i)))
      return emitOpError() << "result " << result
                           << " does not match the states " << states;
  for (int64_t i = 0; i < decays.getRank(); ++i)
    if (!compatible(s[i], d[i]))
      return emitOpError() << "log_decays " << decays
                           << " do not match the states " << states
                           << " in dimension " << i;
  return success();
}
