//===- KernelSet.h - the ABI of a compiled kernel set -----------*- C++ -*-===//
//
// Part of attnc. MLIR-free (links LLVMSupport only): the one description of
// a compiled kernel set (kernels, arguments and their roles, grids, block
// sizes, shared memory, tensor maps, workspaces, launch order, value checks)
// and its one JSON writer and reader. The JSON is manifest.json of an AOT
// directory or JIT cache entry (docs/runtime.md, "manifest.json").
//
//===----------------------------------------------------------------------===//
#ifndef ATTNC_ABI_KERNELSET_H
#define ATTNC_ABI_KERNELSET_H

#include "llvm/ADT/Hashing.h"
#include "llvm/ADT/SmallVector.h"
#include "llvm/ADT/StringRef.h"
#include "llvm/Support/Error.h"
#include "llvm/Support/JSON.h"

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace attnc::abi {

/// The manifest format this library writes; the reader accepts only it.
/// Fields may be added without a new version (readers ignore unknown ones);
/// renaming, removing or changing the meaning of one needs a new version.
inline constexpr int64_t kSchemaVersion = 1;

/// How a kernel argument is passed.
enum class ArgKind {
  /// "memref": allocated and aligned pointer, offset, then `rank` sizes and
  /// `rank` strides (all i64).
  Memref,
  /// "memref_f32": a linear kernel's f32 buffer (a 1-D memref).
  MemrefF32,
  /// "i64": one scalar.
  Scalar,
  /// "tensormap": a CUtensorMap (128 bytes, by value) over the [B, H, N, D]
  /// tensor, boxes of 64 columns x `boxRows` rows, 128-byte swizzle.
  TensorMap,
};

/// What an argument holds; fixed by its name.
enum class ArgRole {
  Query,         ///< q
  Key,           ///< k
  Value,         ///< v
  Output,        ///< o
  Lse,           ///< lse
  Decay,         ///< decay
  InitialState,  ///< initial_state
  FinalState,    ///< final_state
  Capture,       ///< capture<i>: the spec's captured tensors, in order
  Operand,       ///< a, b: an elementwise kernel's operands
  BlockMap,      ///< block_map: the map kernel's output
  Workspace,     ///< phi_q, phi_k: the feature kernel's outputs
  Scratch,       ///< scratch
  GradOutput,    ///< do: the gradient of the loss with respect to o
  Gradient,      ///< dq, dk, dv: the backward's gradients of q, k, v
  CaptureGrad,   ///< dcapture<i>: the gradients of the captures (f32)
  Delta,         ///< delta: the backward's rowsum(dO * o) workspace
  PartialOutput, ///< o_part: a split-KV kernel's f32 o per kv slice
  PartialLse,    ///< lse_part: a split-KV kernel's lse per kv slice
  Batch,         ///< B
  SeqLen,        ///< N (linear kernels: one sequence length)
  SeqLenQ,       ///< Nq
  SeqLenK,       ///< Nk
  Slices,        ///< slices: the block map's (b, h) slices
  Splits,        ///< splits: the kv slices of a split-KV launch
  Elements,      ///< n: an elementwise kernel's element count
  /// <t>_stride_{b,h,n}, t one of q, k, v, o, g (the gates), do, dq, dk, dv
  Stride,
};

/// The role of an argument named `name`; none for an unknown name.
std::optional<ArgRole> argRole(llvm::StringRef name);
/// Whether arguments of `role` are passed as tensors (memref or tensor map).
bool isTensorRole(ArgRole role);

struct Arg {
  std::string name;
  ArgKind kind = ArgKind::Scalar;
  /// Element type of a tensor ("bf16", "f16", "f32", "i1", "i8", "i32",
  /// "i64"); "" for scalars.
  std::string elem;
  /// Memref rank (1: a flat view); 4 for tensor maps; 0 for scalars.
  int64_t rank = 0;
  /// Tensor maps: the rows of a box.
  int64_t boxRows = 0;

  bool operator==(const Arg &o) const;
};

/// A size known at launch: the constant `value`, the launch variable `var`
/// (B, H, N, Nq, Nk, slices, n; for split-KV launches also Nq*G, the packed
/// query rows, splits and B*Hkv; for packed variable-length launches
/// varlen_q_tiles, ceil(Nq / block_q) + B) or, with `value` > 1,
/// ceil(var / value).
struct SizeExpr {
  std::string var;
  int64_t value = 1;

  static SizeExpr constant(int64_t v) { return {"", v}; }
  static SizeExpr of(llvm::StringRef var, int64_t divisor = 1) {
    return {var.str(), divisor};
  }
  bool operator==(const SizeExpr &o) const {
    return var == o.var && value == o.value;
  }
};

/// One kernel launch.
struct Launch {
  /// The kernel function in the module.
  std::string kernel;
  std::array<SizeExpr, 3> grid;
  std::array<int64_t, 3> block = {1, 1, 1};
  /// Dynamic shared memory; above 48 KB the function needs the opt-in
  /// attribute (CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES).
  int64_t dynamicSharedBytes = 0;
  std::vector<Arg> args;

  bool operator==(const Launch &o) const;
};

/// A caller-allocated buffer (workspaces, the scratch) or a linear kernel's
/// capture: its shape (for the scratch: the factors of its element count;
/// the constant -1 is a dynamic dim of a capture).
struct Buffer {
  std::string name;
  std::string dtype;
  std::vector<SizeExpr> shape;

  bool operator==(const Buffer &o) const;
};

enum class Variant { MmaSync, Wgmma };
/// How many (b, h) slices a block map has: "1", "B", "Hq" or "B*Hq".
enum class MapSlices { One, Batch, Heads, BatchHeads };

/// Masks on captured data: the map kernel, launched first, fills one i8
/// class per (slice, q tile, kv tile) into `block_map`.
struct BlockMap {
  Launch launch;
  MapSlices slices = MapSlices::One;

  bool operator==(const BlockMap &o) const;
};

/// The split-KV (decode) form of an attention kernel (docs/inference.md):
/// `partial`, one block per (ceil(Nq*G / block_rows), splits, B*Hkv), with
/// G = Hq / Hkv query heads packed into the rows of a q tile, writes each kv
/// slice's f32 o and lse into the `o_part` ([splits, B, Hq, Nq, Dv]) and
/// `lse_part` ([splits, B, Hq, Nq]) workspaces; `combine`, one block per
/// (Nq, Hq, B), merges them by their lse into o (and lse). Launchers take
/// it instead of the main kernel for Nq <= max_queries, choosing `splits`
/// from the device's multiprocessor count; masks on captured data get no
/// block map there (every tile is evaluated per element).
struct SplitKv {
  int64_t blockRows = 0, blockKv = 0, maxQueries = 0;
  Launch partial, combine;

  bool operator==(const SplitKv &o) const;
};

/// A FlashAttention kernel of convert-attn-to-gpu (docs/gpu.md).
struct AttentionKernel {
  std::string dtype; // bf16 or f16
  int64_t headDim = 0, valueDim = 0, headsQ = 0, headsKv = 0;
  int64_t blockQ = 0, blockKv = 0;
  /// Shared memory of the kernel (static for mma_sync, dynamic for wgmma).
  int64_t sharedBytes = 0;
  Variant variant = Variant::MmaSync;
  bool lse = false;
  double scale = 1.0;
  std::string maskKind; // none, index, data or opaque
  /// Why this is not the target's first choice of kernel, for people to
  /// read (empty: it is). attn-aot and the JIT rebuild an sm_90a wgmma
  /// kernel that ptxas reports spilling as the mma.sync kernel: "wgmma
  /// spilled 96 bytes; mma.sync used".
  std::string fallback;
  /// `main.kernel` is the kernel's name.
  Launch main;
  std::optional<BlockMap> blockMap;
  std::optional<SplitKv> splitKv;
  /// A paged KV cache (pageSize > 0): k and v are pools [P, Hkv, S, D] and
  /// `pageTable` (an argument "capture<i>" of the main kernel, the launch's
  /// input 3 + i) is the [B, M] i32 block table; Nk = M * pageSize.
  int64_t pageSize = 0;
  std::string pageTable;
  /// Attention sinks: the [Hq] f32 logits' argument ("capture<i>"), which
  /// the split-KV combine kernel takes after o and lse; "" without.
  std::string sinks;
  /// Packed variable-length sequences: the [B + 1] i32 offsets of each
  /// sequence's queries and keys ("capture<i>" arguments); "" without.
  /// The main kernel then runs over (ceil(Nq / blockQ) + B, Hq, 1) blocks,
  /// each finding its sequence and q tile in the offsets.
  std::string cuSeqlensQ, cuSeqlensK;
  bool varlen() const { return !cuSeqlensQ.empty(); }

  bool operator==(const AttentionKernel &o) const;
};

/// The backward of an attention spec: convert-attn-to-gpu on an
/// attn.attention_grad (docs/backward.md, "GPU kernels"). Two launches on
/// one stream: `dq`, one block per (q tile, Hq, B), which also writes
/// D = rowsum(dO * o) of its rows into the `delta` workspace, then `dkdv`,
/// one block per (kv tile, Hkv, B), which reads it. Both take the same
/// arguments: q, k, v, o, do, lse, dq, dk, dv, capture<i>, dcapture<i>,
/// delta, B, Nq, Nk and the (b, h, n) strides of q, k, v, o, do, dq, dk,
/// dv. Capture gradients (f32, the capture's shape) accumulate by atomics:
/// the launcher zeroes them before `dq`; it allocates `delta` (f32,
/// B * Hq * Nq elements) for the two launches.
struct AttentionGradKernel {
  std::string dtype; // bf16 or f16
  int64_t headDim = 0, valueDim = 0, headsQ = 0, headsKv = 0;
  /// Rows of a q tile (dq kernel) and of a kv tile (dkdv kernel).
  int64_t blockQ = 0, blockKv = 0;
  double scale = 1.0;
  std::string maskKind; // none, index, data or opaque
  /// The spec's captured tensors, and how many of them get a gradient.
  int64_t captures = 0, captureGrads = 0;
  Launch dq, dkdv;
  /// Masks on captured data: the map kernel, launched first into the
  /// `block_map` workspace (one i8 per element of its grid), which both
  /// kernels read.
  std::optional<BlockMap> blockMap;

  bool operator==(const AttentionGradKernel &o) const;
};

enum class Decay { None, Head, Token, TokenDim };

/// A linear-attention / scan kernel of convert-attn-linear-to-gpu
/// (docs/linear-gpu.md). Its JSON is also the kernel function's `attn.abi`.
struct LinearKernel {
  std::string dtype; // bf16 or f16
  int64_t heads = 0, headsKv = 0, headDim = 0, valueDim = 0, featureDim = 0;
  int64_t chunk = 0, dvSlice = 0;
  Decay decay = Decay::None;
  bool causal = true, normalize = false;
  double scale = 1.0;
  Launch main;
  /// Launched before `main`: phi(q), phi(k) into the workspaces.
  std::optional<Launch> featureKernel;
  std::vector<Buffer> captures, workspace;
  /// f32, its element count the product of `shape`.
  std::optional<Buffer> scratch;

  bool operator==(const LinearKernel &o) const;
};

/// A function parameter: dtype and shape (-1: dynamic).
struct Param {
  std::string name;
  std::string dtype;
  std::vector<int64_t> shape;

  bool operator==(const Param &o) const;
};

/// Checks on input values and lengths that the types cannot express
/// (indices are of inputs and their dims).
struct ValueChecks {
  /// Inputs holding log-gates: every value finite and <= 0.
  std::vector<int64_t> logGates;
  /// (input, dim, length).
  std::vector<std::array<int64_t, 3>> lengths;
  /// (input, dim, input, dim): equal sizes.
  std::vector<std::array<int64_t, 4>> equalDims;
  /// (input, dim, refInput, refDim, divisor): dim `dim` of `input` has at
  /// least ceil(size(refInput, refDim) / divisor) elements (a page table's
  /// dim 1 counts page-size keys per entry).
  std::vector<std::array<int64_t, 5>> minExtents;
  /// (table, 1, pool, 0, page size): a paged op's block table; its values
  /// index dim 0 of `pool` (k) and its width times the page size is Nk.
  std::vector<std::array<int64_t, 5>> pageTables;
  /// (lens, 0, keys input, keys dim, queries at end): per-sequence key
  /// counts in [0, Nk] (Nk: that size, a page table's in keys), and at
  /// least Nq (q's dim 2) when the queries are at the end.
  std::vector<std::array<int64_t, 5>> kvLens;
  /// (offsets, 0, tokens input, tokens dim): packed sequences' [B + 1]
  /// offsets start at 0, never decrease and end at most at that size.
  std::vector<std::array<int64_t, 4>> cuSeqlens;
  /// (input, dim, offsets, 0): a capture read at a packed sequence's index
  /// b needs at least size(offsets, 0) - 1 entries in that dim.
  std::vector<std::array<int64_t, 4>> perSequence;

  bool operator==(const ValueChecks &o) const;
};

/// The function a kernel computes, as a JIT cache entry records it.
struct Signature {
  std::vector<Param> inputs, outputs;
  /// The kernel-argument name of each input (q, k, v, decay, ...).
  std::vector<std::string> inputNames;
  /// Per-head decays when the spec's decay is a constant.
  std::vector<double> constDecay;
  ValueChecks checks;

  bool operator==(const Signature &o) const;
};

/// Attention and linear kernels compute an attn op; an elementwise kernel
/// (`o[i] = a[i] <op> b[i]` over flat tensors) combines their results in a
/// program of several attn ops.
enum class KernelKind { Attention, Linear, Elementwise, AttentionGrad };

struct Kernel {
  /// The spec function; also the attention kernel's function name.
  std::string name;
  KernelKind kind = KernelKind::Attention;
  /// Files of the directory: the PTX and (may be empty) the cubin.
  std::string ptxFile, cubinFile;
  /// The description of `kind`.
  AttentionKernel attention;
  LinearKernel linear;
  AttentionGradKernel attentionGrad;
  /// Elementwise kernels: the one launch (its signature is recorded).
  Launch elementwise;
  /// Launched after the main kernel, in order (none are generated yet).
  std::vector<Launch> reductions;
  std::optional<Signature> signature;

  bool operator==(const Kernel &o) const;
};

struct KernelSet {
  int64_t schemaVersion = kSchemaVersion;
  /// "attn-aot" or "attnc" (the JIT's cache).
  std::string generator;
  /// sm_80 or sm_90a.
  std::string target;
  std::vector<Kernel> kernels;

  bool operator==(const KernelSet &o) const;
};

/// The launches of `k` in their order: the map kernel, the feature kernel,
/// the main kernel, the reductions; for an attention backward dq, then dkdv.
/// An attention kernel's split-KV launches (an alternative to the others)
/// come last.
llvm::SmallVector<const Launch *, 4> launchSequence(const Kernel &k);

/// The one writer: `set` as manifest.json's JSON.
llvm::json::Value toJson(const KernelSet &set);
/// One kernel's record (an entry of the manifest's "kernels"; also the
/// code generators' #attn.kernel_abi attribute).
llvm::json::Value toJson(const Kernel &k);
/// A linear kernel's JSON (manifest.json's "abi" of the kernel; the
/// `attn.abi` attribute). Part of the writer above.
llvm::json::Value toJson(const LinearKernel &k);
/// A signature's fields (inputs, outputs, input_names, const_decay, checks),
/// as a kernel of manifest.json carries them; also the JIT cache's entry.json.
/// Part of the writer above.
llvm::json::Object toJson(const Signature &s);
/// JSON text: keys sorted, ": " and ", " between entries; with `lines`,
/// objects and arrays that hold objects or arrays are broken over indented
/// lines (the others stay on one line) and the text ends in a newline.
std::string formatJson(const llvm::json::Value &v, bool lines);
/// formatJson(toJson(set), true): manifest.json's text.
std::string formatKernelSet(const KernelSet &set);

/// The one reader: checks types, ranges, names, roles and consistency of
/// everything; the error names the offending field by its path
/// ("manifest: kernels[0].args[3].name: ...").
llvm::Expected<KernelSet> parseKernelSet(const llvm::json::Value &json);
/// The same, from text.
llvm::Expected<KernelSet> parseKernelSetText(llvm::StringRef text);
/// Reads one kernel's record (toJson(const Kernel &)) as a code generator
/// writes it: the signature may be absent (the manifest reader requires it
/// of elementwise and backward kernels).
llvm::Expected<Kernel> parseKernel(const llvm::json::Value &json);
/// A hash of `k`'s record (equal records hash equally).
llvm::hash_code hash_value(const Kernel &k);
/// A linear kernel's JSON (the `attn.abi` attribute).
llvm::Expected<LinearKernel> parseLinearKernel(const llvm::json::Value &json);
/// A signature's fields of `json` (an object; other fields are ignored).
llvm::Expected<Signature> parseSignature(const llvm::json::Value &json);

llvm::StringRef stringify(ArgKind k);
llvm::StringRef stringify(Variant v);
llvm::StringRef stringify(MapSlices s);
llvm::StringRef stringify(Decay d);
llvm::StringRef stringify(KernelKind k);

} // namespace attnc::abi

#endif // ATTNC_ABI_KERNELSET_H
