//===- SpecFile.h - a spec file read by a tool ------------------*- C++ -*-===//
//
// Part of attnc. attn-run and attn-aot read one spec file the same way: a
// context with attnc's dialects, diagnostics printed with their locations
// in the file, and the parsed (and verified) module.
//
//===----------------------------------------------------------------------===//
#ifndef ATTNC_TOOLS_SPECFILE_H
#define ATTNC_TOOLS_SPECFILE_H

#include "attnc/Target/Pipelines.h"

#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/IR/OwningOpRef.h"
#include "mlir/Parser/Parser.h"
#include "llvm/Support/SourceMgr.h"

namespace attnc {

/// A spec file parsed into `module` (null when it does not parse or
/// verify; the diagnostics were printed).
struct SpecFile {
  explicit SpecFile(llvm::StringRef path)
      : ctx(attncDialects()), diag(sm, &ctx) {
    ctx.loadAllAvailableDialects();
    module = mlir::parseSourceFile<mlir::ModuleOp>(path, sm,
                                                   mlir::ParserConfig(&ctx));
  }

  mlir::MLIRContext ctx;
  llvm::SourceMgr sm;
  mlir::SourceMgrDiagnosticHandler diag;
  mlir::OwningOpRef<mlir::ModuleOp> module;

private:
  static mlir::DialectRegistry attncDialects() {
    mlir::DialectRegistry registry;
    mlir::attn::registerAttncDialects(registry);
    return registry;
  }
};

} // namespace attnc

#endif // ATTNC_TOOLS_SPECFILE_H
