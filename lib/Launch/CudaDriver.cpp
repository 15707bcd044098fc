//===- CudaDriver.cpp - the CUDA driver API, loaded with dlopen -----------===//
//
// Part of attnc.
//
//===----------------------------------------------------------------------===//

#include "CudaDriver.h"

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
    sym(l.d.cuMemsetD32Async, "cuMemsetD32Async");
    sym(l.d.cuMemsetD2D16Async, "cuMemsetD2D16Async");
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

std::string attnc::cuda::unavailableReason() { return load().error; }
