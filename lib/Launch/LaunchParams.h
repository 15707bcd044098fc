//===- LaunchParams.h - kernel parameters for cuLaunchKernel ----*- C++ -*-===//
//
// Part of attnc. Private to the launch library (lib/Launch).
//
//===----------------------------------------------------------------------===//
#ifndef ATTNC_LAUNCH_LAUNCHPARAMS_H
#define ATTNC_LAUNCH_LAUNCHPARAMS_H

#include "attnc/Abi/TensorChecks.h"

#include <vector>

namespace attnc::rt {

/// Kernel parameters: values live in `words`, `ptrs` points at them.
class LaunchParams {
public:
  LaunchParams() { words.reserve(256); }
  void push(int64_t w) {
    starts.push_back(words.size());
    words.push_back(w);
  }
  /// A 128-byte CUtensorMap, by value.
  void pushMap(const uint64_t (&map)[16]) {
    starts.push_back(words.size());
    for (uint64_t w : map)
      words.push_back(int64_t(w));
  }
  /// A memref argument for a view: 1-D over its extent (`flat`), or with
  /// the view's sizes and strides.
  void memref(const TensorRef &t, bool flat);
  /// The array cuLaunchKernel takes; valid until the next push.
  void **finish();

private:
  std::vector<int64_t> words;
  /// Where each parameter starts in `words` (a tensor map takes 16 words).
  std::vector<size_t> starts;
  std::vector<void *> ptrs;
};

} // namespace attnc::rt

#endif // ATTNC_LAUNCH_LAUNCHPARAMS_H
