//===- AttnBase.td - attn dialect, enums and attributes ------*- tablegen -*-===//
#ifndef ATTN_BASE_TD
#define ATTN_BASE_TD

include "mlir/IR/OpBase.td"
include "mlir/IR/AttrTypeBase.td"
include "mlir/IR/EnumAttr.td"

def Attn_Dialect : Dialect {
  let name = "attn";
  let cppNamespace = "::mlir::attn";
  let summary = "Attention variants as a few lines of IR";
  let description = [{
    The `attn` dialect describes *what* an attention variant computes:
    softmax attention with score and mask callbacks (`attn.attention`),
    kernelized linear attention (`attn.linear_attention`) and gated
    first-order scans (`attn.scan`). Passes analyse the callbacks (mask tile
    classes), choose an IO-aware schedule and lower the ops to tiled CPU or
    GPU code; `convert-attn-to-reference` gives the naive oracle.

    The dialect declares two argument attributes of spec functions, which
    say how `attn-run` (and the testing library behind it) fills the
    function's inputs; the verifier checks them, and any other `attn.`
    argument attribute is an error:

    * `attn.run_init = "<mode>[:<numbers>]"`: float tensors take
      `uniform:lo:hi` (lo < hi); integer tensors `sorted:lo:hi` and
      `randint:lo:hi` (lo <= hi), `bits:p` (p in [0, 1]), `permutation`
      (0 .. n-1 shuffled: a page table), `kv_lens` (per-sequence key
      counts) and `cu_seqlens` (cumulative offsets of packed sequences).
      Without numbers a mode takes its defaults.
    * `attn.run_dims = ["b", "nq/64", "8", ...]`: the sizes of a tensor's
      dynamic dims, one entry per dim: `b`, `nq`, `nk`, `n` (the larger of
      nq and nk) or a positive integer, optionally divided (rounding up) by
      a positive integer.

    ```mlir
    func.func @document_mask(%q: tensor<?x4x?x64xf32>,
        %k: tensor<?x4x?x64xf32>, %v: tensor<?x4x?x64xf32>,
        %docs: tensor<?xi32> {attn.run_init = "sorted:0:3",
                              attn.run_dims = ["n"]})
    ```
  }];
  let useDefaultAttributePrinterParser = 1;
  let hasRegionArgAttrVerify = 1;
  let dependentDialects = ["::mlir::arith::ArithDialect",
                           "::mlir::math::MathDialect",
                           "::mlir::tensor::TensorDialect",
                           "::mlir::vector::VectorDialect"];
}

//===----------------------------------------------------------------------===//
// Enums
//===----------------------------------------------------------------------===//

def Attn_MaskKind : I32EnumAttr<"MaskKind", "what a mask depends on", [
    I32EnumAttrCase<"none", 0>,
    I32EnumAttrCase<"index", 1>,
    I32EnumAttrCase<"data", 2>,
    I32EnumAttrCase<"opaque", 3>]> {
  let cppNamespace = "::mlir::attn";
  let genSpecializedAttr = 0;
}

def Attn_Direction : I32EnumAttr<"Direction", "scan direction", [
    I32EnumAttrCase<"causal", 0>,
    I32EnumAttrCase<"bidirectional", 1>]> {
  let cppNamespace = "::mlir::attn";
  let genSpecializedAttr = 0;
}
def Attn_DirectionAttr : EnumAttr<Attn_Dialect, Attn_Direction, "direction">;

def Attn_StateCombine : I32EnumAttr<"StateCombine",
    "which ranks' states attn.combine_states folds", [
    I32EnumAttrCase<"prefix", 0>,
    I32EnumAttrCase<"suffix", 1>]> {
  let cppNamespace = "::mlir::attn";
  let genSpecializedAttr = 0;
}
def Attn_StateCombineAttr
    : EnumAttr<Attn_Dialect, Attn_StateCombine, "state_combine">;

//===----------------------------------------------------------------------===//
// Attributes
//===----------------------------------------------------------------------===//

class Attn_Attr<string name, string attrMnemonic> : AttrDef<Attn_Dialect, name> {
  let mnemonic = attrMnemonic;
}

def Attn_KernelAbiParameter
    : AttrParameter<"::attnc::abi::Kernel", "a kernel set's ABI record"> {
  let parser = "::mlir::attn::parseKernelAbi($_parser)";
  let printer = "::mlir::attn::printKernelAbi($_printer, $_self)";
}

def Attn_KernelAbiAttr : Attn_Attr<"KernelAbi", "kernel_abi"> {
  let summary = "The ABI record of a generated kernel set";
  let description = [{
    The GPU code generators (`convert-attn-to-gpu` for attention and its
    backward, `convert-attn-linear-to-gpu`) attach this to the first kernel
    of each kernel set they emit, as `attn.abi`: the kernel set's record of
    the one kernel ABI (`include/attnc/Abi/KernelSet.h`, an entry of
    `manifest.json`): its kind, launches in order (grids as size
    expressions, block sizes, dynamic shared memory, arguments with their
    roles), block map, split-KV form, workspaces and the page table and
    sinks arguments. attn-aot and the JIT read it from there and add the
    files and the function's signature. In the IR it is the record's JSON;
    the parser checks it with the ABI's reader, so a malformed record is a
    parse error naming the field.

    ```mlir
    gpu.func @causal(...) kernel attributes {
      attn.abi = #attn.kernel_abi<"{\22kind\22: \22attention\22, ...}">}
    ```
  }];
  let parameters = (ins Attn_KernelAbiParameter:$kernel);
  let assemblyFormat = "`<` $kernel `>`";
  let extraClassDeclaration = [{
    /// The name of the attribute on the kernel: `attn.abi`.
    static constexpr ::llvm::StringLiteral kName = "attn.abi";
  }];
}

def Attn_MaskInfoAttr : Attn_Attr<"MaskInfo", "mask_info"> {
  let summary = "Result of the mask analysis";
  let description = [{
    Written by `attn-analyze-masks`. `kind` says what the combined mask (the
    `mask` region and the -inf branches of the `score` region) depends on:

    * `none`: every key is visible, all tiles are full;
    * `index`: a function of (b, h, i, j) only, made of integer arithmetic
      (add, sub, mul, div, rem, min, max, comparisons, boolean logic). Tile
      classes (empty / full / partial) are computed symbolically by interval
      evaluation of the mask over the tile rectangle, and the kv-tile range of
      each q tile is the range of its non-empty tiles;
    * `data`: the mask reads captured tensors (document ids, block layouts).
      Tiles that the index part cannot classify are classified by a runtime
      block map computed before the tile loop;
    * `opaque`: the mask uses an operation the interval evaluator does not
      model (floats, unknown ops). Like `data`, the tiles the intervals leave
      undecided are classified by the runtime block map (an exact evaluation
      of the mask over each such tile).

    `batch` and `head` say whether the mask depends on b and h anywhere in
    its backward slice, the indices of captured-tensor reads included (a
    block map is shared across batches and heads when it does not). `from_score` says that the
    score region yields -inf under a condition that was folded into the mask.

    Example: `#attn.mask_info<kind = index, batch = false, head = false, from_score = false>`
  }];
  let parameters = (ins EnumParameter<Attn_MaskKind>:$kind, "bool":$batch,
                        "bool":$head, "bool":$from_score);
  let assemblyFormat = "`<` struct(params) `>`";
}

/// A compilation target, the C++ enum mlir::attn::Target of the
/// AttncTargetDesc library (include/attnc/Target/TargetDesc.h), written as
/// its quoted name: "cpu", "sm_80" or "sm_90a" (a bare name also parses).
def Attn_TargetParameter : AttrParameter<"::mlir::attn::Target",
                                         "compilation target"> {
  let parser = "::mlir::attn::parseTargetParameter($_parser)";
  let printer = [{ $_printer << '"' << ::mlir::attn::stringifyTarget($_self) << '"' }];
}

def Attn_ScheduleAttr : Attn_Attr<"Schedule", "schedule"> {
  let summary = "IO-aware tiling schedule";
  let description = [{
    Written by `attn-select-schedule` (or by the user, in which case the pass
    keeps it). `block_q` x `block_kv` is the tile of the score matrix that
    one step of the online softmax processes; `warps` the warps per thread
    block on GPUs; `stages` the depth of the kv pipeline; `smem_bytes` the
    on-chip bytes the tiles occupy for this head dim and dtype. `target` is
    one of `"cpu"`, `"sm_80"` and `"sm_90a"` (stored as an enum).

    Example: `#attn.schedule<target = "sm_80", block_q = 128, block_kv = 64, warps = 4, stages = 2, smem_bytes = 65536>`
  }];
  let parameters = (ins Attn_TargetParameter:$target,
                        "int64_t":$block_q, "int64_t":$block_kv,
                        "int64_t":$warps, "int64_t":$stages,
                        "int64_t":$smem_bytes);
  let assemblyFormat = "`<` struct(params) `>`";
  let genVerifyDecl = 1;
}

def Attn_TokenOrderAttr : Attn_Attr<"TokenOrder", "token_order"> {
  let summary = "The order in which a scan visits the tokens of a grid";
  let description = [{
    The sequence holds `review` summary tokens, then the tokens of a grid
    (for video, `[T, H, W]`) flattened row-major. A scan with this order
    visits the review tokens first, then the grid with its dimensions nested
    as `perm` says (`perm[0]` outermost): `perm = [0, 1, 2]` is the storage
    order, `[1, 2, 0]` scans each pixel through time before moving on. The
    order is folded into the kernel's load and store addressing (no copy);
    o is returned in storage order. The sequence length must be
    `review + product(grid)`. LinGen's MATE block changes the order from
    layer to layer (rotary-major scans).

    Example: `#attn.token_order<grid = [8, 16, 16], perm = [1, 2, 0], review = 4>`
  }];
  let parameters = (ins ArrayRefParameter<"int64_t">:$grid,
                        ArrayRefParameter<"int64_t">:$perm,
                        "int64_t":$review);
  let assemblyFormat = [{
    `<` `grid` `=` `[` $grid `]` `,` `perm` `=` `[` $perm `]` `,` `review` `=` $review `>`
  }];
  let genVerifyDecl = 1;
  let extraClassDeclaration = [{
    /// review + product(grid): the sequence length the order is for.
    int64_t getLength() const;
  }];
}

#endif // ATTN_BASE_TD
