//===- launch_bench.cpp - per-call cost of the launch library's C API -----===//
//
// Part of attnc. The C++ JIT and the AOT launcher launch through
// attnc_rt_kernel_launch (the JIT adds one virtual call and a copy of the
// tensor descriptors); this measures that call on the GPU machine, which
// has no MLIR: host time per call (back-to-back calls, no synchronization)
// and time per call with the queue drained (what a loop of calls sustains).
//   attnc-launch-bench AOT_DIR KERNEL B N
// Prints one JSON object.
//
//===----------------------------------------------------------------------===//

#include "attnc/attnc_runtime.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {
int64_t field(const std::string &json, const std::string &key) {
  size_t at = json.find("\"" + key + "\": ");
  return at == std::string::npos
             ? -1
             : std::atoll(json.c_str() + at + key.size() + 4);
}

[[noreturn]] void die(const char *what) {
  std::fprintf(stderr, "%s: %s\n", what, attnc_rt_last_error());
  std::exit(1);
}

double seconds() {
  return std::chrono::duration<double>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}
} // namespace

int main(int argc, char **argv) {
  if (argc != 5) {
    std::fprintf(stderr, "usage: attnc-launch-bench AOT_DIR KERNEL B N\n");
    return 2;
  }
  int64_t B = std::atoll(argv[3]), N = std::atoll(argv[4]);
  if (attnc_rt_use_device(0))
    die("device");
  attnc_rt_module *m = nullptr;
  if (attnc_rt_module_load(argv[1], &m))
    die("load");
  attnc_rt_kernel *k = nullptr;
  for (int32_t i = 0; i < attnc_rt_module_num_kernels(m); ++i)
    if (!std::strcmp(attnc_rt_kernel_name(attnc_rt_module_kernel(m, i)),
                     argv[2]))
      k = attnc_rt_module_kernel(m, i);
  if (!k)
    die("no such kernel");
  std::string info = attnc_rt_kernel_info(k);
  int64_t H = field(info, "heads_q"), D = field(info, "head_dim");
  int dt = info.find("\"dtype\": \"bf16\"") != std::string::npos ? ATTNC_BF16
                                                                 : ATTNC_F16;
  size_t bytes = size_t(B * H * N * D * 2);
  void *q, *kk, *v, *o;
  for (void **p : {&q, &kk, &v, &o})
    if (attnc_rt_alloc(bytes, p))
      die("alloc");
  std::vector<uint16_t> zeros(bytes / 2, 0);
  for (void *p : {q, kk, v})
    if (attnc_rt_copy_to_device(p, zeros.data(), bytes))
      die("copy");
  int64_t shape[4] = {B, H, N, D};
  attnc_tensor ins[3] = {{q, dt, 4, shape, nullptr},
                         {kk, dt, 4, shape, nullptr},
                         {v, dt, 4, shape, nullptr}};
  attnc_tensor out = {o, dt, 4, shape, nullptr};
  auto call = [&] {
    if (attnc_rt_kernel_launch(k, ins, 3, &out, 1, nullptr))
      die("launch");
  };
  for (int i = 0; i < 20; ++i)
    call();
  attnc_rt_synchronize();
  std::vector<double> host, sustained;
  const int calls = 200;
  for (int r = 0; r < 7; ++r) {
    double t0 = seconds();
    for (int i = 0; i < calls; ++i)
      call();
    double t1 = seconds();
    attnc_rt_synchronize();
    double t2 = seconds();
    host.push_back((t1 - t0) / calls * 1e6);
    sustained.push_back((t2 - t0) / calls * 1e3);
  }
  std::sort(host.begin(), host.end());
  std::sort(sustained.begin(), sustained.end());
  std::printf("{\"path\": \"C API (attnc_rt_kernel_launch)\", \"B\": %lld, "
              "\"N\": %lld, \"host_us\": %.2f, \"ms_per_call\": %.4f}\n",
              (long long)B, (long long)N, host[3], sustained[3]);
  for (void *p : {q, kk, v, o})
    attnc_rt_free(p);
  attnc_rt_module_destroy(m);
  return 0;
}
