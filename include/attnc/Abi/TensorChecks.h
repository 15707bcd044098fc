//===- TensorChecks.h - checking tensors against a kernel's signature -*- C++
//-*-===//
//
// Part of attnc. MLIR-free (LLVMSupport only), like the ABI it checks
// against: the signature and value checks every launch runs before anything
// runs, shared by the launch library (libattnc_runtime.so) and the CPU
// kernels of the JIT (libattnc.so). Each links its own copy.
//
//===----------------------------------------------------------------------===//
#ifndef ATTNC_ABI_TENSORCHECKS_H
#define ATTNC_ABI_TENSORCHECKS_H

#include "attnc/Abi/KernelSet.h"
#include "attnc/attnc.h"

#include "llvm/Support/JSON.h"

#include <array>
#include <tuple>

namespace attnc {

llvm::Error makeError(const llvm::Twine &msg);

/// Shape and signature checks shared by the CPU and GPU launches.
std::string shapeStr(llvm::ArrayRef<int64_t> shape);
llvm::SmallVector<int64_t, 4> contiguousStrides(llvm::ArrayRef<int64_t> shape);
llvm::SmallVector<int64_t, 4> stridesOf(const TensorRef &t);
llvm::Error checkParam(llvm::StringRef kernel, llvm::StringRef role,
                       const ParamInfo &p, const TensorRef &t);
llvm::Error checkCounts(const KernelSignature &sig, size_t nin, size_t nout);
/// checkCounts, then checkParam for every input and output.
llvm::Error checkSignature(const KernelSignature &sig,
                           llvm::ArrayRef<TensorRef> inputs,
                           llvm::ArrayRef<TensorRef> outputs);
/// A paged attention's block table: the launch input holding it and the
/// page size (input < 0: not paged).
struct PagedKv {
  int input = -1;
  int64_t pageSize = 0;
  explicit operator bool() const { return input >= 0; }
};
/// For q, k, v, o (and lse): equal batch sizes, equal k/v lengths, o of
/// shape [B, Hq, Nq, Dv]. With `paged` (k and v page pools): equal page
/// counts and sizes of k and v, a rank-2 table with a row per batch.
llvm::Error checkAttentionShapes(const KernelSignature &sig,
                                 llvm::ArrayRef<TensorRef> inputs,
                                 llvm::ArrayRef<TensorRef> outputs,
                                 PagedKv paged = {});
/// The key count Nk of an attention launch: k's dim 2, or the table's
/// width times the page size.
int64_t attentionKeys(llvm::ArrayRef<TensorRef> inputs, PagedKv paged);

llvm::Expected<DType> dtypeFromName(llvm::StringRef name);

/// Checks on input values and lengths that the types cannot express.
struct InputChecks {
  /// Inputs holding log-gates of a decay: every value must be <= 0.
  llvm::SmallVector<unsigned> logGates;
  /// (input, dim, length): a token order fixes a sequence length.
  llvm::SmallVector<std::tuple<unsigned, unsigned, int64_t>> lengths;
  /// (input, dim, input, dim): sizes the op's semantics ties together
  /// (batch and sequence lengths of q, k, v, gates and states).
  llvm::SmallVector<std::array<unsigned, 4>> equalDims;
  /// A captured tensor indexed by the spec with i, j, b or h (possibly
  /// divided by a constant): dim `dim` of `input` needs at least
  /// ceil(size(refInput, refDim) / divisor) elements.
  struct MinExtent {
    unsigned input, dim, refInput, refDim;
    int64_t divisor;
  };
  llvm::SmallVector<MinExtent> minExtents;
  /// A paged op's block table (input `table`, [B, M] i32): its values index
  /// dim 0 of `pool` (the k pool), and M * pageSize is the key count
  /// (the size a MinExtent with refDim 1 of the table refers to).
  struct PageTable {
    unsigned table, pool;
    int64_t pageSize;
  };
  llvm::SmallVector<PageTable> pageTables;
  /// Per-sequence key counts (input `lens`, [B] i32): each in [0, Nk], Nk
  /// the size of (keys, keysDim) as a MinExtent reference, and at least Nq
  /// (input 0's dim 2) with `atEnd` (queries_at_end).
  struct KvLens {
    unsigned lens, keys, keysDim;
    bool atEnd;
  };
  llvm::SmallVector<KvLens> kvLens;
  /// Packed variable-length sequences' offsets (input `offsets`, [B + 1]
  /// i32): start at 0, never decrease, end at most at the token count
  /// (size `tokensDim` of input `tokens`).
  struct CuSeqlens {
    unsigned offsets, tokens, tokensDim;
  };
  llvm::SmallVector<CuSeqlens> cuSeqlens;
  /// A capture read at a packed sequence's index b: dim `dim` of `input`
  /// needs at least size(offsets, 0) - 1 entries (one per sequence).
  struct PerSequence {
    unsigned input, dim, offsets;
  };
  llvm::SmallVector<PerSequence> perSequence;
  /// The first page table as a launch's PagedKv.
  PagedKv paged() const {
    if (pageTables.empty())
      return {};
    return {int(pageTables[0].table), pageTables[0].pageSize};
  }

  /// Size `dim` of input `in` as a MinExtent reference: a page table's
  /// width in keys.
  int64_t extentOf(llvm::ArrayRef<TensorRef> inputs, unsigned in,
                   unsigned dim) const;
};

/// The checks as the ABI writes them, and back.
abi::ValueChecks abiChecks(const InputChecks &c);
InputChecks inputChecksOf(const abi::ValueChecks &c);
/// `sig` in the ABI with its input names (the kernel-argument names),
/// constant decays and value checks.
abi::Signature abiSignature(const KernelSignature &sig,
                            llvm::ArrayRef<std::string> inputNames,
                            llvm::ArrayRef<float> constDecay,
                            const InputChecks &checks);
/// The parameters of an ABI signature as the signature of kernel `name`.
llvm::Expected<KernelSignature> kernelSignature(const abi::Signature &s,
                                                llvm::StringRef name,
                                                llvm::StringRef target);

/// The checks above, on the launch's inputs (value checks only with host
/// data).
llvm::Error checkInputValues(const KernelSignature &sig,
                             const InputChecks &checks,
                             llvm::ArrayRef<TensorRef> inputs, bool host);

/// Parameters as JSON: [{"name", "dtype", "shape"}] (the C API's signature
/// and the disk cache's CPU entries).
llvm::json::Array paramsJson(llvm::ArrayRef<ParamInfo> params);

/// The signature in a kernel's description (attnc_rt_kernel_info's JSON:
/// "name" and "signature": {"inputs", "outputs"}).
llvm::Expected<KernelSignature> signatureOfInfo(const llvm::json::Value &info,
                                                llvm::StringRef target);

/// The signature of an attention kernel.
KernelSignature gpuSignature(const abi::Kernel &kernel, llvm::StringRef target);

} // namespace attnc

#endif // ATTNC_ABI_TENSORCHECKS_H
