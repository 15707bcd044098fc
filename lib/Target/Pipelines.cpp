//===- Pipelines.cpp - the attnc pass pipelines ---------------------------===//
//
// Part of attnc. Every pipeline is spelled here and nowhere else.
//
//===----------------------------------------------------------------------===//

#include "attnc/Target/Pipelines.h"
#include "attnc/Target/CudaToolkit.h"
#include "attnc/Transforms/Passes.h"

#include "mlir/Conversion/ArithToLLVM/ArithToLLVM.h"
#include "mlir/Conversion/ControlFlowToLLVM/ControlFlowToLLVM.h"
#include "mlir/Conversion/FuncToLLVM/ConvertFuncToLLVM.h"
#include "mlir/Conversion/IndexToLLVM/IndexToLLVM.h"
#include "mlir/Conversion/MemRefToLLVM/MemRefToLLVM.h"
#include "mlir/Conversion/NVVMToLLVM/NVVMToLLVM.h"
#include "mlir/Conversion/Passes.h"
#include "mlir/Conversion/UBToLLVM/UBToLLVM.h"
#include "mlir/Conversion/VectorToLLVM/ConvertVectorToLLVM.h"
#include "mlir/Dialect/Arith/Transforms/BufferizableOpInterfaceImpl.h"
#include "mlir/Dialect/Bufferization/IR/Bufferization.h"
#include "mlir/Dialect/Bufferization/Transforms/FuncBufferizableOpInterfaceImpl.h"
#include "mlir/Dialect/Bufferization/Transforms/Passes.h"
#include "mlir/Dialect/ControlFlow/IR/ControlFlow.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/GPU/Pipelines/Passes.h"
#include "mlir/Dialect/GPU/Transforms/Passes.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/LLVMIR/NVVMDialect.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Linalg/Passes.h"
#include "mlir/Dialect/Linalg/Transforms/BufferizableOpInterfaceImpl.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/MemRef/Transforms/Passes.h"
#include "mlir/Dialect/NVGPU/IR/NVGPUDialect.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/SCF/Transforms/BufferizableOpInterfaceImpl.h"
#include "mlir/Dialect/Tensor/Transforms/BufferizableOpInterfaceImpl.h"
#include "mlir/Dialect/Vector/Transforms/BufferizableOpInterfaceImpl.h"
#include "mlir/Dialect/Vector/Transforms/Passes.h"
#include "mlir/Pass/PassRegistry.h"
#include "mlir/Target/LLVM/NVVM/Target.h"
#include "mlir/Target/LLVMIR/Dialect/Builtin/BuiltinToLLVMIRTranslation.h"
#include "mlir/Target/LLVMIR/Dialect/GPU/GPUToLLVMIRTranslation.h"
#include "mlir/Target/LLVMIR/Dialect/LLVMIR/LLVMToLLVMIRTranslation.h"
#include "mlir/Target/LLVMIR/Dialect/NVVM/NVVMToLLVMIRTranslation.h"
#include "mlir/Transforms/Passes.h"

#include "llvm/Support/FileSystem.h"
#include "llvm/Support/raw_ostream.h"

using namespace mlir;

void mlir::attn::registerAttncDialects(DialectRegistry &registry) {
  registry.insert<attn::AttnDialect, func::FuncDialect, arith::ArithDialect,
                  math::MathDialect, tensor::TensorDialect,
                  vector::VectorDialect, memref::MemRefDialect, scf::SCFDialect,
                  bufferization::BufferizationDialect, cf::ControlFlowDialect,
                  LLVM::LLVMDialect, gpu::GPUDialect, nvgpu::NVGPUDialect,
                  NVVM::NVVMDialect, linalg::LinalgDialect>();
  NVVM::registerNVVMTargetInterfaceExternalModels(registry);
  // convert-gpu-to-nvvm converts the dialects that offer these (memref ops
  // on workgroup memory need its address-space mapping).
  arith::registerConvertArithToLLVMInterface(registry);
  cf::registerConvertControlFlowToLLVMInterface(registry);
  registerConvertFuncToLLVMInterface(registry);
  index::registerConvertIndexToLLVMInterface(registry);
  registerConvertMemRefToLLVMInterface(registry);
  registerConvertNVVMToLLVMInterface(registry);
  ub::registerConvertUBToLLVMInterface(registry);
  vector::registerConvertVectorToLLVMInterface(registry);
  registerBuiltinDialectTranslation(registry);
  registerLLVMDialectTranslation(registry);
  registerGPUDialectTranslation(registry);
  registerNVVMDialectTranslation(registry);
  arith::registerBufferizableOpInterfaceExternalModels(registry);
  bufferization::func_ext::registerBufferizableOpInterfaceExternalModels(
      registry);
  scf::registerBufferizableOpInterfaceExternalModels(registry);
  tensor::registerBufferizableOpInterfaceExternalModels(registry);
  vector::registerBufferizableOpInterfaceExternalModels(registry);
  linalg::registerBufferizableOpInterfaceExternalModels(registry);
}

std::string mlir::attn::cpuPipelineText(const CpuPipelineOptions &options) {
  // The text is printed from the pipeline itself: one definition.
  OpPassManager pm(ModuleOp::getOperationName());
  buildCpuPipeline(pm, options);
  std::string s;
  llvm::raw_string_ostream os(s);
  pm.printAsTextualPipeline(os);
  return s;
}

/// Registers the attn passes and the upstream passes the pipelines name
/// (once; the textual pipelines are parsed against this registry).
static void registerPipelinePasses() {
  static bool done = [] {
    attn::registerAttnPasses();
    registerConversionPasses();
    bufferization::registerBufferizationPasses();
    memref::registerMemRefPasses();
    registerTransformsPasses();
    registerGPUPasses();
    vector::registerVectorPasses();
    registerLinalgPasses();
    gpu::registerGPUToNVVMPipeline();
    return true;
  }();
  (void)done;
}

void mlir::attn::buildGpuBinaryPipeline(OpPassManager &pm, StringRef chip,
                                        StringRef format) {
  // scf is lowered first and arith/cf/vector before convert-gpu-to-nvvm:
  // in 22.1 the other orders leave index-typed branch operands behind.
  // Passes that can be nested run on the kernel modules only: on the host
  // function they would rewrite (fold, convert to llvm) the regions of the
  // attn ops kept there, and folding can leave a capture unused, which the
  // attn verifier refuses. convert-cf-to-llvm and finalize-memref-to-llvm
  // are anchored on builtin.module and the host has no cf or memref ops.
  OpPassManager &kernels = pm.nest<gpu::GPUModuleOp>();
  kernels.addPass(createSCFToControlFlowPass());
  kernels.addPass(createConvertNVGPUToNVVMPass());
  kernels.addPass(createConvertVectorToLLVMPass());
  kernels.addPass(createArithToLLVMConversionPass());
  kernels.addPass(createConvertIndexToLLVMPass());
  pm.addPass(createConvertControlFlowToLLVMPass());
  OpPassManager &nvvm = pm.nest<gpu::GPUModuleOp>();
  nvvm.addPass(createConvertGpuOpsToNVVMOps());
  // By-value TMA maps (sm_90a), aligned external dynamic shared memory
  // (sm_90a, and the sm_80 linear-attention kernels).
  nvvm.addPass(attn::createAttnFinalizeSm90());
  nvvm.addPass(memref::createExpandStridedMetadataPass());
  pm.addPass(createFinalizeMemRefToLLVMConversionPass());
  pm.addPass(createConvertNVVMToLLVMPass());
  pm.addPass(createReconcileUnrealizedCastsPass());
  GpuNVVMAttachTargetOptions target;
  target.chip = chip.str();
  target.features = "+ptx80";
  target.optLevel = 3;
  if (const std::string &libdevice = findCudaToolkit().libdevice;
      !libdevice.empty())
    target.linkLibs.push_back(libdevice);
  pm.addPass(createGpuNVVMAttachTarget(target));
  GpuModuleToBinaryPassOptions binary;
  binary.compilationTarget = format.str();
  pm.addPass(createGpuModuleToBinaryPass(binary));
}

void mlir::attn::addScheduleSelection(OpPassManager &pm, StringRef target,
                                      int64_t blockQ, int64_t blockKv) {
  pm.addPass(attn::createAttnAnalyzeMasks());
  attn::AttnSelectScheduleOptions schedule;
  schedule.target = target.str();
  schedule.blockQ = blockQ;
  schedule.blockKv = blockKv;
  pm.addPass(attn::createAttnSelectSchedule(schedule));
}

void mlir::attn::addScheduleSelection(OpPassManager &pm, Target target,
                                      int64_t blockQ, int64_t blockKv) {
  addScheduleSelection(pm, stringifyTarget(target), blockQ, blockKv);
}

/// The spec-level part of the CPU pipeline: attn ops to loops on tensors.
static void addCpuSpecPasses(OpPassManager &pm,
                             const attn::CpuPipelineOptions &options) {
  if (options.reference) {
    pm.addPass(attn::createConvertAttnToReference());
    return;
  }
  attn::addScheduleSelection(pm, attn::Target::Cpu, options.blockQ,
                             options.blockKv);
  attn::AttnTileOptions tile;
  tile.linearForm = options.linearForm;
  pm.addPass(attn::createAttnTile(tile));
}

void mlir::attn::buildCpuPipeline(OpPassManager &pm,
                                  const CpuPipelineOptions &options) {
  addCpuSpecPasses(pm, options);
  // Elementwise arith on whole tensors (a function combining several attn
  // results, e.g. LinGen's MATE block) goes through linalg to loops; every
  // result gets its own buffer before bufferization.
  pm.addPass(createCanonicalizerPass());
  pm.addPass(createCSEPass());
  pm.addNestedPass<func::FuncOp>(createConvertElementwiseToLinalgPass());
  pm.addNestedPass<func::FuncOp>(attn::createAttnCopyAliasedResults());
  bufferization::OneShotBufferizePassOptions bufferize;
  bufferize.bufferizeFunctionBoundaries = true;
  bufferize.functionBoundaryTypeConversion =
      bufferization::LayoutMapOption::IdentityLayoutMap;
  pm.addPass(bufferization::createOneShotBufferizePass(bufferize));
  pm.addNestedPass<func::FuncOp>(createConvertLinalgToLoopsPass());
  pm.addPass(createCanonicalizerPass());
  pm.addPass(createCSEPass());
  pm.addNestedPass<func::FuncOp>(vector::createLowerVectorMultiReductionPass());
  VectorTransferToSCFOptions toScf;
  toScf.unroll = true;
  pm.addPass(createConvertVectorToSCFPass(toScf));
  pm.addPass(createLowerAffinePass());
  pm.addPass(createSCFToControlFlowPass());
  pm.addPass(createConvertVectorToLLVMPass());
  pm.addPass(memref::createExpandStridedMetadataPass());
  pm.addPass(createFinalizeMemRefToLLVMConversionPass());
  // Math: index operands widened, then functions (ipowi, erf...), LLVM
  // intrinsics and libm calls.
  pm.addPass(attn::createAttnWidenIndexMath());
  pm.addPass(createConvertMathToFuncs());
  pm.addPass(createConvertMathToLLVMPass());
  pm.addPass(createConvertMathToLibmPass());
  pm.addPass(createArithToLLVMConversionPass());
  pm.addPass(createUBToLLVMConversionPass());
  pm.addPass(createConvertFuncToLLVMPass());
  pm.addPass(createConvertControlFlowToLLVMPass());
  pm.addPass(createReconcileUnrealizedCastsPass());
}

namespace {
struct AttnCompileOptions : public PassPipelineOptions<AttnCompileOptions> {
  Option<std::string> target{*this, "target",
                             llvm::cl::desc("cpu, sm_80 or sm_90a"),
                             llvm::cl::init("cpu")};
  Option<int64_t> blockQ{*this, "block-q",
                         llvm::cl::desc("force the q tile (0: schedule)"),
                         llvm::cl::init(0)};
  Option<int64_t> blockKv{*this, "block-kv",
                          llvm::cl::desc("force the kv tile (0: schedule)"),
                          llvm::cl::init(0)};
  Option<std::string> format{
      *this, "format",
      llvm::cl::desc("GPU binary: isa (PTX), bin (cubin, needs ptxas) or "
                     "fatbin"),
      llvm::cl::init("isa")};
};
} // namespace

LogicalResult mlir::attn::buildCompilePipeline(
    OpPassManager &pm, StringRef target, int64_t blockQ, int64_t blockKv,
    StringRef format, function_ref<LogicalResult(const Twine &)> error) {
  registerPipelinePasses();
  if (blockQ < 0 || blockKv < 0)
    return error("attn-compile: tile sizes must not be negative");
  const TargetDesc *t = lookupTarget(target);
  if (!t)
    return error("attn-compile: unsupported target '" + target +
                 "' (expected " + knownTargetNames() + ")");
  if (!t->isGpu) {
    CpuPipelineOptions o;
    o.blockQ = blockQ;
    o.blockKv = blockKv;
    buildCpuPipeline(pm, o);
    return success();
  }
  if (format != "isa" && format != "bin" && format != "fatbin")
    return error("attn-compile: unknown format '" + format +
                 "' (expected isa, bin or fatbin)");
  addScheduleSelection(pm, t->kind, blockQ, blockKv);
  pm.addPass(createConvertAttnToGPU());
  pm.addPass(createConvertAttnLinearToGPU());
  buildGpuBinaryPipeline(pm, t->chip, format);
  return success();
}

void mlir::attn::registerAttncPipelines() {
  registerPipelinePasses();
  // Once per process: a pipeline name may be registered only once.
  static bool registered = [] {
    registerPassPipeline(
        "attn-compile",
        "Spec to binary in one step: target=cpu gives the LLVM dialect for "
        "the host JIT; target=sm_80|sm_90a adds a gpu.binary with one "
        "FlashAttention-2 kernel per attn.attention (format=isa: PTX, bin: "
        "cubin)",
        [](OpPassManager &pm, StringRef optionsStr,
           function_ref<LogicalResult(const Twine &)> errorHandler) {
          AttnCompileOptions o;
          if (failed(o.parseFromString(optionsStr)))
            return failure();
          return buildCompilePipeline(pm, o.target, o.blockQ, o.blockKv,
                                      o.format, errorHandler);
        },
        [](function_ref<void(const mlir::detail::PassOptions &)> optHandler) {
          optHandler(AttnCompileOptions());
        });
    PassPipelineRegistration<>(
        "attn-lower-cpu",
        "Spec to LLVM dialect for the CPU through attn-tile (FlashAttention "
        "loops)",
        [](OpPassManager &pm) { buildCpuPipeline(pm, {}); });
    PassPipelineRegistration<>(
        "attn-lower-cpu-reference",
        "Spec to LLVM dialect for the CPU through the naive reference "
        "lowering",
        [](OpPassManager &pm) {
          CpuPipelineOptions o;
          o.reference = true;
          buildCpuPipeline(pm, o);
        });
    return true;
  }();
  (void)registered;
}
