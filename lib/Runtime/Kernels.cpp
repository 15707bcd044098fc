//===- Kernels.cpp - launching CPU kernels --------------------------------===//
//
// Part of attnc. Every launch checks shapes, dtypes and strides against the
// kernel's signature before anything runs.
//
//===----------------------------------------------------------------------===//

#include "Kernels.h"

#include "mlir/IR/BuiltinTypes.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/FormatVariadic.h"

#include <cstdlib>
#include <cstring>

using namespace attnc;
using llvm::ArrayRef;
using llvm::StringRef;
llvm::Expected<DType> attnc::dtypeOf(mlir::Type t) {
  std::string s;
  llvm::raw_string_ostream os(s);
  t.print(os);
  return dtypeFromName(s);
}

//===----------------------------------------------------------------------===//
// CPU
//===----------------------------------------------------------------------===//

CpuKernelImpl::CpuKernelImpl(KernelSignature signature,
                             std::unique_ptr<mlir::attn::CpuKernel> kernel,
                             bool attentionLayout, InputChecks checks)
    : kernel(std::move(kernel)), attentionLayout(attentionLayout),
      checks(std::move(checks)) {
  sig = std::move(signature);
}

llvm::Error CpuKernelImpl::launch(ArrayRef<TensorRef> inputs,
                                  ArrayRef<TensorRef> outputs, void *) {
  if (llvm::Error e = checkCounts(sig, inputs.size(), outputs.size()))
    return e;
  for (auto [p, t] : llvm::zip(sig.inputs, inputs)) {
    if (llvm::Error e = checkParam(sig.name, "input", p, t))
      return e;
    if (!t.strides.empty() && stridesOf(t) != contiguousStrides(t.shape))
      return makeError(sig.name + ": input '" + p.name +
                       "' must be contiguous for the CPU backend (strides " +
                       shapeStr(t.strides) + ")");
  }
  for (auto [p, t] : llvm::zip(sig.outputs, outputs))
    if (llvm::Error e = checkParam(sig.name, "output", p, t))
      return e;
  if (attentionLayout)
    if (llvm::Error e =
            checkAttentionShapes(sig, inputs, outputs, checks.paged()))
      return e;
  if (llvm::Error e = checkInputValues(sig, checks, inputs, /*host=*/true))
    return e;

  // Memref descriptors: allocated, aligned, offset, sizes, strides.
  std::vector<std::vector<int64_t>> descs;
  std::vector<void *> descPtrs(inputs.size());
  for (const TensorRef &t : inputs) {
    std::vector<int64_t> d = {int64_t(reinterpret_cast<intptr_t>(t.data)),
                              int64_t(reinterpret_cast<intptr_t>(t.data)), 0};
    d.insert(d.end(), t.shape.begin(), t.shape.end());
    auto st = contiguousStrides(t.shape);
    d.insert(d.end(), st.begin(), st.end());
    descs.push_back(std::move(d));
  }
  size_t resultWords = 0;
  for (const ParamInfo &p : sig.outputs)
    resultWords += 3 + 2 * p.shape.size();
  std::vector<int64_t> results(resultWords, 0);
  void *resultPtr = results.data();
  llvm::SmallVector<void *> args = {&resultPtr};
  for (size_t i = 0; i < descs.size(); ++i) {
    descPtrs[i] = descs[i].data();
    args.push_back(&descPtrs[i]);
  }
  if (llvm::Error e = kernel->call(args))
    return e;

  // Copy each result into its output view and free it.
  llvm::Error err = llvm::Error::success();
  size_t off = 0;
  for (auto [p, t] : llvm::zip(sig.outputs, outputs)) {
    size_t rank = p.shape.size();
    void *alloc = reinterpret_cast<void *>(results[off]);
    auto *aligned = reinterpret_cast<const char *>(results[off + 1]);
    int64_t offset = results[off + 2];
    ArrayRef<int64_t> shape(&results[off + 3], rank);
    ArrayRef<int64_t> rstrides(&results[off + 3 + rank], rank);
    off += 3 + 2 * rank;
    if (shape != ArrayRef<int64_t>(t.shape)) {
      if (!err)
        err = makeError(sig.name + ": output '" + p.name + "' has shape " +
                        shapeStr(shape) + ", the given view " +
                        shapeStr(t.shape));
      std::free(alloc);
      continue;
    }
    int64_t es = dtypeSize(p.dtype);
    auto dst = stridesOf(t);
    int64_t n = 1;
    for (int64_t d : shape)
      n *= d;
    llvm::SmallVector<int64_t, 4> idx(rank, 0);
    for (int64_t e = 0; e < n; ++e) {
      int64_t so = offset, dO = 0;
      for (size_t r = 0; r < rank; ++r) {
        so += idx[r] * rstrides[r];
        dO += idx[r] * dst[r];
      }
      std::memcpy(static_cast<char *>(t.data) + dO * es, aligned + so * es, es);
      for (int r = int(rank) - 1; r >= 0; --r) {
        if (++idx[r] < shape[r])
          break;
        idx[r] = 0;
      }
    }
    std::free(alloc);
  }
  return err;
}
