//===- CpuRunner.cpp - JIT a lowered spec on the host CPU -----------------===//

#include "attnc/Target/CpuRunner.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/ExecutionEngine/ExecutionEngine.h"
#include "mlir/ExecutionEngine/OptUtils.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Target/LLVMIR/Dialect/Builtin/BuiltinToLLVMIRTranslation.h"
#include "mlir/Target/LLVMIR/Dialect/LLVMIR/LLVMToLLVMIRTranslation.h"
#include "llvm/ExecutionEngine/Orc/ExecutionUtils.h"
#include "llvm/ExecutionEngine/Orc/LLJIT.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/TargetSelect.h"

#include <cstdint>
#include <cstdlib>
#include <cstring>

using namespace mlir;
using namespace mlir::attn;

void mlir::attn::initializeCpuTarget() {
  static bool done = [] {
    llvm::InitializeNativeTarget();
    llvm::InitializeNativeTargetAsmPrinter();
    return true;
  }();
  (void)done;
}

CpuKernel::~CpuKernel() = default;

/// f32 -> bf16, rounding to nearest even (NaNs stay quiet NaNs): the
/// runtime function LLVM calls for `fptrunc float to bfloat` on x86 without
/// AVX512-BF16. Debian 12's libgcc (GCC 12) has no __truncsfbf2, so the
/// JIT gets this one. bfloat is returned in the low 16 bits of xmm0, where
/// a float return puts the low 16 bits of its pattern.
static float truncF32ToBf16(float x) {
  uint32_t u;
  std::memcpy(&u, &x, 4);
  uint32_t h = (u & 0x7fffffffu) > 0x7f800000u
                   ? (u >> 16) | 0x40u
                   : (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
  float out;
  std::memcpy(&out, &h, 4);
  return out;
}

/// Runtime functions the kernels may call that the process need not have.
static llvm::orc::SymbolMap
runtimeSymbols(llvm::orc::MangleAndInterner mangle) {
  llvm::orc::SymbolMap map;
  map[mangle("__truncsfbf2")] = {
      llvm::orc::ExecutorAddr::fromPtr(&truncF32ToBf16),
      llvm::JITSymbolFlags::Exported};
  return map;
}

/// Whether the environment variable `name` is set to 1.
static bool envFlag(const char *name) {
  const char *v = std::getenv(name);
  return v && llvm::StringRef(v) == "1";
}

llvm::Expected<std::unique_ptr<CpuKernel>>
CpuKernel::compile(ModuleOp module, llvm::StringRef funcName,
                   const CpuPipelineOptions &options, std::string *object) {
  initializeCpuTarget();
  MLIRContext *ctx = module.getContext();
  DialectRegistry registry;
  registerBuiltinDialectTranslation(registry);
  registerLLVMDialectTranslation(registry);
  ctx->appendDialectRegistry(registry);

  OwningOpRef<ModuleOp> clone = module.clone();
  auto func = clone->lookupSymbol<func::FuncOp>(funcName);
  if (!func)
    return llvm::createStringError("no function '" + funcName.str() +
                                   "' in the spec");
  func->setAttr("llvm.emit_c_interface", UnitAttr::get(ctx));
  // attn.run_* argument attributes are for attn-run, not for LLVM.
  for (unsigned i = 0, e = func.getNumArguments(); i < e; ++i)
    if (DictionaryAttr dict = func.getArgAttrDict(i))
      for (NamedAttribute attr : dict)
        if (attr.getName().getValue().starts_with("attn."))
          func.removeArgAttr(i, attr.getName());
  PassManager pm(ctx);
  buildCpuPipeline(pm, options);
  std::string diagText;
  {
    llvm::raw_string_ostream os(diagText);
    ScopedDiagnosticHandler handler(ctx, [&](Diagnostic &d) {
      os << d.getLocation() << ": " << d << "\n";
      return success();
    });
    if (failed(pm.run(*clone)))
      return llvm::createStringError("lowering '" + funcName.str() +
                                     "' for the CPU failed:\n" + diagText);
  }
  ExecutionEngineOptions eo;
  eo.transformer = makeOptimizingTransformer(/*optLevel=*/3, /*sizeLevel=*/0,
                                             /*targetMachine=*/nullptr);
  eo.jitCodeGenOptLevel = llvm::CodeGenOptLevel::Aggressive;
  eo.enableObjectDump = object != nullptr;
  // Profiler and debugger registration only when asked: the perf listener
  // writes jitdump files under ~/.debug/jit (or $JITDUMPDIR) for every
  // process, the GDB listener keeps a copy of every object (docs/runtime.md).
  eo.enablePerfNotificationListener = envFlag("ATTNC_JIT_PERF");
  eo.enableGDBNotificationListener = envFlag("ATTNC_JIT_GDB");
  auto engine = ExecutionEngine::create(*clone, eo);
  if (!engine)
    return engine.takeError();
  (*engine)->registerSymbols(runtimeSymbols);
  std::unique_ptr<CpuKernel> k(new CpuKernel());
  k->engine = std::move(*engine);
  // Looking the function up compiles the module.
  auto fn = k->engine->lookupPacked(("_mlir_ciface_" + funcName).str());
  if (!fn)
    return fn.takeError();
  k->packed = *fn;
  if (object) {
    llvm::SmallString<128> path;
    if (std::error_code ec =
            llvm::sys::fs::createTemporaryFile("attnc-cpu", "o", path))
      return llvm::createStringError("cannot create a temporary file: " +
                                     ec.message());
    k->engine->dumpToObjectFile(path);
    auto buf = llvm::MemoryBuffer::getFile(path);
    llvm::sys::fs::remove(path);
    if (!buf)
      return llvm::createStringError("cannot read the object code back");
    *object = (*buf)->getBuffer().str();
  }
  return k;
}

llvm::Expected<std::unique_ptr<CpuKernel>>
CpuKernel::load(llvm::StringRef object, llvm::StringRef funcName) {
  initializeCpuTarget();
  auto jit = llvm::orc::LLJITBuilder().create();
  if (!jit)
    return jit.takeError();
  auto gen = llvm::orc::DynamicLibrarySearchGenerator::GetForCurrentProcess(
      (*jit)->getDataLayout().getGlobalPrefix());
  if (!gen)
    return gen.takeError();
  (*jit)->getMainJITDylib().addGenerator(std::move(*gen));
  llvm::orc::MangleAndInterner mangle((*jit)->getExecutionSession(),
                                      (*jit)->getDataLayout());
  if (llvm::Error e = (*jit)->getMainJITDylib().define(
          llvm::orc::absoluteSymbols(runtimeSymbols(mangle))))
    return std::move(e);
  if (llvm::Error e = (*jit)->addObjectFile(
          llvm::MemoryBuffer::getMemBufferCopy(object, "attnc-kernel.o")))
    return std::move(e);
  auto sym = (*jit)->lookup(("_mlir__mlir_ciface_" + funcName).str());
  if (!sym)
    return sym.takeError();
  std::unique_ptr<CpuKernel> k(new CpuKernel());
  k->packed = sym->toPtr<void (*)(void **)>();
  k->jit = std::move(*jit);
  return k;
}

llvm::Error CpuKernel::call(llvm::MutableArrayRef<void *> args) {
  packed(args.data());
  return llvm::Error::success();
}
