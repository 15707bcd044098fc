//===- LinearToGPU.h - linear attention / scans to a GPU kernel -*- C++ -*-===//
//
// Part of attnc. Builds, from a scheduled attn.linear_attention or attn.scan,
// a gpu.func computing it with the chunked algorithm on mma.sync m16n8k16
// tensor cores (sm_80 instructions, which Hopper runs too). See
// docs/linear-gpu.md for the algorithm, the kernel ABI and the limits.
//
//===----------------------------------------------------------------------===//
#ifndef ATTNC_CONVERSION_LINEARTOGPU_H
#define ATTNC_CONVERSION_LINEARTOGPU_H

#include "attnc/Abi/KernelSet.h"
#include "attnc/Dialect/Attn/Attn.h"
#include "mlir/IR/BuiltinOps.h"

#include <string>

namespace mlir::attn {

/// Checks that `op` (attn.linear_attention or attn.scan) can become a GPU
/// kernel; emits an error naming what is not supported otherwise.
LogicalResult checkLinearGpuSupport(Operation *op, int64_t dvSlice);

/// The dv-slice `convert-attn-linear-to-gpu` uses when its option is not
/// given: 32 for causal per-token scalar gates ([B, H, N] decay), 64
/// otherwise (measured on an H100, see docs/linear-gpu.md).
int64_t defaultLinearDvSlice(Operation *op);

/// Appends to `module` a gpu.module `<name>_kernels` with a kernel `<name>`
/// computing `op`, one thread block per (Dv slice of `dvSlice` columns,
/// head, batch). Feature maps that are not elementwise, read captures or
/// change the feature dim also get a feature kernel `<name>_phi`, launched
/// first, writing phi(q), phi(k) to caller-allocated workspaces that
/// `<name>` reads (the ABI's workspace, feature kernel and launch order);
/// the spec op's feature map is then rewritten into the same computation on
/// scalars (see docs/linear-gpu.md). Returns the kernel's ABI, which the
/// kernel function also carries as JSON in its `attn.abi` attribute
/// (attnc::abi::toJson(const LinearKernel &)).
FailureOr<attnc::abi::LinearKernel> buildLinearKernel(Operation *op,
                                                      ModuleOp module,
                                                      StringRef name,
                                                      int64_t dvSlice);

} // namespace mlir::attn

#endif // ATTNC_CONVERSION_LINEARTOGPU_H
