//===- CudaDriver.h - the CUDA driver API, loaded with dlopen -------------===//
//
// Part of attnc. Private to the launch library (lib/Launch).
//
//===----------------------------------------------------------------------===//
#ifndef ATTNC_LAUNCH_CUDADRIVER_H
#define ATTNC_LAUNCH_CUDADRIVER_H

#include "llvm/Support/Error.h"

#include <cstdint>

namespace attnc::cuda {

using CUresult = int;
using CUdeviceptr = unsigned long long;
using CUcontext = void *;
using CUmodule = void *;
using CUfunction = void *;
using CUstream = void *;

/// The entry points attnc uses. Filled once by `driver()`.
struct Driver {
  CUresult (*cuInit)(unsigned);
  CUresult (*cuCtxGetCurrent)(CUcontext *);
  CUresult (*cuModuleLoadData)(CUmodule *, const void *);
  CUresult (*cuModuleGetFunction)(CUfunction *, CUmodule, const char *);
  CUresult (*cuLaunchKernel)(CUfunction, unsigned, unsigned, unsigned, unsigned,
                             unsigned, unsigned, unsigned, CUstream, void **,
                             void **);
  CUresult (*cuMemAllocAsync)(CUdeviceptr *, size_t, CUstream);
  CUresult (*cuMemFreeAsync)(CUdeviceptr, CUstream);
  /// Zeroing of the backward's capture gradients and empty launches'
  /// outputs: 32-bit words, and 16-bit rows of a pitched region.
  CUresult (*cuMemsetD32Async)(CUdeviceptr, unsigned, size_t, CUstream);
  CUresult (*cuMemsetD2D16Async)(CUdeviceptr, size_t, unsigned short, size_t,
                                 size_t, CUstream);
  CUresult (*cuGetErrorString)(CUresult, const char **);
  // Device helpers (attnc::cuda).
  CUresult (*cuDeviceGet)(int *, int);
  CUresult (*cuDeviceGetAttribute)(int *, int, int);
  CUresult (*cuDevicePrimaryCtxRetain)(CUcontext *, int);
  CUresult (*cuCtxSetCurrent)(CUcontext);
  CUresult (*cuCtxGetDevice)(int *);
  CUresult (*cuCtxSynchronize)();
  CUresult (*cuMemAlloc)(CUdeviceptr *, size_t);
  CUresult (*cuMemFree)(CUdeviceptr);
  CUresult (*cuMemcpyHtoD)(CUdeviceptr, const void *, size_t);
  CUresult (*cuMemcpyDtoH)(void *, CUdeviceptr, size_t);
  CUresult (*cuFuncSetAttribute)(CUfunction, int, int);
  /// Null on drivers older than CUDA 12 (only sm_90a kernels need it).
  CUresult (*cuTensorMapEncodeTiled)(void *, int, unsigned, void *,
                                     const uint64_t *, const uint64_t *,
                                     const unsigned *, const unsigned *, int,
                                     int, int, int);
};

/// The driver, loaded and initialized on first use; an error saying why not
/// (no libcuda.so.1, a missing entry point, cuInit failing).
llvm::Expected<const Driver &> driver();

/// Why the driver cannot be used; empty when it can.
std::string unavailableReason();

/// "<what>: <driver's error string> (CUresult <r>)".
llvm::Error check(CUresult r, llvm::StringRef what);

} // namespace attnc::cuda

#endif // ATTNC_LAUNCH_CUDADRIVER_H
