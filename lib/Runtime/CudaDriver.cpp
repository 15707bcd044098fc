//===- CudaDriver.cpp - the CUDA driver API, loaded with dlopen -----------===//
//
// Part of attnc.
//
//===----------------------------------------------------------------------===//

#include "CudaDriver.h"
#include "attnc/attnc.h"

#include "llvm/Support/raw_ostream.h"

#include <dlfcn.h>
#include <mutex>
#include <string>

using namespace attnc;
using namespace attnc::cuda;

static llvm::Error error(const llvm::Twine &msg) {
  return llvm::createStringError(llvm::inconvertibleErrorCode(), msg);
}

namespace {
struct Loaded {
  Driver d{};
  std::string error; // empty when loaded
};
} // namespace

static const Loaded &load() {
  static Loaded loaded = [] {
    Loaded l;
    const char *names[] = {"libcuda.so.1", "libcuda.so"};
    void *lib = nullptr;
    std::string why;
    for (const char *n : names) {
      lib = dlopen(n, RTLD_NOW | RTLD_LOCAL);
      if (lib)
        break;
      if (why.empty())
        if (const char *e = dlerror())
          why = e;
    }
    if (!lib) {
      l.error = "the CUDA driver (libcuda.so.1) cannot be loaded: GPU kernels "
                "need an NVIDIA driver (" +
                why + ")";
      return l;
    }
    bool ok = true;
    auto sym = [&](auto &fn, const char *name) {
      *reinterpret_cast<void **>(&fn) = dlsym(lib, name);
      if (!fn && ok) {
        ok = false;
        l.error = std::string("the CUDA driver has no ") + name +
                  " (a driver for CUDA 11.2 or newer is needed)";
      }
    };
    sym(l.d.cuInit, "cuInit");
    sym(l.d.cuCtxGetCurrent, "cuCtxGetCurrent");
    sym(l.d.cuModuleLoadData, "cuModuleLoadData");
    sym(l.d.cuModuleGetFunction, "cuModuleGetFunction");
    sym(l.d.cuLaunchKernel, "cuLaunchKernel");
    sym(l.d.cuMemAllocAsync, "cuMemAllocAsync");
    sym(l.d.cuMemFreeAsync, "cuMemFreeAsync");
    sym(l.d.cuGetErrorString, "cuGetErrorString");
    sym(l.d.cuDeviceGet, "cuDeviceGet");
    sym(l.d.cuDeviceGetAttribute, "cuDeviceGetAttribute");
    sym(l.d.cuDevicePrimaryCtxRetain, "cuDevicePrimaryCtxRetain");
    sym(l.d.cuCtxSetCurrent, "cuCtxSetCurrent");
    sym(l.d.cuCtxGetDevice, "cuCtxGetDevice");
    sym(l.d.cuCtxSynchronize, "cuCtxSynchronize");
    sym(l.d.cuMemAlloc, "cuMemAlloc_v2");
    sym(l.d.cuMemFree, "cuMemFree_v2");
    sym(l.d.cuMemcpyHtoD, "cuMemcpyHtoD_v2");
    sym(l.d.cuMemcpyDtoH, "cuMemcpyDtoH_v2");
    sym(l.d.cuFuncSetAttribute, "cuFuncSetAttribute");
    *reinterpret_cast<void **>(&l.d.cuTensorMapEncodeTiled) =
        dlsym(lib, "cuTensorMapEncodeTiled");
    if (!ok)
      return l;
    if (CUresult r = l.d.cuInit(0)) {
      const char *s = nullptr;
      l.d.cuGetErrorString(r, &s);
      l.error = std::string("cuInit failed: ") + (s ? s : "unknown error") +
                " (CUresult " + std::to_string(r) + "; is there a GPU?)";
    }
    return l;
  }();
  return loaded;
}

llvm::Expected<const Driver &> attnc::cuda::driver() {
  const Loaded &l = load();
  if (!l.error.empty())
    return error(l.error);
  return l.d;
}

llvm::Error attnc::cuda::check(CUresult r, llvm::StringRef what) {
  if (r == 0)
    return llvm::Error::success();
  const char *s = nullptr;
  if (load().d.cuGetErrorString)
    load().d.cuGetErrorString(r, &s);
  return error(what + ": " + (s ? s : "unknown error") + " (CUresult " +
               llvm::Twine(r) + ")");
}

bool attnc::cudaAvailable(std::string *why) {
  const Loaded &l = load();
  if (why)
    *why = l.error;
  return l.error.empty();
}

//===----------------------------------------------------------------------===//
// attnc::cuda
//===----------------------------------------------------------------------===//

llvm::Error attnc::cuda::useDevice(int ordinal) {
  auto d = driver();
  if (!d)
    return d.takeError();
  int dev = 0;
  CUcontext ctx = nullptr;
  if (llvm::Error e = check(d->cuDeviceGet(&dev, ordinal),
                            "cuDeviceGet(" + std::to_string(ordinal) + ")"))
    return e;
  if (llvm::Error e = check(d->cuDevicePrimaryCtxRetain(&ctx, dev),
                            "cuDevicePrimaryCtxRetain"))
    return e;
  return check(d->cuCtxSetCurrent(ctx), "cuCtxSetCurrent");
}

llvm::Expected<std::string> attnc::cuda::currentTarget() {
  auto d = driver();
  if (!d)
    return d.takeError();
  int dev = 0, major = 0, minor = 0;
  if (llvm::Error e = check(d->cuCtxGetDevice(&dev),
                            "cuCtxGetDevice (is a context current?)"))
    return std::move(e);
  // CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR / _MINOR.
  if (llvm::Error e = check(d->cuDeviceGetAttribute(&major, 75, dev),
                            "cuDeviceGetAttribute"))
    return std::move(e);
  if (llvm::Error e = check(d->cuDeviceGetAttribute(&minor, 76, dev),
                            "cuDeviceGetAttribute"))
    return std::move(e);
  if (major == 9 && minor == 0)
    return std::string("sm_90a");
  if (major >= 8)
    return std::string("sm_80");
  return error("the GPU has compute capability " + llvm::Twine(major) + "." +
               llvm::Twine(minor) + "; attnc kernels need 8.0 or newer");
}

llvm::Expected<void *> attnc::cuda::allocate(size_t bytes) {
  auto d = driver();
  if (!d)
    return d.takeError();
  CUdeviceptr p = 0;
  if (llvm::Error e =
          check(d->cuMemAlloc(&p, std::max<size_t>(bytes, 1)), "cuMemAlloc"))
    return std::move(e);
  return reinterpret_cast<void *>(p);
}

llvm::Error attnc::cuda::release(void *ptr) {
  auto d = driver();
  if (!d)
    return d.takeError();
  return check(d->cuMemFree(reinterpret_cast<CUdeviceptr>(ptr)), "cuMemFree");
}

llvm::Error attnc::cuda::copyToDevice(void *dst, const void *src,
                                      size_t bytes) {
  auto d = driver();
  if (!d)
    return d.takeError();
  return check(d->cuMemcpyHtoD(reinterpret_cast<CUdeviceptr>(dst), src, bytes),
               "cuMemcpyHtoD");
}

llvm::Error attnc::cuda::copyToHost(void *dst, const void *src, size_t bytes) {
  auto d = driver();
  if (!d)
    return d.takeError();
  return check(d->cuMemcpyDtoH(dst, reinterpret_cast<CUdeviceptr>(src), bytes),
               "cuMemcpyDtoH");
}

llvm::Error attnc::cuda::synchronize() {
  auto d = driver();
  if (!d)
    return d.takeError();
  return check(d->cuCtxSynchronize(), "cuCtxSynchronize");
}
