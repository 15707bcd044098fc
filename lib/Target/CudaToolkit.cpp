//===- CudaToolkit.cpp - the one lookup of the CUDA toolkit ---------------===//
//
// Part of attnc. See CudaToolkit.h.
//
//===----------------------------------------------------------------------===//

#include "attnc/Target/CudaToolkit.h"

#include "llvm/ADT/SmallVector.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/Program.h"

#include <cstdlib>

using namespace mlir::attn;
namespace fs = llvm::sys::fs;

static CudaToolkit lookUp() {
  llvm::SmallVector<std::string> roots;
  for (const char *env : {"CUDA_HOME", "CUDA_ROOT", "CUDA_PATH"})
    if (const char *p = std::getenv(env); p && *p)
      roots.push_back(p);
  roots.push_back("/usr/local/cuda");
  if (auto onPath = llvm::sys::findProgramByName("ptxas"))
    roots.push_back(
        llvm::sys::path::parent_path(llvm::sys::path::parent_path(*onPath))
            .str());
  // The first root with each tool: a root may hold only a ptxas (a
  // wrapper, as the tests use), and libdevice then comes from the next.
  CudaToolkit tk;
  for (const std::string &r : roots) {
    std::string ptxas = r + "/bin/ptxas";
    std::string lib = r + "/nvvm/libdevice/libdevice.10.bc";
    if (tk.ptxas.empty() && fs::can_execute(ptxas)) {
      tk.root = r;
      tk.ptxas = ptxas;
    }
    if (tk.libdevice.empty() && fs::exists(lib))
      tk.libdevice = lib;
  }
  return tk;
}

const CudaToolkit &mlir::attn::findCudaToolkit() {
  static const CudaToolkit tk = lookUp();
  return tk;
}
