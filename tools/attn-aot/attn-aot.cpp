//===- attn-aot.cpp - ahead-of-time GPU kernels from a spec ---------------===//
//
// Part of attnc. `attn-aot SPEC.mlir --target=sm_80|sm_90a -o DIR` writes,
// for every attn.attention in the spec (one kernel per function):
//   DIR/<name>.ptx, DIR/<name>.cubin (ptxas), DIR/<name>.ptxas.txt,
//   DIR/manifest.json (kernels, argument order and types, grid and block,
//   shared memory, captures), DIR/<name>.h and DIR/<name>_launcher.c (embeds
//   the cubin, uses only the CUDA driver API).
//
//===----------------------------------------------------------------------===//

#include "attnc/Conversion/AttnToGPU.h"
#include "attnc/Target/Pipelines.h"
#include "attnc/Target/TargetDesc.h"
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

static cl::opt<std::string> inputFile(cl::Positional, cl::desc("<spec.mlir>"),
                                      cl::Required);
static cl::opt<std::string> outDir("o", cl::desc("output directory"),
                                   cl::Required);
static cl::opt<std::string> target("target", cl::desc("sm_80 or sm_90a"),
                                   cl::init("sm_80"));
static cl::opt<int64_t> blockQ("block-q", cl::desc("force block_q"),
                               cl::init(0));
static cl::opt<int64_t> blockKv("block-kv", cl::desc("force block_kv"),
                                cl::init(0));
static cl::opt<std::string> ptxasPath("ptxas",
                                      cl::desc("ptxas to assemble the cubin "
                                               "(default: from CUDA_HOME, "
                                               "/usr/local/cuda or PATH; "
                                               "'none' skips the cubin)"),
                                      cl::init(""));
static cl::opt<bool> keepIR("keep-ir",
                            cl::desc("also write the kernel IR (.mlir)"),
                            cl::init(false));

static int error(const llvm::Twine &msg) {
  llvm::errs() << "attn-aot: error: " << msg << "\n";
  return 1;
}

static bool writeFile(StringRef path, StringRef data) {
  std::error_code ec;
  llvm::raw_fd_ostream os(path, ec);
  if (ec)
    return false;
  os << data;
  return true;
}

static std::string findPtxas() {
  if (!ptxasPath.empty())
    return ptxasPath;
  for (const char *env : {"CUDA_HOME", "CUDA_ROOT", "CUDA_PATH"})
    if (const char *p = std::getenv(env)) {
      std::string c = std::string(p) + "/bin/ptxas";
      if (llvm::sys::fs::can_execute(c))
        return c;
    }
  if (llvm::sys::fs::can_execute("/usr/local/cuda/bin/ptxas"))
    return "/usr/local/cuda/bin/ptxas";
  if (auto p = llvm::sys::findProgramByName("ptxas"))
    return *p;
  return "";
}

static std::string json(StringRef s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\')
      out += '\\';
    out += c;
  }
  return out + "\"";
}

/// C parameter list of the launcher for `info`.
static std::string cParams(const attn::KernelInfo &info) {
  std::string p = "attnc_stream stream";
  for (const attn::KernelArg &a : info.args) {
    if (a.kind == "memref") {
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

static std::string launcherSource(const attn::KernelInfo &info,
                                  ArrayRef<char> cubin) {
  std::string bytes;
  for (size_t i = 0; i < cubin.size(); ++i) {
    bytes += fmt::format("{}{}", i ? "," : "", int(uint8_t(cubin[i])));
    if (i % 24 == 23)
      bytes += "\n";
  }
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

typedef attnc_result (*attnc_{name}_load_fn)(void **, const void *);
typedef attnc_result (*attnc_{name}_get_fn)(void **, void *, const char *);
typedef attnc_result (*attnc_{name}_launch_fn)(void *, unsigned, unsigned,
                                              unsigned, unsigned, unsigned,
                                              unsigned, unsigned, attnc_stream,
                                              void **, void **);
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
  return attnc_{name}_cuModuleLoadData && attnc_{name}_cuModuleGetFunction &&
         attnc_{name}_cuLaunchKernel;
}}

attnc_result attnc_{name}_load(void) {{
  attnc_result r;
  if (attnc_{name}_function)
    return ATTNC_SUCCESS;
  if (!attnc_{name}_driver())
    return ATTNC_ERROR_NO_DRIVER;
  r = attnc_{name}_cuModuleLoadData(&attnc_{name}_module, attnc_{name}_cubin);
  if (r != ATTNC_SUCCESS)
    return r;
{mapload}  if (r != ATTNC_SUCCESS)
    return r;
  return attnc_{name}_cuModuleGetFunction(&attnc_{name}_function,
                                          attnc_{name}_module, "{name}");
}}

attnc_result attnc_{name}_launch({cparams}) {{
  unsigned grid_x;
  attnc_result r = attnc_{name}_load();
  if (r != ATTNC_SUCCESS)
    return r;
  if (B <= 0 || Nq <= 0)
    return ATTNC_SUCCESS;
  {{
{decls}{maplaunch}  void *args[{nargs}];
{params}  grid_x = (unsigned)((Nq + {bq} - 1) / {bq});
  return attnc_{name}_cuLaunchKernel(attnc_{name}_function, grid_x, {hq},
                                     (unsigned)B, {threads}, 1, 1, 0, stream,
                                     args, 0);
  }}
}}
)C",
      fmt::arg("name", info.name), fmt::arg("bytes", bytes),
      fmt::arg("cparams", cParams(info)), fmt::arg("decls", decls),
      fmt::arg("params", params), fmt::arg("nargs", nargs),
      fmt::arg("maplaunch", mapLaunch), fmt::arg("mapload", mapLoad),
      fmt::arg("mapdecl",
               info.mapKernel.empty()
                   ? std::string()
                   : fmt::format("static void *attnc_{}_map_function;\n",
                                 info.name)),
      fmt::arg("bq", info.blockQ), fmt::arg("hq", info.headsQ),
      fmt::arg("threads", info.threads));
}

static std::string headerSource(const attn::KernelInfo &info) {
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

int main(int argc, char **argv) {
  llvm::InitLLVM y(argc, argv);
  cl::ParseCommandLineOptions(argc, argv,
                              "attn-aot: ahead-of-time GPU kernels from an "
                              "attn spec\n");
  const attn::TargetDesc *t = attn::lookupTarget(target);
  if (!t || !t->isGpu)
    return error("unsupported target '" + target +
                 "' (expected sm_80 or sm_90a)");
  DialectRegistry registry;
  attn::registerAttncDialects(registry);
  MLIRContext ctx(registry);
  ctx.loadAllAvailableDialects();
  llvm::SourceMgr sm;
  SourceMgrDiagnosticHandler diag(sm, &ctx);
  OwningOpRef<ModuleOp> module =
      parseSourceFile<ModuleOp>(inputFile, sm, ParserConfig(&ctx));
  if (!module)
    return error("cannot parse '" + inputFile + "'");

  // Analysis and schedule for the target.
  PassManager pm(&ctx, ModuleOp::getOperationName());
  // Pass lists are parsed into a pass manager anchored on the module itself.
  std::string pipeline =
      "attn-analyze-masks,attn-select-schedule{target=" + target;
  if (blockQ)
    pipeline += " block-q=" + std::to_string(blockQ);
  if (blockKv)
    pipeline += " block-kv=" + std::to_string(blockKv);
  pipeline += "}";
  attn::registerAttncPipelines();
  if (failed(parsePassPipeline(pipeline, pm)) || failed(pm.run(*module)))
    return error("mask analysis or schedule selection failed");

  SmallVector<std::pair<attn::AttentionOp, std::string>> ops;
  module->walk([&](attn::AttentionOp op) {
    auto f = op->getParentOfType<func::FuncOp>();
    ops.push_back({op, f ? f.getName().str() : "attention"});
  });
  if (ops.empty())
    return error("the spec has no attn.attention (linear attention and scans "
                 "have no GPU lowering yet)");

  if (std::error_code ec = llvm::sys::fs::create_directories(outDir))
    return error("cannot create '" + outDir + "': " + ec.message());
  std::string ptxas = ptxasPath == "none" ? "" : findPtxas();

  std::string manifest =
      "{\n  \"generator\": \"attn-aot\",\n  \"target\": " + json(target) +
      ",\n  \"kernels\": [\n";
  for (auto [idx, entry] : llvm::enumerate(ops)) {
    auto &[op, name] = entry;
    OwningOpRef<ModuleOp> kmod = ModuleOp::create(op.getLoc());
    FailureOr<attn::KernelInfo> info =
        attn::buildAttentionKernel(op, *kmod, name);
    if (failed(info))
      return error("code generation failed for '" + name + "'");
    if (keepIR)
      writeFile(outDir + "/" + name + ".mlir", [&] {
        std::string s;
        llvm::raw_string_ostream os(s);
        kmod->print(os);
        return s;
      }());
    PassManager lower(&ctx, ModuleOp::getOperationName());
    std::string chip = target == "sm_90a" ? "sm_90a" : "sm_80";
    std::string lp = attn::gpuPipelineText(chip);
    if (failed(parsePassPipeline(lp, lower)) || failed(lower.run(*kmod)))
      return error("lowering '" + name + "' to PTX failed");
    std::string ptx;
    kmod->walk([&](gpu::BinaryOp bin) {
      for (Attribute a : bin.getObjects())
        if (auto obj = dyn_cast<gpu::ObjectAttr>(a))
          ptx = obj.getObject().getValue().str();
    });
    if (ptx.empty())
      return error("no PTX produced for '" + name + "'");
    std::string base = outDir + "/" + name;
    if (!writeFile(base + ".ptx", ptx))
      return error("cannot write " + base + ".ptx");

    std::vector<char> cubin;
    std::string ptxasLog;
    if (!ptxas.empty()) {
      std::string logPath = base + ".ptxas.txt";
      std::string arch = "-arch=" + chip;
      std::string out = base + ".cubin";
      std::string in = base + ".ptx";
      SmallVector<StringRef> args = {ptxas, arch, "-O3", "-v", "-o", out, in};
      std::optional<StringRef> redirects[] = {std::nullopt, logPath, logPath};
      std::string errMsg;
      int rc = llvm::sys::ExecuteAndWait(ptxas, args, std::nullopt, redirects,
                                         0, 0, &errMsg);
      if (rc != 0)
        return error("ptxas failed on " + in + " (see " + logPath + ")" +
                     (errMsg.empty() ? "" : ": " + errMsg));
      auto buf = llvm::MemoryBuffer::getFile(out);
      if (!buf)
        return error("cannot read " + out);
      cubin.assign((*buf)->getBufferStart(), (*buf)->getBufferEnd());
      if (auto lb = llvm::MemoryBuffer::getFile(logPath))
        ptxasLog = (*lb)->getBuffer().str();
      writeFile(base + ".h", headerSource(*info));
      writeFile(base + "_launcher.c", launcherSource(*info, cubin));
    }

    std::string blockMap = "null";
    if (!info->mapKernel.empty()) {
      std::string margs;
      for (auto [i, a] : llvm::enumerate(info->mapArgs))
        margs += fmt::format("{}{{\"name\": {}, \"kind\": {}, \"elem\": {}, "
                             "\"rank\": {}}}",
                             i ? ", " : "", json(a.name), json(a.kind),
                             json(a.elem), a.rank);
      blockMap = fmt::format(
          "{{\"kernel\": {}, \"slices\": {}, \"grid\": [\"ceil(Nq / {})\", "
          "\"ceil(Nk / {})\", \"slices\"], \"block\": [{}, 1, 1], "
          "\"bytes\": \"slices * ceil(Nq / {}) * ceil(Nk / {})\", "
          "\"args\": [{}]}}",
          json(info->mapKernel), json(info->mapSlices), info->blockQ,
          info->blockKv, info->threads, info->blockQ, info->blockKv, margs);
    }
    std::string args;
    for (auto [i, a] : llvm::enumerate(info->args))
      args += fmt::format(
          "{}        {{\"name\": {}, \"kind\": {}, \"elem\": {}, "
          "\"rank\": {}}}",
          i ? ",\n" : "", json(a.name), json(a.kind), json(a.elem), a.rank);
    manifest += fmt::format(
        R"JSON({sep}    {{
      "name": {name}, "ptx": {ptx}, "cubin": {cubin},
      "dtype": {dtype}, "head_dim": {d}, "value_dim": {dv},
      "heads_q": {hq}, "heads_kv": {hkv}, "scale": {scale},
      "block_q": {bq}, "block_kv": {bkv}, "mask_kind": {mk}, "lse": {lse},
      "grid": ["ceil(Nq / {bq})", "{hq}", "B"], "block": [{threads}, 1, 1],
      "shared_bytes": {smem}, "dynamic_shared_bytes": 0,
      "block_map": {blockmap},
      "args": [
{args}
      ]
    }})JSON",
        fmt::arg("sep", idx ? ",\n" : ""), fmt::arg("name", json(name)),
        fmt::arg("ptx", json(name + ".ptx")),
        fmt::arg("cubin",
                 cubin.empty() ? std::string("null") : json(name + ".cubin")),
        fmt::arg("dtype", json(info->dtype)), fmt::arg("d", info->headDim),
        fmt::arg("dv", info->valueDim), fmt::arg("hq", info->headsQ),
        fmt::arg("hkv", info->headsKv), fmt::arg("scale", info->scale),
        fmt::arg("bq", info->blockQ), fmt::arg("bkv", info->blockKv),
        fmt::arg("mk", json(info->maskKind)),
        fmt::arg("lse", info->lse ? "true" : "false"),
        fmt::arg("threads", info->threads), fmt::arg("smem", info->sharedBytes),
        fmt::arg("args", args), fmt::arg("blockmap", blockMap));
    llvm::outs() << fmt::format("{}: {} {} d={} tile {}x{} {} threads, {} B "
                                "shared -> {}.ptx{}\n",
                                name, target, info->dtype, info->headDim,
                                info->blockQ, info->blockKv, info->threads,
                                info->sharedBytes, base,
                                cubin.empty() ? "" : ", .cubin");
    if (!ptxasLog.empty())
      llvm::outs() << ptxasLog;
  }
  manifest += "\n  ]\n}\n";
  if (!writeFile(outDir + "/manifest.json", manifest))
    return error("cannot write manifest.json");
  return 0;
}
