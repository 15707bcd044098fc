//===- Aot.cpp - GPU kernels as files: PTX, cubin, manifest, C launcher ---===//
//
// Part of attnc.
//
//===----------------------------------------------------------------------===//

#include "attnc/Target/Aot.h"
#include "attnc/Conversion/AttnGradToGPU.h"
#include "attnc/Target/Pipelines.h"
#include "attnc/Target/TargetDesc.h"
#include "attnc/Target/ValueChecks.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Pass/PassRegistry.h"
#include "llvm/ADT/ScopeExit.h"
#include "llvm/Support/Debug.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/Program.h"
#include "llvm/Support/raw_ostream.h"

#include <fmt/format.h>

#define DEBUG_TYPE "attn-aot"

using namespace mlir;
using namespace mlir::attn;
namespace abi = attnc::abi;

/// C parameter list of the launcher of the attention kernel `a`.
static std::string cParams(const abi::AttentionKernel &a) {
  std::string p = "attnc_stream stream";
  for (const abi::Arg &arg : a.main.args) {
    const abi::Arg &a = arg;
    if (a.kind == abi::ArgKind::TensorMap) {
      // The same parameters as a 1-D view: the map is built in the launcher.
      p += fmt::format(", attnc_deviceptr {0}, int64_t {0}_size0", a.name);
    } else if (a.kind == abi::ArgKind::Memref) {
      p += fmt::format(", attnc_deviceptr {}", a.name);
      for (int64_t r = 0; r < a.rank; ++r)
        p += fmt::format(", int64_t {}_size{}", a.name, r);
      if (a.rank > 1 || a.name.rfind("capture", 0) == 0)
        for (int64_t r = 0; r < a.rank; ++r)
          p += fmt::format(", int64_t {}_stride{}", a.name, r);
    } else {
      p += fmt::format(", int64_t {}", a.name);
    }
  }
  return p;
}

static std::string cBytes(StringRef data, bool nulTerminate) {
  std::string bytes;
  bytes.reserve(data.size() * 4);
  for (size_t i = 0; i < data.size(); ++i) {
    bytes += fmt::format("{}{}", i ? "," : "", int(uint8_t(data[i])));
    if (i % 24 == 23)
      bytes += "\n";
  }
  if (nulTerminate)
    bytes += ",0";
  return bytes;
}

namespace {
/// C declarations of the launch's tensors for the launch library, from the
/// launcher's parameters (cParams): q, k, v, o as [B, H, N, D] views through
/// their strides, lse contiguous, captures with their sizes and strides. The
/// flat sizes of q, k, v, o and lse and the caller's block-map workspace are
/// not needed (the library derives extents and allocates the map).
struct LauncherTensors {
  std::string decls, inputs, outputs, unused;
  int numInputs = 0, numOutputs = 0;
};
} // namespace

static LauncherTensors launcherTensors(const abi::AttentionKernel &info) {
  LauncherTensors t;
  int code = info.dtype == "bf16" ? 2 : 1; // ATTNC_BF16, ATTNC_F16
  auto view = [&](const std::string &n, bool isQ, bool isO, int64_t d) {
    std::string h = std::to_string(isQ || isO ? info.headsQ : info.headsKv);
    t.decls +=
        fmt::format("  int64_t {0}_shape[4] = {{B, {1}, {2}, {3}}};\n"
                    "  int64_t {0}_strides[4] = {{{0}_stride_b, {0}_stride_h, "
                    "{0}_stride_n, 1}};\n",
                    n, h, isQ || isO ? "Nq" : "Nk", d);
    std::string desc = fmt::format(
        "    {{(void *){0}, {1}, 4, {0}_shape, {0}_strides}},\n", n, code);
    (isO ? t.outputs : t.inputs) += desc;
    (isO ? t.numOutputs : t.numInputs)++;
    t.unused += fmt::format("  (void){}_size0;\n", n);
  };
  for (const abi::Arg &a : info.main.args) {
    const std::string &n = a.name;
    if (n == "q" || n == "k" || n == "v" || n == "o") {
      view(n, n == "q", n == "o",
           n == "v" || n == "o" ? info.valueDim : info.headDim);
    } else if (n == "lse") {
      t.decls +=
          fmt::format("  int64_t lse_shape[3] = {{B, {}, Nq}};\n", info.headsQ);
      t.outputs += "    {(void *)lse, 0, 3, lse_shape, 0},\n";
      ++t.numOutputs;
      t.unused += "  (void)lse_size0;\n";
    } else if (n.rfind("capture", 0) == 0) {
      std::string sizes, strides;
      for (int64_t r = 0; r < a.rank; ++r) {
        sizes += fmt::format("{}{}_size{}", r ? ", " : "", n, r);
        strides += fmt::format("{}{}_stride{}", r ? ", " : "", n, r);
      }
      t.decls += fmt::format("  int64_t {0}_shape[{1}] = {{{2}}};\n"
                             "  int64_t {0}_strides[{1}] = {{{3}}};\n",
                             n, a.rank, sizes, strides);
      t.inputs += fmt::format(
          "    {{(void *){0}, {1}, {2}, {0}_shape, {0}_strides}},\n", n,
          int(llvm::cantFail(attnc::dtypeFromName(a.elem))), a.rank);
      ++t.numInputs;
    } else if (n == "block_map") {
      t.unused += "  (void)block_map;\n  (void)block_map_size0;\n";
    }
  }
  return t;
}

std::string mlir::attn::launcherSource(const GpuKernelArtifact &art) {
  const abi::AttentionKernel &info = art.kernel.attention;
  abi::KernelSet set;
  set.generator = "attn-aot";
  set.target = art.target;
  set.kernels.push_back(abiKernelOf(art));
  LauncherTensors t = launcherTensors(info);
  return fmt::format(
      R"C(/* Generated by attn-aot: launcher for kernel {name}, a thin wrapper over
 * attnc's launch library (libattnc_runtime.so, attnc/attnc_runtime.h),
 * which checks the arguments against the kernel's signature, loads the
 * cubin (or the PTX where the cubin does not run), encodes tensor maps,
 * allocates the block map and launches. Link it with attnc::runtime. On a
 * machine without a driver every call returns ATTNC_ERROR_NO_DRIVER;
 * attnc_{name}_error() says why a call failed. */
#include "{name}.h"
#include "attnc/attnc_runtime.h"

static const unsigned char attnc_{name}_cubin[] = {{
{cubin}}};
static const unsigned char attnc_{name}_ptx[] = {{
{ptx}}};
/* The kernel set's manifest.json (the kernel-set ABI). */
static const unsigned char attnc_{name}_manifest[] = {{
{manifest}}};
static attnc_rt_module *attnc_{name}_module;
static attnc_rt_kernel *attnc_{name}_kernel;

const char *attnc_{name}_error(void) {{ return attnc_rt_last_error(); }}

attnc_result attnc_{name}_load(void) {{
  attnc_rt_image images[2] = {{
      {{"{ptxfile}", attnc_{name}_ptx, sizeof(attnc_{name}_ptx)}},
      {{"{name}.cubin", attnc_{name}_cubin, sizeof(attnc_{name}_cubin)}}}};
  if (attnc_{name}_kernel)
    return ATTNC_SUCCESS;
  if (!attnc_rt_cuda_available())
    return ATTNC_ERROR_NO_DRIVER;
  if (attnc_rt_module_create((const char *)attnc_{name}_manifest, images,
                             2, 0, &attnc_{name}_module))
    return ATTNC_ERROR_LAUNCH;
  attnc_{name}_kernel = attnc_rt_module_kernel(attnc_{name}_module, 0);
  return ATTNC_SUCCESS;
}}

attnc_result attnc_{name}_launch({cparams}) {{
{decls}  attnc_tensor inputs[{nin}] = {{
{inputs}  }};
  attnc_tensor outputs[{nout}] = {{
{outputs}  }};
  attnc_result r = attnc_{name}_load();
{unused}  if (r != ATTNC_SUCCESS)
    return r;
  return attnc_rt_kernel_launch(attnc_{name}_kernel, inputs, {nin}, outputs,
                                {nout}, (void *)stream)
             ? ATTNC_ERROR_LAUNCH
             : ATTNC_SUCCESS;
}}
)C",
      fmt::arg("name", art.name), fmt::arg("cubin", cBytes(art.cubin, false)),
      fmt::arg("ptx", cBytes(art.ptx, true)),
      fmt::arg("manifest", cBytes(abi::formatKernelSet(set), true)),
      fmt::arg("ptxfile", art.name + ".ptx"),
      fmt::arg("cparams", cParams(info)), fmt::arg("decls", t.decls),
      fmt::arg("inputs", t.inputs), fmt::arg("outputs", t.outputs),
      fmt::arg("nin", t.numInputs), fmt::arg("nout", t.numOutputs),
      fmt::arg("unused", t.unused));
}

std::string mlir::attn::headerSource(const abi::Kernel &kernel,
                                     StringRef target) {
  const abi::AttentionKernel &info = kernel.attention;
  std::string guard = "ATTNC_" + kernel.name + "_H";
  for (char &c : guard)
    c = std::toupper(c);
  return fmt::format(
      R"C(/* Generated by attn-aot: kernel {name} ({dtype}, head dim {d}/{dv},
 * {hq} query heads, {hkv} kv heads, target {target}).
 * Tensors are [B, H, N, D] views given by element strides (the head dim
 * contiguous, strides multiples of 8 elements, 16-byte aligned pointers).
 * sizes: the number of elements each pointer covers.{mapnote} */
#ifndef {guard}
#define {guard}
#include <stdint.h>
#ifndef ATTNC_DRIVER_TYPES
#define ATTNC_DRIVER_TYPES
/* The driver API's types, ABI-compatible with cuda.h: attnc_result holds a
 * CUresult, attnc_deviceptr a CUdeviceptr, attnc_stream a CUstream. */
typedef int attnc_result;
typedef unsigned long long attnc_deviceptr;
typedef struct CUstream_st *attnc_stream;
#define ATTNC_SUCCESS 0
/* CUDA_ERROR_NO_DEVICE: libcuda.so.1 could not be loaded. */
#define ATTNC_ERROR_NO_DRIVER 100
/* CUDA_ERROR_UNKNOWN: the launch library refused or failed the call;
 * attnc_<kernel>_error() says why. */
#define ATTNC_ERROR_LAUNCH 999
#endif
#ifdef __cplusplus
extern "C" {{
#endif
attnc_result attnc_{name}_load(void);
attnc_result attnc_{name}_launch({cparams});
/* Why the last failing call on this thread failed. */
const char *attnc_{name}_error(void);
#ifdef __cplusplus
}}
#endif
#endif
)C",
      fmt::arg("name", kernel.name), fmt::arg("dtype", info.dtype),
      fmt::arg("d", info.headDim), fmt::arg("dv", info.valueDim),
      fmt::arg("hq", info.headsQ), fmt::arg("hkv", info.headsKv),
      fmt::arg("target", target.str()), fmt::arg("guard", guard),
      fmt::arg("cparams", cParams(info)),
      fmt::arg("mapnote",
               !info.blockMap
                   ? std::string()
                   : std::string("\n * block_map, block_map_size0: unused (the "
                                 "launch library allocates the block map).")));
}

static llvm::Error fail(const llvm::Twine &msg) {
  return llvm::createStringError(llvm::inconvertibleErrorCode(), msg);
}

llvm::Error mlir::attn::writeFile(StringRef path, StringRef data) {
  std::error_code ec;
  llvm::raw_fd_ostream os(path, ec);
  if (ec)
    return fail("cannot write " + path + ": " + ec.message());
  os << data;
  os.close();
  if (os.has_error())
    return fail("cannot write " + path + ": " + os.error().message());
  return llvm::Error::success();
}

/// The bytes of spill stores a `ptxas -v` log reports (the largest over its
/// functions), or of spill loads where there are no stores; 0 without spills.
static int64_t spillBytes(StringRef log) {
  SmallVector<StringRef> lines;
  log.split(lines, '\n');
  int64_t stores = 0, loads = 0;
  for (StringRef l : lines)
    for (StringRef what : {" bytes spill stores", " bytes spill loads"}) {
      size_t at = l.find(what);
      if (at == StringRef::npos)
        continue;
      StringRef n = l.take_front(at).rtrim();
      n = n.drop_front(n.find_last_of(' ') + 1);
      int64_t bytes = 0;
      if (n.getAsInteger(10, bytes))
        continue;
      int64_t &sum = what.contains("stores") ? stores : loads;
      sum = std::max(sum, bytes);
    }
  return stores ? stores : loads;
}

std::string mlir::attn::binaryPtx(ModuleOp module) {
  std::string ptx;
  module->walk([&](gpu::BinaryOp bin) {
    for (Attribute a : bin.getObjects())
      if (auto obj = dyn_cast<gpu::ObjectAttr>(a))
        ptx = obj.getObject().getValue().str();
  });
  return ptx;
}

/// Refuses a function of `module` that is not one attn.attention (or
/// attn.attention_grad) returning its results: a kernel stands for its
/// function (anything else the function computes would be missing from the
/// kernel).
static llvm::Error checkKernelFunctions(ModuleOp module) {
  for (auto f : module.getOps<func::FuncOp>()) {
    if (f.isExternal())
      continue;
    SmallVector<Operation *> attnOps;
    f.walk([&](Operation *op) {
      if (isa<AttentionOp, AttentionGradOp, LinearAttentionOp,
              LinearAttentionGradOp, ScanOp>(op))
        attnOps.push_back(op);
    });
    if (attnOps.empty())
      continue;
    Operation *ret = f.getBody().front().getTerminator();
    bool oneAttention =
        attnOps.size() == 1 && isa<AttentionOp, AttentionGradOp>(attnOps[0]);
    if (oneAttention &&
        llvm::equal(ret->getOperands(), attnOps[0]->getResults()))
      continue;
    std::string what =
        attnOps.size() > 1
            ? "has " + std::to_string(attnOps.size()) + " attn ops"
        : oneAttention ? std::string("computes more than its attn.attention")
                       : std::string("is a linear attention or scan");
    return fail("'" + f.getName().str() +
                "': attn-aot packages functions that are one attn.attention "
                "returning its results; this one " +
                what +
                " (such functions run on GPUs through the C++ JIT: "
                "attnc::Compiler, attn-run --backend=cuda; a linear attention "
                "or scan also through Python's attnc.compile, whose cache "
                "entry attnc.load reads)");
  }
  return llvm::Error::success();
}

/// Lowers `kmod`, the kernel module of `art` (named `name`), to PTX into
/// art.ptx (its IR before into art.ir with options.keepIR).
static llvm::Error lowerToPtx(ModuleOp kmod, StringRef name,
                              const TargetDesc &t,
                              const GpuCompileOptions &options,
                              GpuKernelArtifact &art) {
  if (options.keepIR) {
    llvm::raw_string_ostream os(art.ir);
    kmod->print(os);
  }
  PassManager lower(kmod.getContext(), ModuleOp::getOperationName());
  buildGpuBinaryPipeline(lower, t.chip);
  if (failed(lower.run(kmod)))
    return fail("lowering '" + name + "' to PTX failed");
  art.ptx = binaryPtx(kmod);
  if (art.ptx.empty())
    return fail("no PTX produced for '" + name + "'");
  return llvm::Error::success();
}

/// The attention kernel of `op`, named `name`, lowered to PTX.
static llvm::Expected<GpuKernelArtifact>
buildKernelPtx(AttentionOp op, StringRef name, const TargetDesc &t,
               const GpuCompileOptions &options, std::string fallback) {
  GpuKernelArtifact art;
  OwningOpRef<ModuleOp> kmod = ModuleOp::create(op.getLoc());
  if (failed(buildAttentionKernel(op, *kmod, name)))
    return fail("code generation failed for '" + name + "'");
  FailureOr<abi::Kernel> kernel = kernelAbiOf(*kmod);
  if (failed(kernel))
    return fail("the code generator left no kernel ABI for '" + name + "'");
  art.name = name.str();
  art.target = options.target;
  art.kernel = std::move(*kernel);
  if (auto f = op->getParentOfType<func::FuncOp>())
    art.checks = specValueChecks(f);
  art.fallback = std::move(fallback);
  LLVM_DEBUG({
    const abi::AttentionKernel &a = art.kernel.attention;
    llvm::dbgs() << "'" << name << "': " << abi::stringify(a.variant) << " "
                 << a.blockQ << "x" << a.blockKv << ", " << a.main.block[0]
                 << " threads, " << a.sharedBytes << " B shared\n";
  });
  if (llvm::Error e = lowerToPtx(*kmod, name, t, options, art))
    return std::move(e);
  return art;
}

/// The dtype name of a tensor type's elements ("bf16", "f32", "i32").
static std::string elementName(Type t) {
  std::string s;
  llvm::raw_string_ostream os(s);
  os << cast<ShapedType>(t).getElementType();
  return s;
}

/// The signature of `f`, the function of the attention backward `op` whose
/// kernels are `k`: inputs q, k, v, capture<i>, o, lse, do (the function's
/// arguments, which must be the op's operands in that order), outputs dq,
/// dk, dv, dcapture<i>; with the spec's value checks.
static llvm::Expected<abi::Signature>
gradSignature(func::FuncOp f, AttentionGradOp op, const abi::Kernel &k) {
  const abi::AttentionGradKernel &g = k.attentionGrad;
  std::vector<std::string> in = {"q", "k", "v"}, out = {"dq", "dk", "dv"};
  for (int64_t i = 0; i < g.captures; ++i)
    in.push_back("capture" + std::to_string(i));
  llvm::append_range(in, std::vector<std::string>{"o", "lse", "do"});
  for (int64_t i = 0; i < g.captureGrads; ++i)
    out.push_back("dcapture" + std::to_string(i));
  ArrayRef<BlockArgument> args = f.getArguments();
  Value fixed[] = {op.getQ(), op.getK(),   op.getV(),
                   op.getO(), op.getLse(), op.getDO()};
  if (args.size() != in.size() || f.getNumResults() != out.size() ||
      !llvm::equal(ArrayRef<Value>(fixed).take_front(3), args.take_front(3)) ||
      !llvm::equal(ArrayRef<Value>(fixed).drop_front(3), args.take_back(3)))
    return fail("'" + f.getName() +
                "': a backward kernel's function takes (q, k, v, captures..., "
                "o, lse, dO) and returns (dq, dk, dv, capture gradients...), "
                "as attn-differentiate's <f>_backward does");
  abi::Signature sig;
  auto param = [](const std::string &name, Type t) {
    abi::Param p{name, elementName(t), {}};
    for (int64_t d : cast<ShapedType>(t).getShape())
      p.shape.push_back(ShapedType::isDynamic(d) ? -1 : d);
    return p;
  };
  for (auto [name, a] : llvm::zip(in, args))
    sig.inputs.push_back(param(name, a.getType()));
  for (auto [name, t] : llvm::zip(out, f.getResultTypes()))
    sig.outputs.push_back(param(name, t));
  sig.inputNames = in;
  sig.checks = attnc::abiChecks(specValueChecks(f));
  return sig;
}

/// The two kernels of the attention backward `op` (buildAttentionGradKernels),
/// named after `name`, lowered to PTX; art.record is their ABI record with
/// the function's signature.
static llvm::Expected<GpuKernelArtifact>
buildGradKernelPtx(AttentionGradOp op, StringRef name, const TargetDesc &t,
                   const GpuCompileOptions &options) {
  GpuKernelArtifact art;
  OwningOpRef<ModuleOp> kmod = ModuleOp::create(op.getLoc());
  FailureOr<abi::Kernel> record = buildAttentionGradKernels(op, *kmod, name);
  if (failed(record))
    return fail("code generation failed for '" + name +
                "' (the attention backward)");
  auto f = op->getParentOfType<func::FuncOp>();
  llvm::Expected<abi::Signature> sig = gradSignature(f, op, *record);
  if (!sig)
    return sig.takeError();
  record->name = name.str();
  record->signature = std::move(*sig);
  art.name = name.str();
  art.target = options.target;
  art.kernel = std::move(*record);
  if (llvm::Error e = lowerToPtx(*kmod, name, t, options, art))
    return std::move(e);
  return art;
}

/// Assembles art.ptx with `ptxas -v` into art.cubin; the log goes to
/// art.ptxasLog.
static llvm::Error assemble(GpuKernelArtifact &art, StringRef name,
                            const TargetDesc &t, StringRef ptxas) {
  SmallString<128> tmpDir;
  if (std::error_code ec =
          llvm::sys::fs::createUniqueDirectory("attnc-ptxas", tmpDir))
    return fail("cannot create a temporary directory: " + ec.message());
  std::string in = (tmpDir + "/" + name + ".ptx").str();
  std::string outPath = (tmpDir + "/" + name + ".cubin").str();
  std::string logPath = (tmpDir + "/" + name + ".log").str();
  llvm::scope_exit cleanup([&] {
    for (const std::string &f : {in, outPath, logPath})
      llvm::sys::fs::remove(f);
    llvm::sys::fs::remove(tmpDir);
  });
  if (llvm::Error e = writeFile(in, art.ptx))
    return e;
  std::string arch = ("-arch=" + t.chip).str();
  SmallVector<StringRef> args = {ptxas, arch, "-O3", "-v", "-o", outPath, in};

  std::optional<StringRef> redirects[] = {std::nullopt, StringRef(logPath),
                                          StringRef(logPath)};
  std::string errMsg;
  int rc = llvm::sys::ExecuteAndWait(ptxas, args, std::nullopt, redirects, 0, 0,
                                     &errMsg);
  if (auto lb = llvm::MemoryBuffer::getFile(logPath))
    art.ptxasLog = (*lb)->getBuffer().str();
  if (rc != 0)
    return fail("ptxas failed on '" + name + "'" +
                (errMsg.empty() ? "" : ": " + errMsg) + "\n" + art.ptxasLog);
  auto buf = llvm::MemoryBuffer::getFile(outPath);
  if (!buf)
    return fail("cannot read the cubin ptxas wrote for '" + name + "'");
  art.cubin = (*buf)->getBuffer().str();
  return llvm::Error::success();
}

/// The wgmma kernel keeps S and O (2 x 64 f32 per thread at d = 128) in
/// registers; a heavy mask region can push it into spills. Unless the tiles
/// were forced or the spill is within kSm90SpillToleranceBytes, such an op
/// is rescheduled as the mma.sync kernel with 64 x 64
/// tiles (the sm_80 choice for masked variants). Returns why ("": it was
/// not).
static std::string fallBackIfSpilled(AttentionOp op, StringRef name,
                                     const GpuKernelArtifact &art,
                                     const TargetDesc &t,
                                     const GpuCompileOptions &options) {
  int64_t spilled = spillBytes(art.ptxasLog);
  if (art.kernel.attention.variant != abi::Variant::Wgmma || options.blockQ ||
      options.blockKv || spilled <= kSm90SpillToleranceBytes) {
    LLVM_DEBUG(if (spilled) llvm::dbgs()
               << "'" << name << "': wgmma spilled " << spilled
               << " bytes, within the tolerance: kept\n");
    return std::string();
  }
  int64_t d = op.getHeadDim(), dv = op.getValueDim();
  std::string fallback =
      fmt::format("wgmma spilled {} bytes; mma.sync used", spilled);
  LLVM_DEBUG(llvm::dbgs() << "'" << name << "': " << fallback << "\n");
  const int64_t tile = kMmaSyncFallbackTile;
  op.setScheduleAttr(
      ScheduleAttr::get(op.getContext(), t.kind, tile, tile, tile / 16, 1,
                        mmaSyncSharedBytes(tile, d, dv, /*elemBytes=*/2)));
  return fallback;
}

llvm::Expected<std::vector<GpuKernelArtifact>>
mlir::attn::compileForGpu(ModuleOp module, const GpuCompileOptions &options) {
  const TargetDesc *t = lookupTarget(options.target);
  if (!t || !t->isGpu)
    return fail("unsupported target '" + options.target + "' (expected " +
                knownTargetNames(/*gpuOnly=*/true) + ")");
  MLIRContext *ctx = module.getContext();
  registerAttncPipelines();
  PassManager pm(ctx, ModuleOp::getOperationName());
  addScheduleSelection(pm, t->kind, options.blockQ, options.blockKv);
  if (failed(pm.run(module)))
    return fail("mask analysis or schedule selection failed");
  if (llvm::Error err = checkKernelFunctions(module))
    return std::move(err);
  SmallVector<std::pair<Operation *, std::string>> ops;
  module->walk([&](Operation *op) {
    if (!isa<AttentionOp, AttentionGradOp>(op))
      return;
    auto f = op->getParentOfType<func::FuncOp>();
    ops.push_back({op, f ? f.getName().str() : "attention"});
  });
  if (ops.empty())
    return fail("the spec has no attn.attention: attn-aot packages "
                "attention kernels only (linear attention and scans run on "
                "GPUs through the C++ JIT or attn-opt --attn-compile; see "
                "docs/linear-gpu.md)");

  std::vector<GpuKernelArtifact> out;
  // Why the op being compiled was rebuilt as another kernel ("": it was not).
  std::string fallback;
  for (size_t opIdx = 0; opIdx < ops.size(); ++opIdx) {
    auto &[op, name] = ops[opIdx];
    auto fwd = dyn_cast<AttentionOp>(op);
    llvm::Expected<GpuKernelArtifact> art =
        fwd ? buildKernelPtx(fwd, name, *t, options,
                             std::exchange(fallback, std::string()))
            : buildGradKernelPtx(cast<AttentionGradOp>(op), name, *t, options);
    if (!art)
      return art.takeError();
    if (!options.ptxas.empty()) {
      if (llvm::Error err = assemble(*art, name, *t, options.ptxas))
        return std::move(err);
      if (fwd)
        fallback = fallBackIfSpilled(fwd, name, *art, *t, options);
      if (!fallback.empty()) {
        --opIdx;
        continue;
      }
    }
    out.push_back(std::move(*art));
  }
  return out;
}

abi::Kernel mlir::attn::abiKernelOf(const GpuKernelArtifact &art) {
  abi::Kernel k = art.kernel;
  k.ptxFile = art.name + ".ptx";
  if (!art.cubin.empty())
    k.cubinFile = art.name + ".cubin";
  if (k.kind != abi::KernelKind::Attention || k.signature)
    return k;
  k.attention.fallback = art.fallback;
  // The signature with the spec's value checks: launchers refuse inputs
  // the kernel would read out of bounds.
  attnc::KernelSignature sig = attnc::gpuSignature(k, art.target);
  llvm::SmallVector<std::string> names;
  for (const attnc::ParamInfo &p : sig.inputs)
    names.push_back(p.name);
  k.signature = attnc::abiSignature(sig, names, {}, art.checks);
  return k;
}

std::string
mlir::attn::manifestJson(StringRef target,
                         llvm::ArrayRef<GpuKernelArtifact> kernels) {
  abi::KernelSet set;
  set.generator = "attn-aot";
  set.target = target.str();
  for (const GpuKernelArtifact &art : kernels)
    set.kernels.push_back(abiKernelOf(art));
  return abi::formatKernelSet(set);
}

std::vector<std::pair<std::string, std::string>>
mlir::attn::aotFiles(const GpuKernelArtifact &art) {
  const std::string &n = art.name;
  std::vector<std::pair<std::string, std::string>> files = {
      {n + ".ptx", art.ptx}};
  if (!art.ir.empty())
    files.push_back({n + ".mlir", art.ir});
  if (art.cubin.empty())
    return files;
  files.push_back({n + ".cubin", art.cubin});
  files.push_back({n + ".ptxas.txt", art.ptxasLog});
  // The C launcher wraps forward kernels; backward kernels launch through
  // the launch library (attnc_rt_module_load).
  if (art.kernel.kind != abi::KernelKind::Attention)
    return files;
  files.push_back({n + ".h", headerSource(art.kernel, art.target)});
  files.push_back({n + "_launcher.c", launcherSource(art)});
  return files;
}

llvm::Error
mlir::attn::writeAotDirectory(StringRef dir, StringRef target,
                              llvm::ArrayRef<GpuKernelArtifact> kernels) {
  if (std::error_code ec = llvm::sys::fs::create_directories(dir))
    return fail("cannot create '" + dir + "': " + ec.message());
  for (const GpuKernelArtifact &art : kernels)
    for (const auto &[name, data] : aotFiles(art))
      if (llvm::Error e = writeFile((dir + "/" + name).str(), data))
        return e;
  return writeFile((dir + "/manifest.json").str(),
                   manifestJson(target, kernels));
}
