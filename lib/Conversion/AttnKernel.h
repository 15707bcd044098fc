//===- AttnKernel.h - shared parts of the attention GPU kernels -*- C++ -*-===//
//
// Part of attnc. Internal to lib/Conversion. The attention kernels of
// buildAttentionKernel (AttnToGPU.cpp):
//  - the mma.sync kernel (MmaSyncKernel.cpp), sm_80 instructions;
//  - the wgmma kernel (WgmmaKernel.cpp), sm_90a;
//  - the block-map kernel (BlockMapKernel.cpp), launched first for masks on
//    captured data.
// They share an immutable configuration (AttnKernelConfig), the kernel
// arguments bound once (AttnKernelArgs), the block's indices
// (AttnThreadIds), and the phases written here (AttnKernel.cpp): region
// inlining, tile classification, the mask, the online softmax and the
// epilogue.
//
//===----------------------------------------------------------------------===//
#ifndef ATTNC_LIB_CONVERSION_ATTNKERNEL_H
#define ATTNC_LIB_CONVERSION_ATTNKERNEL_H

#include "TensorCore.h"

#include "attnc/Analysis/MaskAnalysis.h"
#include "attnc/Conversion/AttnToGPU.h"
#include "attnc/Transforms/LoweringUtils.h"

#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/IR/IRMapping.h"
#include "mlir/IR/ImplicitLocOpBuilder.h"

namespace mlir::attn::detail {

/// Region ops the GPU code generation has no lowering for (on the CPU they
/// become function calls): a clear error instead of a failure deep in the
/// NVVM translation.
LogicalResult checkGpuRegionOps(Operation *attnOp);

/// Everything about an attention kernel decided before any IR is emitted.
/// Built (and checked) once by getAttnKernelConfig; never changed after.
struct AttnKernelConfig {
  /// A handle: mutable so that a const configuration can call its
  /// accessors.
  mutable AttentionOp op;
  MaskStructure ms;
  /// Head dims of q/k and v; query and key/value heads.
  int64_t d = 0, dv = 0, hq = 0, hkv = 0;
  /// Tile sizes; warps of the thread block (16 query rows each).
  int64_t bq = 0, bkv = 0, warps = 0;
  Type elem;
  /// A mask on captured data; with `needsMap` a block-map kernel classifies
  /// its tiles first (not in split-KV kernels nor with kv_lens: every tile
  /// is partial there).
  bool dataMask = false;
  bool needsMap = false;
  /// The sm_90a kernel (TMA and wgmma) instead of the mma.sync one.
  bool wgmma = false;
  /// The split-KV (decode) kernel: the rows of a q tile are (query, group
  /// head) pairs of one kv head, packed query-major (row p is query p / G of
  /// head hk G + p % G); blocks take a slice of the kv tiles (the grid's y)
  /// and write a partial o and lse per slice, which the combine kernel
  /// merges (SplitKvKernel.cpp).
  bool splitKv = false;
  /// The main kernels take their q tiles last-first (block x of the grid is
  /// q tile gridDim.x - 1 - x): for masks whose later q tiles visit more kv
  /// tiles (causal ones), the heaviest blocks start first and the light
  /// ones fill the grid's tail.
  bool reverseQTiles = false;
  int64_t sharedBytes = 0;
  /// The tensors the kernel takes after q, k, v, o and lse, in order: the
  /// enclosing function's capture arguments, including those the regions no
  /// longer use (canonicalization drops them from the op; the kernel keeps
  /// the function's signature and ignores them), or else the op's captures.
  SmallVector<Value> captures;

  int64_t threads() const { return warps * 32; }
  /// Query heads per kv head.
  int64_t group() const { return hq / hkv; }
  bool masked() const { return ms.kind != MaskKind::none; }
  bool isBF16() const { return elem.isBF16(); }
};

/// The kernel-argument name ("capture<i>") of `tensor`, one of
/// `cfg.captures` (the page table, the sinks or a region's capture).
std::string captureArgName(const AttnKernelConfig &cfg, Value tensor);

/// Checks `op` (scheduled, mask-analysed) and derives its configuration.
FailureOr<AttnKernelConfig> getAttnKernelConfig(AttentionOp op);
/// The split-KV kernel's configuration beside the main kernel's `main`: the
/// mma.sync kernel on 64 packed rows (4 warps) and 64-key tiles (32 past
/// head dim 128), on sm_80 and sm_90a alike.
AttnKernelConfig getSplitKvConfig(const AttnKernelConfig &main);

/// A kernel's arguments, bound from its entry block.
struct AttnKernelArgs {
  /// Memrefs or, for the wgmma kernel, the TMA maps' pointers.
  Value q, k, v;
  /// o with its strides (q, k and v are read through the same strides).
  StridedTensor qT, kT, vT, oT;
  Value lse, blockMap;
  /// The split-KV kernel's outputs: f32 o and lse per kv slice,
  /// [slices, B, Hq, Nq, Dv] and [slices, B, Hq, Nq].
  Value oPart, lsePart;
  Value batch, nq, nk;
  /// Packed sequences (null otherwise): the block's sequence's first query
  /// and key rows in the packed tensors, their row count (lse's rows), and
  /// whether the block's rows belong to a sequence (else to the rows past
  /// the last one).
  Value qRow0, kRow0, packedRows, inSequence;
  /// Captured tensor -> kernel memref.
  IRMapping capMap;
};

/// The arguments of the main kernels (the same order in both); of the
/// split-KV kernel: q, k, v, o_part, lse_part, the captures, B, Nq, Nk and
/// the strides of q, k and v.
AttnKernelArgs bindMainArgs(const AttnKernelConfig &cfg, Block &entry);

/// Binds the block's sequence. With kv_lens: `args.nk` becomes its key
/// count (the clamped kv_lens entry of batch ids.bi), which the tile range,
/// the column bound and the query positions then use. Packed sequences
/// (cu_seqlens): the grid's x counts the q tiles of all sequences in order;
/// the block's sequence becomes ids.bi, its q tile ids.qt (and i0), its
/// query and key counts args.nq and args.nk, and q, k, v and o are
/// addressed from its first rows (a block past every sequence's tiles gets
/// empty counts and stores nothing).
struct AttnThreadIds;
void bindSequence(const AttnKernelConfig &cfg, ImplicitLocOpBuilder &b,
                  AttnKernelArgs &args, AttnThreadIds &ids);

/// Constants and the thread and block indices of a kernel.
struct AttnThreadIds {
  Value c0, c1, negInf;
  Value tid, lane, warp;
  /// The q tile (the grid's x), the head and batch of the block (y, z), the
  /// kv head and the block's first query row. Split-KV kernels: the grid's
  /// y is the kv slice and z the (batch, kv head) pair; `h` is null (each
  /// row has its own head) and i0 is the first packed row.
  Value qt, h, bi, hk, i0;
  Value slice;
};

/// The head and query position of a row of the block's q tile.
struct RowPos {
  Value h, i;
};

/// The constants and indices of the main kernels (the same in both).
AttnThreadIds bindThreadIds(const AttnKernelConfig &cfg,
                            ImplicitLocOpBuilder &b);

/// The kv tiles a q tile visits: [lo, hi) spans its non-empty tiles.
struct TileRange {
  Value numKT, numQT;
  /// The query positions of the q tile's first and last rows (inclusive).
  Value firstRow, lastRow;
  Value lo, hi;
};

/// Rows and first column of this thread's accumulator elements: element i
/// (m16n8 or wgmma layout) is row i0 + (i % 4 < 2 ? r0 : r1), column
/// 8 (i / 4) + lcol + i % 2 of its tile.
struct AccLayout {
  Value r0, r1, lcol;
};

/// One online-softmax step over this thread's scores: the new running
/// maxima, rescale factors and sums of its two rows, and the probabilities.
struct SoftmaxStep {
  Value m[2], alpha[2], l[2];
  SmallVector<Value> p;
};

/// The phases both main kernels and the block-map kernel share.
class AttnKernelBase {
public:
  AttnKernelBase(const AttnKernelConfig &cfg, ImplicitLocOpBuilder &b,
                 AttnKernelArgs args, AttnThreadIds ids)
      : cfg(cfg), op(cfg.op), b(b), e(b), tc(b, cfg.elem),
        args(std::move(args)), ids(ids) {}

protected:
  const AttnKernelConfig &cfg;
  AttentionOp op;
  ImplicitLocOpBuilder &b;
  Emitter e;
  MmaSync tc;
  const AttnKernelArgs args;
  const AttnThreadIds ids;

  Value cIdx(int64_t x) { return e.idx(x); }
  Value remui(Value x, int64_t m) {
    return b.createOrFold<arith::RemUIOp>(x, cIdx(m));
  }

  /// Inlines a region; tensor.extract from captures becomes memref.load.
  /// With `root` (a value of the region), only the operations `root`
  /// depends on are inlined and its clone is returned: the rest would be
  /// dead, and some of it (inline PTX) is never removed.
  Value inlineRegion(Region &region, ValueRange regionArgs);
  Value inlineRegion(Region &region, ValueRange regionArgs, IRMapping &map,
                     Value root = Value());
  /// The head and query position of row `local` of the q tile: the block's
  /// head and i0 + local, or in a split-KV kernel the packed row's (with the
  /// query clamped to Nq - 1 past the last row, whose values are never
  /// stored, so that regions index captures in bounds).
  RowPos rowPos(Value local);
  /// A split-KV kernel's packed row `p` (of the block's kv head): its query
  /// head hk G + p % G and its query row p / G (not shifted, not clamped).
  RowPos packedRow(Value p);
  /// The position of query row `row`: row + Nk - Nq with `queries_at_end`,
  /// else row. Regions, `classify` and `maskAt` take positions.
  Value queryPosition(Value row);
  /// A paged op's key `j` of the block's batch: (table[b, j / S], j mod S),
  /// its page in the pool and row in the page.
  std::pair<Value, Value> pagedKeyRow(Value j);
  /// The class of the tile [i0v, i1v] x [j0v, j1v] from the mask's
  /// intervals: 0 empty, 1 partial, 2 full. Split-KV kernels classify over
  /// all the kv head's query heads.
  Value classify(Value i0v, Value i1v, Value j0v, Value j1v);
  /// The combined mask (mask region and score -inf guard) at one element
  /// (query position i, key j).
  Value maskAt(Value i, Value j);
  /// Reads this (b, h) slice's class of tile (qt, kt) from the block map.
  Value mapClass(Value qt, Value kt, Value numQT, Value numKT);
  /// The class of kv tile `kt` for this block's q tile: from the block map,
  /// the intervals, or 2 (full) without a mask.
  Value classOf(const TileRange &range, Value kt);
  /// [first, last + 1) of the tiles in [lo, hi) whose class
  /// (`classOfTile`) is not empty; (hi, lo) when all are.
  std::pair<Value, Value>
  nonEmptySpan(Value lo, Value hi,
               llvm::function_ref<Value(Value)> classOfTile);
  /// Whether the mask region is evaluated in a rolled loop: unrolled once
  /// per accumulator element, a region with much index arithmetic (2D and
  /// 3D windows) outgrows the registers left beside the accumulators.
  bool rolledMask();
  /// The keep bits of this thread's `n` scores of the tile at column `j0`
  /// for a rolled mask (element i is bit i % 32 of word i / 32): the column
  /// bound and the mask region, evaluated in a rolled loop. All ones when
  /// `full`.
  SmallVector<Value> maskWords(Value full, Value j0, const AccLayout &acc,
                               int64_t n);
  /// `scored` with the masked elements set to -inf: read from `words`
  /// (maskWords) or, without words, the column bound and the mask region
  /// inlined per element. Unchanged when `full`.
  SmallVector<Value> applyMask(Value full, Value j0, const AccLayout &acc,
                               ArrayRef<Value> scored, ArrayRef<Value> words);
  /// The `n` raw scores `raw(i)` of this thread in the tile at column `j0`
  /// in log2 units (unless `fold`: the scale is then folded into the
  /// exponent), through the score region.
  SmallVector<Value> scoreElements(int64_t n,
                                   llvm::function_ref<Value(int64_t)> raw,
                                   Value j0, const AccLayout &acc, bool fold,
                                   Value qkScale);
  /// One online-softmax step over this thread's scores `x` (value i belongs
  /// to its row (i % 4) / 2), given the running maxima and sums of its two
  /// rows: with `fold`, x is unscaled and qkScale (scale * log2 e) is folded
  /// into the exponent.
  SoftmaxStep onlineSoftmax(ArrayRef<Value> x, ArrayRef<Value> mOld,
                            ArrayRef<Value> lOld, bool fold, Value qkScale);
  /// The epilogue of both main kernels: reduces this thread's two row sums
  /// over its quad, normalizes the accumulators once (`acc(i)`: value i in
  /// the accumulator layout), stores o and lse.
  void emitEpilogue(ArrayRef<Value> m, ArrayRef<Value> l,
                    llvm::function_ref<Value(int64_t)> acc,
                    const AccLayout &layout);

private:
  /// Where the epilogue stores a row of the q tile: o (the element type) and
  /// lse, or a split-KV kernel's f32 partial o and lse of its kv slice.
  struct RowDestination {
    Value inRange, h, row;
    /// The lse memref (null: none) and the row's index in it; the partial
    /// o's row has the same index.
    Value lse, lseIndex;
  };
  RowDestination rowDestination(Value local);
  /// Stores columns col and col + 1 of a row.
  void storePair(const RowDestination &dst, Value col, Value x0, Value x1);
};

/// Kernel parameters as they are described: their types, and their ABI
/// arguments (a memref with its element type and rank, or an index
/// scalar).
struct KernelParams {
  explicit KernelParams(MLIRContext *ctx) : ctx(ctx) {}
  MLIRContext *ctx;
  SmallVector<Type> types;
  std::vector<attnc::abi::Arg> args;
  void memref(StringRef name, Type elem, ArrayRef<int64_t> shape);
  void index(StringRef name);
};

/// How many (b, h) slices a block map of the mask structure `ms` has.
attnc::abi::MapSlices mapSlicesOf(const MaskStructure &ms);

/// The main kernel's gpu.func at `ob`'s insertion point: its shared memory
/// (the mma.sync kernel's K and V tiles; the wgmma kernel's per-warp counts
/// and list of non-empty kv tiles, its tiles being dynamic) and attributes.
gpu::GPUFuncOp createMainKernel(const AttnKernelConfig &cfg, OpBuilder &ob,
                                StringRef name, ArrayRef<Type> argTypes);
/// Appends the split-KV kernel `<name>_splitkv` and its combine kernel
/// `<name>_combine` at `ob` and returns their launches (SplitKvKernel.cpp).
FailureOr<attnc::abi::SplitKv> buildSplitKvKernels(const AttnKernelConfig &main,
                                                   OpBuilder &ob,
                                                   StringRef name);

/// Loads the dialects the kernels are built from, marks `module` as a GPU
/// container and appends `gpu.module @<name>_kernels`; returns a builder at
/// its start.
OpBuilder beginKernelModule(ModuleOp module, Location loc, StringRef name);
/// The block-map kernel's gpu.func at `ob`'s insertion point (arguments:
/// the captures, the map, the slice count, Nq, Nk).
gpu::GPUFuncOp createBlockMapKernel(const AttnKernelConfig &cfg, OpBuilder &ob,
                                    StringRef name, ArrayRef<Type> argTypes);
/// The block-map kernel: one i8 class per (slice, q tile, kv tile).
void emitBlockMapKernel(const AttnKernelConfig &cfg, gpu::GPUFuncOp func);
/// The mma.sync kernel (FlashAttention-2 on m16n8k16); the split-KV kernel
/// with a split-KV configuration.
LogicalResult emitMmaSyncKernel(const AttnKernelConfig &cfg,
                                gpu::GPUFuncOp func);
/// The combine kernel of a split-KV kernel: one block per (query, Hq, B),
/// one thread per column of o, merges the slices' partial o by their lse
/// (arguments: o_part, lse_part, o, [lse], B, Nq, slices, o's strides).
void emitCombineKernel(const AttnKernelConfig &cfg, gpu::GPUFuncOp func);
/// The sm_90a kernel: TMA loads, wgmma for Q K^T and P V, one warpgroup per
/// 64 query rows, 128-key tiles.
LogicalResult emitWgmmaKernel(const AttnKernelConfig &cfg, gpu::GPUFuncOp func);

} // namespace mlir::attn::detail

#endif // ATTNC_LIB_CONVERSION_ATTNKERNEL_H
