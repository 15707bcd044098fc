//===- TargetDesc.h - one description per target ----------------*- C++ -*-===//
//
// Part of attnc. Everything target-specific that passes consult lives here,
// not in `if (sm90)` branches spread through the code: the targets as an
// enum (with the one place their names are parsed and printed), what each
// offers (on-chip memory, registers, instructions) and the shared memory of
// the GPU kernels. Part of the AttncTargetDesc library, which holds no pass
// code and does not link MLIR (docs/DESIGN.md, "Libraries").
//
//===----------------------------------------------------------------------===//
#ifndef ATTNC_TARGET_TARGETDESC_H
#define ATTNC_TARGET_TARGETDESC_H

#include "llvm/ADT/StringRef.h"
#include <algorithm>
#include <cstdint>
#include <optional>

namespace mlir::attn {

/// A compilation target. Its name (cpu, sm_80, sm_90a) is what pass options,
/// `#attn.schedule<target = ...>`, attn-aot's --target, the JIT's
/// CompileOptions::target and manifests spell.
enum class Target { Cpu, Sm80, Sm90a };

/// The target named `name`, or none.
std::optional<Target> parseTarget(llvm::StringRef name);
/// The name of `target`: "cpu", "sm_80" or "sm_90a".
llvm::StringRef stringifyTarget(Target target);
/// The known target names for messages: "cpu, sm_80 or sm_90a", or the GPU
/// ones only: "sm_80 or sm_90a".
llvm::StringRef knownTargetNames(bool gpuOnly = false);

struct TargetDesc {
  Target kind;
  llvm::StringRef name;
  bool isGpu;
  /// Bytes of on-chip memory one tile schedule may use: shared memory per
  /// thread block on GPUs, the share of L2 a core keeps hot on CPUs.
  int64_t onChipBytes;
  /// f32 registers per thread left for the score and accumulator tiles.
  int64_t accRegsPerThread;
  int64_t warpSize;
  /// Depth of the K/V pipeline.
  int64_t stages;
  /// Tensor-core instructions available (wgmma and tma: the sm_90a kernel).
  bool mmaSync, wgmma, tma;
  /// The architecture ptxas and the NVVM target compile for ("" on CPUs).
  llvm::StringRef chip;
};

/// The description of `target`.
const TargetDesc &getTargetDesc(Target target);
/// Returns the description of `name` or null if it is not a known target.
const TargetDesc *lookupTarget(llvm::StringRef name);

/// Static shared memory a thread block may use (48 KB on every CUDA GPU):
/// the mma.sync kernel's budget. Dynamic shared memory past it needs the
/// kernel's opt-in (cuFuncSetAttribute, MAX_DYNAMIC_SHARED_SIZE_BYTES).
constexpr int64_t kStaticSharedBytes = 48 * 1024;

/// The mma.sync kernel (lib/Conversion/MmaSyncKernel.cpp): each warp takes 16
/// query rows; shared memory holds `stages` K and V tiles of `bkv` rows,
/// each row padded by 8 elements against bank conflicts (Q is staged through
/// the K tile).
inline int64_t mmaSyncSharedBytes(int64_t bkv, int64_t d, int64_t dv,
                                  int64_t elemBytes, int64_t stages = 1) {
  return stages * bkv * ((d + 8) + (dv + 8)) * elemBytes;
}
/// The mma.sync tile sm_90a falls back to when the wgmma kernel spills
/// (the sm_80 choice for masked variants): 64 x 64, 4 warps, one stage.
constexpr int64_t kMmaSyncFallbackTile = 64;
/// Spills of the wgmma kernel up to this many bytes are kept: a register or
/// two through L1 costs far less than the fallback (3D window mask, H100:
/// wgmma with 4 bytes spilled 0.751 ms, the mma.sync fallback 1.283 ms).
constexpr int64_t kSm90SpillToleranceBytes = 32;

/// The sm_90a wgmma kernel (lib/Conversion/WgmmaKernel.cpp): one
/// warpgroup per 64 query rows, block_q / 64 warpgroups sharing 128-key K/V
/// tiles, for 16-bit inputs with head dims d and dv of 64 or 128. The
/// schedule's default is 128 x 128 with two K/V stages (the next tile's TMA
/// overlaps this tile's math); block_q = 64 runs one stage (two blocks per
/// SM overlap instead).
constexpr int64_t kSm90BlockQ = 128, kSm90BlockKv = 128;
inline bool sm90Supports(bool sixteenBit, int64_t d, int64_t dv) {
  return sixteenBit && (d == 64 || d == 128) && (dv == 64 || dv == 128);
}
inline bool sm90Tile(int64_t bq, int64_t bkv) {
  return (bq == 64 || bq == 128) && bkv == kSm90BlockKv;
}
/// Paged KV caches on the wgmma kernel: each K/V tile is gathered by TMA
/// boxes of min(page size, 128) rows, one per page it spans, so pages of at
/// least 8 rows (a 128-byte swizzle period) that tile or divide 128 keys.
inline bool sm90PageSize(int64_t pageSize) {
  return pageSize >= 8 &&
         (pageSize % kSm90BlockKv == 0 || kSm90BlockKv % pageSize == 0);
}
/// Rows of the K/V tensor maps' boxes: the tile, or a page of a paged cache.
inline int64_t sm90KvBoxRows(int64_t pageSize) {
  return pageSize ? std::min(pageSize, kSm90BlockKv) : kSm90BlockKv;
}
inline int64_t sm90Stages(int64_t bq) { return bq == 128 ? 2 : 1; }
/// A masked wgmma kernel lists the non-empty kv tiles of its q tile in
/// static shared memory (one i32 per tile: index * 4 + class) and visits
/// only those; a q tile with more non-empty tiles walks their span instead.
constexpr int64_t kSm90TileListEntries = 1024;
/// Its dynamic shared memory: Q (d/64 atoms of bq rows x 128 B), then per
/// stage K and V (d/64 and dv/64 atoms of 128 rows x 128 B).
inline int64_t sm90SharedBytes(int64_t bq, int64_t d, int64_t dv) {
  return (d / 64) * bq * 128 +
         sm90Stages(bq) * ((d / 64) + (dv / 64)) * kSm90BlockKv * 128;
}

} // namespace mlir::attn

#endif // ATTNC_TARGET_TARGETDESC_H
