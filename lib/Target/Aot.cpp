//===- Aot.cpp - GPU kernels as files: PTX, cubin, manifest, C launcher ---===//
//
// Part of attnc.
//
//===----------------------------------------------------------------------===//

#include "attnc/Target/Aot.h"
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

/// C parameter list of the launcher for `info`.
static std::string cParams(const attn::KernelInfo &info) {
  std::string p = "attnc_stream stream";
  for (const attn::KernelArg &a : info.args) {
    if (a.kind == "tensormap") {
      // The same parameters as a 1-D view: the map is built in the launcher.
      p += fmt::format(", attnc_deviceptr {0}, int64_t {0}_size0", a.name);
    } else if (a.kind == "memref") {
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

/// C statements storing the addresses of `argList`'s values into `array`.
/// Memref arguments expand to allocated/aligned pointer, offset, sizes and
/// strides; 1-D tensors views get unit strides.
static std::string packArgs(const std::vector<attn::KernelArg> &argList,
                            StringRef array, std::string &decls, int &count) {
  std::string params;
  int n = 0;
  for (const attn::KernelArg &a : argList) {
    if (a.kind == "tensormap") {
      params += fmt::format("  {}[{}] = &{}_map;\n", array.str(), n++, a.name);
      continue;
    }
    if (a.kind == "memref") {
      bool explicitStrides = a.rank > 1 || a.name.rfind("capture", 0) == 0;
      std::string off = a.name + "_off";
      if (decls.find(" " + off + " ") == std::string::npos)
        decls += fmt::format("  int64_t {} = 0;\n", off);
      params += fmt::format("  {0}[{1}] = &{2}; {0}[{3}] = &{2}; "
                            "{0}[{4}] = &{5};\n",
                            array.str(), n, a.name, n + 1, n + 2, off);
      n += 3;
      for (int64_t r = 0; r < a.rank; ++r)
        params += fmt::format("  {}[{}] = &{}_size{};\n", array.str(), n++,
                              a.name, r);
      for (int64_t r = 0; r < a.rank; ++r) {
        std::string unit = fmt::format("{}_unit{}", a.name, r);
        if (explicitStrides) {
          params += fmt::format("  {}[{}] = &{}_stride{};\n", array.str(), n++,
                                a.name, r);
        } else {
          if (decls.find(" " + unit + " ") == std::string::npos)
            decls += fmt::format("  int64_t {} = 1;\n", unit);
          params += fmt::format("  {}[{}] = &{};\n", array.str(), n++, unit);
        }
      }
    } else {
      params += fmt::format("  {}[{}] = &{};\n", array.str(), n++, a.name);
    }
  }
  count = std::max(n, 1);
  return params;
}

/// `data` as a C initializer list of bytes.
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

std::string mlir::attn::launcherSource(const attn::KernelInfo &info,
                                       StringRef cubin, StringRef ptx) {
  std::string bytes = cBytes(cubin, false);
  std::string ptxBytes = cBytes(ptx, true);
  std::string decls;
  int nargs = 0, nmap = 0;
  std::string params = packArgs(info.args, "args", decls, nargs);
  std::string mapLaunch;
  if (!info.mapKernel.empty()) {
    std::string slices = info.mapSlices == "B*Hq"
                             ? fmt::format("B * {}", info.headsQ)
                         : info.mapSlices == "Hq" ? std::to_string(info.headsQ)
                         : info.mapSlices == "B"  ? std::string("B")
                                                  : std::string("1");
    std::string mp = packArgs(info.mapArgs, "margs", decls, nmap);
    mapLaunch = fmt::format(
        R"C(  /* The block map: one class (0 empty, 1 partial, 2 full) per tile. */
  int64_t slices = {slices};
  void *margs[{nmap}];
{mp}  r = attnc_{name}_cuLaunchKernel(attnc_{name}_map_function,
      (unsigned)((Nq + {bq} - 1) / {bq}), (unsigned)((Nk + {bkv} - 1) / {bkv}),
      (unsigned)slices, {threads}, 1, 1, 0, stream, margs, 0);
  if (r != ATTNC_SUCCESS)
    return r;
)C",
        fmt::arg("slices", slices), fmt::arg("nmap", nmap), fmt::arg("mp", mp),
        fmt::arg("name", info.name), fmt::arg("bq", info.blockQ),
        fmt::arg("bkv", info.blockKv), fmt::arg("threads", info.threads));
  }
  // sm_90a: the TMA maps of q, k, v, built here on every launch (they hold
  // the pointers), and the opt-in to the kernel's dynamic shared memory.
  bool wgmma = info.variant == "wgmma";
  int64_t dynSmem = wgmma ? info.sharedBytes : 0;
  std::string tmaps;
  for (const attn::KernelArg &a : info.args) {
    if (a.kind != "tensormap")
      continue;
    bool isQ = a.name == "q";
    tmaps += fmt::format(
        R"C(  {{
    unsigned long long dims[4] = {{{d}, (unsigned long long){n},
                                  {h}, (unsigned long long)B}};
    unsigned long long strides[3] = {{(unsigned long long){a}_stride_n * 2,
                                     (unsigned long long){a}_stride_h * 2,
                                     (unsigned long long){a}_stride_b * 2}};
    unsigned box[4] = {{64, {rows}, 1, 1}}, ones[4] = {{1, 1, 1, 1}};
    (void){a}_size0;
    /* bf16 9 / f16 6; interleave none, 128-byte swizzle, no L2 promotion,
     * zero fill past the end. */
    r = attnc_{name}_cuTensorMapEncodeTiled(&{a}_map, {dt}, 4, (void *){a},
                                           dims, strides, box, ones, 0, 3, 0,
                                           0);
    if (r != ATTNC_SUCCESS)
      return r;
  }}
)C",
        fmt::arg("d", a.name == "v" ? info.valueDim : info.headDim),
        fmt::arg("n", isQ ? "Nq" : "Nk"),
        fmt::arg("h", isQ ? info.headsQ : info.headsKv), fmt::arg("a", a.name),
        fmt::arg("rows", a.boxRows), fmt::arg("name", info.name),
        fmt::arg("dt", info.dtype == "bf16" ? 9 : 6));
    decls += fmt::format("  attnc_tmap {}_map;\n", a.name);
  }
  std::string smemOptIn =
      dynSmem > kStaticSharedBytes
          ? fmt::format("  if (r == ATTNC_SUCCESS)\n"
                        "    r = attnc_{0}_cuFuncSetAttribute("
                        "attnc_{0}_function, 8, {1});\n",
                        info.name, dynSmem)
          : std::string();
  std::string mapLoad =
      info.mapKernel.empty()
          ? std::string()
          : fmt::format("  if (r == ATTNC_SUCCESS)\n"
                        "    r = attnc_{0}_cuModuleGetFunction("
                        "&attnc_{0}_map_function, attnc_{0}_module, "
                        "\"{1}\");\n",
                        info.name, info.mapKernel);
  return fmt::format(
      R"C(/* Generated by attn-aot: launcher for kernel {name}. Uses only the CUDA
 * driver API, which it loads at run time (dlopen of libcuda.so.1): it needs
 * neither the CUDA headers nor -lcuda to build, and on a machine without a
 * driver every call returns ATTNC_ERROR_NO_DRIVER. */
#define _POSIX_C_SOURCE 200809L
#include "{name}.h"
#include <dlfcn.h>

static const unsigned char attnc_{name}_cubin[] = {{
{bytes}}};
/* The PTX, JIT-compiled by the driver where the cubin does not run (an sm_80
 * cubin on a newer architecture: CUDA_ERROR_NO_BINARY_FOR_GPU). */
static const unsigned char attnc_{name}_ptx[] = {{
{ptxbytes}}};

typedef attnc_result (*attnc_{name}_load_fn)(void **, const void *);
typedef attnc_result (*attnc_{name}_get_fn)(void **, void *, const char *);
typedef attnc_result (*attnc_{name}_launch_fn)(void *, unsigned, unsigned,
                                              unsigned, unsigned, unsigned,
                                              unsigned, unsigned, attnc_stream,
                                              void **, void **);
typedef attnc_result (*attnc_{name}_attr_fn)(void *, int, int);
typedef attnc_result (*attnc_{name}_tmap_fn)(
    void *, int, unsigned, void *, const unsigned long long *,
    const unsigned long long *, const unsigned *, const unsigned *, int, int,
    int, int);
/* A CUtensorMap: 128 bytes, 64-byte aligned. */
typedef struct {{
  _Alignas(64) unsigned long long opaque[16];
}} attnc_tmap;
static attnc_{name}_attr_fn attnc_{name}_cuFuncSetAttribute;
static attnc_{name}_tmap_fn attnc_{name}_cuTensorMapEncodeTiled;
static attnc_{name}_load_fn attnc_{name}_cuModuleLoadData;
static attnc_{name}_get_fn attnc_{name}_cuModuleGetFunction;
static attnc_{name}_launch_fn attnc_{name}_cuLaunchKernel;
static void *attnc_{name}_module;
static void *attnc_{name}_function;
{mapdecl}
static int attnc_{name}_driver(void) {{
  void *lib;
  if (attnc_{name}_cuLaunchKernel)
    return 1;
  lib = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
  if (!lib)
    return 0;
  *(void **)&attnc_{name}_cuModuleLoadData = dlsym(lib, "cuModuleLoadData");
  *(void **)&attnc_{name}_cuModuleGetFunction =
      dlsym(lib, "cuModuleGetFunction");
  *(void **)&attnc_{name}_cuLaunchKernel = dlsym(lib, "cuLaunchKernel");
  *(void **)&attnc_{name}_cuFuncSetAttribute = dlsym(lib, "cuFuncSetAttribute");
  *(void **)&attnc_{name}_cuTensorMapEncodeTiled =
      dlsym(lib, "cuTensorMapEncodeTiled");
  return attnc_{name}_cuModuleLoadData && attnc_{name}_cuModuleGetFunction &&
         attnc_{name}_cuLaunchKernel && attnc_{name}_cuFuncSetAttribute{needtmap};
}}

attnc_result attnc_{name}_load(void) {{
  attnc_result r;
  if (attnc_{name}_function)
    return ATTNC_SUCCESS;
  if (!attnc_{name}_driver())
    return ATTNC_ERROR_NO_DRIVER;
  r = attnc_{name}_cuModuleLoadData(&attnc_{name}_module, attnc_{name}_cubin);
  if (r == 209)
    r = attnc_{name}_cuModuleLoadData(&attnc_{name}_module, attnc_{name}_ptx);
  if (r != ATTNC_SUCCESS)
    return r;
{mapload}  if (r != ATTNC_SUCCESS)
    return r;
  r = attnc_{name}_cuModuleGetFunction(&attnc_{name}_function,
                                       attnc_{name}_module, "{name}");
{smemoptin}  return r;
}}

attnc_result attnc_{name}_launch({cparams}) {{
  unsigned grid_x;
  attnc_result r = attnc_{name}_load();
  if (r != ATTNC_SUCCESS)
    return r;
  if (B <= 0 || Nq <= 0)
    return ATTNC_SUCCESS;
  {{
{decls}{tmaps}{maplaunch}  void *args[{nargs}];
{params}  grid_x = (unsigned)((Nq + {bq} - 1) / {bq});
  return attnc_{name}_cuLaunchKernel(attnc_{name}_function, grid_x, {hq},
                                     (unsigned)B, {threads}, 1, 1, {dsmem},
                                     stream, args, 0);
  }}
}}
)C",
      fmt::arg("name", info.name), fmt::arg("bytes", bytes),
      fmt::arg("ptxbytes", ptxBytes), fmt::arg("cparams", cParams(info)),
      fmt::arg("decls", decls), fmt::arg("params", params),
      fmt::arg("nargs", nargs), fmt::arg("maplaunch", mapLaunch),
      fmt::arg("mapload", mapLoad), fmt::arg("tmaps", tmaps),
      fmt::arg("smemoptin", smemOptIn), fmt::arg("dsmem", dynSmem),
      fmt::arg("needtmap", wgmma
                               ? fmt::format(" &&\n         "
                                             "attnc_{}_cuTensorMapEncodeTiled",
                                             info.name)
                               : std::string()),
      fmt::arg("mapdecl",
               info.mapKernel.empty()
                   ? std::string()
                   : fmt::format("static void *attnc_{}_map_function;\n",
                                 info.name)),
      fmt::arg("bq", info.blockQ), fmt::arg("hq", info.headsQ),
      fmt::arg("threads", info.threads));
}

std::string mlir::attn::headerSource(const attn::KernelInfo &info) {
  std::string guard = "ATTNC_" + info.name + "_H";
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
#endif
#ifdef __cplusplus
extern "C" {{
#endif
attnc_result attnc_{name}_load(void);
attnc_result attnc_{name}_launch({cparams});
#ifdef __cplusplus
}}
#endif
#endif
)C",
      fmt::arg("name", info.name), fmt::arg("dtype", info.dtype),
      fmt::arg("d", info.headDim), fmt::arg("dv", info.valueDim),
      fmt::arg("hq", info.headsQ), fmt::arg("hkv", info.headsKv),
      fmt::arg("target", info.target), fmt::arg("guard", guard),
      fmt::arg("cparams", cParams(info)),
      fmt::arg("mapnote",
               info.mapKernel.empty()
                   ? std::string()
                   : fmt::format("\n * block_map: caller-allocated workspace "
                                 "of {} * ceil(Nq/{}) * ceil(Nk/{}) bytes.",
                                 info.mapSlices, info.blockQ, info.blockKv)));
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

  // A kernel stands for its function: the function must be one
  // attn.attention returning its results (anything else it computes would
  // be missing from the kernel).
  for (auto f : module.getOps<func::FuncOp>()) {
    if (f.isExternal())
      continue;
    SmallVector<Operation *> attnOps;
    f.walk([&](Operation *op) {
      if (isa<AttentionOp, LinearAttentionOp, ScanOp>(op))
        attnOps.push_back(op);
    });
    if (attnOps.empty())
      continue;
    Operation *ret = f.getBody().front().getTerminator();
    bool oneAttention = attnOps.size() == 1 && isa<AttentionOp>(attnOps[0]);
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
  SmallVector<std::pair<AttentionOp, std::string>> ops;
  module->walk([&](AttentionOp op) {
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
    GpuKernelArtifact art;
    OwningOpRef<ModuleOp> kmod = ModuleOp::create(op.getLoc());
    FailureOr<KernelInfo> info = buildAttentionKernel(op, *kmod, name);
    if (failed(info))
      return fail("code generation failed for '" + name + "'");
    art.info = *info;
    if (auto f = op->getParentOfType<func::FuncOp>())
      art.checks = specValueChecks(f);
    art.fallback = std::exchange(fallback, std::string());
    LLVM_DEBUG(llvm::dbgs() << "'" << name << "': " << art.info.variant << " "
                            << art.info.blockQ << "x" << art.info.blockKv
                            << ", " << art.info.threads << " threads, "
                            << art.info.sharedBytes << " B shared\n");
    if (options.keepIR) {
      llvm::raw_string_ostream os(art.ir);
      kmod->print(os);
    }
    PassManager lower(ctx, ModuleOp::getOperationName());
    buildGpuBinaryPipeline(lower, t->chip);
    if (failed(lower.run(*kmod)))
      return fail("lowering '" + name + "' to PTX failed");
    art.ptx = binaryPtx(*kmod);
    if (art.ptx.empty())
      return fail("no PTX produced for '" + name + "'");

    if (!options.ptxas.empty()) {
      SmallString<128> tmpDir;
      if (std::error_code ec =
              llvm::sys::fs::createUniqueDirectory("attnc-ptxas", tmpDir))
        return fail("cannot create a temporary directory: " + ec.message());
      std::string in = (tmpDir + "/" + name + ".ptx").str();
      std::string outPath = (tmpDir + "/" + name + ".cubin").str();
      std::string logPath = (tmpDir + "/" + name + ".log").str();
      auto cleanup = llvm::make_scope_exit([&] {
        for (const std::string &f : {in, outPath, logPath})
          llvm::sys::fs::remove(f);
        llvm::sys::fs::remove(tmpDir);
      });
      if (llvm::Error e = writeFile(in, art.ptx))
        return std::move(e);
      std::string arch = ("-arch=" + t->chip).str();
      SmallVector<StringRef> args = {options.ptxas, arch,    "-O3", "-v",
                                     "-o",          outPath, in};

      std::optional<StringRef> redirects[] = {std::nullopt, StringRef(logPath),
                                              StringRef(logPath)};
      std::string errMsg;
      int rc = llvm::sys::ExecuteAndWait(options.ptxas, args, std::nullopt,
                                         redirects, 0, 0, &errMsg);
      if (auto lb = llvm::MemoryBuffer::getFile(logPath))
        art.ptxasLog = (*lb)->getBuffer().str();
      if (rc != 0)
        return fail("ptxas failed on '" + name + "'" +
                    (errMsg.empty() ? "" : ": " + errMsg) + "\n" +
                    art.ptxasLog);
      auto buf = llvm::MemoryBuffer::getFile(outPath);
      if (!buf)
        return fail("cannot read the cubin ptxas wrote for '" + name + "'");
      art.cubin = (*buf)->getBuffer().str();
      // The wgmma kernel keeps S and O (2 x 64 f32 per thread at d = 128) in
      // registers; a heavy mask region can push it into spills. Unless the
      // tiles were forced, such an op is rebuilt as the mma.sync kernel with
      // 64 x 64 tiles (the sm_80 choice for masked variants).
      int64_t spilled = spillBytes(art.ptxasLog);
      if (art.info.variant == "wgmma" && !options.blockQ && !options.blockKv &&
          spilled) {
        int64_t d = op.getHeadDim(), dv = op.getValueDim();
        fallback =
            fmt::format("wgmma spilled {} bytes; mma.sync used", spilled);
        LLVM_DEBUG(llvm::dbgs() << "'" << name << "': " << fallback << "\n");
        const int64_t tile = kMmaSyncFallbackTile;
        op.setScheduleAttr(ScheduleAttr::get(
            ctx, t->kind, tile, tile, tile / 16, 1,
            mmaSyncSharedBytes(tile, d, dv, /*elemBytes=*/2)));
        --opIdx;
        continue;
      }
    }
    out.push_back(std::move(art));
  }
  return out;
}

/// A KernelInfo argument in the ABI.
static abi::Arg abiArg(const KernelArg &a) {
  abi::ArgKind kind = a.kind == "tensormap" ? abi::ArgKind::TensorMap
                      : a.kind == "memref"  ? abi::ArgKind::Memref
                                            : abi::ArgKind::Scalar;
  return {a.name, kind, a.elem, a.rank, a.boxRows};
}

static std::vector<abi::Arg> abiArgs(llvm::ArrayRef<KernelArg> args) {
  std::vector<abi::Arg> out;
  for (const KernelArg &a : args)
    out.push_back(abiArg(a));
  return out;
}

static abi::BlockMap abiBlockMap(const KernelInfo &info);

abi::Kernel mlir::attn::abiKernelOf(const GpuKernelArtifact &art) {
  const KernelInfo &info = art.info;
  abi::Kernel k;
  k.name = info.name;
  k.kind = abi::KernelKind::Attention;
  k.ptxFile = info.name + ".ptx";
  if (!art.cubin.empty())
    k.cubinFile = info.name + ".cubin";
  abi::AttentionKernel &a = k.attention;
  a.dtype = info.dtype;
  a.headDim = info.headDim;
  a.valueDim = info.valueDim;
  a.headsQ = info.headsQ;
  a.headsKv = info.headsKv;
  a.blockQ = info.blockQ;
  a.blockKv = info.blockKv;
  a.sharedBytes = info.sharedBytes;
  a.variant =
      info.variant == "wgmma" ? abi::Variant::Wgmma : abi::Variant::MmaSync;
  a.lse = info.lse;
  a.scale = info.scale;
  a.maskKind = info.maskKind;
  a.fallback = art.fallback;
  // One block per (q tile, head, batch); wgmma kernels take their shared
  // memory dynamically.
  a.main.kernel = info.name;
  a.main.grid = {abi::SizeExpr::of("Nq", info.blockQ),
                 abi::SizeExpr::constant(info.headsQ), abi::SizeExpr::of("B")};
  a.main.block = {info.threads, 1, 1};
  a.main.dynamicSharedBytes =
      a.variant == abi::Variant::Wgmma ? info.sharedBytes : 0;
  a.main.args = abiArgs(info.args);
  if (!info.mapKernel.empty())
    a.blockMap = abiBlockMap(info);
  // The signature with the spec's value checks: launchers refuse inputs
  // the kernel would read out of bounds.
  attnc::KernelSignature sig = attnc::gpuSignature(k, info.target);
  llvm::SmallVector<std::string> names;
  for (const attnc::ParamInfo &p : sig.inputs)
    names.push_back(p.name);
  k.signature = attnc::abiSignature(sig, names, {}, art.checks);
  return k;
}

/// The block map of a kernel whose mask reads captured data.
static abi::BlockMap abiBlockMap(const KernelInfo &info) {
  abi::BlockMap bm;
  bm.slices = info.mapSlices == "B*Hq" ? abi::MapSlices::BatchHeads
              : info.mapSlices == "Hq" ? abi::MapSlices::Heads
              : info.mapSlices == "B"  ? abi::MapSlices::Batch
                                       : abi::MapSlices::One;
  bm.launch.kernel = info.mapKernel;
  bm.launch.grid = {abi::SizeExpr::of("Nq", info.blockQ),
                    abi::SizeExpr::of("Nk", info.blockKv),
                    abi::SizeExpr::of("slices")};
  bm.launch.block = {info.threads, 1, 1};
  bm.launch.args = abiArgs(info.mapArgs);
  return bm;
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

llvm::Error
mlir::attn::writeAotDirectory(StringRef dir, StringRef target,
                              llvm::ArrayRef<GpuKernelArtifact> kernels) {
  if (std::error_code ec = llvm::sys::fs::create_directories(dir))
    return fail("cannot create '" + dir + "': " + ec.message());
  for (const GpuKernelArtifact &art : kernels) {
    std::string base = (dir + "/" + art.info.name).str();
    if (llvm::Error e = writeFile(base + ".ptx", art.ptx))
      return e;
    if (!art.ir.empty())
      if (llvm::Error e = writeFile(base + ".mlir", art.ir))
        return e;
    if (art.cubin.empty())
      continue;
    if (llvm::Error e = writeFile(base + ".cubin", art.cubin))
      return e;
    if (llvm::Error e = writeFile(base + ".ptxas.txt", art.ptxasLog))
      return e;
    if (llvm::Error e = writeFile(base + ".h", headerSource(art.info)))
      return e;
    if (llvm::Error e = writeFile(base + "_launcher.c",
                                  launcherSource(art.info, art.cubin, art.ptx)))
      return e;
  }
  return writeFile((dir + "/manifest.json").str(),
                   manifestJson(target, kernels));
}
