//===- AttnToGPU.cpp - attn.attention to a tensor-core GPU kernel ---------===//
//
// Part of attnc. See AttnToGPU.h. buildAttentionKernel checks the op and
// derives its configuration (AttnKernel.cpp), describes the kernels in the
// kernel ABI (attnc::abi::Kernel: launches, arguments, block map, split-KV
// form), creates the gpu.module with the main kernel and, for masks on
// captured data, the block-map kernel, has them emitted (MmaSyncKernel.cpp,
// WgmmaKernel.cpp, BlockMapKernel.cpp, SplitKvKernel.cpp) and attaches the
// record to the main kernel as #attn.kernel_abi.
//
//===----------------------------------------------------------------------===//

#include "attnc/Conversion/AttnToGPU.h"
#include "AttnKernel.h"
#include "attnc/Conversion/AttnGradToGPU.h"
#include "attnc/Target/TargetDesc.h"
#include "attnc/Transforms/Passes.h"

#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/LLVMIR/NVVMDialect.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/NVGPU/IR/NVGPUDialect.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"

#include "llvm/Support/Debug.h"

namespace mlir::attn {
#define GEN_PASS_DEF_CONVERTATTNTOGPU
#include "Attn/AttnPasses.h.inc"
} // namespace mlir::attn

using namespace mlir;
using namespace mlir::attn;
using namespace mlir::attn::detail;

namespace abi = attnc::abi;

namespace {
/// The ABI record of `cfg`'s kernel set without its launches' arguments:
/// one block per (q tile, head, batch); wgmma kernels take their shared
/// memory dynamically.
abi::Kernel describeKernel(const AttnKernelConfig &cfg, StringRef name) {
  AttentionOp op = cfg.op;
  abi::Kernel k;
  k.name = name.str();
  k.kind = abi::KernelKind::Attention;
  k.ptxFile = k.name + ".ptx";
  abi::AttentionKernel &a = k.attention;
  a.dtype = cfg.isBF16() ? "bf16" : "f16";
  a.headDim = cfg.d;
  a.valueDim = cfg.dv;
  a.headsQ = cfg.hq;
  a.headsKv = cfg.hkv;
  a.blockQ = cfg.bq;
  a.blockKv = cfg.bkv;
  a.sharedBytes = cfg.sharedBytes;
  a.variant = cfg.wgmma ? abi::Variant::Wgmma : abi::Variant::MmaSync;
  a.lse = bool(op.getLse());
  a.scale = op.getEffectiveScale();
  a.maskKind = stringifyMaskKind(op.getMaskInfoAttr().getKind()).str();
  if (op.isPaged()) {
    a.pageSize = op.getPageSize();
    a.pageTable = captureArgName(cfg, op.getPageTable());
  }
  if (op.getSinks())
    a.sinks = captureArgName(cfg, op.getSinks());
  a.main.kernel = k.name;
  a.main.grid = {abi::SizeExpr::of("Nq", cfg.bq),
                 abi::SizeExpr::constant(cfg.hq), abi::SizeExpr::of("B")};
  if (op.isVarlen()) {
    a.cuSeqlensQ = captureArgName(cfg, op.getCuSeqlensQ());
    a.cuSeqlensK = captureArgName(cfg, op.getCuSeqlensK());
    a.main.grid = {abi::SizeExpr::of("varlen_q_tiles"),
                   abi::SizeExpr::constant(cfg.hq), abi::SizeExpr::constant(1)};
  }
  a.main.block = {cfg.threads(), 1, 1};
  a.main.dynamicSharedBytes = cfg.wgmma ? cfg.sharedBytes : 0;
  return k;
}

/// The parameter types of the main kernel and of the block-map kernel.
struct KernelSignature {
  SmallVector<Type> main, blockMap;
};

/// The block-map kernel's launch (without its arguments): one block per
/// (q tile, kv tile, slice).
abi::BlockMap describeBlockMap(const AttnKernelConfig &cfg, StringRef name) {
  abi::BlockMap bm;
  bm.slices = mapSlicesOf(cfg.ms);
  bm.launch.kernel = (name + "_blockmap").str();
  bm.launch.grid = {abi::SizeExpr::of("Nq", cfg.bq),
                    abi::SizeExpr::of("Nk", cfg.bkv),
                    abi::SizeExpr::of("slices")};
  bm.launch.block = {cfg.threads(), 1, 1};
  return bm;
}

/// The arguments of the main kernel (and of the block-map kernel), added
/// to `a`'s launches as their types are added to the signature.
KernelSignature describeArguments(const AttnKernelConfig &cfg,
                                  abi::AttentionKernel &a, StringRef name) {
  AttentionOp op = cfg.op;
  MLIRContext *ctx = op.getContext();
  KernelParams p(ctx);
  for (StringRef n : {"q", "k", "v"}) {
    if (!cfg.wgmma) {
      p.memref(n, cfg.elem, {ShapedType::kDynamic});
      continue;
    }
    // A CUtensorMap by value (attn-finalize-sm90 makes the pointer byval).
    p.types.push_back(LLVM::LLVMPointerType::get(ctx));
    p.args.push_back({n.str(), abi::ArgKind::TensorMap, a.dtype, 4,
                      n == "q" ? cfg.bq : sm90KvBoxRows(op.getPageSize())});
  }
  p.memref("o", cfg.elem, {ShapedType::kDynamic});
  if (op.getLse())
    p.memref("lse", Float32Type::get(ctx), {ShapedType::kDynamic});
  for (auto [i, cap] : llvm::enumerate(cfg.captures)) {
    auto t = cast<RankedTensorType>(cap.getType());
    p.memref("capture" + std::to_string(i), t.getElementType(), t.getShape());
  }
  KernelSignature sig;
  if (cfg.needsMap) {
    // The block-map kernel takes the captures, the map, the slice count and
    // the sequence lengths.
    unsigned firstCapture = op.getLse() ? 5 : 4;
    abi::BlockMap bm = describeBlockMap(cfg, name);
    p.memref("block_map", IntegerType::get(ctx, 8), {ShapedType::kDynamic});
    sig.blockMap.assign(p.types.begin() + firstCapture, p.types.end());
    bm.launch.args.assign(p.args.begin() + firstCapture, p.args.end());
    KernelParams sizes(ctx);
    for (StringRef n : {"slices", "Nq", "Nk"})
      sizes.index(n);
    llvm::append_range(sig.blockMap, sizes.types);
    llvm::append_range(bm.launch.args, sizes.args);
    a.blockMap = std::move(bm);
  }
  for (StringRef n :
       {"B", "Nq", "Nk", "q_stride_b", "q_stride_h", "q_stride_n", "k_stride_b",
        "k_stride_h", "k_stride_n", "v_stride_b", "v_stride_h", "v_stride_n",
        "o_stride_b", "o_stride_h", "o_stride_n"})
    p.index(n);
  sig.main = std::move(p.types);
  a.main.args = std::move(p.args);
  return sig;
}

/// The register fragments of each operand, recorded on the kernel.
DictionaryAttr fragmentLayouts(OpBuilder &ob, bool wgmma) {
  auto entry = [&](StringRef operand, StringRef layout) {
    return ob.getNamedAttr(operand, ob.getStringAttr(layout));
  };
  if (wgmma)
    return ob.getDictionaryAttr({
        entry("q", "smem, TMA 128B swizzle, wgmma descriptor (K-major)"),
        entry("k", "smem, TMA 128B swizzle, wgmma descriptor (K-major)"),
        entry("s", "wgmma.m64n128.D.f32"),
        entry("p", "wgmma.m64nNk16.A.regs (from D)"),
        entry("v", "smem, TMA 128B swizzle, wgmma descriptor (MN-major)"),
        entry("o", "wgmma.m64nDv.D.f32"),
    });
  return ob.getDictionaryAttr({
      entry("q", "mma.m16n8k16.A.row (ldmatrix.x4)"),
      entry("k", "mma.m16n8k16.B.col (ldmatrix.x2)"),
      entry("s", "mma.m16n8.C.f32"),
      entry("p", "mma.m16n8k16.A.row (from C)"),
      entry("v", "mma.m16n8k16.B.col (ldmatrix.x2.trans)"),
      entry("o", "mma.m16n8.C.f32"),
  });
}

} // namespace

void KernelParams::memref(StringRef name, Type elem, ArrayRef<int64_t> shape) {
  types.push_back(MemRefType::get(shape, elem));
  std::string es;
  llvm::raw_string_ostream os(es);
  os << elem;
  args.push_back(
      {name.str(), abi::ArgKind::Memref, es, int64_t(shape.size()), 0});
}

void KernelParams::index(StringRef name) {
  types.push_back(IndexType::get(ctx));
  args.push_back({name.str(), abi::ArgKind::Scalar, "", 0, 0});
}

abi::MapSlices mlir::attn::detail::mapSlicesOf(const MaskStructure &ms) {
  if (ms.batch)
    return ms.head ? abi::MapSlices::BatchHeads : abi::MapSlices::Batch;
  return ms.head ? abi::MapSlices::Heads : abi::MapSlices::One;
}

gpu::GPUFuncOp mlir::attn::detail::createMainKernel(const AttnKernelConfig &cfg,
                                                    OpBuilder &ob,
                                                    StringRef name,
                                                    ArrayRef<Type> argTypes) {
  MLIRContext *ctx = ob.getContext();
  auto wg = gpu::AddressSpaceAttr::get(ctx, gpu::AddressSpace::Workgroup);
  Type sKTy = MemRefType::get({cfg.bkv, cfg.d + 8}, cfg.elem, AffineMap(), wg);
  Type sVTy = MemRefType::get({cfg.bkv, cfg.dv + 8}, cfg.elem, AffineMap(), wg);
  // The wgmma kernel's per-warp counts of non-empty tiles while it lists
  // them (the first `warps` entries; sized for the (lo, hi) pairs of the
  // range reduction it had before the list).
  Type redTy =
      MemRefType::get({2 * cfg.warps}, ob.getI32Type(), AffineMap(), wg);
  // And its list of the q tile's non-empty kv tiles (masked kernels).
  Type listTy = MemRefType::get({cfg.masked() ? kSm90TileListEntries : 1},
                                ob.getI32Type(), AffineMap(), wg);
  auto func = gpu::GPUFuncOp::create(
      ob, cfg.op.getLoc(), name, ob.getFunctionType(argTypes, {}),
      cfg.wgmma ? TypeRange{redTy, listTy} : TypeRange{sKTy, sVTy});
  if (cfg.wgmma) {
    func->setAttr("attn.tma_args", ob.getDenseI32ArrayAttr({0, 1, 2}));
    // 16-byte aligned: LLVM merges the reads of the per-warp counts into
    // 16-byte vector loads.
    func.setWorkgroupAttributionAttr(0, LLVM::LLVMDialect::getAlignAttrName(),
                                     ob.getI64IntegerAttr(16));
  }
  func->setAttr(gpu::GPUDialect::getKernelFuncAttrName(), ob.getUnitAttr());
  // `.minnctapersm 1`: otherwise ptxas may cap registers at 128 to fit more
  // blocks per SM, and spill (seen for softcap, d = 64, sm_80).
  func->setAttr(NVVM::NVVMDialect::getMinctasmAttrName(),
                ob.getI32IntegerAttr(1));
  func.setKnownBlockSizeAttr(
      ob.getDenseI32ArrayAttr({int32_t(cfg.threads()), 1, 1}));
  func->setAttr("attn.fragments", fragmentLayouts(ob, cfg.wgmma));
  return func;
}

OpBuilder mlir::attn::detail::beginKernelModule(ModuleOp module, Location loc,
                                                StringRef name) {
  MLIRContext *ctx = module.getContext();
  ctx->loadDialect<gpu::GPUDialect, nvgpu::NVGPUDialect, NVVM::NVVMDialect,
                   LLVM::LLVMDialect, memref::MemRefDialect, scf::SCFDialect,
                   vector::VectorDialect>();
  OpBuilder ob(ctx);
  ob.setInsertionPointToEnd(module.getBody());
  module->setAttr(gpu::GPUDialect::getContainerModuleAttrName(),
                  UnitAttr::get(ctx));
  auto gpuModule = gpu::GPUModuleOp::create(ob, loc, (name + "_kernels").str());
  ob.setInsertionPointToStart(gpuModule.getBody());
  return ob;
}

/// The block-map kernel's gpu.func at `ob`'s insertion point.
gpu::GPUFuncOp
mlir::attn::detail::createBlockMapKernel(const AttnKernelConfig &cfg,
                                         OpBuilder &ob, StringRef name,
                                         ArrayRef<Type> argTypes) {
  MLIRContext *ctx = ob.getContext();
  auto wg = gpu::AddressSpaceAttr::get(ctx, gpu::AddressSpace::Workgroup);
  // any-true, any-false, and the row / column ranges of a document mask.
  Type flagsTy = MemRefType::get({6}, ob.getI32Type(), AffineMap(), wg);
  auto func = gpu::GPUFuncOp::create(ob, cfg.op.getLoc(), name,
                                     ob.getFunctionType(argTypes, {}),
                                     TypeRange{flagsTy});
  func->setAttr(gpu::GPUDialect::getKernelFuncAttrName(), ob.getUnitAttr());
  func.setKnownBlockSizeAttr(
      ob.getDenseI32ArrayAttr({int32_t(cfg.threads()), 1, 1}));
  return func;
}

FailureOr<abi::Kernel> mlir::attn::buildAttentionKernel(AttentionOp op,
                                                        ModuleOp module,
                                                        StringRef name) {
  FailureOr<AttnKernelConfig> cfg = getAttnKernelConfig(op);
  if (failed(cfg))
    return failure();
  OpBuilder ob = beginKernelModule(module, op.getLoc(), name);
  abi::Kernel k = describeKernel(*cfg, name);
  KernelSignature sig = describeArguments(*cfg, k.attention, name);
  gpu::GPUFuncOp func = createMainKernel(*cfg, ob, name, sig.main);
  if (cfg->needsMap)
    emitBlockMapKernel(
        *cfg, createBlockMapKernel(
                  *cfg, ob, k.attention.blockMap->launch.kernel, sig.blockMap));
  if (failed(cfg->wgmma ? emitWgmmaKernel(*cfg, func)
                        : emitMmaSyncKernel(*cfg, func)))
    return failure();
  // Packed sequences have no split-KV form: their queries are many.
  if (!op.isVarlen()) {
    FailureOr<abi::SplitKv> split = buildSplitKvKernels(*cfg, ob, name);
    if (failed(split))
      return failure();
    k.attention.splitKv = std::move(*split);
  }
  func->setAttr(KernelAbiAttr::kName, KernelAbiAttr::get(op.getContext(), k));
  return k;
}

FailureOr<abi::Kernel> mlir::attn::kernelAbiOf(ModuleOp module) {
  KernelAbiAttr found;
  module.walk([&](gpu::GPUFuncOp f) {
    if (!found)
      found = f->getAttrOfType<KernelAbiAttr>(KernelAbiAttr::kName);
  });
  if (!found)
    return failure();
  return found.getKernel();
}

#define DEBUG_TYPE "convert-attn-to-gpu"
namespace {
struct ConvertAttnToGPUPass
    : public mlir::attn::impl::ConvertAttnToGPUBase<ConvertAttnToGPUPass> {
  void runOnOperation() override {
    ModuleOp module = getOperation();
    // Nothing of a module is converted when one of its ops cannot be.
    WalkResult cpuOnly = module.walk([&](Operation *op) {
      if (isa<LinearAttentionGradOp>(op))
        op->emitOpError() << "has no GPU kernels yet: the backward of linear "
                             "attention and scans runs on the CPU (the "
                             "reference lowering)";
      else if (isa<DeltaRuleOp, DeltaRuleGradOp>(op))
        op->emitOpError() << "has no GPU kernels yet: the delta rule and its "
                             "backward run on the CPU (target cpu)";
      else
        return WalkResult::advance();
      return WalkResult::interrupt();
    });
    if (cpuOnly.wasInterrupted())
      return signalPassFailure();
    SmallVector<std::pair<AttentionOp, std::string>> work;
    module.walk([&](AttentionOp op) {
      auto func = op->getParentOfType<FunctionOpInterface>();
      std::string name = func ? func.getName().str() : "attention";
      work.push_back({op, name});
    });
    for (auto &[op, name] : work) {
      LLVM_DEBUG(llvm::dbgs() << "kernel '" << name << "' for "
                              << op.getScheduleAttr() << "\n");
      if (failed(buildAttentionKernel(op, module, name)))
        return signalPassFailure();
    }
    // Backward ops: the dq and dkdv kernels (AttnGradToGPU.cpp).
    SmallVector<std::pair<AttentionGradOp, std::string>> grads;
    module.walk([&](AttentionGradOp op) {
      auto func = op->getParentOfType<FunctionOpInterface>();
      grads.push_back({op, func ? func.getName().str() : "attention_grad"});
    });
    for (auto &[op, name] : grads)
      if (failed(buildAttentionGradKernels(op, module, name)))
        return signalPassFailure();
  }
};
} // namespace
