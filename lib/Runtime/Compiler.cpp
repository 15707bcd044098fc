//===- Compiler.cpp - the JIT compiler and its kernel cache ---------------===//
//
// Part of attnc. A spec is parsed, canonicalized and printed; the hash of that
// text, the target, the tile overrides, the function and the compiler version
// is the cache key. A memory cache maps keys (and, for repeated calls with the
// same text, the raw text) to kernels; the disk cache holds one directory per
// key:
//   <cache>/<key>/entry.json   version, key, target, function, and the size
//                              and SHA-256 of every other file
//   GPU: an attn-aot directory (manifest.json, .ptx, .cubin, launcher); for
//        linear attention and scans manifest.json (a kernel of kind
//        "linear") and the .ptx
//   CPU: kernel.o (native object code, linked with ORC on a hit)
// An entry whose entry.json is missing, unparsable, from another compiler
// version or whose files do not match their hashes is removed and rebuilt.
// Entries are written to a temporary directory and renamed into place, so
// concurrent processes never see half an entry.
//
//===----------------------------------------------------------------------===//

#include "Kernels.h"

#include "attnc/Dialect/Attn/Attn.h"
#include "attnc/Target/Aot.h"
#include "attnc/Target/Pipelines.h"
#include "attnc/Transforms/AttnLowering.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/IRMapping.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/IR/Matchers.h"
#include "mlir/Parser/Parser.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Transforms/Passes.h"
#include "llvm/ADT/ScopeExit.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/ADT/StringMap.h"
#include "llvm/Config/llvm-config.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/SHA256.h"
#include "llvm/Support/SourceMgr.h"
#include "llvm/Support/raw_ostream.h"

#include <mutex>
#include <unistd.h>

#ifndef ATTNC_VERSION
#define ATTNC_VERSION "0.0.0"
#endif
#ifndef ATTNC_REVISION
#define ATTNC_REVISION "unknown"
#endif

using namespace attnc;
using llvm::StringRef;
namespace fs = llvm::sys::fs;

StringRef Compiler::version() {
  static const std::string v = std::string("attnc ") + ATTNC_VERSION + " (" +
                               ATTNC_REVISION + ", MLIR " +
                               LLVM_VERSION_STRING + ")";
  return v;
}

static std::string sha256Hex(StringRef data) {
  std::array<uint8_t, 32> h = llvm::SHA256::hash(
      llvm::ArrayRef<uint8_t>(data.bytes_begin(), data.bytes_end()));
  return llvm::toHex(h, /*LowerCase=*/true);
}

static std::string defaultCacheDir() {
  if (const char *p = std::getenv("ATTNC_CACHE_DIR"))
    return p;
  if (const char *p = std::getenv("XDG_CACHE_HOME"); p && *p)
    return std::string(p) + "/attnc";
  if (const char *p = std::getenv("HOME"); p && *p)
    return std::string(p) + "/.cache/attnc";
  return "";
}

struct LinearFunction;

struct Compiler::Impl {
  Options options;
  std::string cacheDir;
  std::mutex mu;
  std::unique_ptr<mlir::MLIRContext> ctx;
  llvm::StringMap<std::shared_ptr<Kernel>> byRaw, byKey;
  CacheStats stats;

  /// What is being compiled.
  struct Job {
    CompileOptions options;
    std::string key, rawKey;
    std::string function;
    mutable mlir::ModuleOp module;
  };

  llvm::Expected<std::shared_ptr<Kernel>>
  compile(StringRef spec, StringRef bufferName, const CompileOptions &opts);
  /// The kernel of the disk entry `dir` for (key, function, target); an
  /// empty `function` accepts the entry's.
  llvm::Expected<std::shared_ptr<Kernel>>
  loadEntry(StringRef key, StringRef function, StringRef target, StringRef dir);
  llvm::Expected<std::shared_ptr<Kernel>> build(const Job &job);
  llvm::Expected<std::shared_ptr<Kernel>> buildLinear(const Job &job,
                                                      mlir::func::FuncOp func,
                                                      const LinearFunction &lf);
  llvm::Expected<std::shared_ptr<Kernel>> buildProgram(const Job &job,
                                                       mlir::func::FuncOp func);
  void store(const Job &job,
             llvm::ArrayRef<std::pair<std::string, std::string>> files,
             llvm::json::Object extra = {});
  /// The job's entry directory once stored; empty when it is not there
  /// (the cache could not be written).
  std::string entryDir(const Job &job) {
    std::string d = cacheDir + "/" + job.key;
    return fs::is_directory(d) ? d : std::string();
  }
};

Compiler::Compiler() : Compiler(Options()) {}

Compiler::Compiler(Options options) : impl(std::make_unique<Impl>()) {
  impl->options = options;
  if (options.diskCache)
    impl->cacheDir =
        options.cacheDir.empty() ? defaultCacheDir() : options.cacheDir;
  mlir::DialectRegistry registry;
  mlir::attn::registerAttncDialects(registry);
  impl->ctx = std::make_unique<mlir::MLIRContext>(registry);
  impl->ctx->loadAllAvailableDialects();
  // Diagnostics reach the caller through llvm::Error, never stderr.
  impl->ctx->printOpOnDiagnostic(false);
}

Compiler::~Compiler() = default;

CacheStats Compiler::stats() const {
  std::lock_guard<std::mutex> lock(impl->mu);
  return impl->stats;
}

std::string Compiler::cacheDir() const { return impl->cacheDir; }

llvm::Expected<std::shared_ptr<Kernel>>
Compiler::compile(StringRef spec, const CompileOptions &options) {
  std::lock_guard<std::mutex> lock(impl->mu);
  return impl->compile(spec, "<spec>", options);
}

llvm::Expected<std::shared_ptr<Kernel>>
Compiler::compileFile(StringRef path, const CompileOptions &options) {
  auto buf = llvm::MemoryBuffer::getFile(path);
  if (!buf)
    return makeError("cannot read '" + path + "': " + buf.getError().message());
  std::lock_guard<std::mutex> lock(impl->mu);
  return impl->compile((*buf)->getBuffer(), path, options);
}

/// The functions of `module` that contain attn operations.
static llvm::SmallVector<mlir::func::FuncOp>
attnFunctions(mlir::ModuleOp module) {
  llvm::SmallVector<mlir::func::FuncOp> out;
  module.walk([&](mlir::func::FuncOp f) {
    bool has = false;
    f.walk([&](mlir::Operation *op) {
      if (op->getDialect() &&
          op->getDialect()->getNamespace() ==
              mlir::attn::AttnDialect::getDialectNamespace())
        has = true;
    });
    if (has)
      out.push_back(f);
  });
  return out;
}

llvm::Expected<std::shared_ptr<Kernel>>
Compiler::Impl::compile(StringRef spec, StringRef bufferName,
                        const CompileOptions &opts) {
  if (opts.target != "cpu" && opts.target != "sm_80" && opts.target != "sm_90a")
    return makeError("unsupported target '" + opts.target +
                     "' (expected cpu, sm_80 or sm_90a)");
  if (opts.blockQ < 0 || opts.blockKv < 0)
    return makeError("tile sizes must not be negative");
  std::string knobs = (opts.target + "\n" + llvm::Twine(opts.blockQ) + "\n" +
                       llvm::Twine(opts.blockKv) + "\n" + opts.function + "\n")
                          .str();
  std::string rawKey = sha256Hex((version() + "\n" + knobs + spec).str());
  if (options.memoryCache) {
    auto it = byRaw.find(rawKey);
    if (it != byRaw.end()) {
      ++stats.memoryHits;
      return it->second;
    }
  }

  // The same text compiled before, by any process: the raw index names the
  // entry, which loads without parsing the spec.
  if (!cacheDir.empty()) {
    if (auto idx = llvm::MemoryBuffer::getFile(cacheDir + "/raw/" + rawKey)) {
      std::string key = (*idx)->getBuffer().trim().str();
      // A key is 64 hex digits; anything else is a damaged index.
      bool valid = key.size() == 64 && llvm::all_of(key, llvm::isHexDigit);
      if (valid && options.memoryCache) {
        auto it = byKey.find(key);
        if (it != byKey.end()) {
          ++stats.memoryHits;
          byRaw[rawKey] = it->second;
          return it->second;
        }
      }
      if (valid) {
        // The raw key covers CompileOptions::function: an empty one takes the
        // function the entry was compiled for.
        auto k =
            loadEntry(key, opts.function, opts.target, cacheDir + "/" + key);
        if (k) {
          ++stats.diskHits;
          if (options.memoryCache) {
            byKey[key] = *k;
            byRaw[rawKey] = *k;
          }
          return *k;
        }
        // A bad entry: the full path below finds and rebuilds it.
        llvm::consumeError(k.takeError());
      }
    }
  }

  // Parse, with diagnostics collected for the error message.
  llvm::SourceMgr sm;
  sm.AddNewSourceBuffer(llvm::MemoryBuffer::getMemBufferCopy(spec, bufferName),
                        llvm::SMLoc());
  std::string diagText;
  llvm::raw_string_ostream diagOs(diagText);
  mlir::SourceMgrDiagnosticHandler handler(sm, ctx.get(), diagOs);
  mlir::OwningOpRef<mlir::ModuleOp> module =
      mlir::parseSourceFile<mlir::ModuleOp>(sm, mlir::ParserConfig(ctx.get()));
  if (!module)
    return makeError("the spec does not parse:\n" + diagText);

  llvm::SmallVector<mlir::func::FuncOp> funcs = attnFunctions(*module);
  mlir::func::FuncOp func;
  if (!opts.function.empty()) {
    func = module->lookupSymbol<mlir::func::FuncOp>(opts.function);
    if (!func)
      return makeError("the spec has no function '" + opts.function + "'");
  } else if (funcs.size() == 1) {
    func = funcs.front();
  } else if (funcs.empty()) {
    return makeError("the spec has no function with an attn operation");
  } else {
    std::string names;
    for (auto f : funcs)
      names += (names.empty() ? "" : ", ") + f.getName().str();
    return makeError("the spec has " + llvm::Twine(funcs.size()) +
                     " functions with attn operations (" + names +
                     "): name one in CompileOptions::function");
  }

  // The canonical spec: canonicalized, printed without locations; run-time
  // attributes for attn-run do not change the kernel.
  for (unsigned i = 0, e = func.getNumArguments(); i < e; ++i)
    if (mlir::DictionaryAttr dict = func.getArgAttrDict(i))
      for (mlir::NamedAttribute attr : dict)
        if (attr.getName().getValue().starts_with("attn."))
          func.removeArgAttr(i, attr.getName());
  {
    mlir::PassManager pm(ctx.get());
    pm.addPass(mlir::createCanonicalizerPass());
    if (failed(pm.run(*module)))
      return makeError("the spec does not canonicalize:\n" + diagText);
  }
  std::string canonical;
  {
    llvm::raw_string_ostream os(canonical);
    module->print(os, mlir::OpPrintingFlags().enableDebugInfo(false));
  }
  Job job;
  job.options = opts;
  job.function = func.getName().str();
  job.module = *module;
  job.key = sha256Hex(
      (version() + "\n" + knobs + job.function + "\n" + canonical).str());
  job.rawKey = rawKey;
  if (options.memoryCache) {
    auto it = byKey.find(job.key);
    if (it != byKey.end()) {
      ++stats.memoryHits;
      byRaw[rawKey] = it->second;
      return it->second;
    }
  }

  std::shared_ptr<Kernel> kernel;
  if (!cacheDir.empty()) {
    std::string dir = cacheDir + "/" + job.key;
    if (fs::is_directory(dir)) {
      auto k = loadEntry(job.key, job.function, job.options.target, dir);
      if (k) {
        ++stats.diskHits;
        kernel = *k;
      } else {
        llvm::consumeError(k.takeError());
        fs::remove_directories(dir, /*IgnoreErrors=*/true);
        ++stats.rebuilt;
      }
    }
  }
  if (!kernel) {
    auto k = build(job);
    if (!k) {
      std::string msg = llvm::toString(k.takeError());
      if (!diagText.empty())
        msg += "\n" + diagText;
      return makeError(msg);
    }
    ++stats.compiles;
    kernel = *k;
  }
  if (options.memoryCache) {
    byKey[job.key] = kernel;
    byRaw[rawKey] = kernel;
  }
  return kernel;
}

/// The CPU signature: the function's arguments and results.
static llvm::Expected<KernelSignature> cpuSignature(mlir::func::FuncOp func) {
  KernelSignature s;
  s.name = func.getName().str();
  s.target = "cpu";
  auto add = [&](mlir::Type t, std::string name,
                 llvm::SmallVectorImpl<ParamInfo> &dst) -> llvm::Error {
    auto rt = llvm::dyn_cast<mlir::RankedTensorType>(t);
    if (!rt)
      return makeError("'" + s.name + "': parameter '" + name +
                       "' is not a ranked tensor");
    auto dt = dtypeOf(rt.getElementType());
    if (!dt)
      return makeError("'" + s.name + "': parameter '" + name +
                       "': " + llvm::toString(dt.takeError()));
    ParamInfo p;
    p.name = std::move(name);
    p.dtype = *dt;
    for (int64_t d : rt.getShape())
      p.shape.push_back(mlir::ShapedType::isDynamic(d) ? -1 : d);
    dst.push_back(std::move(p));
    return llvm::Error::success();
  };
  for (auto [i, t] : llvm::enumerate(func.getArgumentTypes())) {
    std::string n = i == 0   ? "q"
                    : i == 1 ? "k"
                    : i == 2 ? "v"
                             : "arg" + std::to_string(i);
    if (llvm::Error e = add(t, n, s.inputs))
      return std::move(e);
  }
  for (auto [i, t] : llvm::enumerate(func.getResultTypes()))
    if (llvm::Error e =
            add(t, i == 0 ? "o" : "result" + std::to_string(i), s.outputs))
      return std::move(e);
  return s;
}

/// Value checks for the linear ops of `func` whose operands are arguments.
static InputChecks inputChecks(mlir::func::FuncOp func) {
  InputChecks c;
  auto argIndex = [&](mlir::Value v) -> std::optional<unsigned> {
    auto arg = llvm::dyn_cast<mlir::BlockArgument>(v);
    if (arg && arg.getOwner() == &func.getBody().front())
      return arg.getArgNumber();
    return std::nullopt;
  };
  auto visit = [&](mlir::Value q, mlir::Value k, mlir::Value v,
                   mlir::Value decay, mlir::Value init,
                   mlir::attn::TokenOrderAttr order) {
    if (decay)
      if (auto i = argIndex(decay))
        c.logGates.push_back(*i);
    auto qi = argIndex(q);
    if (!qi)
      return;
    if (order)
      c.lengths.push_back({*qi, 2u, order.getLength()});
    // Batch (dim 0) and sequence (dim 2) of k, v and per-token gates follow
    // q; an initial state's batch too.
    auto tie = [&](mlir::Value x, std::initializer_list<unsigned> dims) {
      if (!x)
        return;
      auto xi = argIndex(x);
      int64_t rank = llvm::cast<mlir::RankedTensorType>(x.getType()).getRank();
      if (xi)
        for (unsigned d : dims)
          if (int64_t(d) < rank)
            c.equalDims.push_back({*xi, d, *qi, d});
    };
    tie(k, {0, 2});
    tie(v, {0, 2});
    if (decay &&
        llvm::cast<mlir::RankedTensorType>(decay.getType()).getRank() >= 3)
      tie(decay, {0, 2});
    tie(init, {0});
  };
  func.walk([&](mlir::Operation *op) {
    if (auto la = llvm::dyn_cast<mlir::attn::LinearAttentionOp>(op))
      visit(la.getQ(), la.getK(), la.getV(), la.getDecay(),
            la.getInitialState(), la.getOrderAttr());
    else if (auto sc = llvm::dyn_cast<mlir::attn::ScanOp>(op))
      visit(sc.getQ(), sc.getK(), sc.getV(), sc.getDecay(),
            sc.getInitialState(), sc.getOrderAttr());
  });
  // Captured tensors read with tensor.extract at i, j, b or h (possibly
  // divided by a constant) must cover those ranges.
  func.walk([&](mlir::attn::AttentionOp op) {
    auto qi = argIndex(op.getQ()), ki = argIndex(op.getK());
    if (!qi || !ki)
      return;
    auto scan = [&](mlir::Region &region, unsigned first) {
      if (region.empty())
        return;
      mlir::Block &blk = region.front();
      // (b, h, i, j) -> (input, dim)
      std::pair<unsigned, unsigned> roles[] = {
          {*qi, 0u}, {*qi, 1u}, {*qi, 2u}, {*ki, 2u}};
      auto classify = [&](mlir::Value idx)
          -> std::optional<std::tuple<unsigned, unsigned, int64_t>> {
        int64_t div = 1;
        if (auto d = idx.getDefiningOp<mlir::arith::DivUIOp>()) {
          llvm::APInt c;
          if (!mlir::matchPattern(d.getRhs(), mlir::m_ConstantInt(&c)) ||
              c.getSExtValue() <= 0)
            return std::nullopt;
          div = c.getSExtValue();
          idx = d.getLhs();
        }
        auto arg = llvm::dyn_cast<mlir::BlockArgument>(idx);
        if (!arg || arg.getOwner() != &blk || arg.getArgNumber() < first ||
            arg.getArgNumber() >= first + 4)
          return std::nullopt;
        auto [in, dim] = roles[arg.getArgNumber() - first];
        return std::make_tuple(in, dim, div);
      };
      region.walk([&](mlir::tensor::ExtractOp ex) {
        auto ci = argIndex(ex.getTensor());
        if (!ci)
          return;
        for (auto [d, idx] : llvm::enumerate(ex.getIndices()))
          if (auto r = classify(idx))
            c.minExtents.push_back({*ci, unsigned(d), std::get<0>(*r),
                                    std::get<1>(*r), std::get<2>(*r)});
      });
    };
    scan(op.getMask(), 0);  // (b, h, i, j)
    scan(op.getScore(), 1); // (s, b, h, i, j)
  });
  return c;
}

/// Whether `func` is one attn.attention on its arguments (q, k, v, captures
/// in order) returning its results.
static mlir::attn::AttentionOp attentionOf(mlir::func::FuncOp func) {
  mlir::attn::AttentionOp found;
  unsigned count = 0;
  func.walk([&](mlir::attn::AttentionOp op) {
    found = op;
    ++count;
  });
  if (count != 1)
    return {};
  llvm::SmallVector<mlir::Value> operands = {found.getQ(), found.getK(),
                                             found.getV()};
  llvm::append_range(operands, found.getCaptures());
  if (operands.size() != func.getNumArguments())
    return {};
  for (auto [v, a] : llvm::zip(operands, func.getArguments()))
    if (v != a)
      return {};
  auto ret = llvm::dyn_cast<mlir::func::ReturnOp>(
      func.getBody().front().getTerminator());
  if (!ret || ret.getNumOperands() != found->getNumResults())
    return {};
  for (auto [v, r] : llvm::zip(ret.getOperands(), found->getResults()))
    if (v != r)
      return {};
  return found;
}

/// A function that is one attn.linear_attention or attn.scan on its
/// arguments (its decay may be a constant) returning its results: the op,
/// the kernel ABI's name of each argument and the constant's decays.
struct LinearFunction {
  mlir::Operation *op = nullptr;
  llvm::SmallVector<std::string> names;
  std::vector<float> constDecay;
};

static std::optional<LinearFunction> linearOf(mlir::func::FuncOp func) {
  LinearFunction lf;
  unsigned count = 0;
  func.walk([&](mlir::Operation *op) {
    if (llvm::isa<mlir::attn::LinearAttentionOp, mlir::attn::ScanOp,
                  mlir::attn::AttentionOp>(op)) {
      lf.op = op;
      ++count;
    }
  });
  if (count != 1 || llvm::isa<mlir::attn::AttentionOp>(lf.op))
    return std::nullopt;
  mlir::attn::LinearOpView view(lf.op);
  llvm::DenseMap<mlir::Value, std::string> roles = {
      {view.q, "q"}, {view.k, "k"}, {view.v, "v"}};
  if (view.init)
    roles[view.init] = "initial_state";
  for (auto [i, c] : llvm::enumerate(view.captures))
    roles[c] = "capture" + std::to_string(i);
  mlir::DenseElementsAttr decayConst;
  if (view.decay) {
    if (matchPattern(view.decay, mlir::m_Constant(&decayConst)))
      for (llvm::APFloat f : decayConst.getValues<llvm::APFloat>())
        lf.constDecay.push_back(f.convertToFloat());
    else
      roles[view.decay] = "decay";
  }
  if (roles.size() != func.getNumArguments())
    return std::nullopt;
  for (mlir::BlockArgument a : func.getArguments()) {
    auto it = roles.find(a);
    if (it == roles.end())
      return std::nullopt;
    lf.names.push_back(it->second);
  }
  auto ret = llvm::dyn_cast<mlir::func::ReturnOp>(
      func.getBody().front().getTerminator());
  if (!ret || ret.getNumOperands() != lf.op->getNumResults())
    return std::nullopt;
  for (auto [v, r] : llvm::zip(ret.getOperands(), lf.op->getResults()))
    if (v != r)
      return std::nullopt;
  return lf;
}

/// The value checks of a kernel, for its disk entry.
static llvm::json::Object checksJson(const InputChecks &c) {
  llvm::json::Array gates, lengths, equal, extents;
  for (unsigned g : c.logGates)
    gates.push_back(int64_t(g));
  for (auto [in, dim, len] : c.lengths)
    lengths.push_back(llvm::json::Array{int64_t(in), int64_t(dim), len});
  for (const std::array<unsigned, 4> &eq : c.equalDims)
    equal.push_back(llvm::json::Array{int64_t(eq[0]), int64_t(eq[1]),
                                      int64_t(eq[2]), int64_t(eq[3])});
  for (const InputChecks::MinExtent &m : c.minExtents)
    extents.push_back(llvm::json::Array{int64_t(m.input), int64_t(m.dim),
                                        int64_t(m.refInput), int64_t(m.refDim),
                                        m.divisor});
  return llvm::json::Object{{"log_gates", std::move(gates)},
                            {"lengths", std::move(lengths)},
                            {"equal_dims", std::move(equal)},
                            {"min_extents", std::move(extents)}};
}

/// Integer tuples of `key` in `o`, each of `width` entries, each entry >= 0.
static llvm::Expected<llvm::SmallVector<llvm::SmallVector<int64_t, 5>>>
tuplesOf(const llvm::json::Object &o, StringRef key, size_t width) {
  const llvm::json::Array *arr = o.getArray(key);
  if (!arr)
    return makeError("entry lacks " + key);
  llvm::SmallVector<llvm::SmallVector<int64_t, 5>> out;
  for (const llvm::json::Value &t : *arr) {
    const llvm::json::Array *a = t.getAsArray();
    if (!a || a->size() != width)
      return makeError("entry has a bad " + key);
    llvm::SmallVector<int64_t, 5> row;
    for (const llvm::json::Value &x : *a) {
      auto i = x.getAsInteger();
      if (!i || *i < 0)
        return makeError("entry has a bad " + key);
      row.push_back(*i);
    }
    out.push_back(std::move(row));
  }
  return out;
}

static llvm::Error parseChecks(const llvm::json::Object *o,
                               const KernelSignature &sig, InputChecks &c) {
  if (!o)
    return makeError("entry lacks value checks");
  auto inDim = [&](int64_t in, int64_t dim) {
    return size_t(in) < sig.inputs.size() &&
           size_t(dim) < sig.inputs[in].shape.size();
  };
  const llvm::json::Array *gates = o->getArray("log_gates");
  if (!gates)
    return makeError("entry lacks log_gates");
  for (const llvm::json::Value &g : *gates) {
    auto i = g.getAsInteger();
    if (!i || *i < 0 || size_t(*i) >= sig.inputs.size())
      return makeError("entry has a bad log-gate input");
    c.logGates.push_back(unsigned(*i));
  }
  auto lengths = tuplesOf(*o, "lengths", 3);
  if (!lengths)
    return lengths.takeError();
  for (auto &t : *lengths) {
    if (!inDim(t[0], t[1]))
      return makeError("entry has a bad length check");
    c.lengths.push_back({unsigned(t[0]), unsigned(t[1]), t[2]});
  }
  auto equal = tuplesOf(*o, "equal_dims", 4);
  if (!equal)
    return equal.takeError();
  for (auto &t : *equal) {
    if (!inDim(t[0], t[1]) || !inDim(t[2], t[3]))
      return makeError("entry has a bad dimension check");
    c.equalDims.push_back(
        {unsigned(t[0]), unsigned(t[1]), unsigned(t[2]), unsigned(t[3])});
  }
  auto extents = tuplesOf(*o, "min_extents", 5);
  if (!extents)
    return extents.takeError();
  for (auto &t : *extents) {
    if (!inDim(t[0], t[1]) || !inDim(t[2], t[3]) || t[4] <= 0)
      return makeError("entry has a bad extent check");
    c.minExtents.push_back(
        {unsigned(t[0]), unsigned(t[1]), unsigned(t[2]), unsigned(t[3]), t[4]});
  }
  return llvm::Error::success();
}

/// What a CPU entry needs besides its object code: the signature and the
/// value checks (a disk hit then needs no spec).
static llvm::json::Object cpuEntryJson(const KernelSignature &sig, bool layout,
                                       const InputChecks &c) {
  return llvm::json::Object{{"inputs", paramsJson(sig.inputs)},
                            {"outputs", paramsJson(sig.outputs)},
                            {"attention_layout", layout},
                            {"checks", checksJson(c)}};
}

static llvm::Error parseCpuEntry(const llvm::json::Object &o,
                                 StringRef function, KernelSignature &sig,
                                 bool &layout, InputChecks &c) {
  sig.name = function.str();
  sig.target = "cpu";
  auto params = [&](StringRef key,
                    llvm::SmallVectorImpl<ParamInfo> &dst) -> llvm::Error {
    const llvm::json::Array *a = o.getArray(key);
    if (!a)
      return makeError("entry has no " + key);
    for (const llvm::json::Value &v : *a) {
      const llvm::json::Object *p = v.getAsObject();
      const llvm::json::Array *shape = p ? p->getArray("shape") : nullptr;
      auto name = p ? p->getString("name") : std::nullopt;
      auto dt = p ? p->getString("dtype") : std::nullopt;
      if (!shape || !name || !dt)
        return makeError("entry has a bad parameter");
      auto dtype = dtypeFromName(*dt);
      if (!dtype)
        return dtype.takeError();
      ParamInfo info;
      info.name = name->str();
      info.dtype = *dtype;
      for (const llvm::json::Value &d : *shape) {
        auto i = d.getAsInteger();
        if (!i)
          return makeError("entry has a bad shape");
        info.shape.push_back(*i);
      }
      dst.push_back(std::move(info));
    }
    return llvm::Error::success();
  };
  if (llvm::Error e = params("inputs", sig.inputs))
    return e;
  if (llvm::Error e = params("outputs", sig.outputs))
    return e;
  auto l = o.getBoolean("attention_layout");
  if (!l)
    return makeError("entry lacks attention_layout");
  layout = *l;
  return parseChecks(o.getObject("checks"), sig, c);
}

/// manifest.json of a linear-attention / scan kernel's cache entry.
static std::string linearManifestJson(StringRef target, StringRef function,
                                      StringRef ptxFile,
                                      const llvm::json::Object &abi,
                                      const KernelSignature &sig,
                                      llvm::ArrayRef<std::string> names,
                                      llvm::ArrayRef<float> constDecay,
                                      const InputChecks &checks) {
  llvm::json::Array nameList, decays;
  for (const std::string &n : names)
    nameList.push_back(n);
  for (float d : constDecay)
    decays.push_back(double(d));
  llvm::json::Object kernel{{"name", function},
                            {"kind", "linear"},
                            {"ptx", ptxFile},
                            {"abi", llvm::json::Object(abi)},
                            {"inputs", paramsJson(sig.inputs)},
                            {"outputs", paramsJson(sig.outputs)},
                            {"input_names", std::move(nameList)},
                            {"const_decay", std::move(decays)},
                            {"checks", checksJson(checks)}};
  llvm::json::Object manifest{
      {"generator", "attnc"},
      {"target", target},
      {"kernels", llvm::json::Array{std::move(kernel)}}};
  std::string text;
  llvm::raw_string_ostream os(text);
  os << llvm::formatv("{0:2}", llvm::json::Value(std::move(manifest)));
  return text;
}

llvm::Expected<std::shared_ptr<Kernel>> Compiler::Impl::build(const Job &job) {
  auto func = job.module.lookupSymbol<mlir::func::FuncOp>(job.function);
  if (job.options.target == "cpu") {
    auto sig = cpuSignature(func);
    if (!sig)
      return sig.takeError();
    mlir::attn::CpuPipelineOptions po;
    po.blockQ = job.options.blockQ;
    po.blockKv = job.options.blockKv;
    std::string object;
    auto k = mlir::attn::CpuKernel::compile(
        job.module, job.function, po, cacheDir.empty() ? nullptr : &object);
    if (!k)
      return k.takeError();
    bool layout = bool(attentionOf(func));
    InputChecks checks = inputChecks(func);
    if (!object.empty())
      store(job, {{"kernel.o", object}}, cpuEntryJson(*sig, layout, checks));
    return std::make_shared<CpuKernelImpl>(std::move(*sig), std::move(*k),
                                           layout, std::move(checks));
  }

  if (!attentionOf(func)) {
    if (std::optional<LinearFunction> lf = linearOf(func))
      return buildLinear(job, func, *lf);
    return buildProgram(job, func);
  }
  // Code generation rewrites the module: work on a clone.
  mlir::OwningOpRef<mlir::ModuleOp> clone = job.module.clone();
  // Keep only the function being compiled.
  for (auto f : llvm::make_early_inc_range(clone->getOps<mlir::func::FuncOp>()))
    if (f.getName() != job.function)
      f.erase();
  InputChecks checks = inputChecks(func);
  mlir::attn::GpuCompileOptions go;
  go.target = job.options.target;
  go.blockQ = job.options.blockQ;
  go.blockKv = job.options.blockKv;
  go.ptxas = mlir::attn::findPtxas();
  auto arts = mlir::attn::compileForGpu(*clone, go);
  if (!arts)
    return arts.takeError();
  const mlir::attn::GpuKernelArtifact &art = arts->front();
  std::string dir;
  if (!cacheDir.empty()) {
    std::vector<std::pair<std::string, std::string>> files;
    std::string n = art.info.name;
    files.push_back({n + ".ptx", art.ptx});
    if (!art.cubin.empty()) {
      files.push_back({n + ".cubin", art.cubin});
      files.push_back({n + ".ptxas.txt", art.ptxasLog});
      files.push_back({n + ".h", mlir::attn::headerSource(art.info)});
      files.push_back({n + "_launcher.c", mlir::attn::launcherSource(
                                              art.info, art.cubin, art.ptx)});
    }
    files.push_back(
        {"manifest.json", mlir::attn::manifestJson(job.options.target, *arts)});
    store(job, files, llvm::json::Object{{"checks", checksJson(checks)}});
    dir = entryDir(job);
  }
  return std::make_shared<GpuKernelImpl>(
      gpuSignature(art.info, job.options.target), art.info, art.cubin, art.ptx,
      dir, std::move(checks));
}

/// A linear-attention / scan function for the GPU: the kernel of
/// convert-attn-linear-to-gpu (and its feature kernel) as PTX with its ABI.
/// Its disk-cache entry is a directory attnc.load reads.
llvm::Expected<std::shared_ptr<Kernel>>
Compiler::Impl::buildLinear(const Job &job, mlir::func::FuncOp func,
                            const LinearFunction &lf) {
  mlir::OwningOpRef<mlir::ModuleOp> clone = job.module.clone();
  for (auto f : llvm::make_early_inc_range(clone->getOps<mlir::func::FuncOp>()))
    if (f.getName() != job.function)
      f.erase();
  std::string diag;
  llvm::raw_string_ostream diagOs(diag);
  mlir::ScopedDiagnosticHandler handler(ctx.get(), [&](mlir::Diagnostic &d) {
    diagOs << d << "\n";
    return mlir::success();
  });
  mlir::attn::registerAttncPipelines();
  {
    // The kernel and its ABI (an attribute of the kernel function, gone
    // once the module is serialized).
    mlir::PassManager pm(ctx.get());
    std::string text = "attn-select-schedule{target=" + job.options.target +
                       "},convert-attn-linear-to-gpu";
    if (failed(mlir::parsePassPipeline(text, pm, diagOs)) ||
        failed(pm.run(*clone)))
      return makeError("'" + job.function +
                       "': the linear-attention GPU lowering failed:\n" + diag);
  }
  std::string abiText;
  clone->walk([&](mlir::gpu::GPUFuncOp f) {
    if (auto a = f->getAttrOfType<mlir::StringAttr>("attn.abi"))
      abiText = a.getValue().str();
  });
  auto abi = llvm::json::parse(abiText);
  if (!abi || !abi->getAsObject()) {
    if (!abi)
      llvm::consumeError(abi.takeError());
    return makeError("'" + job.function + "': no kernel ABI was produced");
  }
  {
    mlir::PassManager pm(ctx.get());
    if (failed(mlir::attn::buildCompilePipeline(pm, job.options.target, 0, 0,
                                                "isa",
                                                [&](const llvm::Twine &m) {
                                                  diagOs << m << "\n";
                                                  return mlir::failure();
                                                })) ||
        failed(pm.run(*clone)))
      return makeError("'" + job.function +
                       "': compiling the linear-attention kernel failed:\n" +
                       diag);
  }
  std::string ptx = mlir::attn::binaryPtx(*clone);
  if (ptx.empty())
    return makeError("'" + job.function + "': no PTX was produced");
  auto sig = cpuSignature(func);
  if (!sig)
    return sig.takeError();
  sig->target = job.options.target;
  for (auto [p, n] : llvm::zip(sig->inputs, lf.names))
    p.name = n;
  InputChecks checks = inputChecks(func);
  std::string dir;
  if (!cacheDir.empty()) {
    // The entry is a directory attnc.load reads: the PTX and a manifest
    // with one kernel of kind "linear" (its ABI, signature, input roles,
    // constant decays and value checks; docs/runtime.md).
    std::string file = job.function + ".ptx";
    store(job,
          {{file, ptx},
           {"manifest.json",
            linearManifestJson(job.options.target, job.function, file,
                               *abi->getAsObject(), *sig, lf.names,
                               lf.constDecay, checks)}},
          cpuEntryJson(*sig, /*layout=*/false, checks));
    dir = entryDir(job);
  }
  return std::make_shared<GpuLinearKernelImpl>(
      std::move(*sig), std::move(*abi->getAsObject()), std::move(ptx), lf.names,
      lf.constDecay, std::move(checks), std::move(dir));
}

/// PTX of `out[i] = a[i] <op> b[i]` over flat tensors (16-bit floats
/// computed in f32), one thread per element.
static llvm::Expected<std::string> elementwisePtx(mlir::MLIRContext *ctx,
                                                  mlir::Operation *op,
                                                  llvm::StringRef target) {
  using namespace mlir;
  ctx->loadDialect<gpu::GPUDialect, memref::MemRefDialect, scf::SCFDialect,
                   arith::ArithDialect>();
  Location loc = op->getLoc();
  Type elem =
      cast<RankedTensorType>(op->getResult(0).getType()).getElementType();
  OwningOpRef<ModuleOp> m = ModuleOp::create(loc);
  (*m)->setAttr(gpu::GPUDialect::getContainerModuleAttrName(),
                UnitAttr::get(ctx));
  OpBuilder b(ctx);
  b.setInsertionPointToEnd(m->getBody());
  auto gm = gpu::GPUModuleOp::create(b, loc, "elementwise");
  b.setInsertionPointToStart(gm.getBody());
  auto mt = MemRefType::get({ShapedType::kDynamic}, elem);
  auto fn = gpu::GPUFuncOp::create(
      b, loc, "elementwise",
      b.getFunctionType({mt, mt, mt, b.getIndexType()}, {}));
  fn->setAttr(gpu::GPUDialect::getKernelFuncAttrName(), b.getUnitAttr());
  Block &entry = fn.getBody().front();
  b.setInsertionPointToStart(&entry);
  Value i = arith::AddIOp::create(
      b, loc,
      arith::MulIOp::create(b, loc,
                            gpu::BlockIdOp::create(b, loc, gpu::Dimension::x),
                            gpu::BlockDimOp::create(b, loc, gpu::Dimension::x)),
      gpu::ThreadIdOp::create(b, loc, gpu::Dimension::x));
  Value in = arith::CmpIOp::create(b, loc, arith::CmpIPredicate::ult, i,
                                   entry.getArgument(3));
  auto ifOp = scf::IfOp::create(b, loc, in, /*withElseRegion=*/false);
  b.setInsertionPointToStart(ifOp.thenBlock());
  Type f32 = b.getF32Type();
  auto load = [&](unsigned a) -> Value {
    Value x = memref::LoadOp::create(b, loc, entry.getArgument(a), i);
    return elem == f32 ? x : arith::ExtFOp::create(b, loc, f32, x).getResult();
  };
  Value x = load(0), y = load(1), r;
  if (isa<arith::AddFOp>(op))
    r = arith::AddFOp::create(b, loc, x, y);
  else if (isa<arith::SubFOp>(op))
    r = arith::SubFOp::create(b, loc, x, y);
  else
    r = arith::MulFOp::create(b, loc, x, y);
  if (elem != f32)
    r = arith::TruncFOp::create(b, loc, elem, r);
  memref::StoreOp::create(b, loc, r, entry.getArgument(2), i);
  b.setInsertionPointToEnd(&entry);
  gpu::ReturnOp::create(b, loc);
  std::string diag;
  llvm::raw_string_ostream os(diag);
  mlir::attn::registerAttncPipelines();
  PassManager pm(ctx);
  if (failed(parsePassPipeline(mlir::attn::gpuPipelineText(target), pm, os)) ||
      failed(pm.run(*m)))
    return makeError("compiling an elementwise kernel failed:\n" + diag);
  std::string ptx = mlir::attn::binaryPtx(*m);
  if (ptx.empty())
    return makeError("no PTX for an elementwise kernel");
  return ptx;
}

/// A function of several attn ops (or of one attn op not in the single-op
/// forms) for a GPU: one kernel per attn op and elementwise kernels for
/// addf, subf and mulf on tensors. Not written to the disk cache.
llvm::Expected<std::shared_ptr<Kernel>>
Compiler::Impl::buildProgram(const Job &job, mlir::func::FuncOp func) {
  using namespace mlir;
  auto refuse = [&](const llvm::Twine &why) {
    return makeError("'" + job.function +
                     "': GPU targets compile functions of attn ops "
                     "(attention, linear attention, scans) on the "
                     "function's arguments, combined by elementwise addf, "
                     "subf or mulf on tensors: " +
                     why);
  };
  Block &body = func.getBody().front();
  GpuProgram prog;
  llvm::DenseMap<Value, GpuProgram::Ref> where;
  // The input whose batch and sequence sizes a value has.
  llvm::DenseMap<Value, unsigned> like;
  for (auto [i, a] : llvm::enumerate(func.getArguments())) {
    where[a] = {GpuProgram::Ref::Input, unsigned(i)};
    like[a] = unsigned(i);
  }
  auto ret = cast<func::ReturnOp>(body.getTerminator());
  for (auto [j, v] : llvm::enumerate(ret.getOperands())) {
    if (where.count(v))
      return refuse("result " + llvm::Twine(j) +
                    " is an argument or returned twice");
    where[v] = {GpuProgram::Ref::Output, unsigned(j)};
  }
  std::string typeErr;
  auto resultRef = [&](Value v, unsigned likeInput) -> GpuProgram::Ref {
    like[v] = likeInput;
    auto it = where.find(v);
    if (it != where.end())
      return it->second;
    auto rt = cast<RankedTensorType>(v.getType());
    GpuProgram::Temp t;
    auto dt = dtypeOf(rt.getElementType());
    if (!dt)
      typeErr = llvm::toString(dt.takeError());
    else
      t.dtype = *dt;
    for (int64_t n : rt.getShape())
      t.shape.push_back(ShapedType::isDynamic(n) ? -1 : n);
    t.like = likeInput;
    prog.temps.push_back(t);
    GpuProgram::Ref r{GpuProgram::Ref::Temp, unsigned(prog.temps.size() - 1)};
    where[v] = r;
    return r;
  };
  // The parts are not cached on disk: their entries would be indexed by
  // this spec's raw key.
  std::string savedCacheDir = cacheDir;
  cacheDir.clear();
  llvm::scope_exit restore([&] { cacheDir = savedCacheDir; });
  unsigned part = 0;
  for (Operation &op : body.without_terminator()) {
    if (isa<arith::ConstantOp>(op))
      continue; // cloned into the parts that use it
    if (isa<attn::AttentionOp, attn::LinearAttentionOp, attn::ScanOp>(op)) {
      // The op alone, on the arguments it reads (constants cloned).
      Location loc = op.getLoc();
      OwningOpRef<ModuleOp> sub = ModuleOp::create(loc);
      SmallVector<Value> args;
      SmallVector<Type> types;
      for (Value v : op.getOperands()) {
        if (v.getDefiningOp<arith::ConstantOp>())
          continue;
        auto arg = dyn_cast<BlockArgument>(v);
        if (!arg || arg.getOwner() != &body)
          return refuse("'" + op.getName().getStringRef() +
                        "' reads a value that is not an argument");
        if (!llvm::is_contained(args, v)) {
          args.push_back(v);
          types.push_back(v.getType());
        }
      }
      OpBuilder b(ctx.get());
      b.setInsertionPointToEnd(sub->getBody());
      std::string name = job.function + "_part" + std::to_string(part++);
      auto f = func::FuncOp::create(
          b, loc, name, b.getFunctionType(types, op.getResultTypes()));
      Block *entry = f.addEntryBlock();
      b.setInsertionPointToStart(entry);
      IRMapping map;
      for (auto [a, ba] : llvm::zip(args, entry->getArguments()))
        map.map(a, ba);
      for (Value v : op.getOperands())
        if (auto c = v.getDefiningOp<arith::ConstantOp>())
          if (!map.contains(v))
            map.map(v, b.clone(*c)->getResult(0));
      Operation *cl = b.clone(op, map);
      func::ReturnOp::create(b, loc, cl->getResults());
      Job subJob;
      subJob.options = job.options;
      subJob.options.function = name;
      subJob.function = name;
      subJob.module = *sub;
      subJob.key = job.key;
      auto k = build(subJob);
      if (!k)
        return k.takeError();
      GpuProgram::Step st;
      st.kernel = *k;
      unsigned q = where[args.front()].index;
      for (Value a : args)
        st.ins.push_back(where[a]);
      for (Value r : op.getResults())
        st.outs.push_back(resultRef(r, q));
      prog.steps.push_back(std::move(st));
      continue;
    }
    if (isa<arith::AddFOp, arith::SubFOp, arith::MulFOp>(op) &&
        isa<RankedTensorType>(op.getResult(0).getType())) {
      GpuProgram::Step st;
      for (Value v : op.getOperands()) {
        if (!where.count(v))
          return refuse("an operand of '" + op.getName().getStringRef() +
                        "' is not an argument or a computed tensor");
        st.ins.push_back(where[v]);
      }
      auto ptx = elementwisePtx(ctx.get(), &op, job.options.target);
      if (!ptx)
        return ptx.takeError();
      st.ptx = std::move(*ptx);
      st.ptx.push_back('\0');
      st.name = "elementwise";
      st.outs.push_back(resultRef(op.getResult(0), like[op.getOperand(0)]));
      prog.steps.push_back(std::move(st));
      continue;
    }
    return refuse("'" + op.getName().getStringRef() +
                  "' cannot run in a GPU program");
  }
  if (!typeErr.empty())
    return refuse(typeErr);
  // Every result must be written by a step (a returned constant is not).
  llvm::SmallVector<bool> written(ret.getNumOperands(), false);
  for (const GpuProgram::Step &st : prog.steps)
    for (GpuProgram::Ref r : st.outs)
      if (r.kind == GpuProgram::Ref::Output)
        written[r.index] = true;
  for (auto [j, w] : llvm::enumerate(written))
    if (!w)
      return refuse("result " + llvm::Twine(j) +
                    " is not computed by an attn op or an elementwise op");
  auto sig = cpuSignature(func);
  if (!sig)
    return sig.takeError();
  sig->target = job.options.target;
  return std::make_shared<GpuProgramImpl>(std::move(*sig), std::move(prog));
}

void Compiler::Impl::store(
    const Job &job, llvm::ArrayRef<std::pair<std::string, std::string>> files,
    llvm::json::Object extra) {
  // A cache that cannot be written only costs speed: errors are dropped.
  if (fs::create_directories(cacheDir))
    return;
  std::string tmp = cacheDir + "/" + job.key + ".tmp." +
                    std::to_string(::getpid()) + "." +
                    std::to_string(reinterpret_cast<uintptr_t>(this) & 0xffff);
  fs::remove_directories(tmp, true);
  if (fs::create_directory(tmp))
    return;
  llvm::json::Object fileIndex;
  for (const auto &[name, data] : files) {
    if (llvm::Error e = mlir::attn::writeFile(tmp + "/" + name, data)) {
      llvm::consumeError(std::move(e));
      fs::remove_directories(tmp, true);
      return;
    }
    fileIndex[name] = llvm::json::Object{{"size", int64_t(data.size())},
                                         {"sha256", sha256Hex(data)}};
  }
  llvm::json::Object entry{{"attnc", version()},
                           {"key", job.key},
                           {"target", job.options.target},
                           {"function", job.function},
                           {"files", std::move(fileIndex)}};
  for (auto &kv : extra)
    entry[kv.first] = std::move(kv.second);
  std::string text;
  llvm::raw_string_ostream os(text);
  os << llvm::formatv("{0:2}", llvm::json::Value(std::move(entry)));
  if (llvm::Error e = mlir::attn::writeFile(tmp + "/entry.json", text)) {
    llvm::consumeError(std::move(e));
    fs::remove_directories(tmp, true);
    return;
  }
  std::string dst = cacheDir + "/" + job.key;
  // Another process may have stored the same entry first: keep theirs.
  if (fs::rename(tmp, dst))
    fs::remove_directories(tmp, true);
  // The raw index: this exact text (and options) -> the entry's key.
  if (!job.rawKey.empty() && !fs::create_directories(cacheDir + "/raw")) {
    std::string idx = cacheDir + "/raw/" + job.rawKey;
    std::string tmpIdx = idx + ".tmp." + std::to_string(::getpid());
    if (llvm::Error e = mlir::attn::writeFile(tmpIdx, job.key))
      llvm::consumeError(std::move(e));
    else if (fs::rename(tmpIdx, idx))
      fs::remove(tmpIdx);
  }
}

/// The kernel of a cache entry's manifest when it is a linear-attention /
/// scan kernel (written by buildLinear), else null.
static const llvm::json::Object *linearKernelOf(const llvm::json::Value &m) {
  const llvm::json::Object *o = m.getAsObject();
  const llvm::json::Array *ks = o ? o->getArray("kernels") : nullptr;
  const llvm::json::Object *k =
      ks && ks->size() == 1 ? ks->front().getAsObject() : nullptr;
  return k && k->getString("kind") == "linear" ? k : nullptr;
}

/// The kernel of a linear entry.
static llvm::Expected<std::shared_ptr<Kernel>>
loadLinearEntry(const llvm::json::Object &entry, StringRef function,
                StringRef target, const llvm::json::Object &k,
                const llvm::StringMap<std::string> &contents, StringRef dir) {
  const llvm::json::Object *abi = k.getObject("abi");
  const llvm::json::Array *names = k.getArray("input_names");
  const llvm::json::Array *decays = k.getArray("const_decay");
  auto ptxFile = k.getString("ptx");
  if (k.getString("name") != function || !abi || !names || !decays || !ptxFile)
    return makeError("the manifest does not describe '" + function + "'");
  auto ptx = contents.find(*ptxFile);
  if (ptx == contents.end())
    return makeError("no PTX");
  llvm::SmallVector<std::string> inputNames;
  for (const llvm::json::Value &n : *names)
    inputNames.push_back(n.getAsString().value_or("").str());
  std::vector<float> constDecay;
  for (const llvm::json::Value &d : *decays)
    constDecay.push_back(float(d.getAsNumber().value_or(0.0)));
  KernelSignature sig;
  bool layout = false;
  InputChecks checks;
  if (llvm::Error e = parseCpuEntry(entry, function, sig, layout, checks))
    return std::move(e);
  sig.target = target.str();
  if (inputNames.size() != sig.inputs.size())
    return makeError("the manifest's input names do not match the signature");
  return std::make_shared<GpuLinearKernelImpl>(
      std::move(sig), llvm::json::Object(*abi), ptx->second,
      std::move(inputNames), std::move(constDecay), std::move(checks),
      dir.str());
}

llvm::Expected<std::shared_ptr<Kernel>>
Compiler::Impl::loadEntry(StringRef key, StringRef function, StringRef target,
                          StringRef dir) {
  auto entryBuf = llvm::MemoryBuffer::getFile(dir + "/entry.json");
  if (!entryBuf)
    return makeError("no entry.json");
  auto entry = llvm::json::parse((*entryBuf)->getBuffer());
  if (!entry)
    return entry.takeError();
  const llvm::json::Object *obj = entry->getAsObject();
  std::string fn =
      obj ? obj->getString("function").value_or("").str() : std::string();
  if (!obj || obj->getString("attnc") != version() ||
      obj->getString("key") != key || fn.empty() ||
      (!function.empty() && fn != function) ||
      obj->getString("target") != target)
    return makeError("stale entry");
  function = fn;
  const llvm::json::Object *files = obj->getObject("files");
  if (!files)
    return makeError("no file index");
  llvm::StringMap<std::string> contents;
  // Every file must have its recorded size; the ones the kernel is made of
  // (not the C header and launcher, kept for C programs) their hash too.
  for (const auto &kv : *files) {
    StringRef name = kv.first;
    const llvm::json::Object *f = kv.second.getAsObject();
    std::string path = (dir + "/" + name).str();
    uint64_t size = 0;
    if (!f || fs::file_size(path, size) ||
        f->getInteger("size") != int64_t(size))
      return makeError("corrupt file " + name);
    if (name.ends_with(".h") || name.ends_with("_launcher.c") ||
        name.ends_with(".ptxas.txt"))
      continue;
    auto buf = llvm::MemoryBuffer::getFile(path);
    if (!buf ||
        f->getString("sha256") != StringRef(sha256Hex((*buf)->getBuffer())))
      return makeError("corrupt file " + name);
    contents[name] = (*buf)->getBuffer().str();
  }
  if (target == "cpu") {
    auto it = contents.find("kernel.o");
    if (it == contents.end())
      return makeError("no kernel.o");
    KernelSignature sig;
    bool layout = false;
    InputChecks checks;
    if (llvm::Error e = parseCpuEntry(*obj, function, sig, layout, checks))
      return std::move(e);
    auto k = mlir::attn::CpuKernel::load(it->second, function);
    if (!k)
      return k.takeError();
    return std::make_shared<CpuKernelImpl>(std::move(sig), std::move(*k),
                                           layout, std::move(checks));
  }
  auto m = contents.find("manifest.json");
  if (m == contents.end())
    return makeError("no manifest.json");
  auto manifest = llvm::json::parse(m->second);
  if (!manifest)
    return makeError("manifest.json does not parse: " +
                     llvm::toString(manifest.takeError()));
  if (const llvm::json::Object *k = linearKernelOf(*manifest))
    return loadLinearEntry(*obj, function, target, *k, contents, dir);
  auto infos = parseManifest(*manifest);
  if (!infos)
    return infos.takeError();
  if (infos->size() != 1 || infos->front().name != function)
    return makeError("the manifest does not describe '" + function + "'");
  const mlir::attn::KernelInfo &info = infos->front();
  auto cubin = contents.find(info.name + ".cubin");
  auto ptx = contents.find(info.name + ".ptx");
  if (ptx == contents.end())
    return makeError("no PTX");
  KernelSignature sig = gpuSignature(info, target);
  InputChecks checks;
  if (llvm::Error e = parseChecks(obj->getObject("checks"), sig, checks))
    return std::move(e);
  return std::make_shared<GpuKernelImpl>(
      std::move(sig), info,
      cubin == contents.end() ? std::string() : cubin->second, ptx->second,
      dir.str(), std::move(checks));
}
