//===- ToolVersion.h - --version of the attnc tools -------------*- C++ -*-===//
//
// Part of attnc. attn-opt, attn-run and attn-aot print attnc's version (and
// the LLVM/MLIR they were built with) for --version instead of LLVM's.
//
//===----------------------------------------------------------------------===//
#ifndef ATTNC_TOOLS_TOOLVERSION_H
#define ATTNC_TOOLS_TOOLVERSION_H

#include "attnc/Version.h"

#include "llvm/Config/llvm-config.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/raw_ostream.h"

namespace attnc {

/// Makes --version print `attnc version X.Y.Z` and the LLVM/MLIR version.
/// Call before llvm::cl::ParseCommandLineOptions (or MlirOptMain).
inline void setToolVersionPrinter() {
  llvm::cl::SetVersionPrinter([](llvm::raw_ostream &os) {
    os << "attnc version " ATTNC_VERSION_STRING "\n"
       << "  built with LLVM/MLIR " LLVM_VERSION_STRING "\n";
  });
}

} // namespace attnc

#endif // ATTNC_TOOLS_TOOLVERSION_H
