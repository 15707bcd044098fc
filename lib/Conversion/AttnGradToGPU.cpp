//===- AttnGradToGPU.cpp - attn.attention_grad to GPU kernels -------------===//
//
// Part of attnc. See AttnGradToGPU.h and GradKernel.h. Checks the op,
// derives the configuration of its two kernels (through a detached forward
// view whose mask analysis classifies tiles as the forward does), creates
// the gpu.module with `<name>_dq` and `<name>_dkdv`, and describes them in
// the ABI.
//
//===----------------------------------------------------------------------===//

#include "attnc/Conversion/AttnGradToGPU.h"
#include "GradKernel.h"
#include "attnc/Dialect/Attn/SpecFunctions.h"
#include "attnc/Target/TargetDesc.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/LLVMIR/NVVMDialect.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/NVGPU/IR/NVGPUDialect.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"

using namespace mlir;
using namespace mlir::attn;
using namespace mlir::attn::detail;
namespace abi = attnc::abi;

namespace {
/// A detached attn.attention with the grad op's operands and a copy of its
/// score and mask regions, erased with this object.
class ForwardView {
public:
  explicit ForwardView(AttentionGradOp op) : view(op.createForwardView()) {}
  ~ForwardView() { view->erase(); }
  AttentionOp op() const { return view; }

private:
  AttentionOp view;
};

/// Shared bytes of a [rows x (cols + 8)] tile of 16-bit elements.
int64_t tileBytes(int64_t rows, int64_t cols) { return rows * (cols + 8) * 2; }

LogicalResult checkGradOp(AttentionGradOp op, ScheduleAttr sched) {
  if (!sched || sched.getTarget() == Target::Cpu)
    return op.emitOpError() << "needs a GPU #attn.schedule (sm_80 or sm_90a) "
                               "for GPU code generation (run "
                               "attn-select-schedule with a GPU target)";
  Type elem = cast<RankedTensorType>(op.getQ().getType()).getElementType();
  if (!elem.isBF16() && !elem.isF16())
    return op.emitOpError()
           << "GPU backward kernels take bf16 or f16 inputs, got " << elem;
  int64_t d = op.getHeadDim(), dv = op.getValueDim();
  if (d % 16 != 0 || dv % 16 != 0 || d > 256 || dv > 256)
    return op.emitOpError() << "GPU backward kernels need head dims that are "
                               "multiples of 16 and at most 256, got "
                            << d << " and " << dv;
  if (op.getDLse())
    return op.emitOpError()
           << "has a dLSE operand: the GPU backward kernels take the gradient "
              "of o only (a loss reading lse runs on the CPU backward)";
  int64_t bq = sched.getBlockQ(), bkv = sched.getBlockKv();
  if (bq % 16 != 0 || bq > 128 || bq < 16 || bkv % 16 != 0 || bkv > 128 ||
      bkv < 16)
    return op.emitOpError()
           << "GPU backward schedule needs block_q and block_kv in {16, 32, "
              "..., 128}, got "
           << bq << "x" << bkv;
  return success();
}

FailureOr<GradKernelConfig> getGradKernelConfig(AttentionGradOp op,
                                                AttentionOp view) {
  ScheduleAttr sched = op.getScheduleAttr();
  if (failed(checkGradOp(op, sched)) || failed(checkGpuRegionOps(op)))
    return failure();
  GradKernelConfig cfg;
  cfg.grad = op;
  AttnKernelConfig &f = cfg.fwd;
  f.op = view;
  f.ms = analyzeMaskStructure(view);
  f.d = op.getHeadDim();
  f.dv = op.getValueDim();
  f.hq = op.getNumQueryHeads();
  f.hkv = op.getNumKvHeads();
  f.bq = sched.getBlockQ();
  f.warps = f.bq / 16;
  f.elem = cast<RankedTensorType>(op.getQ().getType()).getElementType();
  int64_t width = std::max(f.d, f.dv);
  // Register budget: the dq kernel holds q and dO fragments and the dq
  // accumulators; the dkdv kernel k and v fragments and two accumulators.
  cfg.kvStep = width <= 64 ? 64 : 32;
  f.bkv = cfg.kvStep;
  cfg.bkv = sched.getBlockKv();
  cfg.qStep = width <= 64 ? 64 : width <= 128 ? 32 : 16;
  int64_t dqTile = tileBytes(cfg.kvStep, width) + tileBytes(cfg.kvStep, f.dv);
  int64_t dkdvTile = tileBytes(cfg.qStep, width) + tileBytes(cfg.qStep, f.dv);
  cfg.dqBuffers = 2 * dqTile <= kStaticSharedBytes ? 2 : 1;
  cfg.dkdvBuffers = 2 * dkdvTile <= kStaticSharedBytes ? 2 : 1;
  cfg.dqSharedBytes = cfg.dqBuffers * dqTile;
  int64_t gradBytes = 0;
  bool static_ = true;
  for (unsigned c : op.getGradCaptureIndices()) {
    auto t = cast<RankedTensorType>(op.getCaptures()[c].getType());
    static_ &= t.hasStaticShape();
    if (t.hasStaticShape())
      gradBytes += t.getNumElements() * 4;
  }
  cfg.sharedCaptureGrads = static_ && gradBytes > 0 &&
                           cfg.dqSharedBytes + gradBytes <= kStaticSharedBytes;
  cfg.dkdvSharedBytes = cfg.dkdvBuffers * dkdvTile;
  f.sharedBytes = cfg.dqSharedBytes;
  // The function's tensors between v and (o, lse, dO).
  f.captures = kernelCaptures(op, op.getCaptures(), 3);
  cfg.useMap = f.ms.kind == MaskKind::data || f.ms.kind == MaskKind::opaque;
  cfg.mapCfg = f;
  cfg.mapCfg.bq = std::min(f.bq, cfg.qStep);
  cfg.mapCfg.bkv = std::min(cfg.bkv, cfg.kvStep);
  cfg.mapCfg.warps = cfg.mapCfg.bq / 16;
  SmallVector<unsigned> withGrad = op.getGradCaptureIndices();
  cfg.gradOfCapture.assign(f.captures.size(), -1);
  for (auto [pos, c] : llvm::enumerate(withGrad)) {
    auto it = llvm::find(f.captures, op.getCaptures()[c]);
    cfg.gradOfCapture[it - f.captures.begin()] = int(pos);
  }
  return cfg;
}

/// The parameters of both kernels, recorded in `args` as they are added.
SmallVector<Type> describeGradArguments(const GradKernelConfig &cfg,
                                        std::vector<abi::Arg> &args) {
  AttentionGradOp op = cfg.grad;
  KernelParams p(op.getContext());
  int64_t dyn = ShapedType::kDynamic;
  Type elem = cfg.fwd.elem, f32 = Float32Type::get(op.getContext());
  for (StringRef n : {"q", "k", "v", "o", "do"})
    p.memref(n, elem, {dyn});
  p.memref("lse", f32, {dyn});
  for (StringRef n : {"dq", "dk", "dv"})
    p.memref(n, elem, {dyn});
  for (auto [i, cap] : llvm::enumerate(cfg.fwd.captures)) {
    auto t = cast<RankedTensorType>(cap.getType());
    p.memref("capture" + std::to_string(i), t.getElementType(), t.getShape());
  }
  int64_t g = 0;
  for (auto [i, cap] : llvm::enumerate(cfg.fwd.captures))
    if (cfg.gradOfCapture[i] >= 0)
      p.memref("dcapture" + std::to_string(g++), f32,
               cast<RankedTensorType>(cap.getType()).getShape());
  p.memref("delta", f32, {dyn});
  if (cfg.useMap)
    p.memref("block_map", IntegerType::get(op.getContext(), 8), {dyn});
  for (StringRef n : {"B", "Nq", "Nk"})
    p.index(n);
  for (StringRef t : {"q", "k", "v", "o", "do", "dq", "dk", "dv"})
    for (StringRef s : {"b", "h", "n"})
      p.index((t + "_stride_" + s).str());
  args = std::move(p.args);
  return std::move(p.types);
}

gpu::GPUFuncOp createGradKernel(const GradKernelConfig &cfg, OpBuilder &ob,
                                StringRef name, ArrayRef<Type> argTypes,
                                int64_t threads, int64_t buffers, int64_t rows,
                                int64_t firstWidth,
                                ArrayRef<Type> extraShared = {}) {
  MLIRContext *ctx = ob.getContext();
  auto wg = gpu::AddressSpaceAttr::get(ctx, gpu::AddressSpace::Workgroup);
  Type first = MemRefType::get({buffers, rows, firstWidth + 8}, cfg.fwd.elem,
                               AffineMap(), wg);
  Type second = MemRefType::get({buffers, rows, cfg.fwd.dv + 8}, cfg.fwd.elem,
                                AffineMap(), wg);
  SmallVector<Type> shared = {first, second};
  shared.append(extraShared.begin(), extraShared.end());
  auto func = gpu::GPUFuncOp::create(ob, cfg.grad.getLoc(), name,
                                     ob.getFunctionType(argTypes, {}), shared);
  func->setAttr(gpu::GPUDialect::getKernelFuncAttrName(), ob.getUnitAttr());
  func->setAttr(NVVM::NVVMDialect::getMinctasmAttrName(),
                ob.getI32IntegerAttr(1));
  func.setKnownBlockSizeAttr(ob.getDenseI32ArrayAttr({int32_t(threads), 1, 1}));
  return func;
}

/// The block-map kernel of a backward with a mask on captured data: its
/// gpu.func (arguments: the captures, the map, the slice count, Nq, Nk) and
/// its launch.
FailureOr<abi::BlockMap> buildGradBlockMap(const GradKernelConfig &cfg,
                                           OpBuilder &ob, StringRef name,
                                           ArrayRef<Type> gradTypes,
                                           ArrayRef<abi::Arg> gradArgs) {
  SmallVector<Type> types;
  abi::BlockMap bm;
  for (auto [t, a] : llvm::zip(gradTypes, gradArgs)) {
    std::optional<abi::ArgRole> role = abi::argRole(a.name);
    if (role == abi::ArgRole::Capture || role == abi::ArgRole::BlockMap) {
      types.push_back(t);
      bm.launch.args.push_back(a);
    }
  }
  for (StringRef n : {"slices", "Nq", "Nk"}) {
    types.push_back(ob.getIndexType());
    bm.launch.args.push_back({n.str(), abi::ArgKind::Scalar, "", 0, 0});
  }
  const AttnKernelConfig &m = cfg.mapCfg;
  bm.slices = mapSlicesOf(m.ms);
  bm.launch.kernel = (name + "_blockmap").str();
  bm.launch.grid = {abi::SizeExpr::of("Nq", m.bq),
                    abi::SizeExpr::of("Nk", m.bkv),
                    abi::SizeExpr::of("slices")};
  bm.launch.block = {m.threads(), 1, 1};
  emitBlockMapKernel(m, createBlockMapKernel(m, ob, bm.launch.kernel, types));
  return bm;
}

abi::Kernel describeGradKernels(const GradKernelConfig &cfg, StringRef name,
                                std::vector<abi::Arg> args) {
  AttentionGradOp op = cfg.grad;
  abi::Kernel k;
  k.name = name.str();
  k.ptxFile = k.name + ".ptx";
  k.kind = abi::KernelKind::AttentionGrad;
  abi::AttentionGradKernel &g = k.attentionGrad;
  g.dtype = cfg.fwd.isBF16() ? "bf16" : "f16";
  g.headDim = cfg.fwd.d;
  g.valueDim = cfg.fwd.dv;
  g.headsQ = cfg.fwd.hq;
  g.headsKv = cfg.fwd.hkv;
  g.blockQ = cfg.fwd.bq;
  g.blockKv = cfg.bkv;
  g.scale = op.getEffectiveScale();
  g.maskKind = stringifyMaskKind(cfg.fwd.ms.kind).str();
  g.captures = int64_t(cfg.fwd.captures.size());
  g.captureGrads = cfg.numGrads();
  g.dq.kernel = (name + "_dq").str();
  g.dq.grid = {abi::SizeExpr::of("Nq", cfg.fwd.bq),
               abi::SizeExpr::constant(cfg.fwd.hq), abi::SizeExpr::of("B")};
  g.dq.block = {cfg.fwd.threads(), 1, 1};
  g.dq.args = args;
  g.dkdv.kernel = (name + "_dkdv").str();
  g.dkdv.grid = {abi::SizeExpr::of("Nk", cfg.bkv),
                 abi::SizeExpr::constant(cfg.fwd.hkv), abi::SizeExpr::of("B")};
  g.dkdv.block = {cfg.dkdvThreads(), 1, 1};
  g.dkdv.args = std::move(args);
  return k;
}
} // namespace

FailureOr<abi::Kernel> mlir::attn::buildAttentionGradKernels(AttentionGradOp op,
                                                             ModuleOp module,
                                                             StringRef name) {
  ForwardView view(op);
  FailureOr<GradKernelConfig> cfg = getGradKernelConfig(op, view.op());
  if (failed(cfg))
    return failure();
  MLIRContext *ctx = op.getContext();
  std::vector<abi::Arg> args;
  SmallVector<Type> types = describeGradArguments(*cfg, args);
  OpBuilder ob = beginKernelModule(module, op.getLoc(), name);
  int64_t width = std::max(cfg->fwd.d, cfg->fwd.dv);
  // The dq kernel's shared copies of the capture gradients.
  SmallVector<Type> gradCopies;
  auto wg = gpu::AddressSpaceAttr::get(ctx, gpu::AddressSpace::Workgroup);
  for (auto [i, cap] : llvm::enumerate(cfg->fwd.captures))
    if (cfg->sharedCaptureGrads && cfg->gradOfCapture[i] >= 0)
      gradCopies.push_back(
          MemRefType::get(cast<RankedTensorType>(cap.getType()).getShape(),
                          ob.getF32Type(), AffineMap(), wg));
  gpu::GPUFuncOp dq = createGradKernel(*cfg, ob, (name + "_dq").str(), types,
                                       cfg->fwd.threads(), cfg->dqBuffers,
                                       cfg->kvStep, width, gradCopies);
  gpu::GPUFuncOp dkdv =
      createGradKernel(*cfg, ob, (name + "_dkdv").str(), types,
                       cfg->dkdvThreads(), cfg->dkdvBuffers, cfg->qStep, width);
  std::optional<abi::BlockMap> map;
  if (cfg->useMap) {
    FailureOr<abi::BlockMap> bm =
        buildGradBlockMap(*cfg, ob, name, types, args);
    if (failed(bm))
      return failure();
    map = std::move(*bm);
  }
  if (failed(emitGradDqKernel(*cfg, dq)) ||
      failed(emitGradDkDvKernel(*cfg, dkdv)))
    return failure();
  abi::Kernel k = describeGradKernels(*cfg, name, std::move(args));
  k.attentionGrad.blockMap = std::move(map);
  dq->setAttr(KernelAbiAttr::kName, KernelAbiAttr::get(ctx, k));
  return k;
}
