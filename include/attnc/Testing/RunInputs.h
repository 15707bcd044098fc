//===- RunInputs.h - seeded random inputs for a spec function ----*- C++
//-*-===//
//
// Part of attnc. What attn-run (and tests that run specs) feed a spec
// function: each argument's shape from its type, its `attn.run_dims` or
// its role in the function's attn op (q, k, v, a page pool, a page table,
// kv_lens, a decay, a capture), and seeded random values from its
// `attn.run_init` or the role's default.
//
//===----------------------------------------------------------------------===//
#ifndef ATTNC_TESTING_RUNINPUTS_H
#define ATTNC_TESTING_RUNINPUTS_H

#include "attnc/Testing/HostBuffer.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "llvm/Support/Error.h"

#include <random>
#include <string>
#include <vector>

namespace attnc::testing {

/// The sizes of one run: batch, queries and keys per sequence.
struct RunSizes {
  int64_t batch = 2, nq = 64, nk = 64;
};

/// The roles of a spec function's arguments in its first attn op.
struct SpecRoles {
  mlir::Operation *op = nullptr;
  mlir::Value q, k, v;
  /// A paged cache's block table and page size (0: not paged).
  mlir::Value pageTable;
  int64_t pageSize = 0;
  mlir::Value kvLens, decay;
  /// Packed sequences' cumulative offsets (null unless packed): then q, k,
  /// v hold `batch` sequences of up to nq (nk) rows, [1, H, B * N, D].
  mlir::Value cuQ, cuK;
  bool linear = false, queriesAtEnd = false;

  /// The roles in `func` (an error when it has no attn op).
  static llvm::Expected<SpecRoles> of(mlir::func::FuncOp func);
  /// Pages per sequence of a paged cache for `nk` keys.
  int64_t pagesPerSequence(int64_t nk) const {
    return pageSize ? (nk + pageSize - 1) / pageSize : 0;
  }
};

/// Why inputs could not be made: the message and a short reason for a
/// FAIL line ("bad attn.run_init", "unsupported argument type",
/// "allocation failed").
class RunInputError : public llvm::ErrorInfo<RunInputError> {
public:
  static char ID;
  RunInputError(std::string message, std::string reason)
      : message(std::move(message)), reason(std::move(reason)) {}
  void log(llvm::raw_ostream &os) const override { os << message; }
  std::error_code convertToErrorCode() const override {
    return llvm::inconvertibleErrorCode();
  }
  std::string message, reason;
};

/// The shape of argument `arg` for `sizes`: static dims as typed; dynamic
/// ones from `attn.run_dims`, else by role (batch first, page pools
/// B * pages, a page table [B, pages], kv_lens [B], k and v Nk rows, q and
/// linear operands Nq, other tensors max(Nq, Nk); packed sequences: q, k,
/// v [1, H, B * N, D] and the offsets [B + 1]).
std::vector<int64_t> runShape(mlir::BlockArgument arg, const SpecRoles &roles,
                              const RunSizes &sizes);

/// Allocates and fills every argument of `func`, drawing from `rng`; q and
/// k are scaled by `inputScale`. Errors are RunInputErrors.
llvm::Expected<std::vector<HostBuffer>>
makeRunInputs(mlir::func::FuncOp func, const SpecRoles &roles,
              const RunSizes &sizes, std::mt19937_64 &rng, double inputScale);

} // namespace attnc::testing

#endif // ATTNC_TESTING_RUNINPUTS_H
