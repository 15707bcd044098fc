//===- ThreadSafetyTest.cpp - 16 threads compiling and launching ----------===//
//
// Part of attnc (issue 13, "thread safety"). Uses only attnc/attnc.h and
// libattnc.so. 16 threads compile the same and different specs and launch
// the kernels concurrently, through one shared Compiler (its lock, memory
// cache and disk cache), through a Compiler per thread sharing one disk
// cache directory (several MLIR contexts and JITs built at once, atomic
// cache writes), and through a Compiler whose memory cache holds 2 kernels
// (evictions while other threads still hold and launch them). Every output
// is compared with a float64 reference; the launches of one kernel from
// several threads are concurrent too (CPU kernels keep no state between
// launches). Last, 16 compilers build sm_80 and sm_90a kernels at once (no
// GPU needed), each giving the same PTX, cubin and manifest as alone.
//
//===----------------------------------------------------------------------===//

#include "attnc/attnc.h"

#include "llvm/Support/FileSystem.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/raw_ostream.h"

#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <cmath>
#include <mutex>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

using namespace attnc;

namespace {

constexpr int kThreads = 16;
constexpr int64_t Hq = 4, Hkv = 2, D = 32;

/// Spec `n`: sliding-window causal GQA attention (window, scale) returning
/// o and lse, f32. Different n give different specs (kernels).
struct SpecParams {
  int64_t window;
  double scale; // 0: the default 1/sqrt(D)
};
const SpecParams kSpecs[] = {{1, 0}, {7, 0}, {33, 0.25}, {1000, 0},
                             {5, 0.5}, {64, 0.125}};
constexpr int kNumSpecs = sizeof(kSpecs) / sizeof(kSpecs[0]);

std::string specText(int n, const std::string &et = "f32") {
  const SpecParams &p = kSpecs[n];
  std::ostringstream s;
  auto t = [&](int64_t h) {
    return "tensor<?x" + std::to_string(h) + "x?x" + std::to_string(D) + "x" +
           et + ">";
  };
  std::string lse = "tensor<?x" + std::to_string(Hq) + "x?xf32>";
  s << "func.func @win" << n << "(%q: " << t(Hq) << ", %k: " << t(Hkv)
    << ", %v: " << t(Hkv) << ") -> (" << t(Hq) << ", " << lse << ") {\n"
    << "  %o, %lse = attn.attention %q, %k, %v";
  if (p.scale != 0)
    s << " scale = " << p.scale;
  s << "\n    mask(%b: index, %h: index, %i: index, %j: index) {\n"
    << "      %w = arith.constant " << p.window << " : index\n"
    << "      %c = arith.cmpi uge, %i, %j : index\n"
    << "      %d = arith.subi %i, %j : index\n"
    << "      %n = arith.cmpi slt, %d, %w : index\n"
    << "      %m = arith.andi %c, %n : i1\n"
    << "      attn.yield %m : i1\n"
    << "    } : " << t(Hq) << ", " << t(Hkv) << ", " << t(Hkv) << "\n"
    << "      -> " << t(Hq) << ", " << lse << "\n"
    << "  return %o, %lse : " << t(Hq) << ", " << lse << "\n}\n";
  return s.str();
}

struct Problem {
  int64_t B, Nq, Nk;
  std::vector<float> q, k, v, o, lse;
  Problem(int64_t B, int64_t Nq, int64_t Nk, unsigned seed) : B(B), Nq(Nq), Nk(Nk) {
    std::mt19937 rng(seed);
    std::uniform_real_distribution<float> u(-1, 1);
    q.resize(B * Hq * Nq * D);
    k.resize(B * Hkv * Nk * D);
    v.resize(B * Hkv * Nk * D);
    for (auto *t : {&q, &k, &v})
      for (float &x : *t)
        x = u(rng);
    o.assign(B * Hq * Nq * D, NAN);
    lse.assign(B * Hq * Nq, NAN);
  }
  static TensorRef ref(std::vector<float> &t, int64_t b, int64_t h, int64_t n,
                       int64_t d = -1) {
    TensorRef r;
    r.data = t.data();
    r.dtype = DType::F32;
    r.shape = {b, h, n};
    if (d >= 0)
      r.shape.push_back(d);
    return r;
  }
  llvm::Error launch(Kernel &kernel) {
    return kernel.launch(
        {ref(q, B, Hq, Nq, D), ref(k, B, Hkv, Nk, D), ref(v, B, Hkv, Nk, D)},
        {ref(o, B, Hq, Nq, D), ref(lse, B, Hq, Nq)});
  }
  /// "" when o and lse match the float64 reference of spec `n`, else what
  /// differs.
  std::string check(int n) const {
    const SpecParams &p = kSpecs[n];
    double scale = p.scale != 0 ? p.scale : 1.0 / std::sqrt(double(D));
    double oErr = 0, lErr = 0;
    std::vector<double> s(Nk);
    for (int64_t b = 0; b < B; ++b)
      for (int64_t h = 0; h < Hq; ++h) {
        int64_t hk = h / (Hq / Hkv);
        for (int64_t i = 0; i < Nq; ++i) {
          double m = -INFINITY;
          for (int64_t j = 0; j < Nk; ++j) {
            s[j] = -INFINITY;
            if (!(j <= i && i - j < p.window))
              continue;
            double dot = 0;
            for (int64_t d = 0; d < D; ++d)
              dot += double(q[((b * Hq + h) * Nq + i) * D + d]) *
                     k[((b * Hkv + hk) * Nk + j) * D + d];
            s[j] = dot * scale;
            m = std::max(m, s[j]);
          }
          const float *orow = &o[((b * Hq + h) * Nq + i) * D];
          float gotLse = lse[(b * Hq + h) * Nq + i];
          if (m == -INFINITY) { // no visible key: o = 0, lse = -inf
            for (int64_t d = 0; d < D; ++d)
              if (orow[d] != 0)
                return "masked row with o != 0";
            if (!(std::isinf(gotLse) && gotLse < 0))
              return "masked row with lse " + std::to_string(gotLse);
            continue;
          }
          double sum = 0;
          for (int64_t j = 0; j < Nk; ++j)
            sum += (s[j] = std::exp(s[j] - m));
          for (int64_t d = 0; d < D; ++d) {
            double want = 0;
            for (int64_t j = 0; j < Nk; ++j)
              if (s[j] != 0)
                want += s[j] / sum * v[((b * Hkv + hk) * Nk + j) * D + d];
            double e = std::abs(orow[d] - want);
            oErr = std::isnan(e) ? INFINITY : std::max(oErr, e);
          }
          double e = std::abs(gotLse - (m + std::log(sum)));
          lErr = std::isnan(e) ? INFINITY : std::max(lErr, e);
        }
      }
    if (oErr > 1e-4 || lErr > 1e-4)
      return "o error " + std::to_string(oErr) + ", lse error " +
             std::to_string(lErr);
    return "";
  }
};

/// A fresh cache directory per test.
struct TempDir {
  llvm::SmallString<128> path;
  TempDir() {
    EXPECT_FALSE(llvm::sys::fs::createUniqueDirectory("attnc-threads", path));
  }
  ~TempDir() { llvm::sys::fs::remove_directories(path); }
  std::string str() const { return path.str().str(); }
};

/// Failures collected from the threads (gtest assertions are reported on
/// the main thread).
struct Failures {
  std::mutex mu;
  std::vector<std::string> list;
  std::atomic<int> launches{0};
  void add(std::string s) {
    std::lock_guard<std::mutex> l(mu);
    list.push_back(std::move(s));
  }
};

/// One thread's work: `iters` times, compile spec (t + it) % kNumSpecs (or
/// spec 0 on even iterations, so all threads also share one kernel) with
/// `compiler(t)` and launch it at a random size.
void work(int t, int iters, llvm::function_ref<Compiler &(int)> compiler,
          Failures &f) {
  std::mt19937 rng(1000 + t);
  for (int it = 0; it < iters; ++it) {
    int n = it % 2 == 0 ? 0 : (t + it) % kNumSpecs;
    auto kernel = compiler(t).compile(specText(n), {});
    if (!kernel) {
      f.add("thread " + std::to_string(t) + ": compile " + std::to_string(n) +
            ": " + llvm::toString(kernel.takeError()));
      continue;
    }
    std::uniform_int_distribution<int64_t> len(1, 90), bat(1, 2);
    Problem r(bat(rng), len(rng), len(rng), rng());
    if (llvm::Error e = r.launch(**kernel)) {
      f.add("thread " + std::to_string(t) + ": launch: " +
            llvm::toString(std::move(e)));
      continue;
    }
    ++f.launches;
    std::string bad = r.check(n);
    if (!bad.empty())
      f.add("thread " + std::to_string(t) + " spec " + std::to_string(n) +
            " B=" + std::to_string(r.B) + " Nq=" + std::to_string(r.Nq) +
            " Nk=" + std::to_string(r.Nk) + ": " + bad);
  }
}

void runThreads(int iters, llvm::function_ref<Compiler &(int)> compiler,
                Failures &f) {
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&, t] { work(t, iters, compiler, f); });
  for (auto &th : threads)
    th.join();
}

std::string joined(const std::vector<std::string> &l) {
  std::string s;
  for (size_t i = 0; i < l.size() && i < 20; ++i)
    s += l[i] + "\n";
  return s;
}

TEST(Threads, SharedCompiler) {
  TempDir cache;
  Compiler::Options o;
  o.cacheDir = cache.str();
  Compiler compiler(o);
  Failures f;
  runThreads(8, [&](int) -> Compiler & { return compiler; }, f);
  EXPECT_TRUE(f.list.empty()) << joined(f.list);
  EXPECT_EQ(f.launches.load(), kThreads * 8);
  CacheStats s = compiler.stats();
  // Each spec compiled once; every other compile a memory hit.
  EXPECT_EQ(s.compiles, unsigned(kNumSpecs));
  EXPECT_EQ(s.compiles + s.memoryHits + s.diskHits, unsigned(kThreads * 8));
}

TEST(Threads, CompilerPerThreadSharedDiskCache) {
  TempDir cache;
  Compiler::Options o;
  o.cacheDir = cache.str();
  std::vector<std::unique_ptr<Compiler>> compilers;
  for (int t = 0; t < kThreads; ++t)
    compilers.push_back(std::make_unique<Compiler>(o));
  Failures f;
  runThreads(4, [&](int t) -> Compiler & { return *compilers[t]; }, f);
  EXPECT_TRUE(f.list.empty()) << joined(f.list);
  EXPECT_EQ(f.launches.load(), kThreads * 4);
  unsigned rebuilt = 0;
  for (auto &c : compilers)
    rebuilt += c->stats().rebuilt;
  // Concurrent writers of one entry never leave one that reads as corrupt.
  EXPECT_EQ(rebuilt, 0u);
  // A fresh compiler finds every spec on disk.
  Compiler fresh(o);
  for (int n = 0; n < kNumSpecs; ++n)
    ASSERT_TRUE(bool(fresh.compile(specText(n), {})));
  EXPECT_EQ(fresh.stats().diskHits, unsigned(kNumSpecs));
  EXPECT_EQ(fresh.stats().compiles, 0u);
}

TEST(Threads, MemoryCacheEvictionWhileInUse) {
  // Two kernels in the memory cache, six specs: kernels are evicted while
  // other threads hold and launch them.
  Compiler::Options o;
  o.diskCache = false;
  o.memoryCacheEntries = 2;
  Compiler compiler(o);
  Failures f;
  runThreads(6, [&](int) -> Compiler & { return compiler; }, f);
  EXPECT_TRUE(f.list.empty()) << joined(f.list);
  EXPECT_EQ(f.launches.load(), kThreads * 6);
}

TEST(Threads, ConcurrentLaunchesOfOneKernel) {
  // One kernel, 16 threads launching it at once with their own buffers.
  Compiler::Options o;
  o.diskCache = false;
  Compiler compiler(o);
  auto kernel = compiler.compile(specText(2), {});
  ASSERT_TRUE(bool(kernel)) << llvm::toString(kernel.takeError());
  std::shared_ptr<Kernel> k = *kernel;
  Failures f;
  std::atomic<bool> go{false};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&, t] {
      while (!go.load())
        std::this_thread::yield();
      for (int it = 0; it < 6; ++it) {
        Problem r(1 + (t + it) % 2, 1 + (t * 37 + it * 11) % 97,
              1 + (t * 13 + it * 29) % 89, t * 100 + it);
        if (llvm::Error e = r.launch(*k)) {
          f.add(llvm::toString(std::move(e)));
          continue;
        }
        ++f.launches;
        std::string bad = r.check(2);
        if (!bad.empty())
          f.add("thread " + std::to_string(t) + ": " + bad);
      }
    });
  go = true;
  for (auto &th : threads)
    th.join();
  EXPECT_TRUE(f.list.empty()) << joined(f.list);
  EXPECT_EQ(f.launches.load(), kThreads * 6);
}

/// The files of a GPU kernel's cache entry (name -> contents), logs left
/// out.
std::map<std::string, std::string> entryFiles(llvm::StringRef dir) {
  std::map<std::string, std::string> files;
  std::error_code ec;
  for (llvm::sys::fs::directory_iterator it(dir, ec), e; it != e && !ec;
       it.increment(ec)) {
    llvm::StringRef name = llvm::sys::path::filename(it->path());
    if (name.ends_with(".txt") || name == "entry.json")
      continue;
    auto buf = llvm::MemoryBuffer::getFile(it->path());
    files[name.str()] = buf ? (*buf)->getBuffer().str() : "<unreadable>";
  }
  return files;
}

TEST(Threads, GpuCompilesInParallel) {
  // 16 compilers (own disk caches) compiling bf16 specs for sm_80 and
  // sm_90a at once (NVPTX code generation and ptxas from many threads; no
  // GPU needed): each (spec, target) must give the same files as a compile
  // on its own.
  TempDir root;
  auto key = [](int t) { return std::make_pair(t % 2, t % 4 < 2 ? "sm_80" : "sm_90a"); };
  std::map<std::pair<int, std::string>, std::map<std::string, std::string>>
      serial;
  for (int t = 0; t < 4; ++t) {
    Compiler::Options o;
    o.cacheDir = root.str() + "/serial" + std::to_string(t);
    Compiler c(o);
    CompileOptions co;
    co.target = key(t).second;
    auto k = c.compile(specText(key(t).first, "bf16"), co);
    ASSERT_TRUE(bool(k)) << llvm::toString(k.takeError());
    serial[key(t)] = entryFiles((*k)->directory());
    ASSERT_FALSE(serial[key(t)].empty());
  }
  Failures f;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&, t] {
      Compiler::Options o;
      o.cacheDir = root.str() + "/t" + std::to_string(t);
      Compiler c(o);
      CompileOptions co;
      co.target = key(t).second;
      auto k = c.compile(specText(key(t).first, "bf16"), co);
      if (!k) {
        f.add("thread " + std::to_string(t) + ": " +
              llvm::toString(k.takeError()));
        return;
      }
      ++f.launches;
      if (entryFiles((*k)->directory()) != serial.at(key(t)))
        f.add("thread " + std::to_string(t) + ": " + co.target +
              " files differ from the serial compile");
    });
  for (auto &th : threads)
    th.join();
  EXPECT_TRUE(f.list.empty()) << joined(f.list);
  EXPECT_EQ(f.launches.load(), kThreads);
}

} // namespace
