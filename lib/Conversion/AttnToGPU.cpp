//===- AttnToGPU.cpp - attn.attention to a tensor-core GPU kernel ---------===//
//
// Part of attnc. See AttnToGPU.h. buildAttentionKernel checks the op and
// derives its configuration (AttnKernel.cpp), describes the kernels'
// arguments (KernelInfo), creates the gpu.module with the main kernel and,
// for masks on captured data, the block-map kernel, and has them emitted:
// MmaSyncKernel.cpp, WgmmaKernel.cpp, BlockMapKernel.cpp.
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

namespace {
/// The kernel description of `cfg` without its arguments.
KernelInfo describeKernel(const AttnKernelConfig &cfg, StringRef name) {
  AttentionOp op = cfg.op;
  KernelInfo info;
  info.name = name.str();
  info.target = stringifyTarget(op.getScheduleAttr().getTarget()).str();
  info.dtype = cfg.isBF16() ? "bf16" : "f16";
  info.headDim = cfg.d;
  info.valueDim = cfg.dv;
  info.headsQ = cfg.hq;
  info.headsKv = cfg.hkv;
  info.blockQ = cfg.bq;
  info.blockKv = cfg.bkv;
  info.threads = cfg.threads();
  info.sharedBytes = cfg.sharedBytes;
  info.lse = bool(op.getLse());
  info.scale = op.getEffectiveScale();
  info.maskKind = stringifyMaskKind(op.getMaskInfoAttr().getKind()).str();
  if (cfg.wgmma)
    info.variant = "wgmma";
  if (op.isPaged()) {
    info.pageSize = op.getPageSize();
    info.pageTable = captureArgName(cfg, op.getPageTable());
  }
  if (op.getSinks())
    info.sinks = captureArgName(cfg, op.getSinks());
  return info;
}

/// The parameter types of the main kernel and of the block-map kernel,
/// recorded in `info` as they are added.
struct KernelSignature {
  SmallVector<Type> main, blockMap;
};

KernelSignature describeArguments(const AttnKernelConfig &cfg, KernelInfo &info,
                                  StringRef name) {
  AttentionOp op = cfg.op;
  MLIRContext *ctx = op.getContext();
  Builder bld(ctx);
  Type idx = bld.getIndexType();
  KernelSignature sig;
  SmallVector<Type> &argTypes = sig.main;
  auto addMem = [&](StringRef n, Type el, ArrayRef<int64_t> shape) {
    KernelParams one(ctx);
    one.memref(n, el, shape);
    argTypes.push_back(one.types[0]);
    info.args.push_back(one.args[0]);
  };
  for (StringRef n : {"q", "k", "v"}) {
    if (!cfg.wgmma) {
      addMem(n, cfg.elem, {ShapedType::kDynamic});
      continue;
    }
    // A CUtensorMap by value (attn-finalize-sm90 makes the pointer byval).
    argTypes.push_back(LLVM::LLVMPointerType::get(ctx));
    KernelArg ka{n.str(), "tensormap", info.dtype, 4};
    ka.boxRows = n == "q" ? cfg.bq : cfg.bkv;
    info.args.push_back(ka);
  }
  addMem("o", cfg.elem, {ShapedType::kDynamic});
  if (op.getLse())
    addMem("lse", bld.getF32Type(), {ShapedType::kDynamic});
  for (auto [i, cap] : llvm::enumerate(cfg.captures)) {
    auto t = cast<RankedTensorType>(cap.getType());
    addMem("capture" + std::to_string(i), t.getElementType(), t.getShape());
  }
  if (cfg.needsMap) {
    // The block-map kernel takes the captures, the map, the slice count and
    // the sequence lengths.
    unsigned firstCapture = op.getLse() ? 5 : 4;
    sig.blockMap.assign(argTypes.begin() + firstCapture, argTypes.end());
    info.mapArgs.assign(info.args.begin() + firstCapture, info.args.end());
    addMem("block_map", bld.getI8Type(), {ShapedType::kDynamic});
    sig.blockMap.push_back(argTypes.back());
    info.mapArgs.push_back(info.args.back());
    for (StringRef n : {"slices", "Nq", "Nk"}) {
      sig.blockMap.push_back(idx);
      info.mapArgs.push_back({n.str(), "i64", "", 0});
    }
    info.mapKernel = (name + "_blockmap").str();
    const MaskStructure &ms = cfg.ms;
    info.mapSlices =
        ms.batch ? (ms.head ? "B*Hq" : "B") : (ms.head ? "Hq" : "1");
  }
  for (StringRef n :
       {"B", "Nq", "Nk", "q_stride_b", "q_stride_h", "q_stride_n", "k_stride_b",
        "k_stride_h", "k_stride_n", "v_stride_b", "v_stride_h", "v_stride_n",
        "o_stride_b", "o_stride_h", "o_stride_n"}) {
    argTypes.push_back(idx);
    info.args.push_back({n.str(), "i64", "", 0});
  }
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
  args.push_back({name.str(), "memref", es, int64_t(shape.size())});
}

void KernelParams::index(StringRef name) {
  types.push_back(IndexType::get(ctx));
  args.push_back({name.str(), "i64", "", 0});
}

gpu::GPUFuncOp mlir::attn::detail::createMainKernel(const AttnKernelConfig &cfg,
                                                    OpBuilder &ob,
                                                    StringRef name,
                                                    ArrayRef<Type> argTypes) {
  MLIRContext *ctx = ob.getContext();
  auto wg = gpu::AddressSpaceAttr::get(ctx, gpu::AddressSpace::Workgroup);
  Type sKTy = MemRefType::get({cfg.bkv, cfg.d + 8}, cfg.elem, AffineMap(), wg);
  Type sVTy = MemRefType::get({cfg.bkv, cfg.dv + 8}, cfg.elem, AffineMap(), wg);
  // The wgmma kernel's scratch for reducing the kv-tile range: one (lo, hi)
  // pair per warp.
  Type redTy =
      MemRefType::get({2 * cfg.warps}, ob.getI32Type(), AffineMap(), wg);
  auto func = gpu::GPUFuncOp::create(
      ob, cfg.op.getLoc(), name, ob.getFunctionType(argTypes, {}),
      cfg.wgmma ? TypeRange{redTy} : TypeRange{sKTy, sVTy});
  if (cfg.wgmma) {
    func->setAttr("attn.tma_args", ob.getDenseI32ArrayAttr({0, 1, 2}));
    // 16-byte aligned: LLVM merges the reads of the per-warp pairs into
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

FailureOr<KernelInfo> mlir::attn::buildAttentionKernel(AttentionOp op,
                                                       ModuleOp module,
                                                       StringRef name) {
  FailureOr<AttnKernelConfig> cfg = getAttnKernelConfig(op);
  if (failed(cfg))
    return failure();
  OpBuilder ob = beginKernelModule(module, op.getLoc(), name);
  KernelInfo info = describeKernel(*cfg, name);
  KernelSignature sig = describeArguments(*cfg, info, name);
  gpu::GPUFuncOp func = createMainKernel(*cfg, ob, name, sig.main);
  if (cfg->needsMap)
    emitBlockMapKernel(
        *cfg, createBlockMapKernel(*cfg, ob, info.mapKernel, sig.blockMap));
  if (failed(cfg->wgmma ? emitWgmmaKernel(*cfg, func)
                        : emitMmaSyncKernel(*cfg, func)))
    return failure();
  if (failed(buildSplitKvKernels(*cfg, ob, name, info)))
    return failure();
  return info;
}

#define DEBUG_TYPE "convert-attn-to-gpu"
namespace {
struct ConvertAttnToGPUPass
    : public mlir::attn::impl::ConvertAttnToGPUBase<ConvertAttnToGPUPass> {
  void runOnOperation() override {
    ModuleOp module = getOperation();
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
