//===- attn-parse-fuzzer.cpp - libFuzzer target on the spec parser -------===//
//
// Part of attnc. Each input is a spec text: it is parsed and verified (the
// attn ops' verifiers, region safety included) and, when valid, its masks are
// analyzed (attn-analyze-masks). Diagnostics are swallowed; a crash, an
// assertion or a sanitizer report is a finding. Built with
// -DATTNC_LIBFUZZER=ON and clang (docs/fuzzing.md):
//
//   attn-parse-fuzzer -max_len=4096 CORPUS_DIR examples/
//
//===----------------------------------------------------------------------===//

#include "attnc/Dialect/Attn/Attn.h"
#include "attnc/Transforms/Passes.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/Parser/Parser.h"
#include "mlir/Pass/PassManager.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/SourceMgr.h"

#include <cstddef>
#include <cstdint>

using namespace mlir;

static MLIRContext &context() {
  static MLIRContext *ctx = [] {
    DialectRegistry registry;
    registry.insert<attn::AttnDialect, func::FuncDialect, arith::ArithDialect,
                    math::MathDialect, tensor::TensorDialect,
                    vector::VectorDialect>();
    auto *c = new MLIRContext(registry, MLIRContext::Threading::DISABLED);
    c->loadAllAvailableDialects();
    return c;
  }();
  return *ctx;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  MLIRContext &ctx = context();
  ScopedDiagnosticHandler quiet(&ctx, [](Diagnostic &) { return success(); });
  llvm::SourceMgr sources;
  sources.AddNewSourceBuffer(
      llvm::MemoryBuffer::getMemBufferCopy(
          llvm::StringRef(reinterpret_cast<const char *>(data), size), "spec"),
      llvm::SMLoc());
  OwningOpRef<ModuleOp> module = parseSourceFile<ModuleOp>(sources, &ctx);
  if (!module)
    return 0;
  PassManager pm(&ctx);
  pm.addPass(attn::createAttnAnalyzeMasks());
  (void)pm.run(*module);
  return 0;
}
