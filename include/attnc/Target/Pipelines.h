//===- Pipelines.h - the attnc pass pipelines, listed once ------*- C++ -*-===//
#ifndef ATTNC_TARGET_PIPELINES_H
#define ATTNC_TARGET_PIPELINES_H

#include "mlir/IR/DialectRegistry.h"
#include "mlir/Pass/PassManager.h"

#include <string>

namespace mlir::attn {

struct CpuPipelineOptions {
  /// Lower through convert-attn-to-reference instead of attn-tile.
  bool reference = false;
  /// Forced tile sizes (0 = let attn-select-schedule choose).
  int64_t blockQ = 0, blockKv = 0;
};

/// Dialects (and their bufferization models) that attnc pipelines create.
void registerAttncDialects(DialectRegistry &registry);
/// Registers the upstream passes the pipelines use and the named pipelines
/// `attn-lower-cpu` and `attn-lower-cpu-reference`.
void registerAttncPipelines();

/// Spec on tensors -> LLVM dialect for the CPU.
void buildCpuPipeline(OpPassManager &pm, const CpuPipelineOptions &options);
/// The same pipeline as text (for diagnostics and documentation).
std::string cpuPipelineText(const CpuPipelineOptions &options);

/// gpu.module with kernels -> gpu.binary holding PTX for `chip` (as a pass
/// list for a module-anchored pass manager).
std::string gpuPipelineText(llvm::StringRef chip);

} // namespace mlir::attn

#endif // ATTNC_TARGET_PIPELINES_H
