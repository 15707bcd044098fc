//===- RunAttributes.h - attn.run_init and attn.run_dims --------*- C++ -*-===//
//
// Part of attnc. Two argument attributes of spec functions, declared by the
// attn dialect (AttnDialect::verifyRegionArgAttribute checks them) and read
// by attn-run's input generation (attnc/Testing/RunInputs.h):
//
//   attn.run_init = "uniform:lo:hi" | "sorted:lo:hi" | "randint:lo:hi"
//                 | "bits:p" | "permutation" | "kv_lens" | "cu_seqlens"
//   attn.run_dims = ["b", "nq/64", "8", ...]   (one entry per dim)
//
//===----------------------------------------------------------------------===//
#ifndef ATTNC_DIALECT_ATTN_RUNATTRIBUTES_H
#define ATTNC_DIALECT_ATTN_RUNATTRIBUTES_H

#include "mlir/IR/Attributes.h"
#include "mlir/IR/BuiltinAttributes.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/Support/LLVM.h"
#include "llvm/ADT/SmallVector.h"

#include <string>

namespace mlir::attn {

inline constexpr llvm::StringLiteral kRunInitAttrName = "attn.run_init";
inline constexpr llvm::StringLiteral kRunDimsAttrName = "attn.run_dims";

/// How attn-run fills an argument (`attn.run_init`). Float arguments take
/// `uniform:lo:hi` (lo < hi); integer arguments `sorted:lo:hi` and
/// `randint:lo:hi` (lo <= hi), `bits:p` (i1 values, p in [0, 1]),
/// `permutation` (0 .. n-1 shuffled), `kv_lens` (per-sequence key counts)
/// and `cu_seqlens` (cumulative offsets of packed sequences). Without
/// numbers a mode takes its defaults.
struct RunInit {
  enum class Mode {
    Default,
    Uniform,
    Sorted,
    Randint,
    Bits,
    Permutation,
    KvLens,
    CuSeqlens
  };
  Mode mode = Mode::Default;
  /// The numbers after the mode, as written (empty: the defaults).
  SmallVector<double, 2> params;
  /// Parameter `i` (from 0), or `dflt` when none was written.
  double param(unsigned i, double dflt) const {
    return params.size() > i ? params[i] : dflt;
  }
};

/// Parses `text` for an argument whose elements are floats (`isFloat`) or
/// integers. On failure `why` says what is wrong, naming the attribute.
FailureOr<RunInit> parseRunInit(StringRef text, bool isFloat, std::string &why);

/// One entry of `attn.run_dims`: b, nq, nk, n (max of nq and nk) or a
/// positive integer, optionally divided, rounding up, by a positive integer
/// ("nq/64").
struct RunDim {
  enum class Base { Batch, Queries, Keys, Longest, Constant };
  Base base = Base::Constant;
  int64_t value = 0, divisor = 1;
  /// The size for a run of `batch` sequences of `nq` queries and `nk` keys;
  /// failure when it is not positive.
  FailureOr<int64_t> resolve(int64_t batch, int64_t nq, int64_t nk) const;
};
FailureOr<RunDim> parseRunDim(StringRef text);

/// The message for a malformed `attn.run_dims`.
inline constexpr llvm::StringLiteral kRunDimsSyntax =
    "attn.run_dims must list one of b, nq, nk, n, a positive integer or "
    "X/<int> per dimension";

/// Checks the argument attribute `attr` of argument `argIndex` (of type
/// `type`) of `op`; unknown `attn.` argument attributes are errors.
LogicalResult verifyRunAttribute(Operation *op, unsigned argIndex, Type type,
                                 NamedAttribute attr);

} // namespace mlir::attn

#endif // ATTNC_DIALECT_ATTN_RUNATTRIBUTES_H
