//===- CudaToolkit.h - the one lookup of the CUDA toolkit -------*- C++ -*-===//
//
// Part of attnc. ptxas (cubins, register reports) and libdevice (math
// functions in regions) come from one toolkit, found once per process.
//
//===----------------------------------------------------------------------===//
#ifndef ATTNC_TARGET_CUDATOOLKIT_H
#define ATTNC_TARGET_CUDATOOLKIT_H

#include <string>

namespace mlir::attn {

struct CudaToolkit {
  /// The toolkit's directory, or empty when none was found.
  std::string root;
  /// Absolute paths, or empty when missing.
  std::string ptxas, libdevice;
};

/// ptxas and libdevice, each from the first of $CUDA_HOME, $CUDA_ROOT,
/// $CUDA_PATH, /usr/local/cuda and the toolkit of the `ptxas` on PATH that
/// has it (`root` is ptxas's). Looked up once per process.
const CudaToolkit &findCudaToolkit();

} // namespace mlir::attn

#endif // ATTNC_TARGET_CUDATOOLKIT_H
