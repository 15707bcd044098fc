// Compiles a causal attention spec with the attnc JIT API, runs it on the
// CPU and checks it against a float64 reference; then compiles the bf16
// version for the GPU (a launch needs a GPU and is not attempted here).
#include <attnc/attnc.h>

#include <cmath>
#include <cstdio>
#include <random>
#include <vector>

static const char *kSpec = R"mlir(
func.func @causal(%q: tensor<?x4x?x64xf32>, %k: tensor<?x4x?x64xf32>,
                  %v: tensor<?x4x?x64xf32>) -> tensor<?x4x?x64xf32> {
  %o = attn.attention %q, %k, %v
    mask(%b: index, %h: index, %i: index, %j: index) {
      %c = arith.cmpi uge, %i, %j : index
      attn.yield %c : i1
    } : tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>
      -> tensor<?x4x?x64xf32>
  return %o : tensor<?x4x?x64xf32>
}
)mlir";

int main() {
  attnc::Compiler compiler;   // disk cache in $XDG_CACHE_HOME/attnc
  attnc::CompileOptions opts; // target "cpu"
  auto kernel = compiler.compile(kSpec, opts);
  if (!kernel) {
    std::fprintf(stderr, "compile failed: %s\n",
                 llvm::toString(kernel.takeError()).c_str());
    return 1;
  }

  const int64_t B = 1, H = 4, N = 77, D = 64;
  std::vector<float> q(B * H * N * D), k(q.size()), v(q.size()), o(q.size());
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> u(-1, 1);
  for (auto *t : {&q, &k, &v})
    for (float &x : *t)
      x = u(rng);
  auto view = [&](std::vector<float> &t) {
    attnc::TensorRef r;
    r.data = t.data();
    r.dtype = attnc::DType::F32;
    r.shape = {B, H, N, D};
    return r;
  };
  if (llvm::Error e =
          (*kernel)->launch({view(q), view(k), view(v)}, {view(o)})) {
    std::fprintf(stderr, "launch failed: %s\n",
                 llvm::toString(std::move(e)).c_str());
    return 1;
  }

  double err = 0, scale = 1 / std::sqrt(double(D));
  for (int64_t bh = 0; bh < B * H; ++bh)
    for (int64_t i = 0; i < N; ++i) {
      std::vector<double> p(i + 1);
      double m = -INFINITY, sum = 0;
      for (int64_t j = 0; j <= i; ++j) {
        double s = 0;
        for (int64_t d = 0; d < D; ++d)
          s += double(q[(bh * N + i) * D + d]) * k[(bh * N + j) * D + d];
        m = std::max(m, p[j] = s * scale);
      }
      for (double &x : p)
        sum += (x = std::exp(x - m));
      for (int64_t d = 0; d < D; ++d) {
        double ref = 0;
        for (int64_t j = 0; j <= i; ++j)
          ref += p[j] / sum * v[(bh * N + j) * D + d];
        err = std::max(err, std::abs(ref - o[(bh * N + i) * D + d]));
      }
    }
  std::printf("%s: cpu causal B=%lld H=%lld N=%lld D=%lld max_abs_err=%.2e\n",
              err < 1e-4 ? "PASS" : "FAIL", (long long)B, (long long)H,
              (long long)N, (long long)D, err);

  // The same variant for an H100: bf16 inputs.
  std::string gpuSpec = kSpec;
  for (size_t p; (p = gpuSpec.find("x64xf32>")) != std::string::npos;)
    gpuSpec.replace(p, 8, "x64xbf16>");
  opts.target = "sm_90a";
  auto gpu = compiler.compile(gpuSpec, opts);
  if (!gpu) {
    std::fprintf(stderr, "GPU compile failed: %s\n",
                 llvm::toString(gpu.takeError()).c_str());
    return 1;
  }
  std::string why;
  std::printf("sm_90a kernel '%s' in %s (GPU: %s)\n",
              (*gpu)->signature().name.c_str(),
              (*gpu)->directory().empty() ? "memory"
                                          : (*gpu)->directory().str().c_str(),
              attnc::cudaAvailable(&why) ? "available" : why.c_str());
  return err < 1e-4 ? 0 : 1;
}
