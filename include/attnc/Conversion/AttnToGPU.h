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

#include <string>
#include <vector>

namespace mlir::attn {

/// What a launcher needs to know about a generated kernel.
struct KernelArg {
  std::string name;
  /// "memref" (expands to 3 + 2 * rank parameters: allocated and aligned
  /// pointers, offset, sizes, strides) or "i64".
  std::string kind;
  std::string elem; // memref element type
  int64_t rank = 0;
  /// kind "tensormap": a CUtensorMap (128 bytes, by value) over the
  /// [B, H, N, D] tensor `name`, with boxes of 64 columns x `boxRows` rows,
  /// 128-byte swizzle, zero fill.
  int64_t boxRows = 0;
};

struct KernelInfo {
  std::string name;
  std::string target;
  std::string dtype;
  int64_t headDim = 0, valueDim = 0, headsQ = 0, headsKv = 0;
  int64_t blockQ = 0, blockKv = 0, threads = 0, sharedBytes = 0;
  /// "mma_sync" (sm_80 instructions, static shared memory) or "wgmma"
  /// (sm_90a: TMA maps for q, k, v; `sharedBytes` of dynamic shared memory,
  /// which needs the opt-in attribute above 48 KB).
  std::string variant = "mma_sync";
  bool lse = false;
  float scale = 1.0f;
  std::string maskKind;
  std::vector<KernelArg> args;
  /// Masks on captured data: a kernel that fills the block map (one i8 class
  /// per (slice, q tile, kv tile)) runs first, on a grid of
  /// (ceil(Nq/block_q), ceil(Nk/block_kv), slices).
  std::string mapKernel;
  std::vector<KernelArg> mapArgs;
  /// "1", "B", "Hq" or "B*Hq": how many (b, h) slices the map has.
  std::string mapSlices;
  /// The split-KV form (abi::SplitKv; empty names: none): the partial
  /// kernel over (ceil(Nq*G / splitBlockRows), splits, B*Hkv) and the
  /// combine kernel over (Nq, Hq, B).
  std::string splitKernel, combineKernel;
  std::vector<KernelArg> splitArgs, combineArgs;
  int64_t splitBlockRows = 0, splitBlockKv = 0, splitThreads = 0,
          combineThreads = 0, splitMaxQueries = 0;
  /// A paged KV cache: the page size and the block table's argument
  /// ("capture<i>"); 0 and "" otherwise.
  int64_t pageSize = 0;
  std::string pageTable;
  /// Attention sinks: their argument ("capture<i>", also the combine
  /// kernel's); "" without.
  std::string sinks;
};

/// Appends to `module` a gpu.module `<name>_kernels` with a kernel `<name>`
/// computing `op`. `op` must carry #attn.schedule and #attn.mask_info.
FailureOr<KernelInfo> buildAttentionKernel(AttentionOp op, ModuleOp module,
                                           StringRef name);

} // namespace mlir::attn

#endif // ATTNC_CONVERSION_ATTNTOGPU_H
