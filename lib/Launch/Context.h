//===- Context.h - per-CUDA-context state of a loaded kernel ----*- C++ -*-===//
//
// Part of attnc. Private to the launch library (lib/Launch).
//
//===----------------------------------------------------------------------===//
#ifndef ATTNC_LAUNCH_CONTEXT_H
#define ATTNC_LAUNCH_CONTEXT_H

#include "llvm/ADT/STLFunctionalExtras.h"
#include "llvm/ADT/StringRef.h"
#include "llvm/Support/Error.h"

#include <map>
#include <mutex>

namespace attnc::rt {

/// The current CUDA context of this thread; an error naming `kernel` when
/// there is none.
llvm::Expected<void *> currentContext(llvm::StringRef kernel);

/// State a GPU kernel builds once per CUDA context (its loaded module and
/// functions), kept under a lock.
template <typename T> class PerContext {
public:
  /// The state of the current context (an error naming `kernel` when there
  /// is none); `make` builds it the first time. A failure is not kept.
  llvm::Expected<T> get(llvm::StringRef kernel,
                        llvm::function_ref<llvm::Expected<T>()> make) {
    auto ctx = currentContext(kernel);
    if (!ctx)
      return ctx.takeError();
    std::lock_guard<std::mutex> lock(mu);
    auto it = values.find(*ctx);
    if (it != values.end())
      return it->second;
    llvm::Expected<T> v = make();
    if (v)
      values[*ctx] = *v;
    return v;
  }

private:
  std::mutex mu;
  std::map<void *, T> values;
};

} // namespace attnc::rt

#endif // ATTNC_LAUNCH_CONTEXT_H
