//===- Attn.h - the attn dialect ---------------------------------*- C++
//-*-===//
//
// Part of attnc. Declares the attn dialect, its attributes and operations.
//
//===----------------------------------------------------------------------===//
#ifndef ATTNC_DIALECT_ATTN_ATTN_H
#define ATTNC_DIALECT_ATTN_ATTN_H

#include "mlir/Bytecode/BytecodeOpInterface.h"
#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/IR/BuiltinAttributes.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/Dialect.h"
#include "mlir/IR/OpDefinition.h"
#include "mlir/IR/OpImplementation.h"
#include "mlir/Interfaces/ControlFlowInterfaces.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"

#include "attnc/Abi/KernelSet.h"
#include "attnc/Target/TargetDesc.h"

#include "Attn/AttnDialect.h.inc"
#include "Attn/AttnEnums.h.inc"

namespace mlir::attn {
/// `#attn.schedule`'s target: a quoted (or bare) target name.
FailureOr<Target> parseTargetParameter(AsmParser &parser);
/// `#attn.kernel_abi`'s record: its JSON as a string, read by the ABI's
/// reader.
FailureOr<attnc::abi::Kernel> parseKernelAbi(AsmParser &parser);
void printKernelAbi(AsmPrinter &printer, const attnc::abi::Kernel &kernel);
} // namespace mlir::attn

#define GET_ATTRDEF_CLASSES
#include "Attn/AttnAttrs.h.inc"

#include "Attn/AttnInterfaces.h.inc"

#define GET_OP_CLASSES
#include "Attn/AttnOps.h.inc"

#endif // ATTNC_DIALECT_ATTN_ATTN_H
