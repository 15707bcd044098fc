//===- AttnPasses.td - attn passes ---------------------------*- tablegen -*-===//
#ifndef ATTN_PASSES_TD
#define ATTN_PASSES_TD

include "mlir/Pass/PassBase.td"

def AttnAnalyzeMasks : Pass<"attn-analyze-masks"> {
  let summary = "Classify mask tiles as empty, full or partial";
  let description = [{
    Analyses the `mask` region of every `attn.attention` together with the
    `-inf` branches of its `score` region and attaches a
    `#attn.mask_info<...>` attribute: whether the mask is absent, a pure
    function of the indices (classified symbolically per tile by interval
    evaluation), dependent on captured data (needs a runtime block map) or
    opaque. With `tile-map=Nq,Nk,Bq,Bkv` it also prints, for that problem
    size, the class of every tile (`F` full, `P` partial, `.` empty, `R`
    needs the runtime map) and each q tile's kv-tile range, so that tests can
    check the analysis.
  }];
  let options = [
    ListOption<"tileMap", "tile-map", "int64_t",
               "print the tile map for Nq,Nk,block_q,block_kv">,
  ];
  let dependentDialects = ["::mlir::attn::AttnDialect"];
}

def AttnSelectSchedule : Pass<"attn-select-schedule"> {
  let summary = "Choose IO-aware tile sizes for a target";
  let description = [{
    Attaches `#attn.schedule<...>` to every `attn.attention` that has none,
    picking the largest block_q x block_kv tile whose working set (Q tile,
    `stages` K/V tiles, the f32 score and accumulator tiles) fits the
    target's on-chip memory for the op's head dims and element type (the
    FlashAttention IO analysis). `block-q` / `block-kv` override the choice;
    a schedule written by the user is kept.
  }];
  let options = [
    Option<"target", "target", "std::string", "\"cpu\"",
           "target: cpu, sm_80 or sm_90a">,
    Option<"blockQ", "block-q", "int64_t", "0", "force block_q (0 = choose)">,
    Option<"blockKv", "block-kv", "int64_t", "0",
           "force block_kv (0 = choose)">,
  ];
  let dependentDialects = ["::mlir::attn::AttnDialect"];
}

def AttnCopyAliasedResults : Pass<"attn-copy-aliased-results",
                                   "::mlir::func::FuncOp"> {
  let summary = "Give every function result its own buffer";
  let description = [{
    A kernel's caller owns each output buffer. A function that returns one
    of its arguments, the same value twice, or a constant (a global after
    bufferization), would hand out a buffer that aliases an input, another
    output or the global (freed twice or never allocated, or written by the
    caller through both). This pass replaces such a returned value with a
    copy (`bufferization.alloc_tensor() copy(...)`), so that after
    bufferization each result is a fresh allocation. Other results are left
    alone. Runs before bufferization in the CPU pipeline.

    ```mlir
    // return %o, %o, %k  becomes
    %c1 = bufferization.alloc_tensor() copy(%o) : tensor<?x4x?x64xf32>
    %c2 = bufferization.alloc_tensor() copy(%k) : tensor<?x4x?x64xf32>
    return %o, %c1, %c2 : ...
    ```
  }];
  let dependentDialects = ["::mlir::bufferization::BufferizationDialect"];
}

def AttnWidenIndexMath : Pass<"attn-widen-index-math"> {
  let summary = "Compute math ops on index values in i64";
  let description = [{
    The `math` lowerings (convert-math-to-funcs, convert-math-to-llvm) take
    integer types but not `index`, so a region computing `math.ipowi` or
    `math.absi` on indices failed to compile. This pass rewrites each math op
    whose operands or results are `index` into the same op on i64 between
    `arith.index_cast`s (index is 64 bits on every attnc target).

    ```mlir
    %p = math.ipowi %j, %c2 : index
    // becomes
    %a = arith.index_cast %j : index to i64
    %b = arith.index_cast %c2 : index to i64
    %p64 = math.ipowi %a, %b : i64
    %p = arith.index_cast %p64 : i64 to index
    ```
  }];
  let dependentDialects = ["::mlir::arith::ArithDialect"];
}

def AttnDifferentiate : Pass<"attn-differentiate", "::mlir::ModuleOp"> {
  let summary = "Make the backward function of each attention spec";
  let description = [{
    For every function `@f` whose attn op is one `attn.attention`,
    `attn.linear_attention`, `attn.scan` or `attn.delta_rule` (its results
    used only by `func.return`), adds two functions next to it. For `attn.attention`:

    - `@f_forward`: the same arguments; returns `o` and `lse` (the residuals
      the backward needs; the forward's lse result is added if absent);
    - `@f_backward`: `@f`'s arguments, then `o`, `lse` and `dO`; returns
      dq, dk, dv and one gradient per captured float tensor that the score
      region reads (`attn.attention_grad`).

    The score region is differentiated symbolically into the op's
    `score_grad` region (forward-mode through arith/math: addf, subf, mulf,
    divf, negf, select, maximumf/minimumf, absf, exp, exp2, log, log2, tanh,
    sqrt, rsqrt, sin, cos, fma, extf/truncf; constants, sitofp/uitofp of
    index math and reads of integer captures are constants). Each
    `tensor.extract` of a captured float tensor is a site whose derivative
    and indices the region yields, so the lowering accumulates the capture's
    gradient. The mask region is copied: masks have no derivative and keep
    their tile classes. A float op that the pass cannot differentiate is
    reported on that op. With `func=NAME` only that function is
    differentiated (and one that cannot be is an error). With `lse-grad`,
    the backward of a function that returns the attention's lse also takes
    the gradient of that lse (`dLSE`, after `dO`), for a loss that reads
    it; without it, lse's gradient is taken as zero.

    For `attn.linear_attention` and `attn.scan`:

    - `@f_forward`: a copy of `@f` (the backward recomputes what it needs);
    - `@f_backward`: `@f`'s arguments, then `dO` and, when `@f` returns the
      final state, its gradient; returns dq, dk, dv, then the gradients of
      the decay and of the initial state when the op has them
      (`attn.linear_attention_grad`). Each feature map gets a
      Jacobian-vector-product region, differentiated forward mode through
      the same arith/math rules plus the vector ops (broadcast, shuffle,
      extract, insert, transpose, shape_cast, fma, add reductions, max/min
      `vector.reduction`); reads of captured tensors are constants (no
      gradient for captures of feature maps yet).

    For `attn.delta_rule`: `@f_forward` is a copy of `@f`; `@f_backward`
    takes `@f`'s arguments, then `dO` and (when `@f` returns the final
    state) its gradient, and returns dq, dk, dv, dbeta, then the gradients
    of the decay and of the initial state when the op has them
    (`attn.delta_rule_grad`).
  }];
  let options = [
    Option<"funcName", "func", "std::string", "\"\"",
           "the function to differentiate (default: every eligible one)">,
    Option<"lseGrad", "lse-grad", "bool", "false",
           "the backward of a function returning lse takes dLSE too">,
  ];
  let dependentDialects = ["::mlir::attn::AttnDialect",
    "::mlir::arith::ArithDialect", "::mlir::math::MathDialect",
    "::mlir::func::FuncDialect"];
}

def AttnSequenceParallel : Pass<"attn-sequence-parallel", "::mlir::ModuleOp"> {
  let summary = "Split linear attention into LASP-2's sequence-parallel phases";
  let description = [{
    For every function `@f` whose attn op is one causal
    `attn.linear_attention` or `attn.scan` (results used only by
    `func.return`; q, k, v and the initial state arguments of `@f`), adds the phases of LASP-2 (sequence parallelism with one
    AllGather of states) as functions next to it. Each rank of W holds a
    contiguous chunk of the tokens (any lengths). Every phase takes `@f`'s
    arguments, then, when a feature map reads token positions, the chunk's
    first position (`tensor<1xi32>`, added to the positions the maps see),
    then its own:

    - `@f_lasp_state(args) -> (state, log_decay)`: the chunk's final state
      from a zero state, `[B, H, F, Dv]` f32, and the chunk's total
      log-decay (`[B, H]`, or `[B, H, F]` for per-feature gates; zeros
      without a decay). Only the state is computed (the op's output is
      unused, and the lowerings skip it).
    - the runtime gathers both over the ranks (the collective is a step
      between phases, not inside one);
    - `@f_lasp_combine(states, log_decays, rank) -> prefix`: the state
      entering the chunk (`attn.combine_states prefix`);
    - `@f_lasp_output(args, prefix) -> (o, final_state)`: the chunk's
      output, the op with `initial_state(prefix)`.
    - `@f_lasp_layout() -> tensor<9xi32>`: the argument indices of q, k,
      v, the decay and the initial state (-1: none; -2: a decay computed in
      `@f`, whose gradient is dropped), whether `@f` returns a second
      result (final state or lse), normalize, whether the phases take
      positions, and the kind (0 linear, 1 softmax).

    With `normalize` the phases run the unnormalized op on v with a column
    of ones appended (Dv + 1): the state carries the normalizer, and the
    output phase returns `[n | z]`, `o = n / z`. An initial state of `@f`
    is the runtime's state before rank 0 (with no decay).

    The backward: `attn-differentiate` of `@f_lasp_output` gives
    `@f_lasp_output_backward(args, prefix, dO, dS) -> (dq, dk, dv[, dg],
    d_prefix)`. Each rank runs it with `dS = 0` for its local state gradient,
    the runtime gathers those, `@f_lasp_combine_grad(grads, log_decays,
    rank)` (`attn.combine_states suffix`) folds the ranks after it into the
    gradient of the chunk's final state, and a second run with that `dS`
    gives the chunk's exact gradients. Per-head decays (`[H]`) get one
    gradient per rank, which the runtime sums.

    For a function whose op is one `attn.attention` (LASP-2H, the softmax
    layers of hybrid models): `@f_lasp_attention(args, offset)`, the
    attention with the rank's first global position added to the query
    position `i` of its mask and score regions (the runtime passes keys
    and values gathered from every rank), and `@f_lasp_layout`.

    Bidirectional ops, token orders, operands computed in the function,
    inference attention (pages, kv_lens, packed sequences, sinks,
    queries_at_end) and several attn ops are reported (not split yet). With `func=NAME` only
    that function is split (one that cannot be is an error).
  }];
  let options = [
    Option<"funcName", "func", "std::string", "\"\"",
           "the function to split (default: every eligible one)">,
  ];
  let dependentDialects = ["::mlir::attn::AttnDialect",
    "::mlir::arith::ArithDialect", "::mlir::tensor::TensorDialect",
    "::mlir::scf::SCFDialect", "::mlir::func::FuncDialect"];
}

def ConvertAttnToReference : Pass<"convert-attn-to-reference", "::mlir::ModuleOp"> {
  let summary = "Lower attn ops to their naive definition (the test oracle)";
  let description = [{
    `attn.attention`: the full score row per query in f32 (two passes: max,
    then exp-sum and weighted values), masks and score regions applied
    elementwise. `attn.linear_attention` / `attn.scan`: the quadratic
    (parallel) form with explicit decay weights, in f32. Output is scf loops
    on memrefs wrapped in `bufferization.to_buffer` / `to_tensor`.
    `attn.attention_grad`: the backward with P recomputed from lse, every
    dot product and accumulation in f64 (docs/backward.md).
  }];
  let dependentDialects = [
    "::mlir::arith::ArithDialect", "::mlir::math::MathDialect",
    "::mlir::memref::MemRefDialect", "::mlir::scf::SCFDialect",
    "::mlir::bufferization::BufferizationDialect",
    "::mlir::vector::VectorDialect", "::mlir::tensor::TensorDialect"];
}

def AttnTile : Pass<"attn-tile", "::mlir::ModuleOp"> {
  let summary = "FlashAttention tiling with online softmax (CPU loops)";
  let description = [{
    Lowers `attn.attention` with a schedule to the FlashAttention-2 loop
    nest: per (b, h, q tile) a running max and sum in f32 and an f32
    accumulator; kv tiles iterated over the range the mask analysis derives;
    empty tiles never visited, full tiles run without mask code, partial
    tiles evaluate the mask. Dot products over the head dim are vector ops.
    exp2 with log2(e) folded into the scale. Rows with no visible key give
    o = 0 and lse = -inf. `attn.linear_attention` / `attn.scan` lower to
    their chunked form (chunk length from the schedule's `block_q`: the
    quadratic form inside a chunk with the decay built from cumulative
    log-gates, the F x Dv state across chunks; a backward pass over the
    chunks for bidirectional scans) or, with `linear-form=recurrent`, to the
    token-by-token recurrence (the decode form). Both are checked against
    the quadratic reference. `attn.attention_grad` lowers to the
    FlashAttention-2 backward: kv tiles outer with f32 dk/dv tile buffers,
    P recomputed per tile from lse, the forward's tile classes (empty tiles
    skipped); tile sizes from its `schedule`, else 32 x 32.
  }];
  let options = [
    Option<"linearForm", "linear-form", "std::string", "\"chunked\"",
           "lowering of linear attention and scans: chunked or recurrent">
  ];
  let dependentDialects = [
    "::mlir::arith::ArithDialect", "::mlir::math::MathDialect",
    "::mlir::memref::MemRefDialect", "::mlir::scf::SCFDialect",
    "::mlir::bufferization::BufferizationDialect",
    "::mlir::vector::VectorDialect", "::mlir::tensor::TensorDialect"];
}

def ConvertAttnToGPU : Pass<"convert-attn-to-gpu", "::mlir::ModuleOp"> {
  let summary = "Generate a FlashAttention-class tensor-core kernel per attention op";
  let description = [{
    For every scheduled (GPU target) and mask-analysed `attn.attention`,
    appends a `gpu.module @<func>_kernels` holding `gpu.func @<func>`.

    With an sm_90a schedule of 128 (or 64) x 128 tiles and 16-bit inputs
    with head dims 64/128, the Hopper kernel: block_q / 64 warpgroups share
    128-key K/V tiles that TMA loads (4-D tensor maps passed by value,
    128-byte swizzle) through a two-stage mbarrier pipeline; S = Q K^T with
    `nvvm.wgmma.mma_async` (shared-memory descriptors), O += P V with
    register-A wgmma; the kv-tile range is reduced over the block and a
    partial tile's mask is evaluated into bits before S exists.

    Otherwise the mma.sync kernel (sm_80 instructions, which Hopper runs):
    one thread block per (q tile, head, batch), 16 query rows per warp, K/V tiles
    staged in shared memory with `nvgpu.device_async_copy`, operands loaded
    with `nvgpu.ldmatrix`, Q K^T and P V with `nvvm.mma.sync` m16n8k16
    (f16/bf16, f32 accumulate), the online softmax in registers with
    `ex2.approx`, the score and mask regions inlined per element. kv tiles
    outside the range the mask analysis derives are never loaded; tiles it
    proves full run without mask code. Fragment layouts are recorded in the
    kernel's `attn.fragments` attribute. The spec function is left in place.

    For every `attn.attention_grad` with a GPU schedule, appends
    `gpu.module @<func>_kernels` with the backward's two mma.sync kernels
    (docs/backward.md): `@<func>_dq`, one block per (q tile, head, batch),
    which writes D = rowsum(dO * o) of its rows into a workspace, recomputes
    P = exp(S - lse) per kv tile and accumulates dq (and capture gradients,
    summed per thread and warp before atomics); then `@<func>_dkdv`, one
    block per (kv tile, kv head, batch), looping over the group's query
    heads and non-empty q tiles for dk and dv. Tile classes come from the
    forward's mask analysis; masks on captured data get the forward's
    block-map kernel `@<func>_blockmap`, launched first.
  }];
  let dependentDialects = [
    "::mlir::gpu::GPUDialect", "::mlir::nvgpu::NVGPUDialect",
    "::mlir::NVVM::NVVMDialect", "::mlir::LLVM::LLVMDialect",
    "::mlir::memref::MemRefDialect", "::mlir::scf::SCFDialect",
    "::mlir::vector::VectorDialect"];
}

def ConvertAttnLinearToGPU : Pass<"convert-attn-linear-to-gpu", "::mlir::ModuleOp"> {
  let summary = "Generate a chunked tensor-core kernel per linear attention / scan op";
  let description = [{
    For every scheduled (GPU target) `attn.linear_attention` and `attn.scan`,
    appends a `gpu.module @<func>_kernels` holding `gpu.func @<func>` (a
    second op in the same function gets `<func>_1`, ...) and marks the op
    with `attn.gpu_kernel` (marked ops are skipped, so the pass may run
    twice). The kernel is the chunked algorithm on `nvvm.mma.sync`
    m16n8k16 (bf16/f16, f32 accumulate): one thread block of 4 warps per
    (Dv slice, head, batch) walks chunks of 64 tokens in order, the next
    chunk's Q, K, V fetched with `nvgpu.device_async_copy` into a second
    buffer while one is computed; inside a chunk the causal
    `phi(Q) phi(K)^T` times the decay matrix `exp2(L_i - L_j)` of
    cumulative log-gates, times V, plus `exp2(L_i) phi(Q) S`; the F x Dv
    state S in f32 registers (a bf16/f16 copy in shared memory for the
    product with Q), updated with `(phi(K) exp2(L_last - L_j))^T V`.
    Elementwise feature maps are applied in shared memory after each load;
    `normalize` adds a column of ones to V so the same mma instructions
    carry the normalizer; bidirectional ops add a backward sweep. Supported:
    head dims 64 and 128, no decay, per-head and per-token gates, GLA's
    per-token per-feature gates (causal), initial and final states.
    Feature maps that are not elementwise, read captures or change the
    feature dim (Hedgehog, Performer, cosFormer) run first in a feature
    kernel that writes phi(q), phi(k) to caller-allocated workspaces
    (F = 64 or 128). Unsupported (an error naming it): token orders,
    bidirectional with normalize or with per-feature gates, f32 inputs. Unless `dv-slice` is given, causal ops
    with per-token scalar gates take 32 value columns per block and all
    others 64 (measured on an H100, docs/linear-gpu.md). The kernel's ABI
    (arguments, grid, block, dynamic shared memory) is a JSON string in its
    `attn.abi` attribute; see docs/linear-gpu.md.
  }];
  let options = [
    Option<"dvSlice", "dv-slice", "int64_t", "64",
           "value columns per thread block (32 or 64)">,
  ];
  let dependentDialects = [
    "::mlir::gpu::GPUDialect", "::mlir::nvgpu::NVGPUDialect",
    "::mlir::NVVM::NVVMDialect", "::mlir::LLVM::LLVMDialect",
    "::mlir::memref::MemRefDialect", "::mlir::scf::SCFDialect",
    "::mlir::vector::VectorDialect", "::mlir::math::MathDialect"];
}

def AttnFinalizeSm90 : Pass<"attn-finalize-sm90", "::mlir::gpu::GPUModuleOp"> {
  let summary = "Finish sm_90a kernels after convert-gpu-to-nvvm: by-value "
                "tensor maps and aligned dynamic shared memory";
  let description = [{
    Runs on a `gpu.module` after `convert-gpu-to-nvvm` (the sm_90a path,
    docs/notes/sm90a-plan.md):
    - on every `llvm.func` kernel (`nvvm.kernel`) with an `attn.tma_args`
      array, the listed arguments (`!llvm.ptr`) become 128-byte TMA tensor
      maps passed by value as `__grid_constant__` parameters:
      `llvm.byval = !llvm.array<16 x i64>`, `llvm.align = 64`,
      `nvvm.grid_constant` (in 22.1 `gpu.func` rejects `nvvm.grid_constant`
      and the GPU-to-NVVM conversion drops `llvm.byval`);
    - `__dynamic_shmem__*` globals (from `gpu.dynamic_shared_memory`) become
      external with 1024-byte alignment, so that PTX declares real dynamic
      shared memory (`.extern .shared .align 1024 .b8 ...[]`) aligned for
      128-byte-swizzled TMA/wgmma tiles.
    On every target (the pass runs in every GPU pipeline, right before
    `convert-nvvm-to-llvm`), inline PTX that LLVM's code generator would
    reject with a fatal, process-ending error is an error on the op
    instead: an NVVM PTX-builder op (`nvvm.inline_ptx`, ...) with an
    operand defined by a non-integer `llvm.mlir.constant` (the builder
    gives it the immediate constraint `n`, integers only), an
    `nvvm.inline_ptx` operand or result without a PTX register type, and
    an `llvm.inline_asm` whose immediate (`n`, `i`) operand is not an
    integer constant.
  }];
  let dependentDialects = ["::mlir::LLVM::LLVMDialect",
                           "::mlir::NVVM::NVVMDialect"];
}

#endif // ATTN_PASSES_TD
