//===- Linear.cpp - lowerings of attn.linear_attention and attn.scan ------===//

#include "attnc/Transforms/AttnLowering.h"

using namespace mlir;
using namespace mlir::attn;

LogicalResult mlir::attn::lowerLinearToReference(Operation *op) {
  return op->emitOpError() << "reference lowering not implemented yet";
}
LogicalResult mlir::attn::lowerLinearRecurrent(Operation *op) {
  return op->emitOpError() << "recurrent lowering not implemented yet";
}
