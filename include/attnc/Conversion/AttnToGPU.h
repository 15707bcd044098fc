//===- AttnToGPU.h - attn.attention to a tensor-core GPU kernel --*- C++
//-*-===//
//
// Part of attnc. Builds, from a scheduled and mask-analysed attn.attention,
// a gpu.func implementing FlashAttention-2 with mma.sync m16n8k16 (sm_80
// instructions, which Hopper runs too): one thread block per (q tile, head,
// batch), 16 query rows per warp, K/V tiles staged in shared memory with
// cp.async, Q K^T and P V on tensor cores, the online softmax in registers
// with exp2, the score and mask regions inlined per element.
//
//===----------------------------------------------------------------------===//
#ifndef ATTNC_CONVERSION_ATTNTOGPU_H
#define ATTNC_CONVERSION_ATTNTOGPU_H

#include "attnc/Dialect/Attn/Attn.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"

namespace mlir::attn {

/// Appends to `module` a gpu.module `<name>_kernels` with a kernel `<name>`
/// computing `op` (and its block-map and split-KV kernels). Returns their
/// ABI record (without the spec function's signature), which the kernel
/// `<name>` also carries as `attn.abi` (#attn.kernel_abi). `op` must carry
/// #attn.schedule and #attn.mask_info.
FailureOr<attnc::abi::Kernel>
buildAttentionKernel(AttentionOp op, ModuleOp module, StringRef name);

/// The ABI record that the code generators attached to the kernels of
/// `module` (the first `attn.abi`); failure without one.
FailureOr<attnc::abi::Kernel> kernelAbiOf(ModuleOp module);

} // namespace mlir::attn

#endif // ATTNC_CONVERSION_ATTNTOGPU_H
