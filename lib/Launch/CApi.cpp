//===- CApi.cpp - the launch library's C API (attnc_runtime.h) ------------===//
//
// Part of attnc. Kernel sets: loading manifest.json and its files, the
// kernels' descriptions and launches. Errors go to a per-thread message.
//
//===----------------------------------------------------------------------===//

#include "CApiSupport.h"
#include "KernelLauncher.h"
#include "attnc/attnc_runtime.h"

#include "llvm/ADT/StringMap.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"

using namespace attnc;
using namespace attnc::rt;
using llvm::StringRef;

struct attnc_rt_kernel {
  std::unique_ptr<KernelLauncher> launcher;
  /// attnc_rt_kernel_info's JSON.
  std::string info;
};

struct attnc_rt_module {
  std::string target;
  std::vector<std::unique_ptr<attnc_rt_kernel>> kernels;
};

/// The kernel's manifest record, its signature and input names.
static std::string kernelInfo(const abi::KernelSet &set, size_t index,
                              const KernelSignature &sig) {
  llvm::json::Value all = abi::toJson(set);
  llvm::json::Object record =
      *(*all.getAsObject()->getArray("kernels"))[index].getAsObject();
  record["target"] = set.target;
  record["signature"] = llvm::json::Object{
      {"inputs", paramsJson(sig.inputs)}, {"outputs", paramsJson(sig.outputs)}};
  if (!record.get("input_names")) {
    llvm::json::Array names;
    for (const ParamInfo &p : sig.inputs)
      names.push_back(p.name);
    record["input_names"] = std::move(names);
  }
  return abi::formatJson(llvm::json::Value(std::move(record)), false);
}

/// A module from manifest.json's text; `file(name)` returns a file it
/// names (or an error).
static llvm::Expected<std::unique_ptr<attnc_rt_module>>
createModule(StringRef manifest,
             llvm::function_ref<llvm::Expected<std::string>(StringRef)> file) {
  auto set = abi::parseKernelSetText(manifest);
  if (!set)
    return set.takeError();
  auto m = std::make_unique<attnc_rt_module>();
  m->target = set->target;
  for (auto [i, k] : llvm::enumerate(set->kernels)) {
    KernelImages images;
    auto ptx = file(k.ptxFile);
    if (!ptx)
      return ptx.takeError();
    images.ptx = std::move(*ptx);
    if (!k.cubinFile.empty()) {
      auto cubin = file(k.cubinFile);
      if (!cubin)
        return cubin.takeError();
      images.cubin = std::move(*cubin);
    }
    auto launcher = makeLauncher(k, set->target, std::move(images));
    if (!launcher)
      return launcher.takeError();
    auto kernel = std::make_unique<attnc_rt_kernel>();
    kernel->info = kernelInfo(*set, i, (*launcher)->signature());
    kernel->launcher = std::move(*launcher);
    m->kernels.push_back(std::move(kernel));
  }
  return m;
}

extern "C" {

const char *attnc_rt_version(void) { return "attnc_runtime " ATTNC_VERSION; }

const char *attnc_rt_last_error(void) { return lastError().c_str(); }

int attnc_rt_module_load(const char *directory, attnc_rt_module **out) {
  if (!directory || !out)
    return fail("attnc_rt_module_load: null argument");
  auto read = [&](StringRef name) -> llvm::Expected<std::string> {
    llvm::SmallString<256> path(directory);
    llvm::sys::path::append(path, name);
    auto buf = llvm::MemoryBuffer::getFile(path, /*IsText=*/false,
                                           /*RequiresNullTerminator=*/false);
    if (!buf)
      return makeError("cannot read " + path + ": " + buf.getError().message());
    return (*buf)->getBuffer().str();
  };
  auto manifest = read("manifest.json");
  if (!manifest)
    return fail(manifest.takeError(), directory);
  auto m = createModule(*manifest, read);
  if (!m)
    return fail(m.takeError(), directory);
  *out = m->release();
  return 0;
}

int attnc_rt_module_create(const char *manifest, const attnc_rt_image *images,
                           int32_t num_images, const char *directory,
                           attnc_rt_module **out) {
  if (!manifest || !out || (num_images > 0 && !images) || num_images < 0)
    return fail("attnc_rt_module_create: null or negative argument");
  llvm::StringMap<StringRef> files;
  for (int32_t i = 0; i < num_images; ++i) {
    if (!images[i].name || (!images[i].data && images[i].size))
      return fail("attnc_rt_module_create: image " + std::to_string(i) +
                  " has no name or data");
    files[images[i].name] =
        StringRef(static_cast<const char *>(images[i].data), images[i].size);
  }
  auto find = [&](StringRef name) -> llvm::Expected<std::string> {
    auto it = files.find(name);
    if (it == files.end())
      return makeError("the manifest names '" + name +
                       "', which is not among the images");
    return it->second.str();
  };
  auto m = createModule(manifest, find);
  if (!m)
    return fail(m.takeError(), directory ? directory : "a kernel set");
  *out = m->release();
  return 0;
}

void attnc_rt_module_destroy(attnc_rt_module *m) { delete m; }

const char *attnc_rt_module_target(const attnc_rt_module *m) {
  return m ? m->target.c_str() : "";
}

int32_t attnc_rt_module_num_kernels(const attnc_rt_module *m) {
  return m ? int32_t(m->kernels.size()) : 0;
}

attnc_rt_kernel *attnc_rt_module_kernel(attnc_rt_module *m, int32_t index) {
  if (!m || index < 0 || size_t(index) >= m->kernels.size())
    return nullptr;
  return m->kernels[index].get();
}

const char *attnc_rt_kernel_name(const attnc_rt_kernel *k) {
  return k ? k->launcher->signature().name.c_str() : "";
}

const char *attnc_rt_kernel_info(const attnc_rt_kernel *k) {
  return k ? k->info.c_str() : "{}";
}

int attnc_rt_kernel_launch(attnc_rt_kernel *k, const attnc_tensor *inputs,
                           int32_t num_inputs, const attnc_tensor *outputs,
                           int32_t num_outputs, void *stream) {
  if (!k)
    return fail("attnc_rt_kernel_launch: null kernel");
  llvm::SmallVector<TensorRef, 8> ins, outs;
  if (llvm::Error e = tensorRefs(inputs, num_inputs, ins, "input"))
    return fail(std::move(e));
  if (llvm::Error e = tensorRefs(outputs, num_outputs, outs, "output"))
    return fail(std::move(e));
  if (llvm::Error e = k->launcher->launch(ins, outs, stream))
    return fail(std::move(e));
  return 0;
}

int attnc_rt_kernel_launch_packed(attnc_rt_kernel *k, const int64_t *words,
                                  int64_t num_words, void *stream) {
  if (!k)
    return fail("attnc_rt_kernel_launch_packed: null kernel");
  const KernelSignature &sig = k->launcher->signature();
  llvm::SmallVector<TensorRef, 8> ins, outs;
  if (llvm::Error e = unpackTensors(words, num_words, sig.inputs.size(),
                                    sig.outputs.size(), ins, outs))
    return fail(sig.name + ": " + llvm::toString(std::move(e)));
  if (llvm::Error e = k->launcher->launch(ins, outs, stream))
    return fail(std::move(e));
  return 0;
}

} // extern "C"
