//===- CApi.cpp - the attnc C API -----------------------------------------===//
//
// Part of attnc.
//
//===----------------------------------------------------------------------===//

#include "Kernels.h"
#include "attnc/attnc.h"
#include "attnc/attnc_c.h"

#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/JSON.h"
#include "llvm/Support/raw_ostream.h"

#include <cstring>

struct attnc_compiler {
  std::unique_ptr<attnc::Compiler> compiler;
};

struct attnc_kernel {
  std::shared_ptr<attnc::Kernel> kernel;
  std::string signature;
};

static int fail(char *err, size_t errlen, const std::string &msg) {
  if (err && errlen) {
    size_t n = std::min(msg.size(), errlen - 1);
    std::memcpy(err, msg.data(), n);
    err[n] = '\0';
  }
  return 1;
}

static int fail(char *err, size_t errlen, llvm::Error e) {
  return fail(err, errlen, llvm::toString(std::move(e)));
}

extern "C" {

const char *attnc_version(void) { return attnc::Compiler::version().data(); }

int attnc_cuda_available(char *err, size_t errlen) {
  std::string why;
  if (attnc::cudaAvailable(&why))
    return 1;
  fail(err, errlen, why);
  return 0;
}

attnc_compiler *attnc_compiler_create(const char *cache_dir) {
  attnc::Compiler::Options o;
  if (cache_dir && !*cache_dir)
    o.diskCache = false;
  else if (cache_dir)
    o.cacheDir = cache_dir;
  return new attnc_compiler{std::make_unique<attnc::Compiler>(o)};
}

void attnc_compiler_destroy(attnc_compiler *c) { delete c; }

void attnc_compiler_stats(attnc_compiler *c, uint64_t out[4]) {
  attnc::CacheStats s = c->compiler->stats();
  out[0] = s.memoryHits;
  out[1] = s.diskHits;
  out[2] = s.compiles;
  out[3] = s.rebuilt;
}

int attnc_compile(attnc_compiler *c, const char *spec, const char *target,
                  const char *function, int64_t block_q, int64_t block_kv,
                  attnc_kernel **out, char *err, size_t errlen) {
  if (!c || !spec || !target || !out)
    return fail(err, errlen, "attnc_compile: null argument");
  *out = nullptr;
  attnc::CompileOptions o;
  o.target = target;
  o.function = function ? function : "";
  o.blockQ = block_q;
  o.blockKv = block_kv;
  auto k = c->compiler->compile(spec, o);
  if (!k)
    return fail(err, errlen, k.takeError());
  const attnc::KernelSignature &s = (*k)->signature();
  llvm::json::Object sig{{"name", s.name},
                         {"target", s.target},
                         {"directory", (*k)->directory()},
                         {"inputs", attnc::paramsJson(s.inputs)},
                         {"outputs", attnc::paramsJson(s.outputs)}};
  std::string text;
  llvm::raw_string_ostream os(text);
  os << llvm::json::Value(std::move(sig));
  *out = new attnc_kernel{*k, text};
  return 0;
}

const char *attnc_kernel_signature(attnc_kernel *k) {
  return k ? k->signature.c_str() : "";
}

static int toRefs(const attnc_tensor *ts, int32_t n,
                  llvm::SmallVectorImpl<attnc::TensorRef> &out, char *err,
                  size_t errlen) {
  if (n < 0 || (n > 0 && !ts))
    return fail(err, errlen, "attnc_kernel_launch: bad tensor array");
  for (int32_t i = 0; i < n; ++i) {
    const attnc_tensor &t = ts[i];
    if (t.dtype < ATTNC_F32 || t.dtype > ATTNC_I64)
      return fail(err, errlen,
                  "attnc_kernel_launch: unknown dtype code " +
                      std::to_string(t.dtype));
    if (t.rank < 0 || t.rank > 16 || (t.rank > 0 && !t.shape))
      return fail(err, errlen, "attnc_kernel_launch: bad rank or shape");
    attnc::TensorRef r;
    r.data = t.data;
    r.dtype = attnc::DType(t.dtype);
    r.shape.assign(t.shape, t.shape + t.rank);
    if (t.strides)
      r.strides.assign(t.strides, t.strides + t.rank);
    out.push_back(std::move(r));
  }
  return 0;
}

int attnc_kernel_launch(attnc_kernel *k, const attnc_tensor *inputs,
                        int32_t num_inputs, const attnc_tensor *outputs,
                        int32_t num_outputs, void *stream, char *err,
                        size_t errlen) {
  if (!k)
    return fail(err, errlen, "attnc_kernel_launch: null kernel");
  llvm::SmallVector<attnc::TensorRef, 8> in, out;
  if (toRefs(inputs, num_inputs, in, err, errlen) ||
      toRefs(outputs, num_outputs, out, err, errlen))
    return 1;
  if (llvm::Error e = k->kernel->launch(in, out, stream))
    return fail(err, errlen, std::move(e));
  return 0;
}

attnc_rt_kernel *attnc_kernel_runtime(attnc_kernel *k) {
  return k ? k->kernel->runtimeKernel() : nullptr;
}

void attnc_kernel_release(attnc_kernel *k) { delete k; }

} // extern "C"
