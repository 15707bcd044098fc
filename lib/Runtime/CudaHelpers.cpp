//===- CudaHelpers.cpp - attnc::cuda over the launch library --------------===//
//
// Part of attnc. The C++ API's device helpers (attnc/attnc.h) call the
// launch library's (attnc_runtime.h), which owns the CUDA driver.
//
//===----------------------------------------------------------------------===//

#include "Kernels.h"
#include "attnc/attnc_runtime.h"

using namespace attnc;

static llvm::Error status(int failed) {
  return failed ? makeError(attnc_rt_last_error()) : llvm::Error::success();
}

bool attnc::cudaAvailable(std::string *why) {
  bool ok = attnc_rt_cuda_available();
  if (why)
    *why = ok ? "" : attnc_rt_last_error();
  return ok;
}

llvm::Error attnc::cuda::useDevice(int ordinal) {
  return status(attnc_rt_use_device(ordinal));
}

llvm::Expected<std::string> attnc::cuda::currentTarget() {
  char buf[16];
  if (attnc_rt_current_target(buf, sizeof(buf)))
    return makeError(attnc_rt_last_error());
  return std::string(buf);
}

llvm::Expected<void *> attnc::cuda::allocate(size_t bytes) {
  void *p = nullptr;
  if (attnc_rt_alloc(bytes, &p))
    return makeError(attnc_rt_last_error());
  return p;
}

llvm::Error attnc::cuda::release(void *ptr) {
  return status(attnc_rt_free(ptr));
}

llvm::Error attnc::cuda::copyToDevice(void *dst, const void *src,
                                      size_t bytes) {
  return status(attnc_rt_copy_to_device(dst, src, bytes));
}

llvm::Error attnc::cuda::copyToHost(void *dst, const void *src, size_t bytes) {
  return status(attnc_rt_copy_to_host(dst, src, bytes));
}

llvm::Error attnc::cuda::synchronize() {
  return status(attnc_rt_synchronize());
}
