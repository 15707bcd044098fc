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
#include "attnc/Testing/RunInputs.h"
#include "attnc/Tools/SpecFile.h"
#include "attnc/Tools/ToolVersion.h"
#include "attnc/Transforms/Passes.h"
#include "attnc/attnc.h"

#include "mlir/AsmParser/AsmParser.h"
#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
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
using attnc::SpecFile;

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
using namespace attnc::testing;
/// Element types: the runtime's (attnc::DType).
using Kind = attnc::DType;

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
    hb.kind = *dtypeOf(rt.getElementType());
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
    Kind kind = *dtypeOf(rt.getElementType());
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
  hb.kind = *dtypeOf(type.getElementType());
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

/// What the backward checks read of a gradient op (attn.attention_grad or
/// attn.linear_attention_grad): the operand each gradient result belongs
/// to and its label, and the backward function's inputs after the
/// forward's arguments ("extras"): the first `firstCotangent` of them are
/// the forward's results (o, lse), the rest the cotangents of the forward's
/// results in order (dO, then dLSE or the final state's gradient).
struct GradSignature {
  SmallVector<Value> operands;
  SmallVector<std::string> labels;
  /// Per result: the op of a feature map where the function may have a
  /// kink (relu's maximumf, a select, ...) on the way to that gradient, or
  /// "": a finite-difference miss there is a warning.
  SmallVector<std::string> kinks;
  int numExtra = 0, firstCotangent = 0;
  /// The finite-difference tolerance: the f32 forward's rounding over
  /// every output of a linear op is about 1e-3 of the difference.
  double fdTolerance = 1e-3;

  /// The first op of `r` (may be null) that is not differentiable
  /// everywhere, or "".
  static std::string kinkIn(Region *r) {
    std::string name;
    if (r)
      r->walk([&](Operation *op) {
        if (name.empty() &&
            isa<arith::MaximumFOp, arith::MinimumFOp, arith::MaxNumFOp,
                arith::MinNumFOp, arith::SelectOp, math::AbsFOp,
                vector::ReductionOp>(op) &&
            !(isa<vector::ReductionOp>(op) &&
              cast<vector::ReductionOp>(op).getKind() ==
                  vector::CombiningKind::ADD))
          name = op->getName().getStringRef().str();
      });
    return name;
  }

  /// Adds each operand that is not null with its gradient's label (no
  /// kink).
  void addIfPresent(ArrayRef<std::pair<Value, const char *>> gradients) {
    for (auto [v, label] : gradients)
      if (v) {
        operands.push_back(v);
        labels.push_back(label);
        kinks.push_back("");
      }
  }

  static GradSignature of(Operation *grad) {
    GradSignature sig;
    sig.operands = {grad->getOperand(0), grad->getOperand(1),
                    grad->getOperand(2)};
    sig.labels = {"dq", "dk", "dv"};
    sig.kinks.assign(3, "");
    if (auto lin = dyn_cast<attn::LinearAttentionGradOp>(grad)) {
      sig.kinks[0] =
          kinkIn(lin.getFeatureMap().empty() ? nullptr : &lin.getFeatureMap());
      sig.kinks[1] =
          kinkIn(!lin.getKeyFeatureMap().empty() ? &lin.getKeyFeatureMap()
                 : lin.getFeatureMap().empty()   ? nullptr
                                                 : &lin.getFeatureMap());
      sig.fdTolerance = 2e-3;
      sig.addIfPresent({{lin.getDecay(), "ddecay"},
                        {lin.getInitialState(), "dinitial_state"}});
      sig.numExtra = lin.getDFinalState() ? 2 : 1;
      return sig;
    }
    if (auto delta = dyn_cast<attn::DeltaRuleGradOp>(grad)) {
      // Measured misses 3e-7 to 1.8e-4 (N = 70, 197); a 0.1% error planted in
      // one term of dk misses by 6.5e-4.
      sig.fdTolerance = 5e-4;
      sig.addIfPresent({{delta.getBeta(), "dbeta"},
                        {delta.getDecay(), "ddecay"},
                        {delta.getInitialState(), "dinitial_state"}});
      sig.numExtra = delta.getDFinalState() ? 2 : 1;
      return sig;
    }
    auto op = cast<attn::AttentionGradOp>(grad);
    for (auto [i, c] : llvm::enumerate(op.getGradCaptureIndices())) {
      sig.operands.push_back(op.getCaptures()[c]);
      sig.labels.push_back(fmt::format("dcapture{}", i));
      sig.kinks.push_back("");
    }
    sig.firstCotangent = 2;
    sig.numExtra = op.getDLse() ? 4 : 3;
    return sig;
  }
};

/// The loss the checks differentiate: the sum over the forward's results
/// of result * cotangent, in f64 (values that are not finite, such as the
/// lse of rows with no visible key, add nothing: they stay so under any
/// perturbation).
double lossOf(const Outputs &fwd, ArrayRef<const HostBuffer *> cotangents) {
  double l = 0;
  for (auto [r, cot] : llvm::enumerate(cotangents))
    for (int64_t i = 0; i < cot->numel(); ++i)
      if (std::isfinite(fwd.values[r][i]))
        l += fwd.values[r][i] * getFloat(*cot, i);
  return l;
}

/// An independent check of the derivative (both backward lowerings share
/// attn-differentiate's derivative regions): for every gradient whose
/// operand is an f32 argument, the directional derivative sum(grad * R)
/// along a random R against central differences of the reference forward
/// (extrapolated from steps eps and eps / 2). Returns false when one
/// disagrees.
bool checkFiniteDifferences(ModuleOp module, StringRef fwdName,
                            const GradSignature &sig,
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
  // The forward takes the function's arguments: the extras step aside.
  std::vector<HostBuffer> extra;
  for (int r = 0; r < sig.numExtra; ++r) {
    extra.insert(extra.begin(), std::move(inputs.back()));
    inputs.pop_back();
  }
  SmallVector<const HostBuffer *> cotangents;
  for (int r = sig.firstCotangent; r < sig.numExtra; ++r)
    cotangents.push_back(&extra[r]);
  auto fwdTypes = rankedResults(module.lookupSymbol<func::FuncOp>(fwdName));
  std::mt19937_64 rng(seed + 2);
  std::uniform_real_distribution<double> dist(-1.0, 1.0);
  const double eps = 1e-2;
  bool ok = true;
  for (size_t r = 0; r < want.values.size(); ++r) {
    auto arg = dyn_cast<BlockArgument>(sig.operands[r]);
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
    // Central differences at eps and eps / 2, combined (Richardson) so
    // that the eps^2 term cancels: gates perturb cumulative sums, whose
    // second-order error alone would be near the tolerance.
    double loss[4];
    for (int side = 0; side < 4; ++side) {
      double step = (side & 1 ? -eps : eps) / (side < 2 ? 1 : 2);
      for (int64_t i = 0; i < x.numel(); ++i)
        setFloat(x, i, saved[i] + step * dir[i]);
      Outputs out;
      if (llvm::Error e =
              callCpuKernel(**kernel, inputs, fwdTypes, &out, nullptr)) {
        llvm::errs() << "attn-run: error: " << llvm::toString(std::move(e))
                     << "\n";
        return false;
      }
      loss[side] = lossOf(out, cotangents);
    }
    for (int64_t i = 0; i < x.numel(); ++i)
      setFloat(x, i, saved[i]);
    double fdWide = (loss[0] - loss[1]) / (2 * eps);
    double fdNarrow = (loss[2] - loss[3]) / eps;
    double fd = (4 * fdNarrow - fdWide) / 3;
    double err = std::abs(fd - directional) / std::max(1.0, std::abs(fd));
    bool pass = err <= sig.fdTolerance;
    // Across a kink central differences are not derivatives: a miss there
    // is reported, not failed.
    bool excused = !pass && !sig.kinks[r].empty();
    ok &= pass || excused;
    llvm::outs() << fmt::format("{} finite-difference {} directional={:.6e} "
                                "central_difference={:.6e} rel_err={:.2e}{}\n",
                                pass      ? "PASS"
                                : excused ? "WARN"
                                          : "FAIL",
                                sig.labels[r], directional, fd, err,
                                excused ? fmt::format(" (the feature map has a "
                                                      "kink: {})",
                                                      sig.kinks[r])
                                        : std::string());
  }
  for (HostBuffer &hb : extra)
    inputs.push_back(std::move(hb));
  return ok;
}

/// Prints a PASS or FAIL line per gradient: max |got - want|, max |want| and
/// their ratio, which must not exceed `limit` (nor be NaN); the largest
/// ratio goes to `worst`.
bool compareGradients(const Outputs &got, const Outputs &want,
                      const GradSignature &sig, double limit, double &worst) {
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
                                pass ? "PASS" : "FAIL", sig.labels[r], maxDiff,
                                maxRef, rel, nan ? " (not finite)" : "");
  }
  return ok;
}

/// Runs `<f>_forward` through the reference and appends the backward's
/// extra inputs to `inputs` (see GradSignature): the forward's results it
/// reads, then random cotangents shaped like the forward's results.
llvm::Error forwardInputs(ModuleOp module, StringRef fwdName,
                          std::vector<HostBuffer> &inputs,
                          const GradSignature &sig) {
  attn::CpuPipelineOptions refOpts;
  refOpts.reference = true;
  Outputs fwdOut;
  if (llvm::Error e =
          compileAndRun(module, fwdName, refOpts, inputs, fwdOut, nullptr))
    return e;
  SmallVector<RankedTensorType> fwdTypes =
      rankedResults(module.lookupSymbol<func::FuncOp>(fwdName));
  std::mt19937_64 rng(seed + 1);
  for (int r = 0; r < sig.numExtra; ++r) {
    bool isResult = r < sig.firstCotangent;
    int from = isResult ? r : r - sig.firstCotangent;
    HostBuffer hb;
    if (llvm::Error e = hostBufferOf(
            fwdTypes[from], fwdOut.shapes[from],
            isResult ? &fwdOut.values[r] : nullptr, rng,
            fmt::format("{}{}", isResult ? "result #" : "cotangent of result #",
                        from),
            hb))
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

/// Prints "attn-run: error: <msg>".
void error(const llvm::Twine &msg) {
  llvm::errs() << "attn-run: error: " << msg << "\n";
}

/// The gradient op of backward function `bwd`.
Operation *gradOpOf(func::FuncOp bwd) {
  Operation *grad = nullptr;
  bwd.walk([&](Operation *op) {
    if (isa<attn::AttentionGradOp, attn::LinearAttentionGradOp,
            attn::DeltaRuleGradOp>(op))
      grad = op;
  });
  return grad;
}

/// --backward: attn-differentiate makes `<f>_forward` and `<f>_backward`;
/// the forward runs through the reference, the backward through the
/// reference (f64) and through attn-tile (CPU: tiled, or chunked for
/// linear ops) or the GPU kernels (`target` not empty), on the same inputs
/// and random cotangents; each gradient is checked against central
/// differences of the forward (f32 specs) and compared with the
/// reference's.
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
  Operation *gradOp = gradOpOf(bwd);
  bool linear = isa<attn::LinearAttentionGradOp, attn::DeltaRuleGradOp>(gradOp);
  if (linear && !target.empty()) {
    error("backend 'cuda': linear attention, scans and the delta rule have "
          "no GPU backward yet (the CPU's runs without --backend)");
    return fail("no GPU backward");
  }
  // The CPU's tiles (a linear op's chunk is block_q); the GPU's come
  // through the JIT's options.
  if ((blockQ || blockKv) && target.empty())
    gradOp->setAttr("schedule",
                    parseAttribute(fmt::format("#attn.schedule<target = "
                                               "\"cpu\", block_q = {}, "
                                               "block_kv = {}, warps = 1, "
                                               "stages = 1, smem_bytes = 0>",
                                               blockQ ? int64_t(blockQ) : 32,
                                               blockKv ? int64_t(blockKv) : 32),
                                   module.getContext()));
  GradSignature sig = GradSignature::of(gradOp);
  if (llvm::Error e = forwardInputs(module, fwdName, inputs, sig)) {
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
  // Finite differences need the forward in f32.
  bool ok = !elem.isF32() ||
            checkFiniteDifferences(module, fwdName, sig, inputs, want);
  ok &= compareGradients(got, want, sig, limit, worst);
  llvm::outs() << fmt::format(
      "{}_backward: backend={} B={} Nq={} Nk={} {}_ms={:.2f} "
      "reference_ms={:.2f}\n",
      name, std::string(backend), int64_t(batch), int64_t(nq), int64_t(nk),
      target.empty() ? (linear ? "chunked" : "tiled") : "gpu", ms, refMs);
  if (!ok)
    return fail(fmt::format("backward max_rel_err={:.3e} above tolerance "
                            "{:.1e} (or a finite-difference check failed)",
                            worst, limit));
  llvm::outs() << fmt::format("PASS {} backward max_rel_err={:.3e}\n",
                              std::string(inputFile), worst);
  return 0;
}

/// Checks the flags that need no spec; the FAIL reason, or "" when fine.
std::string checkFlags() {
  if (backend != "cpu" && backend != "cuda") {
    error("backend '" + backend + "' is not available (supported: cpu, cuda)");
    return "unsupported backend";
  }
  if (batch <= 0 || nq <= 0 || nk < 0) {
    error("--batch, --nq and --nk must be positive");
    return "bad sizes";
  }
  if (tol.getNumOccurrences() && !(tol > 0)) {
    std::string given;
    llvm::raw_string_ostream(given) << double(tol);
    error("--tol must be positive, got " + given);
    return "bad flags";
  }
  if (repeat <= 0 || inputScale <= 0) {
    error("--repeat and --input-scale must be positive");
    return "bad flags";
  }
  auto badBlock = [](int64_t x) { return x < 0 || (x & (x - 1)) != 0; };
  if (badBlock(blockQ) || badBlock(blockKv)) {
    error("--block-q and --block-kv must be powers of two");
    return "bad tile sizes";
  }
  if (linearForm != "chunked" && linearForm != "recurrent") {
    error("--linear-form must be chunked or recurrent, got '" + linearForm +
          "'");
    return "bad linear form";
  }
  return "";
}

/// The GPU target to compile for: --gpu-target, else device 0's.
llvm::Expected<std::string> gpuTargetOfDevice() {
  if (llvm::Error e = attnc::cuda::useDevice(0))
    return std::move(e);
  if (!gpuTarget.empty())
    return std::string(gpuTarget);
  return attnc::cuda::currentTarget();
}

/// The function to run: --func, else the one public function.
FailureOr<func::FuncOp> chooseFunction(ModuleOp module, std::string &reason) {
  func::FuncOp func;
  for (auto f : module.getOps<func::FuncOp>()) {
    if (f.isExternal())
      continue;
    if (!funcName.empty() ? f.getName() == funcName : f.isPublic()) {
      if (func && funcName.empty()) {
        error("several public functions; choose one with --func");
        reason = "ambiguous function";
        return failure();
      }
      func = f;
    }
  }
  if (!func) {
    error("no function " + (funcName.empty() ? std::string("in the spec")
                                             : "'" + funcName + "'"));
    reason = "no function";
    return failure();
  }
  return func;
}

/// A spec that fixes the batch or a sequence length statically runs at
/// that size; a flag that asks for another size is an error rather than
/// silently ignored.
LogicalResult fixStatic(Value v, unsigned dim, cl::opt<int64_t> &opt,
                        StringRef flag, bool given) {
  auto t = dyn_cast<RankedTensorType>(v.getType());
  if (!t || t.getRank() != 4 || t.isDynamicDim(dim))
    return success();
  int64_t n = t.getDimSize(dim);
  if (n <= 0) {
    error("the spec fixes " + flag.drop_front(2) + " = " + llvm::Twine(n) +
          "; attn-run needs positive sizes");
    return failure();
  }
  if (given && opt != n) {
    error("the spec fixes " + flag.drop_front(2) + " = " + llvm::Twine(n) +
          " in its types, but " + flag + " " + llvm::Twine(int64_t(opt)) +
          " was given");
    return failure();
  }
  opt = n;
  return success();
}

/// The run's sizes from the flags and the spec's static sizes.
FailureOr<RunSizes> runSizes(const SpecRoles &roles) {
  // --nk 0 (the default) means "as --nq".
  bool nkGiven = nk != 0;
  // Packed sequences: --batch sequences of up to --nq queries and --nk keys
  // (the tensors' sizes are the packed totals).
  if (roles.cuQ) {
    if (!nkGiven)
      nk = nq;
    return RunSizes{batch, nq, nk};
  }
  if (failed(fixStatic(roles.q, 0, batch, "--batch",
                       batch.getNumOccurrences() > 0)) ||
      failed(fixStatic(roles.q, 2, nq, "--nq", nq.getNumOccurrences() > 0)))
    return failure();
  if (!nkGiven)
    nk = nq;
  if (!roles.pageSize && failed(fixStatic(roles.k, 2, nk, "--nk", nkGiven)))
    return failure();
  if (roles.pageSize && nk % roles.pageSize) {
    error("--nk " + llvm::Twine(int64_t(nk)) +
          " is not a multiple of the page size " + llvm::Twine(roles.pageSize));
    return failure();
  }
  if (roles.linear && nk != nq) {
    error("linear attention and scans need --nk equal to --nq");
    return failure();
  }
  return RunSizes{batch, nq, nk};
}

/// The spec's result types (ranked tensors of supported element types).
FailureOr<SmallVector<RankedTensorType>> resultTypesOf(func::FuncOp func,
                                                       std::string &reason) {
  SmallVector<RankedTensorType> types;
  for (Type t : func.getResultTypes()) {
    auto rt = dyn_cast<RankedTensorType>(t);
    if (!rt || !dtypeOf(rt.getElementType())) {
      std::string text;
      llvm::raw_string_ostream(text) << t;
      error("unsupported result type " + text);
      reason = "unsupported result type";
      return failure();
    }
    types.push_back(rt);
  }
  if (types.empty()) {
    error("the function returns nothing");
    reason = "no results";
    return failure();
  }
  return types;
}

/// The CPU kernels allocate their results themselves, where a refused
/// malloc cannot be reported: checks first that each result, and its
/// values as doubles from the kernel and the reference, can be allocated
/// (a probe: malloc does not touch the memory it returns).
llvm::Error probeResults(ArrayRef<RankedTensorType> types,
                         ArrayRef<int64_t> qShape) {
  for (auto [r, rt] : llvm::enumerate(types)) {
    std::vector<int64_t> shape = resultShape(rt, qShape);
    Kind kind = *dtypeOf(rt.getElementType());
    std::optional<int64_t> bytes = checkedBytes(
        checkedNumel(shape), attnc::dtypeSize(kind) + 2 * sizeof(double));
    void *probe = bytes ? std::malloc(size_t(*bytes)) : nullptr;
    std::free(probe);
    if (!probe)
      return allocationError(
          bytes, "result #" + llvm::Twine(r) + " and its checked values",
          fmt::format("{} {} elements, and 2 doubles per element",
                      shapeString(shape), attnc::dtypeName(kind).str()));
  }
  return llvm::Error::success();
}

/// How far `got` is from `want`: the largest relative error over the
/// results, and what is wrong beyond that ("" when nothing is).
struct Comparison {
  double worst = 0;
  int64_t emptyRows = 0;
  std::string why;
};

Comparison compareOutputs(const Outputs &got, const Outputs &want,
                          bool isLinear) {
  Comparison c;
  for (size_t r = 0; r < got.values.size(); ++r) {
    const auto &a = got.values[r], &w = want.values[r];
    double maxRef = 0, maxDiff = 0;
    for (size_t i = 0; i < a.size(); ++i) {
      if (std::isnan(a[i]) || std::isnan(w[i])) {
        c.why = "NaN in result #" + std::to_string(r);
        break;
      }
      if (std::isinf(a[i]) || std::isinf(w[i])) {
        if (a[i] != w[i] && c.why.empty())
          c.why = "infinity mismatch in result #" + std::to_string(r);
        continue;
      }
      maxRef = std::max(maxRef, std::abs(w[i]));
      maxDiff = std::max(maxDiff, std::abs(a[i] - w[i]));
    }
    c.worst = std::max(c.worst, maxRef > 0 ? maxDiff / maxRef : maxDiff);
  }
  // Convention: a row whose keys are all masked has o = 0 and lse = -inf.
  if (isLinear || got.values.size() != 2)
    return c;
  const auto &o = got.values[0], &lse = got.values[1];
  int64_t dv = got.shapes[0].back();
  for (size_t row = 0; row < lse.size(); ++row) {
    if (!std::isinf(lse[row]))
      continue;
    ++c.emptyRows;
    for (int64_t d = 0; d < dv; ++d)
      if (o[row * dv + d] != 0.0 && c.why.empty())
        c.why = "a fully masked row has a non-zero output";
  }
  return c;
}

/// Runs the kernel under test (the GPU's, or the CPU's tiled one `repeat`
/// times) into `got` with its times, and the reference into `want`.
/// Returns the FAIL reason, "" on success.
std::string runForward(ModuleOp module, func::FuncOp func,
                       std::vector<HostBuffer> &inputs,
                       ArrayRef<RankedTensorType> resultTypes, StringRef target,
                       Outputs &got, Outputs &want, std::vector<double> &times,
                       double &refMs) {
  if (!target.empty()) {
    std::vector<std::vector<int64_t>> shapes;
    for (RankedTensorType rt : resultTypes)
      shapes.push_back(resultShape(rt, inputs[0].shape));
    if (llvm::Error e = runOnGpu(module, func, target, inputs, resultTypes,
                                 shapes, got, times)) {
      error("backend 'cuda': " + llvm::toString(std::move(e)));
      return "cuda run failed";
    }
  }
  attn::CpuPipelineOptions tiledOpts, refOpts;
  tiledOpts.blockQ = blockQ;
  tiledOpts.blockKv = blockKv;
  tiledOpts.linearForm = linearForm;
  refOpts.reference = true;
  auto tiled = attn::CpuKernel::compile(module, func.getName(), tiledOpts);
  if (!tiled) {
    error(llvm::toString(tiled.takeError()));
    return "compilation failed";
  }
  auto ref = attn::CpuKernel::compile(module, func.getName(), refOpts);
  if (!ref) {
    error(llvm::toString(ref.takeError()));
    return "reference compilation failed";
  }
  for (int r = 0; target.empty() && r <= repeat; ++r) {
    // Run 0 keeps the outputs; runs 1..repeat are timed.
    double ms;
    if (auto e = callCpuKernel(**tiled, inputs, resultTypes,
                               r == 0 ? &got : nullptr, r ? &ms : nullptr)) {
      error(llvm::toString(std::move(e)));
      return "run failed";
    }
    if (r)
      times.push_back(ms);
  }
  std::sort(times.begin(), times.end());
  if (auto e = callCpuKernel(**ref, inputs, resultTypes, &want, &refMs)) {
    error(llvm::toString(std::move(e)));
    return "reference run failed";
  }
  return "";
}

/// Checks the forward of `func` on `inputs`: prints the summary line and
/// PASS or FAIL; the exit code.
int checkForward(ModuleOp module, func::FuncOp func, const SpecRoles &roles,
                 std::vector<HostBuffer> &inputs, StringRef target) {
  std::string reason;
  FailureOr<SmallVector<RankedTensorType>> resultTypes =
      resultTypesOf(func, reason);
  if (failed(resultTypes))
    return fail(reason);
  ArrayRef<int64_t> qShape = inputs[0].shape;
  if (auto qa = dyn_cast<BlockArgument>(roles.q);
      qa && qa.getOwner() == &func.getBody().front())
    qShape = inputs[qa.getArgNumber()].shape;
  if (llvm::Error e = probeResults(*resultTypes, qShape))
    return failAlloc(std::move(e));
  Outputs got, want;
  std::vector<double> times;
  double refMs = 0;
  reason = runForward(module, func, inputs, *resultTypes, target, got, want,
                      times, refMs);
  if (!reason.empty())
    return fail(reason);
  Comparison c = compareOutputs(got, want, roles.linear);
  Type elem = cast<RankedTensorType>(roles.q.getType()).getElementType();
  double limit = tol > 0         ? double(tol)
                 : elem.isBF16() ? 1e-2
                 : elem.isF16()  ? 5e-3
                                 : 1e-4;
  std::string sched = !target.empty() ? target.str()
                      : roles.linear  ? std::string(linearForm)
                                      : "tiled";
  std::string summary = fmt::format("{}: backend={} B={} Nq={} Nk={}",
                                    func.getName().str(), std::string(backend),
                                    int64_t(batch), int64_t(nq), int64_t(nk));
  if (!roles.linear)
    summary += fmt::format(" empty_rows={}", c.emptyRows);
  summary += fmt::format(" {}_ms={:.2f} reference_ms={:.2f} max_rel_err={:.3e}",
                         sched, times[times.size() / 2], refMs, c.worst);
  llvm::outs() << summary << "\n";
  if (!c.why.empty())
    return fail(c.why);
  if (!(c.worst <= limit))
    return fail(fmt::format("max_rel_err={:.3e} above tolerance {:.1e}",
                            c.worst, limit));
  llvm::outs() << fmt::format("PASS {} max_rel_err={:.3e}\n",
                              std::string(inputFile), c.worst);
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
  std::string reason = checkFlags();
  if (!reason.empty())
    return fail(reason);
  std::string target;
  if (backend == "cuda") {
    llvm::Expected<std::string> t = gpuTargetOfDevice();
    if (!t) {
      error("backend 'cuda': " + llvm::toString(t.takeError()));
      return fail("no CUDA device");
    }
    target = *t;
  }

  SpecFile spec(inputFile);
  OwningOpRef<ModuleOp> &module = spec.module;
  if (!module)
    return fail("spec does not parse");
  if (failed(attn::specFunctions(*module)))
    return fail("attn op outside a top-level function");
  FailureOr<func::FuncOp> func = chooseFunction(*module, reason);
  if (failed(func))
    return fail(reason);
  llvm::Expected<SpecRoles> roles = SpecRoles::of(*func);
  if (!roles) {
    error(llvm::toString(roles.takeError()));
    return fail("no attn op");
  }
  FailureOr<RunSizes> sizes = runSizes(*roles);
  if (failed(sizes))
    return fail("bad sizes");
  std::mt19937_64 rng(seed);
  llvm::Expected<std::vector<HostBuffer>> inputs =
      makeRunInputs(*func, *roles, *sizes, rng, inputScale);
  if (!inputs) {
    llvm::handleAllErrors(inputs.takeError(), [&](const RunInputError &e) {
      error(e.message);
      reason = e.reason;
    });
    return fail(reason);
  }
  if (backward)
    return runBackward(
        *module, *func, *inputs,
        cast<RankedTensorType>(roles->q.getType()).getElementType(), target);
  return checkForward(*module, *func, *roles, *inputs, target);
}
