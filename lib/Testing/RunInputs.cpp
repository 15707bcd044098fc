//===- RunInputs.cpp - seeded random inputs for a spec function -----------===//
//
// Part of attnc.
//
//===----------------------------------------------------------------------===//

#include "attnc/Testing/RunInputs.h"

#include "attnc/Dialect/Attn/Attn.h"
#include "attnc/Dialect/Attn/RunAttributes.h"

#include <algorithm>
#include <numeric>

using namespace mlir;
using namespace attnc;
using namespace attnc::testing;

char RunInputError::ID = 0;

namespace {
llvm::Error inputError(BlockArgument arg, const llvm::Twine &msg,
                       StringRef reason) {
  return llvm::make_error<RunInputError>(
      ("argument #" + llvm::Twine(arg.getArgNumber()) + msg).str(),
      reason.str());
}

/// The argument's `attn.run_init` text ("" without one).
StringRef runInitOf(BlockArgument arg) {
  auto func = cast<func::FuncOp>(arg.getOwner()->getParentOp());
  auto s = func.getArgAttrOfType<StringAttr>(arg.getArgNumber(),
                                             attn::kRunInitAttrName);
  return s ? s.getValue() : StringRef();
}

/// Fills a float buffer: uniform in [lo, hi) (log-gates of a decay default
/// to (-0.3, -0.01): decays between exp(-0.3) and exp(-0.01)), times
/// `scale`.
llvm::Error fillFloats(HostBuffer &hb, BlockArgument arg,
                       const attn::RunInit &init, bool isDecay, double scale,
                       std::mt19937_64 &rng) {
  double lo = isDecay ? -0.3 : -1, hi = isDecay ? -0.01 : 1;
  if (init.mode == attn::RunInit::Mode::Uniform) {
    lo = init.param(0, lo);
    hi = init.param(1, hi);
    if (isDecay && hi > 0)
      return inputError(arg,
                        ": attn.run_init '" + runInitOf(arg) +
                            "': a decay holds log-gates, which must be <= 0",
                        "bad attn.run_init");
  }
  std::uniform_real_distribution<double> dist(lo, hi);
  for (int64_t i = 0; i < hb.numel(); ++i)
    setFloat(hb, i, scale * dist(rng));
  return llvm::Error::success();
}

/// Fills an integer buffer in `mode` (not Default or Uniform).
llvm::Error fillInts(HostBuffer &hb, BlockArgument arg,
                     const attn::RunInit &init, attn::RunInit::Mode mode,
                     const RunSizes &sizes, const SpecRoles &roles,
                     std::mt19937_64 &rng) {
  using Mode = attn::RunInit::Mode;
  int64_t n = hb.numel();
  if (mode == Mode::CuSeqlens) {
    // Offsets of sequences of up to Nq (queries) or Nk (keys) rows: the
    // first sequence full, the second empty (keys: at least Nq with the
    // queries at the end, so that every sequence has Nq_b <= Nk_b).
    bool keys = Value(arg) == roles.cuK;
    int64_t hi = keys ? sizes.nk : sizes.nq;
    int64_t lo = keys && roles.queriesAtEnd ? std::min(sizes.nq, hi) : 0;
    std::uniform_int_distribution<int64_t> dist(lo, hi);
    int64_t at = 0;
    for (int64_t i = 0; i < n; ++i) {
      setInt(hb, i, at);
      at += i == 0 ? hi : i == 1 ? lo : dist(rng);
    }
  } else if (mode == Mode::KvLens) {
    // In [Nq (queries at the end) or 0, Nk]: the first sequence full, the
    // second at the lower end.
    int64_t lo = roles.queriesAtEnd ? sizes.nq : 0;
    std::uniform_int_distribution<int64_t> dist(lo, sizes.nk);
    for (int64_t i = 0; i < n; ++i)
      setInt(hb, i, i == 0 ? sizes.nk : i == 1 ? lo : dist(rng));
  } else if (mode == Mode::Permutation) {
    // 0 .. n - 1 in random order: a page table of shuffled pages.
    std::vector<int64_t> perm(static_cast<size_t>(n));
    std::iota(perm.begin(), perm.end(), int64_t(0));
    std::shuffle(perm.begin(), perm.end(), rng);
    for (int64_t i = 0; i < n; ++i)
      setInt(hb, i, perm[size_t(i)]);
  } else if (mode == Mode::Bits) {
    std::bernoulli_distribution dist(init.param(0, 0.5));
    for (int64_t i = 0; i < n; ++i)
      setInt(hb, i, dist(rng) ? 1 : 0);
  } else {
    std::uniform_int_distribution<int64_t> dist(int64_t(init.param(0, 0)),
                                                int64_t(init.param(1, 3)));
    HeapArray<int64_t> vals;
    if (llvm::Error e = allocateArray(vals, n,
                                      "the values of argument #" +
                                          llvm::Twine(arg.getArgNumber())))
      return llvm::make_error<RunInputError>(llvm::toString(std::move(e)),
                                             "allocation failed");
    for (auto &x : vals)
      x = dist(rng);
    if (mode == Mode::Sorted)
      std::sort(vals.begin(), vals.end());
    for (int64_t i = 0; i < n; ++i)
      setInt(hb, i, vals[i]);
  }
  return llvm::Error::success();
}
} // namespace

llvm::Expected<SpecRoles> SpecRoles::of(func::FuncOp func) {
  SpecRoles r;
  func.walk([&](Operation *op) {
    if (!r.op &&
        isa<attn::AttentionOp, attn::LinearOpInterface, attn::DeltaRuleOp>(op))
      r.op = op;
  });
  if (!r.op)
    return llvm::createStringError("the function has no attn operation");
  r.q = r.op->getOperand(0);
  r.k = r.op->getOperand(1);
  r.v = r.op->getOperand(2);
  if (!isa<attn::AttentionOp>(r.op)) { // linear ops and the delta rule
    r.linear = true;
    auto lin = dyn_cast<attn::LinearOpInterface>(r.op);
    r.decay = lin ? lin.getDecay() : cast<attn::DeltaRuleOp>(r.op).getDecay();
    return r;
  }
  auto attention = cast<attn::AttentionOp>(r.op);
  r.pageTable = attention.getPageTable();
  r.pageSize = attention.isPaged() ? attention.getPageSize() : 0;
  r.kvLens = attention.getKvLens();
  r.cuQ = attention.getCuSeqlensQ();
  r.cuK = attention.getCuSeqlensK();
  r.queriesAtEnd = attention.getQueriesAtEnd();
  return r;
}

/// The size of dynamic dim `d` of `arg` by its role.
static int64_t roleSize(BlockArgument arg, int64_t d, int64_t rank,
                        const SpecRoles &roles, const RunSizes &sizes) {
  Value v = arg;
  int64_t pages = roles.pagesPerSequence(sizes.nk);
  if (roles.cuQ && (v == roles.cuQ || v == roles.cuK))
    return sizes.batch + 1;
  if (roles.cuQ && (v == roles.q || v == roles.k || v == roles.v) && d != 1 &&
      d != 3)
    return d == 0 ? 1 : sizes.batch * (v == roles.q ? sizes.nq : sizes.nk);
  if (roles.pageSize && (v == roles.k || v == roles.v) && d == 0)
    return sizes.batch * pages;
  if (v == roles.pageTable)
    return d == 0 ? sizes.batch : pages;
  if (v == roles.kvLens || (d == 0 && rank >= 3))
    return sizes.batch;
  if (v == roles.k || v == roles.v)
    return sizes.nk;
  if (v == roles.q || roles.linear)
    return sizes.nq;
  return std::max(sizes.nq, sizes.nk);
}

std::vector<int64_t> attnc::testing::runShape(BlockArgument arg,
                                              const SpecRoles &roles,
                                              const RunSizes &sizes) {
  auto t = cast<RankedTensorType>(arg.getType());
  auto func = cast<func::FuncOp>(arg.getOwner()->getParentOp());
  auto dims = func.getArgAttrOfType<ArrayAttr>(arg.getArgNumber(),
                                               attn::kRunDimsAttrName);
  std::vector<int64_t> shape;
  for (int64_t d = 0; d < t.getRank(); ++d) {
    if (!t.isDynamicDim(d)) {
      shape.push_back(t.getDimSize(d));
      continue;
    }
    // The dialect verified attn.run_dims: one valid entry per dim.
    FailureOr<int64_t> size = failure();
    if (dims)
      if (FailureOr<attn::RunDim> rd =
              attn::parseRunDim(cast<StringAttr>(dims[d]).getValue());
          succeeded(rd))
        size = rd->resolve(sizes.batch, sizes.nq, sizes.nk);
    shape.push_back(
        succeeded(size) ? *size : roleSize(arg, d, t.getRank(), roles, sizes));
  }
  return shape;
}

llvm::Expected<std::vector<HostBuffer>>
attnc::testing::makeRunInputs(func::FuncOp func, const SpecRoles &roles,
                              const RunSizes &sizes, std::mt19937_64 &rng,
                              double inputScale) {
  using Mode = attn::RunInit::Mode;
  std::vector<HostBuffer> inputs;
  for (BlockArgument arg : func.getArguments()) {
    auto t = dyn_cast<RankedTensorType>(arg.getType());
    std::optional<DType> kind = t ? dtypeOf(t.getElementType()) : std::nullopt;
    if (!kind) {
      std::string type;
      llvm::raw_string_ostream(type) << arg.getType();
      return inputError(arg, " has unsupported type " + type,
                        "unsupported argument type");
    }
    HostBuffer hb;
    hb.kind = *kind;
    hb.shape = runShape(arg, roles, sizes);
    if (llvm::Error e = hb.allocate(
            "argument #" + llvm::Twine(arg.getArgNumber()), /*slack=*/64))
      return llvm::make_error<RunInputError>(llvm::toString(std::move(e)),
                                             "allocation failed");
    bool isFloat = isa<FloatType>(t.getElementType());
    std::string why;
    FailureOr<attn::RunInit> init =
        attn::parseRunInit(runInitOf(arg), isFloat, why);
    if (failed(init))
      return inputError(arg, ": " + why, "bad attn.run_init");
    Value v = arg;
    llvm::Error e = llvm::Error::success();
    if (isFloat) {
      double scale = (v == roles.q || v == roles.k) ? inputScale : 1.0;
      e = fillFloats(hb, arg, *init, v == roles.decay, scale, rng);
    } else {
      Mode mode = init->mode != Mode::Default        ? init->mode
                  : v == roles.pageTable             ? Mode::Permutation
                  : v == roles.kvLens                ? Mode::KvLens
                  : v == roles.cuQ || v == roles.cuK ? Mode::CuSeqlens
                  : hb.kind == DType::I1             ? Mode::Bits
                                                     : Mode::Sorted;
      e = fillInts(hb, arg, *init, mode, sizes, roles, rng);
    }
    if (e)
      return std::move(e);
    hb.makeDesc();
    inputs.push_back(std::move(hb));
  }
  return inputs;
}
