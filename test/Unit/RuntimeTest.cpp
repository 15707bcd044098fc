//===- RuntimeTest.cpp - the C++ JIT API and its kernel cache -------------===//
//
// Uses only the public header attnc/attnc.h and libattnc.so.
//
//===----------------------------------------------------------------------===//

#include "attnc/attnc.h"

#include "llvm/Support/FileSystem.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/raw_ostream.h"

#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <random>
#include <sstream>

using namespace attnc;

namespace {

std::string readExample(const std::string &name) {
  std::ifstream f(std::string(ATTNC_SOURCE_DIR) + "/examples/" + name);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

std::string replaceAll(std::string s, const std::string &from,
                       const std::string &to) {
  for (size_t p = s.find(from); p != std::string::npos;
       p = s.find(from, p + to.size()))
    s.replace(p, from.size(), to);
  return s;
}

/// A fresh cache directory per test.
struct TempDir {
  llvm::SmallString<128> path;
  TempDir() {
    EXPECT_FALSE(llvm::sys::fs::createUniqueDirectory("attnc-cache", path));
  }
  ~TempDir() { llvm::sys::fs::remove_directories(path); }
  std::string str() const { return path.str().str(); }
};

/// The only entry directory of a cache (besides the raw-text index).
std::string onlyEntry(const std::string &cache) {
  std::string found;
  std::error_code ec;
  for (llvm::sys::fs::directory_iterator it(cache, ec), e; it != e && !ec;
       it.increment(ec))
    if (llvm::sys::path::filename(it->path()) != "raw")
      found = it->path();
  return found;
}

struct Problem {
  int64_t B = 2, H = 4, N = 100, D = 64;
  std::vector<float> q, k, v;
  explicit Problem(int64_t n = 100) : N(n) {
    std::mt19937 rng(7);
    std::uniform_real_distribution<float> u(-1, 1);
    for (auto *t : {&q, &k, &v}) {
      t->resize(B * H * N * D);
      for (float &x : *t)
        x = u(rng);
    }
  }
  TensorRef ref(std::vector<float> &t) {
    TensorRef r;
    r.data = t.data();
    r.dtype = DType::F32;
    r.shape = {B, H, N, D};
    return r;
  }
  /// Causal softmax attention in double precision.
  std::vector<double> causal() const {
    std::vector<double> o(B * H * N * D, 0.0);
    double scale = 1.0 / std::sqrt(double(D));
    for (int64_t bh = 0; bh < B * H; ++bh)
      for (int64_t i = 0; i < N; ++i) {
        std::vector<double> s(i + 1);
        double m = -1e300, sum = 0;
        for (int64_t j = 0; j <= i; ++j) {
          double dot = 0;
          for (int64_t d = 0; d < D; ++d)
            dot += double(q[(bh * N + i) * D + d]) * k[(bh * N + j) * D + d];
          s[j] = dot * scale;
          m = std::max(m, s[j]);
        }
        for (double &x : s)
          sum += (x = std::exp(x - m));
        for (int64_t j = 0; j <= i; ++j)
          for (int64_t d = 0; d < D; ++d)
            o[(bh * N + i) * D + d] += s[j] / sum * v[(bh * N + j) * D + d];
      }
    return o;
  }
};

double maxRelErr(const std::vector<float> &got,
                 const std::vector<double> &want) {
  double maxAbs = 0, err = 0;
  for (double w : want)
    maxAbs = std::max(maxAbs, std::abs(w));
  for (size_t i = 0; i < got.size(); ++i)
    err = std::max(err, std::abs(got[i] - want[i]));
  return err / std::max(maxAbs, 1e-30);
}

/// Compiles causal.mlir with `compiler` and checks one launch.
void expectCausalWorks(Compiler &compiler) {
  CompileOptions opts;
  auto kernel = compiler.compile(readExample("causal.mlir"), opts);
  ASSERT_TRUE(bool(kernel)) << llvm::toString(kernel.takeError());
  Problem p;
  std::vector<float> o(p.q.size(), NAN);
  TensorRef oRef = p.ref(o);
  llvm::Error e =
      (*kernel)->launch({p.ref(p.q), p.ref(p.k), p.ref(p.v)}, {oRef});
  ASSERT_FALSE(bool(e)) << llvm::toString(std::move(e));
  EXPECT_LT(maxRelErr(o, p.causal()), 1e-4);
}

TEST(Runtime, CpuKernelMatchesReference) {
  TempDir cache;
  Compiler::Options o;
  o.cacheDir = cache.str();
  Compiler compiler(o);
  expectCausalWorks(compiler);
  EXPECT_EQ(compiler.stats().compiles, 1u);
  const KernelSignature &sig =
      (*compiler.compile(readExample("causal.mlir"), {}))->signature();
  EXPECT_EQ(sig.name, "causal");
  ASSERT_EQ(sig.inputs.size(), 3u);
  EXPECT_EQ(sig.inputs[0].shape,
            (llvm::SmallVector<int64_t, 4>{-1, 4, -1, 64}));
  EXPECT_EQ(compiler.stats().memoryHits, 1u);
}

TEST(Runtime, StridedOutput) {
  // o written into a [B, N, H, D] buffer through strides.
  Compiler::Options co;
  co.diskCache = false;
  Compiler compiler(co);
  auto kernel = compiler.compile(readExample("causal.mlir"), {});
  ASSERT_TRUE(bool(kernel)) << llvm::toString(kernel.takeError());
  Problem p;
  std::vector<float> o(p.q.size(), NAN);
  TensorRef oRef = p.ref(o);
  oRef.strides = {p.N * p.H * p.D, p.D, p.H * p.D, 1};
  llvm::Error e =
      (*kernel)->launch({p.ref(p.q), p.ref(p.k), p.ref(p.v)}, {oRef});
  ASSERT_FALSE(bool(e)) << llvm::toString(std::move(e));
  std::vector<double> want = p.causal();
  std::vector<float> got(o.size());
  for (int64_t b = 0; b < p.B; ++b)
    for (int64_t h = 0; h < p.H; ++h)
      for (int64_t i = 0; i < p.N; ++i)
        for (int64_t d = 0; d < p.D; ++d)
          got[((b * p.H + h) * p.N + i) * p.D + d] =
              o[((b * p.N + i) * p.H + h) * p.D + d];
  EXPECT_LT(maxRelErr(got, want), 1e-4);
}

TEST(Runtime, DiskCacheHitAndCanonicalKey) {
  TempDir cache;
  Compiler::Options o;
  o.cacheDir = cache.str();
  {
    Compiler first(o);
    expectCausalWorks(first);
  }
  // Another compiler (another process, in effect) finds the entry, also for
  // the same spec spelled differently.
  Compiler second(o);
  std::string respelled =
      "// a comment\n" +
      replaceAll(replaceAll(readExample("causal.mlir"), "%q", "%query"), "  ",
                 "   ");
  auto k = second.compile(respelled, {});
  ASSERT_TRUE(bool(k)) << llvm::toString(k.takeError());
  EXPECT_EQ(second.stats().diskHits, 1u);
  EXPECT_EQ(second.stats().compiles, 0u);
  expectCausalWorks(second);
  EXPECT_EQ(second.stats().memoryHits, 1u);
  // Tile overrides are part of the key.
  CompileOptions tiles;
  tiles.blockQ = 16;
  tiles.blockKv = 32;
  ASSERT_TRUE(bool(second.compile(readExample("causal.mlir"), tiles)));
  EXPECT_EQ(second.stats().compiles, 1u);
}

TEST(Runtime, CorruptAndStaleEntriesAreRebuilt) {
  TempDir cache;
  Compiler::Options o;
  o.cacheDir = cache.str();
  {
    Compiler first(o);
    expectCausalWorks(first);
  }
  std::string entry = onlyEntry(cache.str());
  ASSERT_FALSE(entry.empty());
  {
    // Flip bytes in the object code.
    std::fstream f(entry + "/kernel.o",
                   std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(64);
    f.write("garbage!", 8);
  }
  {
    Compiler second(o);
    expectCausalWorks(second);
    EXPECT_EQ(second.stats().rebuilt, 1u);
    EXPECT_EQ(second.stats().compiles, 1u);
  }
  {
    // An entry written by another compiler version.
    std::string path = onlyEntry(cache.str()) + "/entry.json";
    auto buf = llvm::MemoryBuffer::getFile(path);
    ASSERT_TRUE(bool(buf));
    std::string text =
        replaceAll((*buf)->getBuffer().str(), "attnc 0.", "attnc 9.");
    std::ofstream(path) << text;
  }
  Compiler third(o);
  expectCausalWorks(third);
  EXPECT_EQ(third.stats().rebuilt, 1u);
  EXPECT_EQ(third.stats().diskHits, 0u);
}

std::string errorOf(llvm::Error e) { return llvm::toString(std::move(e)); }

TEST(Runtime, ClearErrors) {
  Compiler::Options co;
  co.diskCache = false;
  Compiler compiler(co);
  CompileOptions bad;
  bad.target = "sm_70";
  auto k = compiler.compile(readExample("causal.mlir"), bad);
  ASSERT_FALSE(bool(k));
  EXPECT_NE(errorOf(k.takeError()).find("unsupported target 'sm_70'"),
            std::string::npos);

  k = compiler.compile("func.func @f(", {});
  ASSERT_FALSE(bool(k));
  EXPECT_NE(errorOf(k.takeError()).find("<spec>:1:"), std::string::npos);

  k = compiler.compile(readExample("causal.mlir") + readExample("full.mlir"),
                       {});
  ASSERT_FALSE(bool(k));
  EXPECT_NE(errorOf(k.takeError()).find("name one in CompileOptions::function"),
            std::string::npos);
  CompileOptions pick;
  pick.function = "full";
  EXPECT_TRUE(bool(compiler.compile(
      readExample("causal.mlir") + readExample("full.mlir"), pick)));

  auto kernel = compiler.compile(readExample("causal.mlir"), {});
  ASSERT_TRUE(bool(kernel));
  Problem p;
  std::vector<float> o(p.q.size());
  TensorRef q = p.ref(p.q), kk = p.ref(p.k), v = p.ref(p.v), out = p.ref(o);
  EXPECT_NE(errorOf((*kernel)->launch({q, kk}, {out})).find("expected 3 input"),
            std::string::npos);
  TensorRef wrongHeads = q;
  wrongHeads.shape = {1, 8, 100, 64};
  EXPECT_NE(errorOf((*kernel)->launch({wrongHeads, kk, v}, {out}))
                .find("input 'q' must have shape [?, 4, ?, 64]"),
            std::string::npos);
  TensorRef wrongType = q;
  wrongType.dtype = DType::F16;
  EXPECT_NE(errorOf((*kernel)->launch({wrongType, kk, v}, {out}))
                .find("must be f32, got f16"),
            std::string::npos);
  TensorRef strided = q;
  strided.strides = {100 * 4 * 64, 64, 4 * 64, 1};
  EXPECT_NE(errorOf((*kernel)->launch({strided, kk, v}, {out}))
                .find("must be contiguous"),
            std::string::npos);
  TensorRef shortK = kk;
  shortK.shape = {2, 4, 99, 64};
  EXPECT_NE(errorOf((*kernel)->launch({q, shortK, v}, {out}))
                .find("k and v sequence lengths differ"),
            std::string::npos);
  TensorRef badOut = out;
  badOut.shape = {2, 4, 50, 64};
  EXPECT_NE(errorOf((*kernel)->launch({q, kk, v}, {badOut}))
                .find("o must have shape [2, 4, 100, 64]"),
            std::string::npos);
}

/// Sums of t [B, H, N, D] over N, per (b, h, d).
std::vector<double> sumOverN(const std::vector<float> &t, const Problem &p) {
  std::vector<double> s(p.B * p.H * p.D, 0.0);
  for (int64_t bh = 0; bh < p.B * p.H; ++bh)
    for (int64_t i = 0; i < p.N; ++i)
      for (int64_t d = 0; d < p.D; ++d)
        s[bh * p.D + d] += t[(bh * p.N + i) * p.D + d];
  return s;
}

TEST(Runtime, DifferentiatedFunctions) {
  // `<f>_forward` / `<f>_backward` of a spec that has only `<f>`: the JIT
  // runs attn-differentiate (what Python's flex_attention relies on).
  Compiler::Options co;
  co.diskCache = false;
  Compiler compiler(co);
  CompileOptions fwdOpts, bwdOpts;
  fwdOpts.function = "causal_forward";
  bwdOpts.function = "causal_backward";
  auto fwd = compiler.compile(readExample("causal.mlir"), fwdOpts);
  ASSERT_TRUE(bool(fwd)) << llvm::toString(fwd.takeError());
  auto bwd = compiler.compile(readExample("causal.mlir"), bwdOpts);
  ASSERT_TRUE(bool(bwd)) << llvm::toString(bwd.takeError());
  EXPECT_EQ((*fwd)->signature().outputs.size(), 2u);
  EXPECT_EQ((*bwd)->signature().inputs.size(), 6u);
  EXPECT_EQ((*bwd)->signature().outputs.size(), 3u);
  Problem p;
  std::vector<float> o(p.q.size()), lse(p.B * p.H * p.N), dO = p.k;
  TensorRef lseRef{lse.data(), DType::F32, {p.B, p.H, p.N}, {}};
  llvm::Error e = (*fwd)->launch({p.ref(p.q), p.ref(p.k), p.ref(p.v)},
                                 {p.ref(o), lseRef});
  ASSERT_FALSE(bool(e)) << llvm::toString(std::move(e));
  EXPECT_LT(maxRelErr(o, p.causal()), 1e-4);
  std::vector<float> dq(p.q.size()), dk(p.q.size()), dv(p.q.size());
  e = (*bwd)->launch(
      {p.ref(p.q), p.ref(p.k), p.ref(p.v), p.ref(o), lseRef, p.ref(dO)},
      {p.ref(dq), p.ref(dk), p.ref(dv)});
  ASSERT_FALSE(bool(e)) << llvm::toString(std::move(e));
  // Rows of P sum to 1: sum_j dv_j = sum_i dO_i. Rows of dS sum to 0:
  // sum_j dk_j = 0.
  std::vector<double> sumDv = sumOverN(dv, p), sumDo = sumOverN(dO, p),
                      sumDk = sumOverN(dk, p);
  for (size_t x = 0; x < sumDv.size(); ++x) {
    EXPECT_NEAR(sumDv[x], sumDo[x], 1e-3);
    EXPECT_NEAR(sumDk[x], 0.0, 1e-3);
  }
  // A second request is a memory hit; names that are not there stay errors.
  ASSERT_TRUE(bool(compiler.compile(readExample("causal.mlir"), bwdOpts)));
  EXPECT_EQ(compiler.stats().memoryHits, 1u);
  CompileOptions missing;
  missing.function = "nope_backward";
  auto k = compiler.compile(readExample("causal.mlir"), missing);
  ASSERT_FALSE(bool(k));
  EXPECT_NE(errorOf(k.takeError()).find("no function 'nope_backward'"),
            std::string::npos);
  // Linear attention's backward (the CPU reference lowering): with the
  // normalizer each row's weights sum to 1, so sum_s dv_s = sum_t dO_t.
  CompileOptions linear;
  linear.function = "linear_elu_backward";
  k = compiler.compile(readExample("linear_elu.mlir"), linear);
  ASSERT_TRUE(bool(k)) << errorOf(k.takeError());
  EXPECT_EQ((*k)->signature().inputs.size(), 4u);
  EXPECT_EQ((*k)->signature().outputs.size(), 3u);
  e = (*k)->launch({p.ref(p.q), p.ref(p.k), p.ref(p.v), p.ref(dO)},
                   {p.ref(dq), p.ref(dk), p.ref(dv)});
  ASSERT_FALSE(bool(e)) << llvm::toString(std::move(e));
  sumDv = sumOverN(dv, p);
  for (size_t x = 0; x < sumDv.size(); ++x)
    EXPECT_NEAR(sumDv[x], sumDo[x], 1e-3);
}

TEST(Runtime, GpuKernelWithoutDriverFailsCleanly) {
  TempDir cache;
  Compiler::Options co;
  co.cacheDir = cache.str();
  Compiler compiler(co);
  CompileOptions opts;
  opts.target = "sm_90a";
  std::string spec =
      replaceAll(readExample("document_mask.mlir"), "x64xf32>", "x64xbf16>");
  auto k = compiler.compile(spec, opts);
  ASSERT_TRUE(bool(k)) << llvm::toString(k.takeError());
  EXPECT_TRUE(llvm::sys::fs::exists((*k)->directory() + "/manifest.json"));
  const KernelSignature &sig = (*k)->signature();
  ASSERT_EQ(sig.inputs.size(), 4u);
  EXPECT_EQ(sig.inputs[3].dtype, DType::I32);
  // The disk entry loads in a second compiler.
  Compiler again(co);
  ASSERT_TRUE(bool(again.compile(spec, opts)));
  EXPECT_EQ(again.stats().diskHits, 1u);

  // f32 has no GPU lowering: a clear error.
  auto f32 = compiler.compile(readExample("causal.mlir"), opts);
  ASSERT_FALSE(bool(f32));
  EXPECT_NE(errorOf(f32.takeError()).find("bf16 or f16"), std::string::npos);

  std::string why;
  if (cudaAvailable(&why))
    GTEST_SKIP() << "a CUDA driver is present";
  // No driver, or a driver without a GPU: either way a reason.
  ASSERT_FALSE(why.empty());
  std::vector<uint16_t> buf(2 * 4 * 64 * 64, 0);
  std::vector<int32_t> docs(64, 0);
  TensorRef t;
  t.data = buf.data();
  t.dtype = DType::BF16;
  t.shape = {2, 4, 64, 64};
  TensorRef d;
  d.data = docs.data();
  d.dtype = DType::I32;
  d.shape = {64};
  llvm::Error e = (*k)->launch({t, t, t, d}, {t});
  ASSERT_TRUE(bool(e));
  EXPECT_NE(errorOf(std::move(e)).find(why.substr(0, 16)), std::string::npos);
}

} // namespace
