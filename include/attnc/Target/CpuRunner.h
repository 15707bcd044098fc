//===- CpuRunner.h - JIT a lowered spec on the host CPU -----------*- C++
//-*-===//
//
// Part of attnc. Keeps mlir/ExecutionEngine out of widely included headers.
//
//===----------------------------------------------------------------------===//
#ifndef ATTNC_TARGET_CPURUNNER_H
#define ATTNC_TARGET_CPURUNNER_H

#include "attnc/Target/Pipelines.h"
#include "mlir/IR/BuiltinOps.h"
#include "llvm/Support/Error.h"

#include <memory>

namespace llvm::orc {
class LLJIT;
} // namespace llvm::orc

namespace mlir {
class ExecutionEngine;
namespace attn {

/// A spec function lowered for the CPU and JIT-compiled.
class CpuKernel {
public:
  /// Lowers a clone of `module` with `options` and compiles `funcName`.
  /// With `object`, also returns the native object code (for a disk cache).
  static llvm::Expected<std::unique_ptr<CpuKernel>>
  compile(ModuleOp module, llvm::StringRef funcName,
          const CpuPipelineOptions &options, std::string *object = nullptr);
  /// Links object code from `compile` into a fresh JIT (no MLIR or LLVM
  /// code generation).
  static llvm::Expected<std::unique_ptr<CpuKernel>>
  load(llvm::StringRef object, llvm::StringRef funcName);
  ~CpuKernel();

  /// Calls the C interface `_mlir_ciface_<func>`: `args[0]` points to the
  /// storage for the result descriptors, the rest to argument descriptors
  /// (each element of `args` is the address of a pointer).
  llvm::Error call(llvm::MutableArrayRef<void *> args);

private:
  CpuKernel() = default;
  std::unique_ptr<ExecutionEngine> engine;
  std::unique_ptr<llvm::orc::LLJIT> jit;
  void (*packed)(void **) = nullptr;
};

/// Initializes the native target once (idempotent).
void initializeCpuTarget();

} // namespace attn
} // namespace mlir

#endif // ATTNC_TARGET_CPURUNNER_H
