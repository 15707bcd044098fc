//===- CApiSupport.h - errors and tensors at the C API's edge ---*- C++ -*-===//
//
// Part of attnc. Private to the launch library (lib/Launch).
//
//===----------------------------------------------------------------------===//
#ifndef ATTNC_LAUNCH_CAPISUPPORT_H
#define ATTNC_LAUNCH_CAPISUPPORT_H

#include "attnc/Abi/TensorChecks.h"
#include "attnc/attnc_runtime.h"

namespace attnc::rt {

/// This thread's last error message.
std::string &lastError();
/// Records `msg` as this thread's last error; returns 1 (failure).
int fail(const std::string &msg);
/// The same for an error, prefixed by "<context>: " when given.
int fail(llvm::Error e, llvm::StringRef context = "");

/// C tensors as TensorRefs (`role`: "input" or "output", for errors).
llvm::Error tensorRefs(const attnc_tensor *ts, int32_t n,
                       llvm::SmallVectorImpl<TensorRef> &out,
                       llvm::StringRef role);
/// attnc_rt_kernel_launch_packed's words as `numInputs` inputs and
/// `numOutputs` outputs.
llvm::Error unpackTensors(const int64_t *words, int64_t numWords,
                          size_t numInputs, size_t numOutputs,
                          llvm::SmallVectorImpl<TensorRef> &inputs,
                          llvm::SmallVectorImpl<TensorRef> &outputs);

} // namespace attnc::rt

#endif // ATTNC_LAUNCH_CAPISUPPORT_H
