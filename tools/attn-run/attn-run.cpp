//===- attn-run.cpp - run a spec on random inputs against the reference ---===//
//
// Part of attnc. Parses a spec, draws seeded random inputs for the sizes
// given on the command line, runs the compiled (tiled) kernel and the
// reference lowering, and compares them. The last line is
//   PASS <spec> max_rel_err=<x>     (exit 0)   or   FAIL <spec> <why> (exit 1)
// max_rel_err is max|out - ref| / max|ref| over each output.
//
//===----------------------------------------------------------------------===//

#include "attnc/Dialect/Attn/Attn.h"
#include "attnc/Dialect/Attn/SpecFunctions.h"
#include "attnc/Target/CpuRunner.h"
#include "attnc/Target/Pipelines.h"
#include "attnc/Tools/ToolVersion.h"
#include "attnc/Transforms/Passes.h"
#include "attnc/attnc.h"

#include "mlir/AsmParser/AsmParser.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/Parser/Parser.h"
#include "mlir/Pass/PassManager.h"
#include "llvm/Support/CheckedArithmetic.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/SourceMgr.h"
#include "llvm/Support/raw_ostream.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <numeric>
#include <optional>
#include <random>

using namespace mlir;
namespace cl = llvm::cl;

// --help lists these (and --help, --version) only: LLVM's backend flags
// are hidden.
static cl::OptionCategory toolCategory("attn-run options");

static cl::opt<std::string> inputFile(cl::Positional, cl::desc("<spec.mlir>"),
                                      cl::Required, cl::cat(toolCategory));
static cl::opt<std::string> funcName("func",
                                     cl::desc("function to run (default: the "
                                              "only public function)"),
                                     cl::init(""), cl::cat(toolCategory));
static cl::opt<std::string>
    backend("backend",
            cl::desc("cpu, or cuda (the generated GPU kernel on device 0, "
                     "through libattnc's JIT; needs a GPU and bf16/f16 specs)"),
            cl::init("cpu"), cl::cat(toolCategory));
static cl::opt<std::string>
    gpuTarget("gpu-target",
              cl::desc("sm_80 or sm_90a (default: from the device)"),
              cl::init(""), cl::cat(toolCategory));
static cl::opt<int64_t> batch("batch", cl::desc("batch size"), cl::init(2),
                              cl::cat(toolCategory));
static cl::opt<int64_t> nq("nq", cl::desc("query sequence length"),
                           cl::init(197), cl::cat(toolCategory));
static cl::opt<int64_t> nk("nk", cl::desc("key sequence length (default nq)"),
                           cl::init(0), cl::cat(toolCategory));
static cl::opt<uint64_t> seed("seed", cl::desc("random seed"), cl::init(1),
                              cl::cat(toolCategory));
static cl::opt<double> inputScale("input-scale",
                                  cl::desc("scale of random q and k"),
                                  cl::init(1.0), cl::cat(toolCategory));
static cl::opt<double> tol("tol",
                           cl::desc("max relative error (default: 1e-4 for "
                                    "f32, 1e-2 for bf16, 5e-3 for f16)"),
                           cl::init(0.0), cl::cat(toolCategory));
static cl::opt<int64_t> blockQ("block-q", cl::desc("force block_q"),
                               cl::init(0), cl::cat(toolCategory));
static cl::opt<int64_t> blockKv("block-kv", cl::desc("force block_kv"),
                                cl::init(0), cl::cat(toolCategory));
static cl::opt<std::string>
    linearForm("linear-form",
               cl::desc("lowering of linear attention and scans: chunked "
                        "(chunk length = block_q) or recurrent"),
               cl::init("chunked"), cl::cat(toolCategory));
static cl::opt<bool>
    backward("backward",
             cl::desc("check the backward pass: dq, dk, dv and capture "
                      "gradients of the tiled kernel (attn-differentiate, "
                      "attn-tile) against the reference backward (f64)"),
             cl::init(false), cl::cat(toolCategory));
static cl::opt<int> repeat("repeat", cl::desc("timed runs (median reported)"),
                           cl::init(1), cl::cat(toolCategory));

namespace {
/// Element types: the runtime's (attnc::DType).
using Kind = attnc::DType;

/// Zero-filled heap memory whose allocation failure is reported instead of
/// ending the process (std::vector throws std::bad_alloc, which aborts a
/// build without exceptions). calloc refuses a size the system cannot back
/// without touching any memory.
template <typename T> class HeapArray {
public:
  /// Allocates `n` zeroed elements; false when the system refuses.
  bool allocate(size_t n) {
    ptr.reset(static_cast<T *>(std::calloc(std::max<size_t>(n, 1), sizeof(T))));
    count = ptr ? n : 0;
    return ptr != nullptr;
  }
  T *data() const { return ptr.get(); }
  size_t size() const { return count; }
  T &operator[](size_t i) const { return ptr.get()[i]; }
  T *begin() const { return ptr.get(); }
  T *end() const { return ptr.get() + count; }

private:
  struct Free {
    void operator()(T *p) const { std::free(p); }
  };
  std::unique_ptr<T, Free> ptr;
  size_t count = 0;
};

/// "1125899906842624 bytes (1.0 PiB)".
std::string describeBytes(uint64_t bytes) {
  static const char *units[] = {"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  std::string s = fmt::format("{} bytes", bytes);
  if (bytes < 1024)
    return s;
  double v = double(bytes) / 1024;
  unsigned u = 0;
  while (v >= 1024 && u + 1 < std::size(units)) {
    v /= 1024;
    ++u;
  }
  return s + fmt::format(" ({:.1f} {})", v, units[u]);
}

/// "2x4x300x64".
std::string shapeString(ArrayRef<int64_t> shape) {
  std::string s;
  llvm::raw_string_ostream os(s);
  llvm::interleave(shape, os, "x");
  return s;
}

/// `count` elements of `elemBytes` plus `slack` bytes, or nullopt past int64.
std::optional<int64_t> checkedBytes(std::optional<int64_t> count,
                                    int64_t elemBytes, int64_t slack = 0) {
  if (!count)
    return std::nullopt;
  std::optional<int64_t> b = llvm::checkedMul(*count, elemBytes);
  return b ? llvm::checkedAdd(*b, slack) : std::nullopt;
}

/// The number of elements of `shape`, or nullopt past int64.
std::optional<int64_t> checkedNumel(ArrayRef<int64_t> shape) {
  std::optional<int64_t> n = 1;
  for (int64_t d : shape)
    if (n)
      n = llvm::checkedMul(*n, d);
  return n;
}

/// The error for an allocation of `bytes` (nullopt: its size overflowed
/// int64) for `what`, whose size is `how` ("2x4x300x64 f32 elements").
llvm::Error allocationError(std::optional<int64_t> bytes,
                            const llvm::Twine &what, StringRef how) {
  if (!bytes)
    return llvm::createStringError("cannot allocate " + what + ": its size (" +
                                   how + ") overflows 64-bit byte counts");
  return llvm::createStringError("cannot allocate " +
                                 describeBytes(uint64_t(*bytes)) + " for " +
                                 what + " (" + how + ")");
}

/// Allocates `count` zeroed elements of `a` for `what`, or says why not.
template <typename T>
llvm::Error allocateArray(HeapArray<T> &a, int64_t count,
                          const llvm::Twine &what) {
  std::optional<int64_t> bytes = checkedBytes(count, sizeof(T));
  if (!bytes || !a.allocate(size_t(count)))
    return allocationError(
        bytes, what, fmt::format("{} elements of {} bytes", count, sizeof(T)));
  return llvm::Error::success();
}

struct HostBuffer {
  Kind kind;
  std::vector<int64_t> shape;
  HeapArray<uint8_t> bytes;
  int64_t count = 0;         // elements
  std::vector<int64_t> desc; // allocated, aligned, offset, sizes, strides
  void *descPtr = nullptr;

  int64_t numel() const { return count; }
  /// Allocates zeroed storage for `shape` (and `slack` bytes more) for
  /// `what`; an error names the size that overflowed or was refused.
  llvm::Error allocate(const llvm::Twine &what, int64_t slack = 0) {
    std::optional<int64_t> n = checkedNumel(shape);
    std::optional<int64_t> b = checkedBytes(n, attnc::dtypeSize(kind), slack);
    if (!b || !bytes.allocate(size_t(*b)))
      return allocationError(b, what,
                             fmt::format("{} {} elements", shapeString(shape),
                                         attnc::dtypeName(kind).str()));
    count = *n;
    return llvm::Error::success();
  }
  void makeDesc() {
    desc.assign(3 + 2 * shape.size(), 0);
    auto ptr = reinterpret_cast<int64_t>(bytes.data());
    desc[0] = desc[1] = ptr;
    int64_t stride = 1;
    for (int i = int(shape.size()) - 1; i >= 0; --i) {
      desc[3 + i] = shape[i];
      desc[3 + shape.size() + i] = stride;
      stride *= shape[i];
    }
    descPtr = desc.data();
  }
};

std::optional<Kind> kindOf(Type t) {
  if (t.isF32())
    return Kind::F32;
  if (t.isF16())
    return Kind::F16;
  if (t.isBF16())
    return Kind::BF16;
  if (t.isInteger(1))
    return Kind::I1;
  if (t.isInteger(8))
    return Kind::I8;
  if (t.isInteger(32))
    return Kind::I32;
  if (t.isInteger(64) || t.isIndex())
    return Kind::I64;
  return std::nullopt;
}

uint16_t toBF16(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  if (std::isnan(f))
    return 0x7fc0;
  x += 0x7fff + ((x >> 16) & 1);
  return uint16_t(x >> 16);
}
float fromBF16(uint16_t h) {
  uint32_t x = uint32_t(h) << 16;
  float f;
  std::memcpy(&f, &x, 4);
  return f;
}

void setFloat(HostBuffer &b, int64_t i, double v) {
  switch (b.kind) {
  case Kind::F32:
    reinterpret_cast<float *>(b.bytes.data())[i] = float(v);
    break;
  case Kind::F16:
    reinterpret_cast<_Float16 *>(b.bytes.data())[i] = _Float16(float(v));
    break;
  case Kind::BF16:
    reinterpret_cast<uint16_t *>(b.bytes.data())[i] = toBF16(float(v));
    break;
  default:
    break;
  }
}
double loadFloat(Kind kind, const uint8_t *data, int64_t i) {
  switch (kind) {
  case Kind::F32:
    return reinterpret_cast<const float *>(data)[i];
  case Kind::F16:
    return float(reinterpret_cast<const _Float16 *>(data)[i]);
  case Kind::BF16:
    return fromBF16(reinterpret_cast<const uint16_t *>(data)[i]);
  default:
    return 0;
  }
}
double getFloat(const HostBuffer &b, int64_t i) {
  return loadFloat(b.kind, b.bytes.data(), i);
}
void setInt(HostBuffer &b, int64_t i, int64_t v) {
  switch (b.kind) {
  case Kind::I1:
  case Kind::I8:
    reinterpret_cast<int8_t *>(b.bytes.data())[i] = int8_t(v);
    break;
  case Kind::I32:
    reinterpret_cast<int32_t *>(b.bytes.data())[i] = int32_t(v);
    break;
  case Kind::I64:
    reinterpret_cast<int64_t *>(b.bytes.data())[i] = v;
    break;
  default:
    break;
  }
}

/// Resolves a dimension spelled in `attn.run_dims`: b, nq, nk, n (max of nq
/// and nk), an integer, or one of those divided (rounding up) by an integer:
/// "nq/64".
FailureOr<int64_t> resolveDim(StringRef s, int64_t b, int64_t q, int64_t k) {
  auto [head, div] = s.split('/');
  int64_t v;
  if (head == "b")
    v = b;
  else if (head == "nq")
    v = q;
  else if (head == "nk")
    v = k;
  else if (head == "n")
    v = std::max(q, k);
  else if (head.getAsInteger(10, v))
    return failure();
  if (!div.empty()) {
    int64_t d;
    if (div.getAsInteger(10, d) || d <= 0)
      return failure();
    v = v / d + (v % d != 0); // (v + d - 1) / d without overflow
  }
  if (v <= 0)
    return failure();
  return v;
}

/// A result's shape: its static sizes; a dynamic dim 0 is q's batch, a
/// dynamic dim 2 q's sequence length (o [B, H, N, Dv], lse [B, Hq, Nq], a
/// final state [B, H, F, Dv]).
std::vector<int64_t> resultShape(RankedTensorType rt, ArrayRef<int64_t> q) {
  std::vector<int64_t> shape;
  for (auto [d, n] : llvm::enumerate(rt.getShape()))
    shape.push_back(!ShapedType::isDynamic(n) ? n
                    : d == 0 || q.size() < 3  ? q[0]
                                              : q[2]);
  return shape;
}

struct Outputs {
  std::vector<HeapArray<double>> values;
  std::vector<std::vector<int64_t>> shapes;
};

/// Compiles `func` for the GPU through libattnc, runs it on device copies of
/// `inputs` (`repeat` timed runs after one checked run) and reads the
/// outputs (of `resultTypes` and `shapes`) back.
llvm::Error runOnGpu(ModuleOp module, func::FuncOp func, StringRef target,
                     std::vector<HostBuffer> &inputs,
                     ArrayRef<RankedTensorType> resultTypes,
                     ArrayRef<std::vector<int64_t>> shapes, Outputs &got,
                     std::vector<double> &times) {
  std::string text;
  llvm::raw_string_ostream os(text);
  module.print(os);
  attnc::Compiler compiler;
  attnc::CompileOptions opts;
  opts.target = target.str();
  opts.function = func.getName().str();
  opts.blockQ = blockQ;
  opts.blockKv = blockKv;
  auto kernel = compiler.compile(text, opts);
  if (!kernel)
    return kernel.takeError();
  std::vector<void *> buffers;
  auto freeAll = [&] {
    for (void *p : buffers)
      llvm::consumeError(attnc::cuda::release(p));
  };
  auto devCopy = [&](const HostBuffer &hb) -> llvm::Expected<attnc::TensorRef> {
    auto p = attnc::cuda::allocate(hb.bytes.size());
    if (!p)
      return p.takeError();
    buffers.push_back(*p);
    if (llvm::Error e =
            attnc::cuda::copyToDevice(*p, hb.bytes.data(), hb.bytes.size()))
      return std::move(e);
    attnc::TensorRef t;
    t.data = *p;
    t.dtype = hb.kind;
    t.shape.assign(hb.shape.begin(), hb.shape.end());
    return t;
  };
  llvm::SmallVector<attnc::TensorRef> in, out;
  std::vector<HostBuffer> outHost;
  for (HostBuffer &hb : inputs) {
    auto t = devCopy(hb);
    if (!t) {
      freeAll();
      return t.takeError();
    }
    in.push_back(*t);
  }
  for (auto [r, rt] : llvm::enumerate(resultTypes)) {
    HostBuffer hb;
    hb.kind = *kindOf(rt.getElementType());
    hb.shape = shapes[r];
    if (llvm::Error e = hb.allocate("result #" + llvm::Twine(r))) {
      freeAll();
      return e;
    }
    auto t = devCopy(hb);
    if (!t) {
      freeAll();
      return t.takeError();
    }
    out.push_back(*t);
    outHost.push_back(std::move(hb));
  }
  llvm::Error err = llvm::Error::success();
  for (int r = 0; r <= repeat && !err; ++r) {
    auto t0 = std::chrono::steady_clock::now();
    err = (*kernel)->launch(in, out, nullptr);
    if (!err)
      err = attnc::cuda::synchronize();
    auto t1 = std::chrono::steady_clock::now();
    if (r > 0)
      times.push_back(
          std::chrono::duration<double, std::milli>(t1 - t0).count());
  }
  for (size_t i = 0; i < out.size() && !err; ++i) {
    err = attnc::cuda::copyToHost(outHost[i].bytes.data(), out[i].data,
                                  outHost[i].bytes.size());
    HeapArray<double> vals;
    if (!err)
      err = allocateArray(vals, outHost[i].numel(),
                          "the values of result #" + llvm::Twine(i));
    if (err)
      break;
    for (int64_t j = 0; j < outHost[i].numel(); ++j)
      vals[j] = getFloat(outHost[i], j);
    got.values.push_back(std::move(vals));
    got.shapes.push_back(outHost[i].shape);
  }
  freeAll();
  std::sort(times.begin(), times.end());
  return err;
}

/// Calls a CPU kernel on `inputs`; reads its results (of `resultTypes`)
/// into `out` when given and times the call into `ms`.
llvm::Error callCpuKernel(attn::CpuKernel &kernel,
                          std::vector<HostBuffer> &inputs,
                          ArrayRef<RankedTensorType> resultTypes, Outputs *out,
                          double *ms) {
  size_t resultWords = 0;
  for (auto rt : resultTypes)
    resultWords += 3 + 2 * rt.getRank();
  std::vector<int64_t> resultDesc(resultWords, 0);
  void *resultPtr = resultDesc.data();
  SmallVector<void *> args = {&resultPtr};
  for (HostBuffer &hb : inputs)
    args.push_back(&hb.descPtr);
  auto t0 = std::chrono::steady_clock::now();
  if (llvm::Error e = kernel.call(args))
    return e;
  auto t1 = std::chrono::steady_clock::now();
  if (ms)
    *ms = std::chrono::duration<double, std::milli>(t1 - t0).count();
  size_t off = 0;
  llvm::Error err = llvm::Error::success();
  for (auto rt : resultTypes) {
    int64_t rank = rt.getRank();
    auto *alloc = reinterpret_cast<void *>(resultDesc[off]);
    auto *aligned = reinterpret_cast<uint8_t *>(resultDesc[off + 1]);
    int64_t offset = resultDesc[off + 2];
    std::vector<int64_t> shape(resultDesc.begin() + off + 3,
                               resultDesc.begin() + off + 3 + rank);
    Kind kind = *kindOf(rt.getElementType());
    int64_t n = checkedNumel(shape).value_or(0);
    const uint8_t *data = aligned + offset * attnc::dtypeSize(kind);
    if (out && !err) {
      HeapArray<double> vals;
      err = allocateArray(
          vals, n, "the values of result #" + llvm::Twine(out->values.size()));
      for (int64_t i = 0; !err && i < n; ++i)
        vals[i] = loadFloat(kind, data, i);
      out->values.push_back(std::move(vals));
      out->shapes.push_back(shape);
    }
    std::free(alloc);
    off += 3 + 2 * rank;
  }
  return err;
}

int fail(StringRef why) {
  llvm::outs() << "FAIL " << inputFile << " " << why << "\n";
  return 1;
}

int failAlloc(llvm::Error e) {
  llvm::errs() << "attn-run: error: " << llvm::toString(std::move(e)) << "\n";
  return fail("allocation failed");
}

/// Result types of `f` (ranked tensors of supported element types).
SmallVector<RankedTensorType> rankedResults(func::FuncOp f) {
  SmallVector<RankedTensorType> types;
  for (Type t : f.getResultTypes())
    types.push_back(cast<RankedTensorType>(t));
  return types;
}

/// A host buffer of `type`'s element kind with `shape` and `values`.
llvm::Error hostBufferOf(RankedTensorType type, ArrayRef<int64_t> shape,
                         const HeapArray<double> *values, std::mt19937_64 &rng,
                         const llvm::Twine &what, HostBuffer &hb) {
  hb.kind = *kindOf(type.getElementType());
  hb.shape.assign(shape.begin(), shape.end());
  if (llvm::Error e = hb.allocate(what, /*slack=*/64))
    return e;
  std::uniform_real_distribution<double> dist(-1.0, 1.0);
  for (int64_t i = 0; i < hb.numel(); ++i)
    setFloat(hb, i, values ? (*values)[i] : dist(rng));
  hb.makeDesc();
  return llvm::Error::success();
}

/// Compiles and runs `name` of `module` with `options` on `inputs`.
llvm::Error compileAndRun(ModuleOp module, StringRef name,
                          const attn::CpuPipelineOptions &options,
                          std::vector<HostBuffer> &inputs, Outputs &out,
                          double *ms) {
  auto f = module.lookupSymbol<func::FuncOp>(name);
  auto kernel = attn::CpuKernel::compile(module, name, options);
  if (!kernel)
    return kernel.takeError();
  return callCpuKernel(**kernel, inputs, rankedResults(f), &out, ms);
}

/// The loss the checks differentiate: L = sum(o * dO) (+ sum(lse * dLSE)
/// with a dLSE), in f64.
double lossOf(const Outputs &fwd, const HostBuffer &dO,
              const HostBuffer *dLse) {
  double l = 0;
  for (int64_t i = 0; i < dO.numel(); ++i)
    l += fwd.values[0][i] * getFloat(dO, i);
  // Rows with no visible key keep lse = -inf under any perturbation: they
  // add nothing to the derivative.
  for (int64_t i = 0; dLse && i < dLse->numel(); ++i)
    if (std::isfinite(fwd.values[1][i]))
      l += fwd.values[1][i] * getFloat(*dLse, i);
  return l;
}

/// The name of gradient `r`: dq, dk, dv, then dcapture<i>.
std::string gradLabel(size_t r) {
  return r < 3 ? std::string(r == 0   ? "dq"
                             : r == 1 ? "dk"
                                      : "dv")
               : fmt::format("dcapture{}", r - 3);
}

/// An independent check of the derivative (both backward lowerings share
/// attn-differentiate's score_grad): for every gradient whose operand is an
/// f32 argument, the directional derivative sum(grad * R) along a random R
/// against the central difference (L(x + eps R) - L(x - eps R)) / 2 eps of
/// the reference forward. Returns false when one disagrees.
bool checkFiniteDifferences(ModuleOp module, StringRef fwdName,
                            attn::AttentionGradOp grad,
                            std::vector<HostBuffer> &inputs,
                            const Outputs &want) {
  attn::CpuPipelineOptions refOpts;
  refOpts.reference = true;
  auto kernel = attn::CpuKernel::compile(module, fwdName, refOpts);
  if (!kernel) {
    llvm::errs() << "attn-run: error: " << llvm::toString(kernel.takeError())
                 << "\n";
    return false;
  }
  // The forward takes the function's arguments: o, lse, dO (and dLSE) step
  // aside.
  std::vector<HostBuffer> extra;
  for (int r = 0, n = grad.getDLse() ? 4 : 3; r < n; ++r) {
    extra.insert(extra.begin(), std::move(inputs.back()));
    inputs.pop_back();
  }
  const HostBuffer &dO = extra[2];
  const HostBuffer *dLse = grad.getDLse() ? &extra[3] : nullptr;
  auto fwdTypes = rankedResults(module.lookupSymbol<func::FuncOp>(fwdName));
  SmallVector<unsigned> captures = grad.getGradCaptureIndices();
  std::mt19937_64 rng(seed + 2);
  std::uniform_real_distribution<double> dist(-1.0, 1.0);
  const double eps = 1e-2;
  bool ok = true;
  for (size_t r = 0; r < want.values.size(); ++r) {
    Value operand =
        r < 3 ? grad->getOperand(r) : grad.getCaptures()[captures[r - 3]];
    auto arg = dyn_cast<BlockArgument>(operand);
    if (!arg || arg.getArgNumber() >= inputs.size() ||
        inputs[arg.getArgNumber()].kind != Kind::F32)
      continue;
    HostBuffer &x = inputs[arg.getArgNumber()];
    std::vector<double> saved(x.numel()), dir(x.numel());
    double directional = 0;
    for (int64_t i = 0; i < x.numel(); ++i) {
      saved[i] = getFloat(x, i);
      dir[i] = dist(rng);
      directional += want.values[r][i] * dir[i];
    }
    double loss[2];
    for (int side = 0; side < 2; ++side) {
      for (int64_t i = 0; i < x.numel(); ++i)
        setFloat(x, i, saved[i] + (side ? -eps : eps) * dir[i]);
      Outputs out;
      if (llvm::Error e =
              callCpuKernel(**kernel, inputs, fwdTypes, &out, nullptr)) {
        llvm::errs() << "attn-run: error: " << llvm::toString(std::move(e))
                     << "\n";
        return false;
      }
      loss[side] = lossOf(out, dO, dLse);
    }
    for (int64_t i = 0; i < x.numel(); ++i)
      setFloat(x, i, saved[i]);
    double fd = (loss[0] - loss[1]) / (2 * eps);
    double err = std::abs(fd - directional) / std::max(1.0, std::abs(fd));
    bool pass = err <= 1e-3;
    ok &= pass;
    llvm::outs() << fmt::format("{} finite-difference {} directional={:.6e} "
                                "central_difference={:.6e} rel_err={:.2e}\n",
                                pass ? "PASS" : "FAIL", gradLabel(r),
                                directional, fd, err);
  }
  for (HostBuffer &hb : extra)
    inputs.push_back(std::move(hb));
  return ok;
}

/// Prints a PASS or FAIL line per gradient: max |got - want|, max |want| and
/// their ratio, which must not exceed `limit` (nor be NaN); the largest
/// ratio goes to `worst`.
bool compareGradients(const Outputs &got, const Outputs &want, double limit,
                      double &worst) {
  bool ok = true;
  for (size_t r = 0; r < got.values.size(); ++r) {
    const auto &a = got.values[r], &w = want.values[r];
    double maxRef = 0, maxDiff = 0;
    bool nan = false;
    for (size_t i = 0; i < a.size(); ++i) {
      nan |= !std::isfinite(a[i]) || !std::isfinite(w[i]);
      maxRef = std::max(maxRef, std::abs(w[i]));
      maxDiff = std::max(maxDiff, std::abs(a[i] - w[i]));
    }
    double rel = maxRef > 0 ? maxDiff / maxRef : maxDiff;
    bool pass = !nan && rel <= limit;
    ok &= pass;
    worst = std::max(worst, nan ? INFINITY : rel);
    llvm::outs() << fmt::format("{} {} max_abs_err={:.3e} max_abs_ref={:.3e} "
                                "max_rel_err={:.3e}{}\n",
                                pass ? "PASS" : "FAIL", gradLabel(r), maxDiff,
                                maxRef, rel, nan ? " (not finite)" : "");
  }
  return ok;
}

/// Runs `<f>_forward` through the reference and appends the backward's
/// extra inputs to `inputs`: o, lse, a random dO and, with `dLse`, a random
/// dLSE.
llvm::Error forwardInputs(ModuleOp module, StringRef fwdName,
                          std::vector<HostBuffer> &inputs, bool dLse) {
  attn::CpuPipelineOptions refOpts;
  refOpts.reference = true;
  Outputs fwdOut;
  if (llvm::Error e =
          compileAndRun(module, fwdName, refOpts, inputs, fwdOut, nullptr))
    return e;
  SmallVector<RankedTensorType> fwdTypes =
      rankedResults(module.lookupSymbol<func::FuncOp>(fwdName));
  std::mt19937_64 rng(seed + 1);
  const char *names[] = {"o", "lse", "dO", "dLSE"};
  for (int r = 0; r < (dLse ? 4 : 3); ++r) {
    HostBuffer hb;
    int from = r % 2; // dO is shaped like o, dLSE like lse
    if (llvm::Error e = hostBufferOf(fwdTypes[from], fwdOut.shapes[from],
                                     r >= 2 ? nullptr : &fwdOut.values[r], rng,
                                     names[r], hb))
      return e;
    inputs.push_back(std::move(hb));
  }
  return llvm::Error::success();
}

/// The backward `bwd` computed under test into `got` (the tiled CPU kernel,
/// or with `target` the GPU kernels through libattnc's JIT), shaped as the
/// reference's `want`; the (median) time into `ms`.
llvm::Error runBackwardUnderTest(ModuleOp module, func::FuncOp bwd,
                                 StringRef target,
                                 std::vector<HostBuffer> &inputs,
                                 const Outputs &want, Outputs &got,
                                 double &ms) {
  if (target.empty())
    return compileAndRun(module, bwd.getName(), attn::CpuPipelineOptions(),
                         inputs, got, &ms);
  std::vector<double> times;
  if (llvm::Error e = runOnGpu(module, bwd, target, inputs, rankedResults(bwd),
                               want.shapes, got, times))
    return e;
  ms = times[times.size() / 2];
  return llvm::Error::success();
}

/// --backward: attn-differentiate makes `<f>_forward` (o, lse) and
/// `<f>_backward`; the forward runs through the reference, the backward
/// through the reference (f64) and through attn-tile (CPU) or the GPU
/// kernels (`target` not empty), on the same inputs and a random dO; each
/// gradient is compared.
int runBackward(ModuleOp module, func::FuncOp func,
                std::vector<HostBuffer> &inputs, Type elem, StringRef target) {
  std::string name = func.getName().str();
  PassManager pm(module->getContext());
  attn::AttnDifferentiateOptions diffOpts;
  diffOpts.funcName = name;
  // A loss reading lse (dLSE) on the CPU; the GPU kernels take dO only.
  diffOpts.lseGrad = target.empty();
  pm.addPass(attn::createAttnDifferentiate(diffOpts));
  if (failed(pm.run(module)))
    return fail("attn-differentiate failed");
  std::string fwdName = name + "_forward", bwdName = name + "_backward";
  auto bwd = module.lookupSymbol<func::FuncOp>(bwdName);
  // The CPU's tiles; the GPU's come through the JIT's options.
  if ((blockQ || blockKv) && target.empty())
    bwd.walk([&](attn::AttentionGradOp op) {
      std::string text = fmt::format(
          "#attn.schedule<target = \"cpu\", block_q = {}, block_kv = {}, "
          "warps = 1, stages = 1, smem_bytes = 0>",
          blockQ ? int64_t(blockQ) : 32, blockKv ? int64_t(blockKv) : 32);
      op->setAttr("schedule", parseAttribute(text, module.getContext()));
    });
  bool dLse = false;
  bwd.walk([&](attn::AttentionGradOp op) { dLse = bool(op.getDLse()); });
  if (llvm::Error e = forwardInputs(module, fwdName, inputs, dLse)) {
    llvm::errs() << "attn-run: error: " << llvm::toString(std::move(e)) << "\n";
    return fail("forward failed");
  }
  attn::CpuPipelineOptions refOpts;
  refOpts.reference = true;
  Outputs got, want;
  double ms = 0, refMs = 0;
  if (llvm::Error e =
          compileAndRun(module, bwdName, refOpts, inputs, want, &refMs)) {
    llvm::errs() << "attn-run: error: reference backward: "
                 << llvm::toString(std::move(e)) << "\n";
    return fail("reference backward failed");
  }
  if (llvm::Error e =
          runBackwardUnderTest(module, bwd, target, inputs, want, got, ms)) {
    llvm::errs() << "attn-run: error: "
                 << (target.empty() ? "tiled backward" : "backend 'cuda'")
                 << ": " << llvm::toString(std::move(e)) << "\n";
    return fail(target.empty() ? "tiled backward failed"
                               : "cuda backward failed");
  }
  double limit = tol > 0         ? double(tol)
                 : elem.isBF16() ? 1e-2
                 : elem.isF16()  ? 5e-3
                                 : 1e-4;
  double worst = 0;
  attn::AttentionGradOp gradOp;
  bwd.walk([&](attn::AttentionGradOp op) { gradOp = op; });
  // Finite differences need the forward in f32.
  bool ok = !elem.isF32() ||
            checkFiniteDifferences(module, fwdName, gradOp, inputs, want);
  ok &= compareGradients(got, want, limit, worst);
  llvm::outs() << fmt::format(
      "{}_backward: backend={} B={} Nq={} Nk={} {}_ms={:.2f} "
      "reference_ms={:.2f}\n",
      name, std::string(backend), int64_t(batch), int64_t(nq), int64_t(nk),
      target.empty() ? "tiled" : "gpu", ms, refMs);
  if (!ok)
    return fail(fmt::format("backward max_rel_err={:.3e} above tolerance "
                            "{:.1e}",
                            worst, limit));
  llvm::outs() << fmt::format("PASS {} backward max_rel_err={:.3e}\n",
                              std::string(inputFile), worst);
  return 0;
}
} // namespace

int main(int argc, char **argv) {
  llvm::InitLLVM y(argc, argv);
  attnc::setToolVersionPrinter();
  cl::HideUnrelatedOptions(toolCategory);
  cl::ParseCommandLineOptions(
      argc, argv,
      "attn-run: run an attn spec on random inputs and check it against the "
      "reference lowering\n");
  if (backend != "cpu" && backend != "cuda") {
    llvm::errs() << "attn-run: error: backend '" << backend
                 << "' is not available (supported: cpu, cuda)\n";
    return fail("unsupported backend");
  }
  bool onGpu = backend == "cuda";
  std::string target = gpuTarget;
  if (onGpu) {
    llvm::Error e = attnc::cuda::useDevice(0);
    if (!e && target.empty()) {
      auto t = attnc::cuda::currentTarget();
      if (t)
        target = *t;
      else
        e = t.takeError();
    }
    if (e) {
      llvm::errs() << "attn-run: error: backend 'cuda': "
                   << llvm::toString(std::move(e)) << "\n";
      return fail("no CUDA device");
    }
  }
  // --nk 0 (the default) means "as --nq", resolved once the spec's static
  // sizes are known.
  bool nkGiven = nk != 0;
  if (batch <= 0 || nq <= 0 || nk < 0) {
    llvm::errs()
        << "attn-run: error: --batch, --nq and --nk must be positive\n";
    return fail("bad sizes");
  }
  if (tol.getNumOccurrences() && !(tol > 0)) {
    llvm::errs() << "attn-run: error: --tol must be positive, got " << tol
                 << "\n";
    return fail("bad flags");
  }
  if (repeat <= 0 || inputScale <= 0) {
    llvm::errs() << "attn-run: error: --repeat and --input-scale must be "
                    "positive\n";
    return fail("bad flags");
  }
  auto badBlock = [](int64_t x) { return x < 0 || (x & (x - 1)) != 0; };
  if (badBlock(blockQ) || badBlock(blockKv)) {
    llvm::errs() << "attn-run: error: --block-q and --block-kv must be powers "
                    "of two\n";
    return fail("bad tile sizes");
  }

  if (linearForm != "chunked" && linearForm != "recurrent") {
    llvm::errs() << "attn-run: error: --linear-form must be chunked or "
                    "recurrent, got '"
                 << linearForm << "'\n";
    return fail("bad linear form");
  }

  DialectRegistry registry;
  attn::registerAttncDialects(registry);
  MLIRContext ctx(registry);
  ctx.loadAllAvailableDialects();
  llvm::SourceMgr sm;
  SourceMgrDiagnosticHandler diag(sm, &ctx);
  OwningOpRef<ModuleOp> module =
      parseSourceFile<ModuleOp>(inputFile, sm, ParserConfig(&ctx));
  if (!module)
    return fail("spec does not parse");
  if (failed(attn::specFunctions(*module)))
    return fail("attn op outside a top-level function");

  func::FuncOp func;
  for (auto f : module->getOps<func::FuncOp>()) {
    if (f.isExternal())
      continue;
    if (!funcName.empty() ? f.getName() == funcName : f.isPublic()) {
      if (func && funcName.empty()) {
        llvm::errs() << "attn-run: error: several public functions; choose "
                        "one with --func\n";
        return fail("ambiguous function");
      }
      func = f;
    }
  }
  if (!func) {
    llvm::errs() << "attn-run: error: no function "
                 << (funcName.empty() ? std::string("in the spec")
                                      : "'" + funcName + "'")
                 << "\n";
    return fail("no function");
  }

  // Roles of the arguments, from the first attn op in the function.
  Operation *attnOp = nullptr;
  func.walk([&](Operation *op) {
    if (!attnOp &&
        isa<attn::AttentionOp, attn::LinearAttentionOp, attn::ScanOp>(op))
      attnOp = op;
  });
  if (!attnOp) {
    llvm::errs() << "attn-run: error: the function has no attn operation\n";
    return fail("no attn op");
  }
  bool isLinear = !isa<attn::AttentionOp>(attnOp);
  if (backward && isLinear) {
    llvm::errs() << "attn-run: error: --backward needs a function of one "
                    "attn.attention (linear attention and scans have no "
                    "backward yet)\n";
    return fail("no backward");
  }
  Value qArg = attnOp->getOperand(0), kArg = attnOp->getOperand(1),
        vArg = attnOp->getOperand(2);
  // A spec that fixes the batch or a sequence length statically runs at that
  // size (and reports it); a flag that asks for another size is an error
  // rather than silently ignored.
  auto fixStatic = [&](Value v, unsigned dim, cl::opt<int64_t> &opt,
                       StringRef flag, bool given) -> LogicalResult {
    auto t = dyn_cast<RankedTensorType>(v.getType());
    if (!t || t.getRank() != 4 || t.isDynamicDim(dim))
      return success();
    int64_t n = t.getDimSize(dim);
    if (n <= 0) {
      llvm::errs() << "attn-run: error: the spec fixes " << flag.drop_front(2)
                   << " = " << n << "; attn-run needs positive sizes\n";
      return failure();
    }
    if (given && opt != n) {
      llvm::errs() << "attn-run: error: the spec fixes " << flag.drop_front(2)
                   << " = " << n << " in its types, but " << flag << " "
                   << int64_t(opt) << " was given\n";
      return failure();
    }
    opt = n;
    return success();
  };
  if (failed(fixStatic(qArg, 0, batch, "--batch",
                       batch.getNumOccurrences() > 0)) ||
      failed(fixStatic(qArg, 2, nq, "--nq", nq.getNumOccurrences() > 0)))
    return fail("bad sizes");
  if (!nkGiven)
    nk = nq;
  // A paged cache: k and v are page pools [P, Hkv, S, D]; the table gets
  // ceil(Nk / S) pages per sequence, a shuffled permutation of the pool.
  auto paged = dyn_cast<attn::AttentionOp>(attnOp);
  if (paged && !paged.isPaged())
    paged = attn::AttentionOp();
  Value tableArg = paged ? paged.getPageTable() : Value();
  // Per-sequence key counts: random in [Nq (queries_at_end) or 0, Nk], the
  // first sequence full and the second at the lower end.
  auto attention = dyn_cast<attn::AttentionOp>(attnOp);
  Value lensArg = attention ? attention.getKvLens() : Value();
  int64_t pageSize = paged ? paged.getPageSize() : 0;
  if (!paged && failed(fixStatic(kArg, 2, nk, "--nk", nkGiven)))
    return fail("bad sizes");
  int64_t pagesPerSeq = paged ? (nk + pageSize - 1) / pageSize : 0;
  if (paged && pagesPerSeq * pageSize != nk) {
    llvm::errs() << "attn-run: error: --nk " << int64_t(nk)
                 << " is not a multiple of the page size " << pageSize << "\n";
    return fail("bad sizes");
  }
  if (isLinear && nk != nq) {
    llvm::errs() << "attn-run: error: linear attention and scans need "
                    "--nk equal to --nq\n";
    return fail("bad sizes");
  }
  Value decayArg;
  if (auto l = dyn_cast<attn::LinearAttentionOp>(attnOp))
    decayArg = l.getDecay();
  if (auto s = dyn_cast<attn::ScanOp>(attnOp))
    decayArg = s.getDecay();

  std::mt19937_64 rng(seed);
  std::vector<HostBuffer> inputs;
  for (BlockArgument arg : func.getArguments()) {
    auto t = dyn_cast<RankedTensorType>(arg.getType());
    std::optional<Kind> kind = t ? kindOf(t.getElementType()) : std::nullopt;
    if (!kind) {
      llvm::errs() << "attn-run: error: argument #" << arg.getArgNumber()
                   << " has unsupported type " << arg.getType() << "\n";
      return fail("unsupported argument type");
    }
    HostBuffer hb;
    hb.kind = *kind;
    auto dimsAttr =
        func.getArgAttrOfType<ArrayAttr>(arg.getArgNumber(), "attn.run_dims");
    for (int64_t d = 0; d < t.getRank(); ++d) {
      if (!t.isDynamicDim(d)) {
        hb.shape.push_back(t.getDimSize(d));
        continue;
      }
      int64_t size;
      if (dimsAttr) {
        auto s = dimsAttr.size() == size_t(t.getRank())
                     ? dyn_cast<StringAttr>(dimsAttr[d])
                     : StringAttr();
        FailureOr<int64_t> r = failure();
        if (s)
          r = resolveDim(s.getValue(), batch, nq, nk);
        if (failed(r)) {
          llvm::errs() << "attn-run: error: argument #" << arg.getArgNumber()
                       << ": attn.run_dims must list one of b, nq, nk, n, a "
                          "positive integer or X/<int> per dimension\n";
          return fail("bad attn.run_dims");
        }
        size = *r;
      } else if (paged && (arg == kArg || arg == vArg) && d == 0) {
        size = batch * pagesPerSeq;
      } else if (arg == tableArg) {
        size = d == 0 ? int64_t(batch) : pagesPerSeq;
      } else if (arg == lensArg) {
        size = batch;
      } else if (d == 0 && t.getRank() >= 3) {
        size = batch;
      } else if (arg == kArg || arg == vArg) {
        size = nk;
      } else if (arg == qArg || isLinear) {
        size = nq;
      } else {
        size = std::max<int64_t>(nq, nk);
      }
      hb.shape.push_back(size);
    }
    if (llvm::Error e =
            hb.allocate("argument #" + llvm::Twine(arg.getArgNumber()),
                        /*slack=*/64))
      return failAlloc(std::move(e));
    // Initial values.
    StringRef init;
    if (auto s = func.getArgAttrOfType<StringAttr>(arg.getArgNumber(),
                                                   "attn.run_init"))
      init = s.getValue();
    SmallVector<StringRef> parts;
    init.split(parts, ':');
    auto badInit = [&](const llvm::Twine &why) {
      llvm::errs() << "attn-run: error: argument #" << arg.getArgNumber()
                   << ": attn.run_init '" << init << "': " << why << "\n";
      return fail("bad attn.run_init");
    };
    // The numbers after the mode: all of them or none, each a number.
    SmallVector<double, 2> nums;
    for (StringRef p : llvm::drop_begin(parts)) {
      double v;
      if (p.getAsDouble(v) || !std::isfinite(v))
        return badInit("'" + p + "' is not a number");
      nums.push_back(v);
    }
    auto param = [&](unsigned i, double dflt) {
      return nums.size() > i - 1 ? nums[i - 1] : dflt;
    };
    bool isFloat =
        hb.kind == Kind::F32 || hb.kind == Kind::F16 || hb.kind == Kind::BF16;
    if (isFloat) {
      double lo = -1, hi = 1;
      if (arg == decayArg) {
        // Log-gates: decays in (exp(-0.3), exp(-0.01)).
        lo = -0.3;
        hi = -0.01;
      }
      if (parts[0] == "uniform") {
        if (!nums.empty() && nums.size() != 2)
          return badInit("expected uniform:lo:hi");
        lo = param(1, lo);
        hi = param(2, hi);
        if (!(lo < hi))
          return badInit("lo must be below hi");
        if (arg == decayArg && hi > 0)
          return badInit("a decay holds log-gates, which must be <= 0");
      } else if (!init.empty()) {
        llvm::errs() << "attn-run: error: unknown attn.run_init '" << init
                     << "' for a float argument (expected uniform:lo:hi)\n";
        return fail("bad attn.run_init");
      }
      double s = (arg == qArg || arg == kArg) ? double(inputScale) : 1.0;
      std::uniform_real_distribution<double> dist(lo, hi);
      for (int64_t i = 0; i < hb.numel(); ++i)
        setFloat(hb, i, s * dist(rng));
    } else {
      StringRef mode = !init.empty()         ? parts[0]
                       : arg == tableArg     ? "permutation"
                       : arg == lensArg      ? "kv_lens"
                       : hb.kind == Kind::I1 ? "bits"
                                             : "sorted";
      if (mode == "kv_lens") {
        if (!nums.empty())
          return badInit("kv_lens takes no numbers");
        int64_t lo = attention.getQueriesAtEnd() ? int64_t(nq) : 0;
        std::uniform_int_distribution<int64_t> dist(lo, nk);
        for (int64_t i = 0; i < hb.numel(); ++i)
          setInt(hb, i, i == 0 ? int64_t(nk) : i == 1 ? lo : dist(rng));
      } else if (mode == "permutation") {
        // 0 .. numel - 1 in random order: a page table of shuffled pages.
        if (!nums.empty())
          return badInit("permutation takes no numbers");
        std::vector<int64_t> perm(size_t(hb.numel()));
        std::iota(perm.begin(), perm.end(), int64_t(0));
        std::shuffle(perm.begin(), perm.end(), rng);
        for (int64_t i = 0; i < hb.numel(); ++i)
          setInt(hb, i, perm[size_t(i)]);
      } else if (mode == "bits") {
        if (nums.size() > 1 || !(param(1, 0.5) >= 0 && param(1, 0.5) <= 1))
          return badInit("expected bits:p with p in [0, 1]");
        std::bernoulli_distribution dist(param(1, 0.5));
        for (int64_t i = 0; i < hb.numel(); ++i)
          setInt(hb, i, dist(rng) ? 1 : 0);
      } else if (mode == "sorted" || mode == "randint") {
        if ((!nums.empty() && nums.size() != 2) || param(1, 0) > param(2, 3))
          return badInit("expected " + mode + ":lo:hi with lo <= hi");
        std::uniform_int_distribution<int64_t> dist(int64_t(param(1, 0)),
                                                    int64_t(param(2, 3)));
        HeapArray<int64_t> vals;
        if (llvm::Error e = allocateArray(vals, hb.numel(),
                                          "the values of argument #" +
                                              llvm::Twine(arg.getArgNumber())))
          return failAlloc(std::move(e));
        for (auto &x : vals)
          x = dist(rng);
        if (mode == "sorted")
          std::sort(vals.begin(), vals.end());
        for (int64_t i = 0; i < hb.numel(); ++i)
          setInt(hb, i, vals[i]);
      } else {
        llvm::errs() << "attn-run: error: unknown attn.run_init '" << init
                     << "' for an integer argument (expected bits:p, "
                        "randint:lo:hi, sorted:lo:hi, permutation or kv_lens)\n";
        return fail("bad attn.run_init");
      }
    }
    hb.makeDesc();
    inputs.push_back(std::move(hb));
  }

  if (backward)
    return runBackward(*module, func, inputs,
                       cast<RankedTensorType>(qArg.getType()).getElementType(),
                       onGpu ? StringRef(target) : StringRef());

  // Result layout: one descriptor per ranked result, packed.
  SmallVector<RankedTensorType> resultTypes;
  for (Type t : func.getResultTypes()) {
    auto rt = dyn_cast<RankedTensorType>(t);
    if (!rt || !kindOf(rt.getElementType())) {
      llvm::errs() << "attn-run: error: unsupported result type " << t << "\n";
      return fail("unsupported result type");
    }
    resultTypes.push_back(rt);
  }
  if (resultTypes.empty()) {
    llvm::errs() << "attn-run: error: the function returns nothing\n";
    return fail("no results");
  }
  // The CPU kernels allocate their results themselves, where a refused
  // malloc cannot be reported: check first that each result, and its values
  // as doubles from the kernel and the reference, can be allocated (a probe:
  // malloc does not touch the memory it returns).
  ArrayRef<int64_t> qShape = inputs[0].shape;
  if (auto qa = dyn_cast<BlockArgument>(qArg);
      qa && qa.getOwner() == &func.getBody().front())
    qShape = inputs[qa.getArgNumber()].shape;
  for (auto [r, rt] : llvm::enumerate(resultTypes)) {
    std::vector<int64_t> shape = resultShape(rt, qShape);
    Kind kind = *kindOf(rt.getElementType());
    std::optional<int64_t> bytes = checkedBytes(
        checkedNumel(shape), attnc::dtypeSize(kind) + 2 * sizeof(double));
    void *probe = bytes ? std::malloc(size_t(*bytes)) : nullptr;
    std::free(probe);
    if (!probe)
      return failAlloc(allocationError(
          bytes, "result #" + llvm::Twine(r) + " and its checked values",
          fmt::format("{} {} elements, and 2 doubles per element",
                      shapeString(shape), attnc::dtypeName(kind).str())));
  }

  auto run = [&](attn::CpuKernel &kernel, Outputs *out,
                 double *ms) -> llvm::Error {
    return callCpuKernel(kernel, inputs, resultTypes, out, ms);
  };

  attn::CpuPipelineOptions tiledOpts, refOpts;
  tiledOpts.blockQ = blockQ;
  tiledOpts.blockKv = blockKv;
  tiledOpts.linearForm = linearForm;
  refOpts.reference = true;
  Outputs got, want;
  double refMs = 0;
  std::vector<double> times;
  if (onGpu) {
    // Results: o [B, H, N, Dv], lse [B, Hq, Nq], a final state [B, H, F,
    // Dv]: a dynamic dim 0 is q's batch, a dynamic dim 2 q's sequence length.
    std::vector<std::vector<int64_t>> shapes;
    for (RankedTensorType rt : resultTypes)
      shapes.push_back(resultShape(rt, inputs[0].shape));
    if (llvm::Error e = runOnGpu(*module, func, target, inputs, resultTypes,
                                 shapes, got, times)) {
      llvm::errs() << "attn-run: error: backend 'cuda': "
                   << llvm::toString(std::move(e)) << "\n";
      return fail("cuda run failed");
    }
  }
  auto tiled = attn::CpuKernel::compile(*module, func.getName(), tiledOpts);
  if (!tiled) {
    llvm::errs() << "attn-run: error: " << llvm::toString(tiled.takeError())
                 << "\n";
    return fail("compilation failed");
  }
  auto ref = attn::CpuKernel::compile(*module, func.getName(), refOpts);
  if (!ref) {
    llvm::errs() << "attn-run: error: " << llvm::toString(ref.takeError())
                 << "\n";
    return fail("reference compilation failed");
  }
  if (!onGpu)
    if (auto e = run(**tiled, &got, nullptr)) {
      llvm::errs() << "attn-run: error: " << llvm::toString(std::move(e))
                   << "\n";
      return fail("run failed");
    }
  for (int r = 0; !onGpu && r < repeat; ++r) {
    double ms;
    if (auto e = run(**tiled, nullptr, &ms)) {
      llvm::errs() << "attn-run: error: " << llvm::toString(std::move(e))
                   << "\n";
      return fail("run failed");
    }
    times.push_back(ms);
  }
  std::sort(times.begin(), times.end());
  if (auto e = run(**ref, &want, &refMs)) {
    llvm::errs() << "attn-run: error: " << llvm::toString(std::move(e)) << "\n";
    return fail("reference run failed");
  }

  Type elem = cast<RankedTensorType>(qArg.getType()).getElementType();
  double limit = tol > 0         ? double(tol)
                 : elem.isBF16() ? 1e-2
                 : elem.isF16()  ? 5e-3
                                 : 1e-4;
  double worst = 0;
  std::string why;
  for (size_t r = 0; r < got.values.size(); ++r) {
    const auto &a = got.values[r], &w = want.values[r];
    double maxRef = 0, maxDiff = 0;
    for (size_t i = 0; i < a.size(); ++i) {
      if (std::isnan(a[i]) || std::isnan(w[i])) {
        why = "NaN in result #" + std::to_string(r);
        break;
      }
      if (std::isinf(a[i]) || std::isinf(w[i])) {
        if (a[i] != w[i] && why.empty())
          why = "infinity mismatch in result #" + std::to_string(r);
        continue;
      }
      maxRef = std::max(maxRef, std::abs(w[i]));
      maxDiff = std::max(maxDiff, std::abs(a[i] - w[i]));
    }
    double rel = maxRef > 0 ? maxDiff / maxRef : maxDiff;
    worst = std::max(worst, rel);
  }
  // Convention: a row whose keys are all masked has o = 0 and lse = -inf.
  int64_t emptyRows = 0;
  if (!isLinear && got.values.size() == 2) {
    const auto &o = got.values[0], &lse = got.values[1];
    int64_t dv = got.shapes[0].back();
    for (size_t row = 0; row < lse.size(); ++row) {
      if (!std::isinf(lse[row]))
        continue;
      ++emptyRows;
      for (int64_t d = 0; d < dv; ++d)
        if (o[row * dv + d] != 0.0 && why.empty())
          why = "a fully masked row has a non-zero output";
    }
  }

  std::string sched = onGpu      ? target
                      : isLinear ? std::string(linearForm)
                                 : "tiled";
  std::string summary = fmt::format("{}: backend={} B={} Nq={} Nk={}",
                                    func.getName().str(), std::string(backend),
                                    int64_t(batch), int64_t(nq), int64_t(nk));
  if (!isLinear)
    summary += fmt::format(" empty_rows={}", emptyRows);
  summary += fmt::format(" {}_ms={:.2f} reference_ms={:.2f} max_rel_err={:.3e}",
                         sched, times[times.size() / 2], refMs, worst);
  llvm::outs() << summary << "\n";
  if (!why.empty())
    return fail(why);
  if (!(worst <= limit))
    return fail(
        fmt::format("max_rel_err={:.3e} above tolerance {:.1e}", worst, limit));
  llvm::outs() << fmt::format("PASS {} max_rel_err={:.3e}\n",
                              std::string(inputFile), worst);
  return 0;
}
