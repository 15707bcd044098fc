//===- compile_time.cpp - how long attnc takes to compile and to hit its cache
//
// For each example spec and target: a cold compile (fresh compiler, empty
// disk cache), a disk-cache hit (fresh compiler, warm disk cache), and
// memory-cache hits (same compiler; the same text, and the same spec spelled
// differently, which costs a parse and canonicalization). Medians of
// `--reps` runs. Writes JSON to stdout.
//
//   build/bench/attnc-compile-bench --reps 5 > bench/results/compile_time.json
//
//===----------------------------------------------------------------------===//

#include "attnc/attnc.h"

#include "llvm/Support/CommandLine.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/raw_ostream.h"

#include <algorithm>
#include <chrono>
#include <ctime>
#include <fstream>
#include <thread>

namespace cl = llvm::cl;

static cl::opt<int> reps("reps", cl::desc("repetitions (median)"), cl::init(5));
static cl::opt<std::string> examples("examples",
                                     cl::desc("the examples/ directory"),
                                     cl::init(ATTNC_SOURCE_DIR "/examples"));

using Clock = std::chrono::steady_clock;

static double ms(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

static double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

static std::string replaceAll(std::string s, const std::string &from,
                              const std::string &to) {
  for (size_t p = s.find(from); p != std::string::npos;
       p = s.find(from, p + to.size()))
    s.replace(p, from.size(), to);
  return s;
}

int main(int argc, char **argv) {
  cl::ParseCommandLineOptions(argc, argv, "attnc compile-time benchmark\n");
  const char *names[] = {"full",  "causal",  "sliding_window",  "document_mask",
                         "alibi", "softcap", "neighborhood_2d", "block_sparse"};
  const char *targets[] = {"cpu", "sm_90a"};
  std::string rows;
  double ctorMs = 0;
  {
    std::vector<double> t;
    for (int r = 0; r < reps; ++r) {
      auto a = Clock::now();
      attnc::Compiler c;
      t.push_back(ms(a, Clock::now()));
    }
    ctorMs = median(t);
  }
  for (const char *name : names) {
    auto buf = llvm::MemoryBuffer::getFile(examples + "/" + name + ".mlir");
    if (!buf) {
      llvm::errs() << "cannot read " << name << ".mlir\n";
      return 1;
    }
    for (const char *target : targets) {
      std::string spec = (*buf)->getBuffer().str();
      if (std::string(target) != "cpu")
        spec = replaceAll(spec, "x64xf32>", "x64xbf16>");
      std::string respelled = "// respelled\n" + replaceAll(spec, "%q", "%qq");
      attnc::CompileOptions opts;
      opts.target = target;
      std::vector<double> cold, disk, memText, memCanon;
      for (int r = 0; r < reps; ++r) {
        llvm::SmallString<128> dir;
        if (llvm::sys::fs::createUniqueDirectory("attnc-bench", dir))
          return 1;
        attnc::Compiler::Options o;
        o.cacheDir = dir.str().str();
        {
          attnc::Compiler c(o);
          auto a = Clock::now();
          auto k = c.compile(spec, opts);
          auto b = Clock::now();
          if (!k) {
            llvm::errs() << name << " " << target << ": "
                         << llvm::toString(k.takeError()) << "\n";
            return 1;
          }
          cold.push_back(ms(a, b));
          a = Clock::now();
          (void)c.compile(spec, opts);
          memText.push_back(ms(a, Clock::now()));
          a = Clock::now();
          (void)c.compile(respelled, opts);
          memCanon.push_back(ms(a, Clock::now()));
        }
        {
          attnc::Compiler c(o);
          auto a = Clock::now();
          auto k = c.compile(spec, opts);
          auto b = Clock::now();
          if (!k || c.stats().diskHits != 1) {
            llvm::errs() << name << " " << target << ": no disk hit\n";
            return 1;
          }
          disk.push_back(ms(a, b));
        }
        llvm::sys::fs::remove_directories(dir);
      }
      rows += (rows.empty() ? "" : ",\n");
      rows +=
          "    {\"spec\": \"" + std::string(name) + "\", \"target\": \"" +
          target + "\", \"cold_ms\": " + std::to_string(median(cold)) +
          ", \"disk_hit_ms\": " + std::to_string(median(disk)) +
          ", \"memory_hit_same_text_ms\": " + std::to_string(median(memText)) +
          ", \"memory_hit_canonical_ms\": " + std::to_string(median(memCanon)) +
          "}";
      llvm::errs() << name << " " << target << ": cold " << median(cold)
                   << " ms, disk hit " << median(disk) << " ms, memory hit "
                   << median(memText) << " ms (canonical " << median(memCanon)
                   << " ms)\n";
    }
  }
  char date[32];
  std::time_t now = std::time(nullptr);
  std::strftime(date, sizeof date, "%Y-%m-%d", std::gmtime(&now));
  llvm::outs() << "{\n  \"benchmark\": \"compile_time\",\n  \"date\": \""
               << date << "\",\n  \"attnc\": \"" << attnc::Compiler::version()
               << "\",\n  \"host_threads\": "
               << std::thread::hardware_concurrency()
               << ",\n  \"reps\": " << reps
               << ",\n  \"compiler_construction_ms\": "
               << std::to_string(ctorMs) << ",\n  \"results\": [\n"
               << rows << "\n  ]\n}\n";
  return 0;
}
