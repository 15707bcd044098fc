//===- FakeCuda.cpp - a stand-in libcuda.so.1 for launch tests ------------===//
//
// Part of attnc. The launch library dlopens libcuda.so.1; tests on machines
// without a GPU put this one first on LD_LIBRARY_PATH. It runs nothing: it
// records each call (module loads, function lookups, attributes, tensor-map
// encodings, allocations and launches with their grids) in a log that the
// test reads with fake_cuda_take_log(). Environment knobs:
//   FAKE_CUDA_CUBIN_RESULT=<r>  cuModuleLoadData of a cubin (ELF) returns r
//   FAKE_CUDA_NO_CONTEXT=1      cuCtxGetCurrent reports no current context
//
//===----------------------------------------------------------------------===//

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <string>

namespace {
std::mutex mu;
std::string journal;
std::map<void *, std::string> functionNames;
int fakeContext;

void record(const std::string &line) {
  std::lock_guard<std::mutex> lock(mu);
  journal += line + "\n";
}

int envInt(const char *name) {
  const char *v = std::getenv(name);
  return v ? std::atoi(v) : 0;
}
} // namespace

#define API extern "C" __attribute__((visibility("default")))

API const char *fake_cuda_take_log() {
  static thread_local std::string taken;
  std::lock_guard<std::mutex> lock(mu);
  taken.swap(journal);
  journal.clear();
  return taken.c_str();
}

API int cuInit(unsigned) { return 0; }
API int cuCtxGetCurrent(void **ctx) {
  *ctx = envInt("FAKE_CUDA_NO_CONTEXT") ? nullptr : &fakeContext;
  return 0;
}
API int cuModuleLoadData(void **module, const void *image) {
  bool elf = std::memcmp(image,
                         "\x7f"
                         "ELF",
                         4) == 0;
  record(std::string("cuModuleLoadData(") + (elf ? "cubin" : "ptx") + ")");
  if (elf && envInt("FAKE_CUDA_CUBIN_RESULT"))
    return envInt("FAKE_CUDA_CUBIN_RESULT");
  *module = new int(0);
  return 0;
}
API int cuModuleGetFunction(void **fn, void *, const char *name) {
  record(std::string("cuModuleGetFunction(") + name + ")");
  *fn = new int(0);
  std::lock_guard<std::mutex> lock(mu);
  functionNames[*fn] = name;
  return 0;
}
API int cuLaunchKernel(void *fn, unsigned gx, unsigned gy, unsigned gz,
                       unsigned bx, unsigned by, unsigned bz, unsigned smem,
                       void *, void **params, void **) {
  std::string name;
  {
    std::lock_guard<std::mutex> lock(mu);
    name = functionNames[fn];
  }
  record("cuLaunchKernel(" + name + " grid " + std::to_string(gx) + "x" +
         std::to_string(gy) + "x" + std::to_string(gz) + " block " +
         std::to_string(bx * by * bz) + " smem " + std::to_string(smem) +
         (params ? "" : " NO PARAMS") + ")");
  return 0;
}
API int cuMemAllocAsync(unsigned long long *p, size_t bytes, void *) {
  record("cuMemAllocAsync(" + std::to_string(bytes) + ")");
  *p = reinterpret_cast<unsigned long long>(std::malloc(bytes ? bytes : 1));
  return 0;
}
API int cuMemFreeAsync(unsigned long long p, void *) {
  record("cuMemFreeAsync");
  std::free(reinterpret_cast<void *>(p));
  return 0;
}
// Memsets are recorded, not run (the tests' pointers need not be memory).
API int cuMemsetD32Async(unsigned long long, unsigned, size_t n, void *) {
  record("cuMemsetD32Async(" + std::to_string(n) + ")");
  return 0;
}
API int cuMemsetD2D16Async(unsigned long long, size_t pitch, unsigned short,
                           size_t width, size_t height, void *) {
  record("cuMemsetD2D16Async(" + std::to_string(width) + "x" +
         std::to_string(height) + ")");
  return pitch < 2 * width ? 1 : 0;
}
API int cuGetErrorString(int r, const char **s) {
  *s = r == 209 ? "no kernel image is available for execution on the device"
                : "fake error";
  return 0;
}
API int cuDeviceGet(int *d, int) {
  *d = 0;
  return 0;
}
API int cuDeviceGetAttribute(int *v, int attr, int) {
  // Compute capability 9.0, 132 multiprocessors (an H100 SXM).
  *v = attr == 75 ? 9 : attr == 16 ? 132 : 0;
  return 0;
}
API int cuDevicePrimaryCtxRetain(void **ctx, int) {
  *ctx = &fakeContext;
  return 0;
}
API int cuCtxSetCurrent(void *) { return 0; }
API int cuCtxGetDevice(int *d) {
  *d = 0;
  return 0;
}
API int cuCtxSynchronize() { return 0; }
API int cuMemAlloc_v2(unsigned long long *p, size_t bytes) {
  *p = reinterpret_cast<unsigned long long>(std::malloc(bytes ? bytes : 1));
  return 0;
}
API int cuMemFree_v2(unsigned long long p) {
  std::free(reinterpret_cast<void *>(p));
  return 0;
}
API int cuMemcpyHtoD_v2(unsigned long long dst, const void *src, size_t n) {
  std::memcpy(reinterpret_cast<void *>(dst), src, n);
  return 0;
}
API int cuMemcpyDtoH_v2(void *dst, unsigned long long src, size_t n) {
  std::memcpy(dst, reinterpret_cast<void *>(src), n);
  return 0;
}
API int cuFuncSetAttribute(void *, int attr, int value) {
  record("cuFuncSetAttribute(" + std::to_string(attr) + ", " +
         std::to_string(value) + ")");
  return 0;
}
API int cuTensorMapEncodeTiled(void *map, int dtype, unsigned rank, void *,
                               const uint64_t *dims, const uint64_t *,
                               const unsigned *box, const unsigned *, int, int,
                               int, int) {
  record("cuTensorMapEncodeTiled(dtype " + std::to_string(dtype) + ", dims " +
         std::to_string(dims[0]) + "x" + std::to_string(dims[1]) + "x" +
         std::to_string(dims[2]) + "x" + std::to_string(dims[3]) + ", box " +
         std::to_string(box[0]) + "x" + std::to_string(box[1]) + ")");
  std::memset(map, 0, 128);
  return rank == 4 ? 0 : 1;
}
