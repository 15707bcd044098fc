//===- LinearToGPU.cpp - linear attention / scans to a tensor-core kernel -===//
//
// Part of attnc. See LinearToGPU.h and docs/linear-gpu.md. buildLinearKernel
// checks the op, describes the kernels' ABI (attnc::abi::LinearKernel),
// creates the gpu.module with the chunked kernel (ChunkedKernel.cpp) and,
// for feature maps that need one, the feature kernel (FeatureKernel.cpp).
//
//===----------------------------------------------------------------------===//

#include "attnc/Conversion/LinearToGPU.h"
#include "AttnKernel.h"
#include "LinearKernel.h"
#include "attnc/Transforms/Passes.h"

#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/LLVMIR/NVVMDialect.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/NVGPU/IR/NVGPUDialect.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"

#include "llvm/ADT/StringSet.h"
#include "llvm/Support/Debug.h"
#include "llvm/Support/raw_ostream.h"

namespace mlir::attn {
#define GEN_PASS_DEF_CONVERTATTNLINEARTOGPU
#include "Attn/AttnPasses.h.inc"
} // namespace mlir::attn

using namespace mlir;
using namespace mlir::attn;
using namespace mlir::attn::detail;

LogicalResult mlir::attn::checkLinearGpuSupport(Operation *op,
                                                int64_t dvSlice) {
  LinearSpec s(op);
  auto sched = op->getAttrOfType<ScheduleAttr>("schedule");
  if (!sched)
    return op->emitOpError() << "needs #attn.schedule before GPU code "
                                "generation (run attn-select-schedule)";
  if (sched.getTarget() == Target::Cpu)
    return op->emitOpError() << "has a CPU schedule; select a GPU target "
                                "(sm_80 or sm_90a) for GPU code generation";
  if (!s.elem.isBF16() && !s.elem.isF16())
    return op->emitOpError()
           << "GPU kernels take bf16 or f16 inputs, got " << s.elem;
  if (failed(detail::checkGpuRegionOps(op)))
    return failure();
  bool feat = needsFeatureKernel(s);
  if (!feat && ((s.d != 64 && s.d != 128) || (s.dv != 64 && s.dv != 128)))
    return op->emitOpError()
           << "GPU linear-attention kernels need head dims 64 or 128, got "
           << s.d << " and " << s.dv;
  if (feat && ((s.f != 64 && s.f != 128) || (s.dv != 64 && s.dv != 128)))
    return op->emitOpError()
           << "GPU linear-attention kernels need a feature dim and a value "
              "dim of 64 or 128, got "
           << s.f << " and " << s.dv;
  if (feat && s.d > 256)
    return op->emitOpError() << "GPU feature kernels read head dims up to "
                                "256, got "
                             << s.d;
  if (dvSlice != 32 && dvSlice != 64)
    return op->emitOpError()
           << "GPU dv-slice must be 32 or 64, got " << dvSlice;
  if (s.dv % dvSlice != 0)
    return op->emitOpError()
           << "value dim " << s.dv << " is not a multiple of the dv-slice "
           << dvSlice;
  if (s.kind == Decay::TokenDim && !s.causal)
    return op->emitOpError() << "bidirectional per-token, per-feature decay "
                                "(GLA) is not supported on GPU";
  for (Region *r : {s.fq, s.fk}) {
    if (!r || !feat)
      continue;
    std::string why;
    if (Operation *bad = firstUnscalarizable(*r, s.captures, why))
      return op->emitOpError() << "feature map op '" << bad->getName()
                               << "' cannot run on GPU: " << why;
  }
  return success();
}

int64_t mlir::attn::defaultLinearDvSlice(Operation *op) {
  // Measured on an H100 (2026-11-23, B=4 T=8192 H=16 D=Dv=128 bf16): causal
  // per-token scalar gates (Mamba2 / simple GLA) 0.471 ms with 32 columns
  // against 0.501 with 64 (twice the blocks hide the gate scan and the
  // per-row exponentials); every other kernel was faster with 64 (identity
  // 0.325 vs 0.391, elu+1 normalized 0.885 vs 0.917, RetNet 0.394 vs 0.445,
  // bidirectional scan 1.002 vs 1.138).
  LinearSpec s(op);
  if (s.kind == Decay::Token && s.causal && s.dv % 32 == 0)
    return 32;
  return 64;
}

namespace {
/// `t` as the ABI spells element types (bf16, f16, f32, i1, ...).
std::string typeName(Type t) {
  std::string out;
  llvm::raw_string_ostream os(out);
  os << t;
  return out;
}

/// A 1-D memref argument of element type `el`.
attnc::abi::Arg memArg(StringRef name, Type el) {
  return {name.str(),
          el.isF32() ? attnc::abi::ArgKind::MemrefF32
                     : attnc::abi::ArgKind::Memref,
          typeName(el), 1, 0};
}

attnc::abi::Arg scalarArg(StringRef name) {
  return {name.str(), attnc::abi::ArgKind::Scalar, "", 0, 0};
}

/// The ABI of `s`'s chunked kernel without its arguments: sizes, the grid
/// (Dv / dvSlice, H, B), shared memory and, bidirectional with normalize,
/// the caller's f32 scratch: the forward sweep's numerators [B, H, N, Dv]
/// then its denominators [B, H, N, Dv / dv_slice] (by scan position), fully
/// written before read. `d`: the head dim the kernel reads (the feature dim
/// with a feature kernel).
attnc::abi::LinearKernel linearAbi(const LinearSpec &s, StringRef name,
                                   int64_t dvSlice, int64_t d) {
  using attnc::abi::SizeExpr;
  attnc::abi::LinearKernel k;
  k.dtype = s.elem.isBF16() ? "bf16" : "f16";
  k.heads = s.h;
  k.headsKv = s.hk;
  k.headDim = s.d;
  k.valueDim = s.dv;
  k.featureDim = s.f;
  k.chunk = kChunk;
  k.dvSlice = dvSlice;
  switch (s.kind) {
  case Decay::None:
    k.decay = attnc::abi::Decay::None;
    break;
  case Decay::Head:
    k.decay = attnc::abi::Decay::Head;
    break;
  case Decay::Token:
    k.decay = attnc::abi::Decay::Token;
    break;
  case Decay::TokenDim:
    k.decay = attnc::abi::Decay::TokenDim;
    break;
  }
  k.causal = s.causal;
  k.normalize = s.normalize;
  k.scale = s.scale;
  k.main.kernel = name.str();
  k.main.grid = {SizeExpr::constant(s.dv / dvSlice), SizeExpr::of("H"),
                 SizeExpr::of("B")};
  k.main.block = {kThreads, 1, 1};
  k.main.dynamicSharedBytes =
      (2 * 2 * kChunk * (d + 8) + 2 * kChunk * (dvSlice + 8) +
       d * (dvSlice + 8)) *
          2 +
      2 * kChunk * 4 + (s.kind == Decay::TokenDim ? 2 * kChunk * d * 4 : 0);
  if (s.normalize && !s.causal)
    k.scratch = attnc::abi::Buffer{"scratch",
                                   "f32",
                                   {SizeExpr::of("B"), SizeExpr::constant(s.h),
                                    SizeExpr::of("N"),
                                    SizeExpr::constant(s.dv + s.dv / dvSlice)}};
  return k;
}

/// The workspaces phi(q) [B, H, N, F] and phi(k) [B, Hkv, N, F] of a
/// feature kernel.
void addWorkspaces(const LinearSpec &s, attnc::abi::LinearKernel &k) {
  using attnc::abi::SizeExpr;
  for (auto [n, heads] :
       {std::pair<const char *, int64_t>{"phi_q", s.h}, {"phi_k", s.hk}})
    k.workspace.push_back(
        attnc::abi::Buffer{n,
                           k.dtype,
                           {SizeExpr::of("B"), SizeExpr::constant(heads),
                            SizeExpr::of("N"), SizeExpr::constant(s.f)}});
}

/// The chunked kernel's parameters, recorded in `abi`: q and k (or the
/// workspaces phi(q), phi(k) with a feature kernel), v, the gates, the
/// states, o, the scratch, then sizes and strides.
SmallVector<Type> chunkedKernelArguments(const LinearSpec &s, bool feat,
                                         attnc::abi::LinearKernel &abi) {
  Builder bld(s.op->getContext());
  Type idx = bld.getIndexType(), f32 = bld.getF32Type();
  SmallVector<Type> argTypes;
  auto mem = [&](StringRef n, Type el) {
    argTypes.push_back(MemRefType::get({ShapedType::kDynamic}, el));
    abi.main.args.push_back(memArg(n, el));
  };
  mem(feat ? "phi_q" : "q", s.elem);
  mem(feat ? "phi_k" : "k", s.elem);
  mem("v", s.elem);
  if (s.decay)
    mem("decay", f32);
  if (s.init)
    mem("initial_state", f32);
  mem("o", s.elem);
  if (s.hasFinal)
    mem("final_state", f32);
  if (abi.scratch)
    mem("scratch", f32);
  SmallVector<StringRef> scalars = {"B", "N"};
  if (!feat)
    scalars.append({"q_stride_b", "q_stride_h", "q_stride_n", "k_stride_b",
                    "k_stride_h", "k_stride_n"});
  scalars.append({"v_stride_b", "v_stride_h", "v_stride_n", "o_stride_b",
                  "o_stride_h", "o_stride_n"});
  if (s.kind == Decay::Token || s.kind == Decay::TokenDim)
    scalars.append({"g_stride_b", "g_stride_h", "g_stride_n"});
  for (StringRef n : scalars) {
    argTypes.push_back(idx);
    abi.main.args.push_back(scalarArg(n));
  }
  return argTypes;
}

/// The feature kernel's launch and parameters (q, k, the captures, the
/// workspaces, sizes and strides), recorded in `abi`.
SmallVector<Type> featureKernelArguments(const LinearSpec &s, StringRef phiName,
                                         attnc::abi::LinearKernel &abi) {
  Builder bld(s.op->getContext());
  Type idx = bld.getIndexType();
  SmallVector<Type> phiTypes;
  attnc::abi::Launch &phi = abi.featureKernel.emplace();
  phi.kernel = phiName.str();
  phi.grid = {attnc::abi::SizeExpr::of("N", kFeatureThreads),
              attnc::abi::SizeExpr::constant(s.h + s.hk),
              attnc::abi::SizeExpr::of("B")};
  phi.block = {kFeatureThreads, 1, 1};
  addWorkspaces(s, abi);
  auto pmem = [&](StringRef n, Type el) {
    phiTypes.push_back(MemRefType::get({ShapedType::kDynamic}, el));
    phi.args.push_back(memArg(n, el));
  };
  pmem("q", s.elem);
  pmem("k", s.elem);
  for (auto [i, c] : llvm::enumerate(s.captures)) {
    auto ct = cast<RankedTensorType>(c.getType());
    std::string cn = "capture" + std::to_string(i);
    pmem(cn, ct.getElementType());
    attnc::abi::Buffer &buf = abi.captures.emplace_back();
    buf.name = cn;
    buf.dtype = typeName(ct.getElementType());
    for (int64_t d : ct.getShape())
      buf.shape.push_back(
          attnc::abi::SizeExpr::constant(ShapedType::isDynamic(d) ? -1 : d));
  }
  pmem("phi_q", s.elem);
  pmem("phi_k", s.elem);
  for (StringRef n : {"B", "N", "q_stride_b", "q_stride_h", "q_stride_n",
                      "k_stride_b", "k_stride_h", "k_stride_n"}) {
    phiTypes.push_back(idx);
    phi.args.push_back(scalarArg(n));
  }
  return phiTypes;
}

/// A kernel gpu.func of `threads` threads at `ob`'s insertion point.
gpu::GPUFuncOp createKernelFunc(OpBuilder &ob, Location loc, StringRef name,
                                ArrayRef<Type> argTypes, int64_t threads) {
  auto func =
      gpu::GPUFuncOp::create(ob, loc, name, ob.getFunctionType(argTypes, {}));
  func->setAttr(gpu::GPUDialect::getKernelFuncAttrName(), ob.getUnitAttr());
  func.setKnownBlockSizeAttr(ob.getDenseI32ArrayAttr({int32_t(threads), 1, 1}));
  return func;
}
} // namespace

FailureOr<attnc::abi::LinearKernel>
mlir::attn::buildLinearKernel(Operation *op, ModuleOp module, StringRef name,
                              int64_t dvSlice) {
  if (failed(checkLinearGpuSupport(op, dvSlice)))
    return failure();
  LinearSpec s(op);
  // With a feature kernel the chunked kernel reads phi(q), phi(k) from the
  // workspaces: an identity map on F features, scale 1.
  bool feat = needsFeatureKernel(s);
  LinearSpec cs = s;
  if (feat) {
    cs.workspace = true;
    cs.d = s.f;
    cs.fq = cs.fk = nullptr;
    cs.scale = 1.0;
  }
  MLIRContext *ctx = op->getContext();
  ctx->loadDialect<gpu::GPUDialect, nvgpu::NVGPUDialect, NVVM::NVVMDialect,
                   LLVM::LLVMDialect, memref::MemRefDialect, scf::SCFDialect,
                   vector::VectorDialect, math::MathDialect,
                   tensor::TensorDialect>();
  attnc::abi::LinearKernel abi = linearAbi(s, name, dvSlice, cs.d);
  SmallVector<Type> argTypes = chunkedKernelArguments(s, feat, abi);
  std::string phiName = name.str() + "_phi";
  SmallVector<Type> phiTypes;
  if (feat)
    phiTypes = featureKernelArguments(s, phiName, abi);
  attnc::abi::Kernel record;
  record.name = name.str();
  record.kind = attnc::abi::KernelKind::Linear;
  record.ptxFile = record.name + ".ptx";
  record.linear = abi;

  OpBuilder ob(ctx);
  ob.setInsertionPointToEnd(module.getBody());
  module->setAttr(gpu::GPUDialect::getContainerModuleAttrName(),
                  UnitAttr::get(ctx));
  auto gpuModule =
      gpu::GPUModuleOp::create(ob, op->getLoc(), (name + "_kernels").str());
  ob.setInsertionPointToStart(gpuModule.getBody());
  auto func = createKernelFunc(ob, op->getLoc(), name, argTypes, kThreads);
  func->setAttr(NVVM::NVVMDialect::getMinctasmAttrName(),
                ob.getI32IntegerAttr(1));
  func->setAttr(KernelAbiAttr::kName, KernelAbiAttr::get(ctx, record));
  emitChunkedKernel(cs, dvSlice, func);
  if (feat) {
    // After the chunked kernel (whose attn.abi describes both).
    ob.setInsertionPointAfter(func);
    auto pf =
        createKernelFunc(ob, op->getLoc(), phiName, phiTypes, kFeatureThreads);
    emitFeatureKernel(s, pf);
    if (s.fq)
      scalarizeHostRegion(*s.fq);
    if (s.fk && s.fk != s.fq)
      scalarizeHostRegion(*s.fk);
  }
  op->setAttr("attn.gpu_kernel", ob.getStringAttr(name));
  return abi;
}

#define DEBUG_TYPE "convert-attn-linear-to-gpu"
namespace {
struct ConvertAttnLinearToGPUPass
    : public mlir::attn::impl::ConvertAttnLinearToGPUBase<
          ConvertAttnLinearToGPUPass> {
  using Base::Base;
  void runOnOperation() override {
    ModuleOp module = getOperation();
    SmallVector<std::pair<Operation *, std::string>> work;
    llvm::StringMap<int> perFunc;
    module.walk([&](Operation *op) {
      if (!isa<LinearOpInterface>(op) || op->hasAttr("attn.gpu_kernel"))
        return;
      auto func = op->getParentOfType<FunctionOpInterface>();
      std::string name = func ? func.getName().str() : "linear";
      int count = perFunc[name]++;
      if (count)
        name += "_" + std::to_string(count);
      work.push_back({op, name});
    });
    // Kernel modules are @<name>_kernels; convert-attn-to-gpu names the
    // module of an attn.attention in the same function (MATE's TESA branch)
    // alike: on a clash, @<name>_linear_kernels (then _linear_1, ...).
    llvm::StringSet<> taken;
    for (auto &[op, name] : work)
      taken.insert(name);
    for (auto &[op, name] : work) {
      if (!module.lookupSymbol(name + "_kernels"))
        continue;
      std::string base = name + "_linear", cand = base;
      for (int i = 1;
           module.lookupSymbol(cand + "_kernels") || taken.contains(cand); ++i)
        cand = base + "_" + std::to_string(i);
      taken.insert(cand);
      name = cand;
    }
    for (auto &[op, name] : work) {
      // An explicit dv-slice wins; otherwise the measured default.
      int64_t ds =
          dvSlice.hasValue() ? int64_t(dvSlice) : defaultLinearDvSlice(op);
      LLVM_DEBUG(llvm::dbgs()
                 << "kernel '" << name << "' for " << op->getAttr("schedule")
                 << ", dv slice " << ds << "\n");
      if (failed(buildLinearKernel(op, module, name, ds)))
        return signalPassFailure();
    }
  }
};
} // namespace
