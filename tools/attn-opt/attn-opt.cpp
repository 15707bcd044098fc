//===- attn-opt.cpp - the attnc optimizer driver --------------------------===//
//
// Part of attnc. mlir-opt with the attn dialect, its passes and the upstream
// dialects and passes attnc pipelines use.
//
//===----------------------------------------------------------------------===//

#include "attnc/Target/Pipelines.h"
#include "attnc/Tools/ToolVersion.h"
#include "attnc/Transforms/Passes.h"

#include "mlir/Dialect/ControlFlow/IR/ControlFlow.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Tools/mlir-opt/MlirOptMain.h"
#include "mlir/Transforms/Passes.h"

int main(int argc, char **argv) {
  attnc::setToolVersionPrinter();
  mlir::attn::registerAttncPipelines();
  mlir::DialectRegistry registry;
  mlir::attn::registerAttncDialects(registry);
  return mlir::asMainReturnCode(mlir::MlirOptMain(
      argc, argv, "attnc optimizer driver: attention variants in MLIR\n",
      registry));
}
