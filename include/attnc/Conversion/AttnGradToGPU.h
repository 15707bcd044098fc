//===- AttnGradToGPU.h - attn.attention_grad to GPU kernels -----*- C++ -*-===//
//
// Part of attnc. The backward of a softmax attention spec on the GPU
// (docs/backward.md, "GPU kernels"): two mma.sync kernels (sm_80
// instructions; Hopper runs them too) built from an attn.attention_grad
// that carries a GPU #attn.schedule.
//
//===----------------------------------------------------------------------===//
#ifndef ATTNC_CONVERSION_ATTNGRADTOGPU_H
#define ATTNC_CONVERSION_ATTNGRADTOGPU_H

#include "attnc/Abi/KernelSet.h"
#include "attnc/Dialect/Attn/Attn.h"

namespace mlir::attn {

/// Appends a gpu.module `<name>_kernels` with the kernels `<name>_dq` and
/// `<name>_dkdv` of `op` to `module` and returns their ABI record (kind
/// AttentionGrad, no files or signature). Diagnostics name the op.
FailureOr<attnc::abi::Kernel>
buildAttentionGradKernels(AttentionGradOp op, ModuleOp module, StringRef name);

} // namespace mlir::attn

#endif // ATTNC_CONVERSION_ATTNGRADTOGPU_H
