//===- Pipelines.h - the attnc pass pipelines, listed once ------*- C++ -*-===//
#ifndef ATTNC_TARGET_PIPELINES_H
#define ATTNC_TARGET_PIPELINES_H

#include "attnc/Target/TargetDesc.h"
#include "mlir/IR/DialectRegistry.h"
#include "mlir/Pass/PassManager.h"

#include <string>

namespace mlir::attn {

struct CpuPipelineOptions {
  /// Lower through convert-attn-to-reference instead of attn-tile.
  bool reference = false;
  /// Forced tile sizes (0 = let attn-select-schedule choose); block_q is
  /// also the chunk length of linear attention and scans.
  int64_t blockQ = 0, blockKv = 0;
  /// "chunked" or "recurrent" (attn-tile's linear-form).
  std::string linearForm = "chunked";
};

/// Dialects (and their bufferization models) that attnc pipelines create.
void registerAttncDialects(DialectRegistry &registry);
/// Registers the upstream passes the pipelines use and the named pipelines
/// `attn-compile`, `attn-lower-cpu` and `attn-lower-cpu-reference`.
void registerAttncPipelines();

/// Spec on tensors -> LLVM dialect for the CPU.
void buildCpuPipeline(OpPassManager &pm, const CpuPipelineOptions &options);
/// The same pipeline as text (for diagnostics and documentation).
std::string cpuPipelineText(const CpuPipelineOptions &options);

/// gpu.module with kernels -> gpu.binary for `chip` (on a module-anchored
/// pass manager); `format` is gpu-module-to-binary's: isa (PTX), bin
/// (cubin) or fatbin.
void buildGpuBinaryPipeline(OpPassManager &pm, llvm::StringRef chip,
                            llvm::StringRef format = "isa");

/// attn-analyze-masks and attn-select-schedule for `target`, with forced
/// tiles where non-zero.
void addScheduleSelection(OpPassManager &pm, Target target, int64_t blockQ = 0,
                          int64_t blockKv = 0);
/// The same for a target name (cpu, sm_80, sm_90a): an unknown name fails
/// when the pass runs.
void addScheduleSelection(OpPassManager &pm, llvm::StringRef target,
                          int64_t blockQ = 0, int64_t blockKv = 0);

/// The `attn-compile` pipeline: spec to LLVM dialect (cpu) or to a module
/// with a gpu.binary (sm_80, sm_90a). Bad options are reported through
/// `error`.
LogicalResult
buildCompilePipeline(OpPassManager &pm, llvm::StringRef target, int64_t blockQ,
                     int64_t blockKv, llvm::StringRef format,
                     function_ref<LogicalResult(const llvm::Twine &)> error);

} // namespace mlir::attn

#endif // ATTNC_TARGET_PIPELINES_H
