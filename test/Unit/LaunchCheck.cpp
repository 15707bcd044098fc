//===- LaunchCheck.cpp - the launch library's C API on a stand-in driver --===//
//
// Part of attnc. Drives libattnc_runtime.so through its C API only
// (attnc_runtime.h) with FakeCuda's libcuda.so.1 first on LD_LIBRARY_PATH,
// so CI checks the launch sequence without a GPU: module loading (cubin, PTX
// fallback on CUDA_ERROR_NO_BINARY_FOR_GPU), shared-memory opt-in, block-map
// workspaces in stream order, grids, the tensor-map cache, packed arguments
// and the errors for bad input.
//   attnc-launch-check AOT_DIR KERNEL
// Prints what the driver saw, one call per line (launch.test checks it).
//
//===----------------------------------------------------------------------===//

#include "attnc/attnc_runtime.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <dlfcn.h>
#include <string>
#include <vector>

namespace {
const char *(*takeLog)() = nullptr;

void printLog(const char *step) {
  std::printf("== %s\n%s", step, takeLog ? takeLog() : "(no fake driver)\n");
}

/// Packed words of one [B, H, N, D] tensor (contiguous unless `strides`).
void pack(std::vector<int64_t> &w, const void *p, int dtype,
          std::vector<int64_t> shape, std::vector<int64_t> strides = {}) {
  if (strides.empty()) {
    strides.assign(shape.size(), 1);
    for (int i = int(shape.size()) - 2; i >= 0; --i)
      strides[i] = strides[i + 1] * shape[i + 1];
  }
  w.push_back(int64_t(reinterpret_cast<intptr_t>(p)));
  w.push_back(dtype);
  w.push_back(int64_t(shape.size()));
  w.insert(w.end(), shape.begin(), shape.end());
  w.insert(w.end(), strides.begin(), strides.end());
}

/// An integer field of the kernel's info JSON (a tiny lookup, enough for
/// the flat numeric fields used here).
int64_t field(const std::string &json, const std::string &key) {
  size_t at = json.find("\"" + key + "\": ");
  return at == std::string::npos
             ? -1
             : std::atoll(json.c_str() + at + key.size() + 4);
}

void launch(attnc_rt_kernel *k, const std::vector<int64_t> &w,
            const char *what) {
  if (attnc_rt_kernel_launch_packed(k, w.data(), int64_t(w.size()), nullptr))
    std::printf("ERROR %s: %s\n", what, attnc_rt_last_error());
  else
    std::printf("OK %s\n", what);
}
/// An attention backward (test/Unit/Inputs/grad: bf16, 4:2 heads, d 64,
/// one [4, 32] f32 capture with a gradient): zeroing, delta, dq then dkdv,
/// the empty cases and refusals.
void checkGrad(attnc_rt_kernel *k) {
  const int64_t B = 2, Nq = 300, Nk = 200, hq = 4, hk = 2, d = 64;
  std::vector<uint16_t> q(B * hq * Nq * d), kv(B * hk * Nk * d);
  std::vector<float> l(B * hq * Nq), table(4 * 32), dtable(4 * 64);
  auto args = [&](int64_t nq, int64_t nk, std::vector<int64_t> dtStrides,
                  int64_t doRows = -1) {
    std::vector<int64_t> w;
    pack(w, q.data(), ATTNC_BF16, {B, hq, nq, d});
    pack(w, kv.data(), ATTNC_BF16, {B, hk, nk, d});
    pack(w, kv.data(), ATTNC_BF16, {B, hk, nk, d});
    pack(w, table.data(), ATTNC_F32, {4, 32});
    pack(w, q.data(), ATTNC_BF16, {B, hq, nq, d});
    pack(w, l.data(), ATTNC_F32, {B, hq, nq});
    pack(w, q.data(), ATTNC_BF16, {B, hq, doRows < 0 ? nq : doRows, d});
    pack(w, q.data(), ATTNC_BF16, {B, hq, nq, d});
    pack(w, kv.data(), ATTNC_BF16, {B, hk, nk, d});
    pack(w, kv.data(), ATTNC_BF16, {B, hk, nk, d});
    pack(w, dtable.data(), ATTNC_F32, {4, 32}, dtStrides);
    return w;
  };
  launch(k, args(Nq, Nk, {}), "first launch");
  printLog("first launch");
  launch(k, args(Nq, 0, {}), "no keys");
  printLog("no keys");
  launch(k, args(Nq, Nk, {64, 1}), "strided capture gradient");
  launch(k, args(Nq, Nk, {}, Nq - 1), "do shorter than o");
  printLog("errors");
}
} // namespace

int main(int argc, char **argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: attnc-launch-check AOT_DIR KERNEL\n");
    return 2;
  }
  if (!attnc_rt_cuda_available()) {
    std::printf("NO DRIVER: %s\n", attnc_rt_last_error());
    return 1;
  }
  if (void *fake = dlopen("libcuda.so.1", RTLD_NOW | RTLD_NOLOAD))
    takeLog =
        reinterpret_cast<const char *(*)()>(dlsym(fake, "fake_cuda_take_log"));
  attnc_rt_module *m = nullptr;
  if (attnc_rt_module_load(argv[1], &m)) {
    std::printf("ERROR load: %s\n", attnc_rt_last_error());
    return 1;
  }
  attnc_rt_kernel *k = nullptr;
  for (int32_t i = 0; i < attnc_rt_module_num_kernels(m); ++i)
    if (!std::strcmp(attnc_rt_kernel_name(attnc_rt_module_kernel(m, i)),
                     argv[2]))
      k = attnc_rt_module_kernel(m, i);
  if (!k) {
    std::printf("ERROR no kernel %s\n", argv[2]);
    return 1;
  }
  std::string info = attnc_rt_kernel_info(k);
  if (info.find("\"kind\": \"attention_grad\"") != std::string::npos) {
    std::printf("KERNEL %s kind attention_grad\n", argv[2]);
    checkGrad(k);
    attnc_rt_module_destroy(m);
    return 0;
  }
  int64_t hq = field(info, "heads_q"), hk = field(info, "heads_kv"),
          d = field(info, "head_dim");
  bool lse = info.find("\"lse\": true") != std::string::npos;
  std::printf("KERNEL %s target %s heads %lld:%lld d %lld\n", argv[2],
              attnc_rt_module_target(m), (long long)hq, (long long)hk,
              (long long)d);
  // Host memory stands in for device memory: the fake driver reads nothing.
  const int64_t B = 2, N = 300;
  std::vector<uint16_t> q(B * hq * N * d), kv(B * hk * N * d),
      o(B * hq * N * d);
  std::vector<float> l(B * hq * N);
  std::vector<int32_t> docs(N);
  auto args = [&](const uint16_t *qp, int dtype) {
    std::vector<int64_t> w;
    pack(w, qp, dtype, {B, hq, N, d});
    pack(w, kv.data(), dtype, {B, hk, N, d});
    pack(w, kv.data(), dtype, {B, hk, N, d});
    pack(w, docs.data(), ATTNC_I32, {N});
    pack(w, o.data(), dtype, {B, hq, N, d});
    if (lse)
      pack(w, l.data(), ATTNC_F32, {B, hq, N});
    return w;
  };
  int dt = info.find("\"dtype\": \"bf16\"") != std::string::npos ? ATTNC_BF16
                                                                 : ATTNC_F16;
  launch(k, args(q.data(), dt), "first launch");
  printLog("first launch");
  launch(k, args(q.data(), dt), "same tensors");
  printLog("same tensors");
  launch(k, args(q.data() + 8, dt), "q moved by 8 elements");
  printLog("q moved by 8 elements");
  // One query per (b, h) against all N keys: the split-KV form.
  std::vector<int64_t> dw;
  pack(dw, q.data(), dt, {B, hq, 1, d});
  pack(dw, kv.data(), dt, {B, hk, N, d});
  pack(dw, kv.data(), dt, {B, hk, N, d});
  pack(dw, docs.data(), ATTNC_I32, {N});
  pack(dw, o.data(), dt, {B, hq, 1, d});
  if (lse)
    pack(dw, l.data(), ATTNC_F32, {B, hq, 1});
  launch(k, dw, "decode");
  printLog("decode");
  launch(k, args(q.data(), dt == ATTNC_BF16 ? ATTNC_F16 : ATTNC_BF16),
         "wrong dtype");
  launch(k, args(q.data() + 1, dt), "misaligned q");
  std::vector<int64_t> w = args(q.data(), dt);
  w.pop_back();
  launch(k, w, "short packed words");
  w = args(q.data(), dt);
  w.push_back(0);
  launch(k, w, "extra packed words");
  // The spec indexes the document ids at i and j: shorter ones are refused
  // (the manifest's value checks), not read out of bounds.
  std::vector<int32_t> shortDocs(N - 1);
  w.clear();
  pack(w, q.data(), dt, {B, hq, N, d});
  pack(w, kv.data(), dt, {B, hk, N, d});
  pack(w, kv.data(), dt, {B, hk, N, d});
  pack(w, shortDocs.data(), ATTNC_I32, {N - 1});
  pack(w, o.data(), dt, {B, hq, N, d});
  if (lse)
    pack(w, l.data(), ATTNC_F32, {B, hq, N});
  launch(k, w, "document ids too short");
  setenv("FAKE_CUDA_NO_CONTEXT", "1", 1);
  launch(k, args(q.data(), dt), "no context");
  unsetenv("FAKE_CUDA_NO_CONTEXT");
  printLog("errors");
  attnc_rt_module_destroy(m);
  // A cubin for another GPU: the PTX is loaded instead.
  setenv("FAKE_CUDA_CUBIN_RESULT", "209", 1);
  if (attnc_rt_module_load(argv[1], &m))
    return 1;
  for (int32_t i = 0; i < attnc_rt_module_num_kernels(m); ++i)
    if (!std::strcmp(attnc_rt_kernel_name(attnc_rt_module_kernel(m, i)),
                     argv[2]))
      k = attnc_rt_module_kernel(m, i);
  launch(k, args(q.data(), dt), "cubin for another GPU");
  printLog("cubin for another GPU");
  attnc_rt_module_destroy(m);
  return 0;
}
