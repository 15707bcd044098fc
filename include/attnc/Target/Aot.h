//===- Aot.h - GPU kernels as files: PTX, cubin, manifest, C launcher
//------===//
//
// Part of attnc. Shared by attn-aot and the JIT compiler's disk cache: a
// compiled spec is an "AOT directory" (docs/gpu.md).
//
//===----------------------------------------------------------------------===//
#ifndef ATTNC_TARGET_AOT_H
#define ATTNC_TARGET_AOT_H

#include "attnc/Abi/KernelSet.h"
#include "attnc/Abi/TensorChecks.h"
#include "attnc/Conversion/AttnToGPU.h"
#include "mlir/IR/BuiltinOps.h"
#include "llvm/Support/Error.h"

#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace mlir::attn {

struct GpuCompileOptions {
  /// sm_80 or sm_90a.
  std::string target = "sm_80";
  /// Tile overrides (0: the schedule's choice).
  int64_t blockQ = 0, blockKv = 0;
  /// ptxas to assemble cubins; empty: PTX only.
  std::string ptxas;
  /// Keep the kernel module's IR (before lowering) in the artifact.
  bool keepIR = false;
};

/// One compiled kernel.
struct GpuKernelArtifact {
  /// The spec function the kernels compute, and the target.
  std::string name, target;
  /// The kernels' ABI record as their code generator attached it
  /// (#attn.kernel_abi); abiKernelOf completes it with the files and the
  /// function's signature.
  attnc::abi::Kernel kernel;
  std::string ptx;
  std::string cubin; // empty without ptxas
  std::string ptxasLog;
  std::string ir;
  /// What the kernel's function needs of its inputs beyond their types
  /// (specValueChecks): written into the manifest's signature, so that
  /// every launcher refuses, say, document ids shorter than the sequence.
  attnc::InputChecks checks;
  /// Why the op became this kernel rather than the target's first choice
  /// ("": it did not), e.g. "wgmma spilled 96 bytes; mma.sync used".
  std::string fallback;
};

/// The PTX of a module lowered with buildGpuBinaryPipeline (format isa): the
/// object of its gpu.binary (the last, if several); "" without one.
std::string binaryPtx(ModuleOp module);

/// Compiles every attn.attention and attn.attention_grad of `module` (one
/// kernel set per function, named after it) for a GPU target. Annotates
/// `module` with the mask analysis and schedule. Diagnostics go to the
/// context's handler.
llvm::Expected<std::vector<GpuKernelArtifact>>
compileForGpu(ModuleOp module, const GpuCompileOptions &options);

/// The files of one kernel in an AOT directory or cache entry, (name, data):
/// `<name>.ptx`, `<name>.mlir` with keepIR, and with a cubin `<name>.cubin`,
/// `<name>.ptxas.txt` and, for forward kernels, `<name>.h` and
/// `<name>_launcher.c`.
std::vector<std::pair<std::string, std::string>>
aotFiles(const GpuKernelArtifact &art);

/// Writes an AOT directory: every kernel's aotFiles and `manifest.json`.
llvm::Error writeAotDirectory(llvm::StringRef dir, llvm::StringRef target,
                              llvm::ArrayRef<GpuKernelArtifact> kernels);

/// Writes `data` to `path`; the error names the file.
llvm::Error writeFile(llvm::StringRef path, llvm::StringRef data);

/// The manifest's record of a compiled kernel set: the code generator's
/// record with the files, the fallback and (attention kernels) the
/// signature with the spec's value checks.
attnc::abi::Kernel abiKernelOf(const GpuKernelArtifact &art);
/// The manifest describing `kernels` (docs/runtime.md): their kernel set,
/// written by attnc::abi::formatKernelSet.
std::string manifestJson(llvm::StringRef target,
                         llvm::ArrayRef<GpuKernelArtifact> kernels);
/// The C header and launcher of one kernel.
std::string headerSource(const attnc::abi::Kernel &kernel,
                         llvm::StringRef target);
/// The launcher: a thin wrapper over the launch library
/// (attnc/attnc_runtime.h) that embeds the kernel's manifest, its cubin and,
/// for GPUs the cubin does not run on, its PTX.
std::string launcherSource(const GpuKernelArtifact &art);

} // namespace mlir::attn

#endif // ATTNC_TARGET_AOT_H
