//===- GpuKernels.cpp - the JIT's GPU kernels over the launch library -----===//
//
// Part of attnc. A compiled GPU kernel set is handed to the launch library
// (libattnc_runtime.so, include/attnc/attnc_runtime.h), which checks and
// launches it: the JIT keeps no launch code of its own. Programs of several
// attn ops sequence their steps' kernels here, with stream-ordered
// temporaries.
//
//===----------------------------------------------------------------------===//

#include "Kernels.h"
#include "attnc/attnc_runtime.h"

using namespace attnc;
using llvm::ArrayRef;
using llvm::StringRef;

Kernel::~Kernel() = default;

/// The launch library's last error.
static llvm::Error runtimeError() { return makeError(attnc_rt_last_error()); }

namespace {
/// One kernel of a kernel set loaded into the launch library.
class RuntimeKernel : public Kernel {
public:
  RuntimeKernel(KernelSignature signature, attnc_rt_module *module,
                std::string directory)
      : module(module) {
    sig = std::move(signature);
    dir = std::move(directory);
  }
  ~RuntimeKernel() override { attnc_rt_module_destroy(module); }
  llvm::Error launch(ArrayRef<TensorRef> inputs, ArrayRef<TensorRef> outputs,
                     void *stream) override;
  attnc_rt_kernel *runtimeKernel() const override {
    return attnc_rt_module_kernel(module, 0);
  }

private:
  attnc_rt_module *module;
};
} // namespace

/// `ts` as C tensors (viewing their shapes and strides).
static llvm::SmallVector<attnc_tensor, 8> cTensors(ArrayRef<TensorRef> ts) {
  llvm::SmallVector<attnc_tensor, 8> out;
  for (const TensorRef &t : ts)
    out.push_back({t.data, int32_t(t.dtype), int32_t(t.shape.size()),
                   t.shape.data(),
                   t.strides.empty() ? nullptr : t.strides.data()});
  return out;
}

llvm::Error RuntimeKernel::launch(ArrayRef<TensorRef> inputs,
                                  ArrayRef<TensorRef> outputs, void *stream) {
  auto ins = cTensors(inputs), outs = cTensors(outputs);
  if (attnc_rt_kernel_launch(runtimeKernel(), ins.data(), int32_t(ins.size()),
                             outs.data(), int32_t(outs.size()), stream))
    return runtimeError();
  return llvm::Error::success();
}

llvm::Expected<std::shared_ptr<Kernel>>
attnc::makeGpuKernel(const abi::KernelSet &set,
                     const llvm::StringMap<std::string> &files,
                     StringRef directory) {
  if (set.kernels.size() != 1)
    return makeError("a GPU kernel set of the JIT holds one kernel");
  std::string manifest = abi::formatKernelSet(set);
  llvm::SmallVector<attnc_rt_image, 2> images;
  for (const auto &f : files)
    images.push_back(
        {f.getKey().data(), f.getValue().data(), f.getValue().size()});
  std::string dir = directory.str();
  attnc_rt_module *module = nullptr;
  if (attnc_rt_module_create(manifest.c_str(), images.data(),
                             int32_t(images.size()), dir.c_str(), &module))
    return runtimeError();
  attnc_rt_kernel *k = attnc_rt_module_kernel(module, 0);
  auto info = llvm::json::parse(attnc_rt_kernel_info(k));
  auto sig = info ? signatureOfInfo(*info, set.target)
                  : llvm::Expected<KernelSignature>(info.takeError());
  if (!sig) {
    attnc_rt_module_destroy(module);
    return sig.takeError();
  }
  return std::make_shared<RuntimeKernel>(std::move(*sig), module,
                                         std::move(dir));
}

//===----------------------------------------------------------------------===//
// Programs of several attn ops
//===----------------------------------------------------------------------===//

GpuProgramImpl::GpuProgramImpl(KernelSignature signature, GpuProgram program)
    : program(std::move(program)) {
  sig = std::move(signature);
}

/// Allocates `program`'s temporaries in stream order, sized from `inputs`.
static llvm::Error allocateTemps(const GpuProgram &program,
                                 ArrayRef<TensorRef> inputs, void *stream,
                                 llvm::SmallVectorImpl<TensorRef> &temps) {
  for (const GpuProgram::Temp &t : program.temps) {
    TensorRef r;
    r.dtype = t.dtype;
    const TensorRef &like = inputs[t.like];
    for (auto [d, n] : llvm::enumerate(t.shape))
      r.shape.push_back(n >= 0 ? n : like.shape[d == 0 ? 0 : 2]);
    int64_t bytes = dtypeSize(t.dtype);
    for (int64_t n : r.shape)
      bytes *= n;
    if (attnc_rt_alloc_async(size_t(bytes), stream, &r.data))
      return runtimeError();
    temps.push_back(std::move(r));
  }
  return llvm::Error::success();
}

llvm::Error GpuProgramImpl::launch(ArrayRef<TensorRef> inputs,
                                   ArrayRef<TensorRef> outputs, void *stream) {
  if (llvm::Error e = checkSignature(sig, inputs, outputs))
    return e;
  llvm::SmallVector<TensorRef, 4> temps;
  auto finish = [&](llvm::Error e) {
    for (const TensorRef &t : temps)
      if (attnc_rt_free_async(t.data, stream))
        e = llvm::joinErrors(std::move(e), runtimeError());
    return e;
  };
  if (llvm::Error e = allocateTemps(program, inputs, stream, temps))
    return finish(std::move(e));
  auto ref = [&](GpuProgram::Ref r) -> const TensorRef & {
    return r.kind == GpuProgram::Ref::Input    ? inputs[r.index]
           : r.kind == GpuProgram::Ref::Output ? outputs[r.index]
                                               : temps[r.index];
  };
  for (const GpuProgram::Step &step : program.steps) {
    llvm::SmallVector<TensorRef, 4> ins, outs;
    for (GpuProgram::Ref r : step.ins)
      ins.push_back(ref(r));
    for (GpuProgram::Ref r : step.outs)
      outs.push_back(ref(r));
    if (llvm::Error e = step.kernel->launch(ins, outs, stream))
      return finish(std::move(e));
  }
  return finish(llvm::Error::success());
}
