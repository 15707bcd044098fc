//===- CApiSupport.cpp - errors and tensors at the C API's edge -----------===//
//
// Part of attnc.
//
//===----------------------------------------------------------------------===//

#include "CApiSupport.h"

using namespace attnc;
using namespace attnc::rt;

/// Ranks above this are refused before anything is read.
static constexpr int64_t kMaxRank = 8;

std::string &attnc::rt::lastError() {
  thread_local std::string message;
  return message;
}

int attnc::rt::fail(const std::string &msg) {
  lastError() = msg;
  return 1;
}

int attnc::rt::fail(llvm::Error e, llvm::StringRef context) {
  std::string msg = llvm::toString(std::move(e));
  return fail(context.empty() ? msg : (context + ": " + msg).str());
}

static llvm::Error checkHeader(int64_t dtype, int64_t rank,
                               const llvm::Twine &what) {
  if (dtype < 0 || dtype > int64_t(DType::I64))
    return makeError(what + " has an unknown dtype code " + llvm::Twine(dtype));
  if (rank < 0 || rank > kMaxRank)
    return makeError(what + " has rank " + llvm::Twine(rank) + " (at most " +
                     llvm::Twine(kMaxRank) + ")");
  return llvm::Error::success();
}

llvm::Error attnc::rt::tensorRefs(const attnc_tensor *ts, int32_t n,
                                  llvm::SmallVectorImpl<TensorRef> &out,
                                  llvm::StringRef role) {
  if (n < 0 || (n > 0 && !ts))
    return makeError("null or negative " + role + " array");
  for (int32_t i = 0; i < n; ++i) {
    const attnc_tensor &t = ts[i];
    std::string what = (role + " #" + llvm::Twine(i)).str();
    if (llvm::Error e = checkHeader(t.dtype, t.rank, what))
      return e;
    if (t.rank > 0 && !t.shape)
      return makeError(what + " has no shape");
    TensorRef r;
    r.data = t.data;
    r.dtype = DType(t.dtype);
    r.shape.assign(t.shape, t.shape + t.rank);
    if (t.strides)
      r.strides.assign(t.strides, t.strides + t.rank);
    out.push_back(std::move(r));
  }
  return llvm::Error::success();
}

llvm::Error
attnc::rt::unpackTensors(const int64_t *words, int64_t numWords,
                         size_t numInputs, size_t numOutputs,
                         llvm::SmallVectorImpl<TensorRef> &inputs,
                         llvm::SmallVectorImpl<TensorRef> &outputs) {
  if (numWords < 0 || (numWords > 0 && !words))
    return makeError("null or negative packed tensor array");
  int64_t at = 0;
  for (size_t i = 0; i < numInputs + numOutputs; ++i) {
    bool isIn = i < numInputs;
    std::string what = (isIn ? "input #" : "output #") +
                       std::to_string(isIn ? i : i - numInputs);
    if (numWords - at < 3)
      return makeError("the packed tensors end before " + what);
    int64_t dtype = words[at + 1], rank = words[at + 2];
    if (llvm::Error e = checkHeader(dtype, rank, what))
      return e;
    if (numWords - at < 3 + 2 * rank)
      return makeError("the packed tensors end inside " + what);
    TensorRef t;
    t.data = reinterpret_cast<void *>(intptr_t(words[at]));
    t.dtype = DType(dtype);
    t.shape.assign(words + at + 3, words + at + 3 + rank);
    t.strides.assign(words + at + 3 + rank, words + at + 3 + 2 * rank);
    at += 3 + 2 * rank;
    (isIn ? inputs : outputs).push_back(std::move(t));
  }
  if (at != numWords)
    return makeError("expected " + llvm::Twine(numInputs) + " input(s) and " +
                     llvm::Twine(numOutputs) + " output(s); " +
                     llvm::Twine(numWords - at) +
                     " packed words are left over");
  return llvm::Error::success();
}
