//===- attn-aot.cpp - ahead-of-time GPU kernels from a spec ---------------===//
//
// Part of attnc. `attn-aot SPEC.mlir --target=sm_80|sm_90a -o DIR` writes,
// for every attn.attention in the spec (one kernel per function; with
// --backward also `<f>_forward` and the backward kernels of `<f>_backward`,
// from attn-differentiate):
//   DIR/<name>.ptx, DIR/<name>.cubin (ptxas), DIR/<name>.ptxas.txt,
//   DIR/manifest.json (kernels, argument order and types, grid and block,
//   shared memory, captures), DIR/<name>.h and DIR/<name>_launcher.c (embeds
//   the cubin, uses only the CUDA driver API).
//
//===----------------------------------------------------------------------===//

#include "attnc/Dialect/Attn/SpecFunctions.h"
#include "attnc/Target/Aot.h"
#include "attnc/Target/CudaToolkit.h"
#include "attnc/Target/Pipelines.h"
#include "attnc/Target/TargetDesc.h"
#include "attnc/Tools/SpecFile.h"
#include "attnc/Tools/ToolVersion.h"
#include "attnc/Transforms/Passes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/Parser/Parser.h"
#include "mlir/Pass/PassManager.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/Program.h"
#include "llvm/Support/SourceMgr.h"
#include "llvm/Support/ToolOutputFile.h"

#include <fmt/format.h>

using namespace mlir;
namespace cl = llvm::cl;
using attnc::SpecFile;

// --help lists these (and --help, --version) only: LLVM's backend flags
// are hidden.
static cl::OptionCategory toolCategory("attn-aot options");

static cl::opt<std::string> inputFile(cl::Positional, cl::desc("<spec.mlir>"),
                                      cl::Required, cl::cat(toolCategory));
static cl::opt<std::string> outDir("o", cl::desc("output directory"),
                                   cl::Required, cl::cat(toolCategory));
static cl::opt<std::string> target("target", cl::desc("sm_80 or sm_90a"),
                                   cl::init("sm_80"), cl::cat(toolCategory));
static cl::opt<int64_t> blockQ("block-q", cl::desc("force block_q"),
                               cl::init(0), cl::cat(toolCategory));
static cl::opt<int64_t> blockKv("block-kv", cl::desc("force block_kv"),
                                cl::init(0), cl::cat(toolCategory));
static cl::opt<std::string> ptxasPath("ptxas",
                                      cl::desc("ptxas to assemble the cubin "
                                               "(default: from CUDA_HOME, "
                                               "/usr/local/cuda or PATH; "
                                               "'none' skips the cubin)"),
                                      cl::init(""), cl::cat(toolCategory));
static cl::opt<bool> backward(
    "backward",
    cl::desc("run attn-differentiate first: also package <f>_forward (o, "
             "lse) and the backward kernels of <f>_backward (manifest kind "
             "attention_grad, no C launcher)"),
    cl::init(false), cl::cat(toolCategory));
static cl::opt<bool> keepIR("keep-ir",
                            cl::desc("also write the kernel IR (.mlir)"),
                            cl::init(false), cl::cat(toolCategory));

static int error(const llvm::Twine &msg) {
  llvm::errs() << "attn-aot: error: " << msg << "\n";
  return 1;
}

int main(int argc, char **argv) {
  llvm::InitLLVM y(argc, argv);
  attnc::setToolVersionPrinter();
  cl::HideUnrelatedOptions(toolCategory);
  cl::ParseCommandLineOptions(argc, argv,
                              "attn-aot: ahead-of-time GPU kernels from an "
                              "attn spec\n");
  const attn::TargetDesc *t = attn::lookupTarget(target);
  if (!t || !t->isGpu)
    return error("unsupported target '" + target + "' (expected " +
                 attn::knownTargetNames(/*gpuOnly=*/true) + ")");
  SpecFile spec(inputFile);
  OwningOpRef<ModuleOp> &module = spec.module;
  if (!module)
    return error("cannot parse '" + inputFile + "'");
  if (failed(attn::specFunctions(*module)))
    return error("cannot compile '" + inputFile + "'");
  if (backward) {
    PassManager pm(&spec.ctx);
    pm.addPass(attn::createAttnDifferentiate());
    if (failed(pm.run(*module)))
      return error("attn-differentiate failed on '" + inputFile + "'");
  }

  attn::GpuCompileOptions options;
  options.target = target;
  options.blockQ = blockQ;
  options.blockKv = blockKv;
  options.ptxas = ptxasPath == "none" ? std::string()
                  : ptxasPath.empty() ? attn::findCudaToolkit().ptxas
                                      : std::string(ptxasPath);
  options.keepIR = keepIR;
  auto kernels = attn::compileForGpu(*module, options);
  if (!kernels)
    return error(llvm::toString(kernels.takeError()));
  if (llvm::Error e = attn::writeAotDirectory(outDir, target, *kernels))
    return error(llvm::toString(std::move(e)));
  for (const attn::GpuKernelArtifact &art : *kernels) {
    const attnc::abi::Kernel &k = art.kernel;
    std::string files =
        fmt::format("{}/{}.ptx{}", std::string(outDir), art.name,
                    art.cubin.empty() ? "" : ", .cubin");
    if (k.kind == attnc::abi::KernelKind::AttentionGrad) {
      const attnc::abi::AttentionGradKernel &g = k.attentionGrad;
      llvm::outs() << fmt::format(
          "{}: {} {} d={} backward: {} tile {} ({} threads), {} tile {} ({} "
          "threads) -> {}\n",
          art.name, target, g.dtype, g.headDim, g.dq.kernel, g.blockQ,
          g.dq.block[0], g.dkdv.kernel, g.blockKv, g.dkdv.block[0], files);
      llvm::outs() << art.ptxasLog;
      continue;
    }
    const attnc::abi::AttentionKernel &a = k.attention;
    llvm::outs() << fmt::format(
        "{}: {} {} d={} tile {}x{} {} threads, {} B shared -> {}\n", art.name,
        target, a.dtype, a.headDim, a.blockQ, a.blockKv, a.main.block[0],
        a.sharedBytes, files);
    // A kernel other than the target's first choice, and why.
    if (!art.fallback.empty())
      llvm::outs() << art.name << ": fallback: " << art.fallback << "\n";
    llvm::outs() << art.ptxasLog;
  }
  return 0;
}
