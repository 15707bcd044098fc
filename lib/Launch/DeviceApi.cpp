//===- DeviceApi.cpp - the C API's device helpers -------------------------===//
//
// Part of attnc. Contexts, the current target and memory through the CUDA
// driver, for the C++ JIT's attnc::cuda helpers, tests and tools.
//
//===----------------------------------------------------------------------===//

#include "CApiSupport.h"
#include "CudaDriver.h"
#include "attnc/attnc_runtime.h"

#include <cstring>

using namespace attnc;
using namespace attnc::rt;

/// The driver, or a failure recorded as the last error.
static const cuda::Driver *driverOrFail() {
  auto d = cuda::driver();
  if (!d) {
    fail(d.takeError());
    return nullptr;
  }
  return &*d;
}

static int checked(cuda::CUresult r, llvm::StringRef what) {
  if (llvm::Error e = cuda::check(r, what))
    return fail(std::move(e));
  return 0;
}

/// The attnc target of a compute capability; an error below 8.0.
static llvm::Expected<std::string> targetOf(int major, int minor) {
  if (major == 9 && minor == 0)
    return std::string("sm_90a");
  if (major >= 8)
    return std::string("sm_80");
  return makeError("the GPU has compute capability " + llvm::Twine(major) +
                   "." + llvm::Twine(minor) +
                   "; attnc kernels need 8.0 or newer");
}

extern "C" {

int attnc_rt_cuda_available(void) {
  std::string why = cuda::unavailableReason();
  if (why.empty())
    return 1;
  fail(why);
  return 0;
}

int attnc_rt_use_device(int32_t ordinal) {
  const cuda::Driver *d = driverOrFail();
  if (!d)
    return 1;
  int dev = 0;
  cuda::CUcontext ctx = nullptr;
  if (int r = checked(d->cuDeviceGet(&dev, ordinal),
                      "cuDeviceGet(" + std::to_string(ordinal) + ")"))
    return r;
  if (int r = checked(d->cuDevicePrimaryCtxRetain(&ctx, dev),
                      "cuDevicePrimaryCtxRetain"))
    return r;
  return checked(d->cuCtxSetCurrent(ctx), "cuCtxSetCurrent");
}

int attnc_rt_current_target(char *buf, size_t len) {
  const cuda::Driver *d = driverOrFail();
  if (!d)
    return 1;
  int dev = 0, major = 0, minor = 0;
  if (int r = checked(d->cuCtxGetDevice(&dev),
                      "cuCtxGetDevice (is a context current?)"))
    return r;
  // CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR / _MINOR.
  if (int r = checked(d->cuDeviceGetAttribute(&major, 75, dev),
                      "cuDeviceGetAttribute"))
    return r;
  if (int r = checked(d->cuDeviceGetAttribute(&minor, 76, dev),
                      "cuDeviceGetAttribute"))
    return r;
  auto target = targetOf(major, minor);
  if (!target)
    return fail(target.takeError());
  if (!buf || len <= target->size())
    return fail("attnc_rt_current_target: the buffer is too small");
  std::memcpy(buf, target->c_str(), target->size() + 1);
  return 0;
}

int attnc_rt_alloc(size_t bytes, void **out) {
  const cuda::Driver *d = driverOrFail();
  if (!d)
    return 1;
  cuda::CUdeviceptr p = 0;
  if (int r =
          checked(d->cuMemAlloc(&p, std::max<size_t>(bytes, 1)), "cuMemAlloc"))
    return r;
  *out = reinterpret_cast<void *>(p);
  return 0;
}

int attnc_rt_free(void *ptr) {
  const cuda::Driver *d = driverOrFail();
  if (!d)
    return 1;
  return checked(d->cuMemFree(reinterpret_cast<cuda::CUdeviceptr>(ptr)),
                 "cuMemFree");
}

int attnc_rt_alloc_async(size_t bytes, void *stream, void **out) {
  const cuda::Driver *d = driverOrFail();
  if (!d)
    return 1;
  cuda::CUdeviceptr p = 0;
  if (int r = checked(d->cuMemAllocAsync(&p, std::max<size_t>(bytes, 1),
                                         static_cast<cuda::CUstream>(stream)),
                      "cuMemAllocAsync"))
    return r;
  *out = reinterpret_cast<void *>(p);
  return 0;
}

int attnc_rt_free_async(void *ptr, void *stream) {
  const cuda::Driver *d = driverOrFail();
  if (!d)
    return 1;
  return checked(d->cuMemFreeAsync(reinterpret_cast<cuda::CUdeviceptr>(ptr),
                                   static_cast<cuda::CUstream>(stream)),
                 "cuMemFreeAsync");
}

int attnc_rt_copy_to_device(void *dst, const void *src, size_t bytes) {
  const cuda::Driver *d = driverOrFail();
  if (!d)
    return 1;
  return checked(
      d->cuMemcpyHtoD(reinterpret_cast<cuda::CUdeviceptr>(dst), src, bytes),
      "cuMemcpyHtoD");
}

int attnc_rt_copy_to_host(void *dst, const void *src, size_t bytes) {
  const cuda::Driver *d = driverOrFail();
  if (!d)
    return 1;
  return checked(
      d->cuMemcpyDtoH(dst, reinterpret_cast<cuda::CUdeviceptr>(src), bytes),
      "cuMemcpyDtoH");
}

int attnc_rt_synchronize(void) {
  const cuda::Driver *d = driverOrFail();
  if (!d)
    return 1;
  return checked(d->cuCtxSynchronize(), "cuCtxSynchronize");
}

} // extern "C"
