//===- KernelSet.cpp - the ABI of a compiled kernel set: JSON I/O ---------===//
//
// Part of attnc. Links LLVMSupport only.
//
//===----------------------------------------------------------------------===//

#include "attnc/Abi/KernelSet.h"

#include "llvm/ADT/STLExtras.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/ADT/StringSet.h"
#include "llvm/Support/FormatVariadic.h"

#include <cmath>
#include <tuple>

using namespace attnc::abi;
using llvm::StringLiteral;
using llvm::StringRef;
using llvm::Twine;
namespace json = llvm::json;

//===----------------------------------------------------------------------===//
// Names, roles, limits
//===----------------------------------------------------------------------===//

namespace {
constexpr StringLiteral kArgKinds[] = {"memref", "memref_f32", "i64",
                                       "tensormap"};
constexpr StringLiteral kVariants[] = {"mma_sync", "wgmma"};
constexpr StringLiteral kSlices[] = {"1", "B", "Hq", "B*Hq"};
constexpr StringLiteral kDecays[] = {"none", "head", "token", "token_dim"};
constexpr StringLiteral kKernelKinds[] = {"attention", "linear", "elementwise",
                                          "attention_grad"};
constexpr StringLiteral kGenerators[] = {"attn-aot", "attnc"};
constexpr StringLiteral kTargets[] = {"sm_80", "sm_90a"};
constexpr StringLiteral kKernelDtypes[] = {"bf16", "f16"};
constexpr StringLiteral kDtypes[] = {"f32", "f16", "bf16", "i1",
                                     "i8",  "i32", "i64"};
constexpr StringLiteral kMaskKinds[] = {"none", "index", "data", "opaque"};
/// Launch variables a size may name.
constexpr StringLiteral kVars[] = {"B",
                                   "H",
                                   "N",
                                   "Nq",
                                   "Nk",
                                   "slices",
                                   "n",
                                   "Nq*G",
                                   "splits",
                                   "B*Hkv",
                                   "varlen_q_tiles"};

/// Bounds the reader enforces (well above what any kernel uses, well below
/// what overflows the launch arithmetic).
constexpr int64_t kMaxDim = 1 << 12;             // head, value and feature dims
constexpr int64_t kMaxHeads = 1 << 16;           // heads
constexpr int64_t kMaxThreads = 1024;            // tiles, chunks, block dims
constexpr int64_t kMaxShared = 1 << 20;          // shared-memory bytes
constexpr int64_t kMaxGrid = 0x7fffffff;         // grid constants and divisors
constexpr int64_t kMaxExtent = int64_t(1) << 40; // sizes and lengths
constexpr int64_t kMaxRank = 8;
constexpr int64_t kMaxBoxRows = 256;
constexpr size_t kMaxItems = 4096; // entries of any array
constexpr size_t kMaxString = 256;

const struct {
  StringLiteral name;
  ArgRole role;
} kRoles[] = {{"q", ArgRole::Query},
              {"k", ArgRole::Key},
              {"v", ArgRole::Value},
              {"o", ArgRole::Output},
              {"lse", ArgRole::Lse},
              {"decay", ArgRole::Decay},
              {"initial_state", ArgRole::InitialState},
              {"final_state", ArgRole::FinalState},
              {"block_map", ArgRole::BlockMap},
              {"phi_q", ArgRole::Workspace},
              {"phi_k", ArgRole::Workspace},
              {"scratch", ArgRole::Scratch},
              {"do", ArgRole::GradOutput},
              {"dq", ArgRole::Gradient},
              {"dk", ArgRole::Gradient},
              {"dv", ArgRole::Gradient},
              {"delta", ArgRole::Delta},
              {"o_part", ArgRole::PartialOutput},
              {"lse_part", ArgRole::PartialLse},
              {"B", ArgRole::Batch},
              {"N", ArgRole::SeqLen},
              {"Nq", ArgRole::SeqLenQ},
              {"Nk", ArgRole::SeqLenK},
              {"slices", ArgRole::Slices},
              {"splits", ArgRole::Splits},
              {"a", ArgRole::Operand},
              {"b", ArgRole::Operand},
              {"n", ArgRole::Elements}};
} // namespace

/// Whether `name` is `prefix` followed by an index below kMaxItems, written
/// without leading zeros (capture0, dcapture12).
static bool isIndexed(StringRef name, StringRef prefix) {
  unsigned index;
  return name.consume_front(prefix) && !name.empty() &&
         llvm::all_of(name, llvm::isDigit) && !name.getAsInteger(10, index) &&
         index < kMaxItems && (name == "0" || name.front() != '0');
}

std::optional<ArgRole> attnc::abi::argRole(StringRef name) {
  for (const auto &r : kRoles)
    if (r.name == name)
      return r.role;
  if (isIndexed(name, "capture"))
    return ArgRole::Capture;
  if (isIndexed(name, "dcapture"))
    return ArgRole::CaptureGrad;
  auto [tensor, dim] = name.rsplit("_stride_");
  if (dim.size() == 1 && StringRef("bhn").contains(dim.front()) &&
      llvm::is_contained({"q", "k", "v", "o", "g", "do", "dq", "dk", "dv"},
                         tensor))
    return ArgRole::Stride;
  return std::nullopt;
}

bool attnc::abi::isTensorRole(ArgRole role) { return role < ArgRole::Batch; }

StringRef attnc::abi::stringify(ArgKind k) { return kArgKinds[int(k)]; }
StringRef attnc::abi::stringify(Variant v) { return kVariants[int(v)]; }
StringRef attnc::abi::stringify(MapSlices s) { return kSlices[int(s)]; }
StringRef attnc::abi::stringify(Decay d) { return kDecays[int(d)]; }
StringRef attnc::abi::stringify(KernelKind k) { return kKernelKinds[int(k)]; }

//===----------------------------------------------------------------------===//
// Equality
//===----------------------------------------------------------------------===//

bool Arg::operator==(const Arg &o) const {
  return std::tie(name, kind, elem, rank, boxRows) ==
         std::tie(o.name, o.kind, o.elem, o.rank, o.boxRows);
}
bool Launch::operator==(const Launch &o) const {
  return std::tie(kernel, grid, block, dynamicSharedBytes, args) ==
         std::tie(o.kernel, o.grid, o.block, o.dynamicSharedBytes, o.args);
}
bool Buffer::operator==(const Buffer &o) const {
  return std::tie(name, dtype, shape) == std::tie(o.name, o.dtype, o.shape);
}
bool BlockMap::operator==(const BlockMap &o) const {
  return std::tie(launch, slices) == std::tie(o.launch, o.slices);
}
bool SplitKv::operator==(const SplitKv &o) const {
  return std::tie(blockRows, blockKv, maxQueries, partial, combine) ==
         std::tie(o.blockRows, o.blockKv, o.maxQueries, o.partial, o.combine);
}
bool AttentionKernel::operator==(const AttentionKernel &o) const {
  return std::tie(dtype, headDim, valueDim, headsQ, headsKv, blockQ, blockKv,
                  sharedBytes, variant, lse, scale, maskKind, fallback, main,
                  blockMap, splitKv, pageSize, pageTable, sinks, cuSeqlensQ,
                  cuSeqlensK) ==
         std::tie(o.dtype, o.headDim, o.valueDim, o.headsQ, o.headsKv, o.blockQ,
                  o.blockKv, o.sharedBytes, o.variant, o.lse, o.scale,
                  o.maskKind, o.fallback, o.main, o.blockMap, o.splitKv,
                  o.pageSize, o.pageTable, o.sinks, o.cuSeqlensQ, o.cuSeqlensK);
}
bool LinearKernel::operator==(const LinearKernel &o) const {
  return std::tie(dtype, heads, headsKv, headDim, valueDim, featureDim, chunk,
                  dvSlice, decay, causal, normalize, scale, main, featureKernel,
                  captures, workspace, scratch) ==
         std::tie(o.dtype, o.heads, o.headsKv, o.headDim, o.valueDim,
                  o.featureDim, o.chunk, o.dvSlice, o.decay, o.causal,
                  o.normalize, o.scale, o.main, o.featureKernel, o.captures,
                  o.workspace, o.scratch);
}
bool AttentionGradKernel::operator==(const AttentionGradKernel &o) const {
  return std::tie(dtype, headDim, valueDim, headsQ, headsKv, blockQ, blockKv,
                  scale, maskKind, captures, captureGrads, dq, dkdv,
                  blockMap) ==
         std::tie(o.dtype, o.headDim, o.valueDim, o.headsQ, o.headsKv, o.blockQ,
                  o.blockKv, o.scale, o.maskKind, o.captures, o.captureGrads,
                  o.dq, o.dkdv, o.blockMap);
}
bool Param::operator==(const Param &o) const {
  return std::tie(name, dtype, shape) == std::tie(o.name, o.dtype, o.shape);
}
bool ValueChecks::operator==(const ValueChecks &o) const {
  return std::tie(logGates, lengths, equalDims, minExtents, pageTables, kvLens,
                  cuSeqlens, perSequence) ==
         std::tie(o.logGates, o.lengths, o.equalDims, o.minExtents,
                  o.pageTables, o.kvLens, o.cuSeqlens, o.perSequence);
}
bool Signature::operator==(const Signature &o) const {
  return std::tie(inputs, outputs, inputNames, constDecay, checks) ==
         std::tie(o.inputs, o.outputs, o.inputNames, o.constDecay, o.checks);
}
bool Kernel::operator==(const Kernel &o) const {
  if (std::tie(name, kind, ptxFile, cubinFile, reductions, signature) !=
      std::tie(o.name, o.kind, o.ptxFile, o.cubinFile, o.reductions,
               o.signature))
    return false;
  switch (kind) {
  case KernelKind::Attention:
    return attention == o.attention;
  case KernelKind::Linear:
    return linear == o.linear;
  case KernelKind::Elementwise:
    return elementwise == o.elementwise;
  case KernelKind::AttentionGrad:
    return attentionGrad == o.attentionGrad;
  }
  return false;
}
bool KernelSet::operator==(const KernelSet &o) const {
  return std::tie(schemaVersion, generator, target, kernels) ==
         std::tie(o.schemaVersion, o.generator, o.target, o.kernels);
}

llvm::SmallVector<const Launch *, 4>
attnc::abi::launchSequence(const Kernel &k) {
  llvm::SmallVector<const Launch *, 4> seq;
  if (k.kind == KernelKind::Attention) {
    if (k.attention.blockMap)
      seq.push_back(&k.attention.blockMap->launch);
    seq.push_back(&k.attention.main);
    if (k.attention.splitKv) {
      seq.push_back(&k.attention.splitKv->partial);
      seq.push_back(&k.attention.splitKv->combine);
    }
  } else if (k.kind == KernelKind::Elementwise) {
    seq.push_back(&k.elementwise);
  } else if (k.kind == KernelKind::AttentionGrad) {
    if (k.attentionGrad.blockMap)
      seq.push_back(&k.attentionGrad.blockMap->launch);
    seq.push_back(&k.attentionGrad.dq);
    seq.push_back(&k.attentionGrad.dkdv);
  } else {
    if (k.linear.featureKernel)
      seq.push_back(&*k.linear.featureKernel);
    seq.push_back(&k.linear.main);
  }
  for (const Launch &r : k.reductions)
    seq.push_back(&r);
  return seq;
}

//===----------------------------------------------------------------------===//
// Writer
//===----------------------------------------------------------------------===//

namespace {
std::string sizeText(const SizeExpr &e) {
  if (e.var.empty())
    return std::to_string(e.value);
  if (e.value == 1)
    return e.var;
  return llvm::formatv("ceil({0}/{1})", e.var, e.value).str();
}

json::Value sizeJson(const SizeExpr &e) {
  if (e.var.empty())
    return e.value;
  return sizeText(e);
}

json::Value argJson(const Arg &a) {
  json::Object o{{"name", a.name},
                 {"kind", stringify(a.kind)},
                 {"elem", a.elem},
                 {"rank", a.rank}};
  if (a.kind == ArgKind::TensorMap) {
    o["box_rows"] = a.boxRows;
    o["box_cols"] = 64;
    o["swizzle"] = "128B";
  }
  return o;
}

/// `l` into `o`: its kernel under `nameKey` (none when empty), grid, block,
/// dynamic shared memory under `smemKey` (none when empty), arguments.
void writeLaunch(json::Object &o, const Launch &l, StringRef nameKey,
                 StringRef smemKey) {
  if (!nameKey.empty())
    o[nameKey] = l.kernel;
  json::Array grid, block, args;
  for (const SizeExpr &g : l.grid)
    grid.push_back(sizeJson(g));
  for (int64_t b : l.block)
    block.push_back(b);
  for (const Arg &a : l.args)
    args.push_back(argJson(a));
  o["grid"] = std::move(grid);
  o["block"] = std::move(block);
  if (!smemKey.empty())
    o[smemKey] = l.dynamicSharedBytes;
  o["args"] = std::move(args);
}

json::Value launchJson(const Launch &l) {
  json::Object o;
  writeLaunch(o, l, "kernel", "dynamic_smem");
  return o;
}

json::Array buffersJson(llvm::ArrayRef<Buffer> buffers) {
  json::Array a;
  for (const Buffer &b : buffers) {
    json::Array shape;
    for (const SizeExpr &d : b.shape)
      shape.push_back(sizeJson(d));
    a.push_back(json::Object{
        {"name", b.name}, {"dtype", b.dtype}, {"shape", std::move(shape)}});
  }
  return a;
}

/// The fields an attention kernel and its backward share.
template <typename K> void writeShape(json::Object &o, const K &a) {
  o["dtype"] = a.dtype;
  o["head_dim"] = a.headDim;
  o["value_dim"] = a.valueDim;
  o["heads_q"] = a.headsQ;
  o["heads_kv"] = a.headsKv;
  o["scale"] = a.scale;
  o["block_q"] = a.blockQ;
  o["block_kv"] = a.blockKv;
  o["mask_kind"] = a.maskKind;
}

json::Value splitKvJson(const SplitKv &s) {
  return json::Object{{"block_rows", s.blockRows},
                      {"block_kv", s.blockKv},
                      {"max_queries", s.maxQueries},
                      {"partial", launchJson(s.partial)},
                      {"combine", launchJson(s.combine)}};
}

void writeAttention(json::Object &o, const AttentionKernel &a) {
  writeShape(o, a);
  o["lse"] = a.lse;
  o["variant"] = stringify(a.variant);
  o["shared_bytes"] = a.sharedBytes;
  if (!a.fallback.empty())
    o["fallback"] = a.fallback;
  if (a.splitKv)
    o["split_kv"] = splitKvJson(*a.splitKv);
  if (a.pageSize)
    o["paged"] =
        json::Object{{"page_size", a.pageSize}, {"table", a.pageTable}};
  if (!a.sinks.empty())
    o["sinks"] = a.sinks;
  if (a.varlen())
    o["varlen"] = json::Object{{"cu_seqlens_q", a.cuSeqlensQ},
                               {"cu_seqlens_k", a.cuSeqlensK}};
  writeLaunch(o, a.main, "", "dynamic_shared_bytes");
  if (!a.blockMap) {
    o["block_map"] = nullptr;
    return;
  }
  json::Object m{{"slices", stringify(a.blockMap->slices)},
                 {"bytes", llvm::formatv("slices * ceil(Nq / {0}) * "
                                         "ceil(Nk / {1})",
                                         a.blockQ, a.blockKv)
                               .str()}};
  writeLaunch(m, a.blockMap->launch, "kernel", "");
  o["block_map"] = std::move(m);
  o["launch_order"] = json::Array{a.blockMap->launch.kernel, a.main.kernel};
}

void writeAttentionGrad(json::Object &o, const AttentionGradKernel &g) {
  writeShape(o, g);
  o["captures"] = g.captures;
  o["capture_grads"] = g.captureGrads;
  o["dq"] = launchJson(g.dq);
  o["dkdv"] = launchJson(g.dkdv);
  json::Array order;
  if (g.blockMap) {
    json::Object m{{"slices", stringify(g.blockMap->slices)}};
    writeLaunch(m, g.blockMap->launch, "kernel", "");
    o["block_map"] = std::move(m);
    order.push_back(g.blockMap->launch.kernel);
  }
  order.push_back(g.dq.kernel);
  order.push_back(g.dkdv.kernel);
  o["launch_order"] = std::move(order);
}

json::Array paramsJson(llvm::ArrayRef<Param> params) {
  json::Array a;
  for (const Param &p : params)
    a.push_back(json::Object{
        {"name", p.name}, {"dtype", p.dtype}, {"shape", json::Array(p.shape)}});
  return a;
}

template <size_t N>
json::Array tuplesJson(llvm::ArrayRef<std::array<int64_t, N>> tuples) {
  json::Array a;
  for (const auto &t : tuples)
    a.push_back(json::Array(t));
  return a;
}

void writeSignature(json::Object &o, const Signature &s) {
  o["inputs"] = paramsJson(s.inputs);
  o["outputs"] = paramsJson(s.outputs);
  o["input_names"] = json::Array(s.inputNames);
  o["const_decay"] = json::Array(s.constDecay);
  const ValueChecks &c = s.checks;
  json::Object checks{{"log_gates", json::Array(c.logGates)},
                      {"lengths", tuplesJson<3>(c.lengths)},
                      {"equal_dims", tuplesJson<4>(c.equalDims)},
                      {"min_extents", tuplesJson<5>(c.minExtents)}};
  if (!c.pageTables.empty())
    checks["page_tables"] = tuplesJson<5>(c.pageTables);
  if (!c.kvLens.empty())
    checks["kv_lens"] = tuplesJson<5>(c.kvLens);
  if (!c.cuSeqlens.empty())
    checks["cu_seqlens"] = tuplesJson<4>(c.cuSeqlens);
  if (!c.perSequence.empty())
    checks["per_sequence"] = tuplesJson<4>(c.perSequence);
  o["checks"] = std::move(checks);
}

json::Value kernelJson(const Kernel &k) {
  json::Object o{{"name", k.name},
                 {"kind", stringify(k.kind)},
                 {"ptx", k.ptxFile},
                 {"cubin", k.cubinFile.empty() ? json::Value(nullptr)
                                               : json::Value(k.cubinFile)}};
  if (k.kind == KernelKind::Attention)
    writeAttention(o, k.attention);
  else if (k.kind == KernelKind::Elementwise)
    writeLaunch(o, k.elementwise, "kernel", "");
  else if (k.kind == KernelKind::AttentionGrad)
    writeAttentionGrad(o, k.attentionGrad);
  else
    o["abi"] = toJson(k.linear);
  if (!k.reductions.empty()) {
    json::Array r;
    for (const Launch &l : k.reductions)
      r.push_back(launchJson(l));
    o["reductions"] = std::move(r);
  }
  if (k.signature)
    writeSignature(o, *k.signature);
  return o;
}
} // namespace

json::Value attnc::abi::toJson(const Kernel &k) { return kernelJson(k); }

llvm::hash_code attnc::abi::hash_value(const Kernel &k) {
  return llvm::hash_value(formatJson(kernelJson(k), /*lines=*/false));
}

json::Value attnc::abi::toJson(const LinearKernel &k) {
  json::Object o{{"dtype", k.dtype},
                 {"H", k.heads},
                 {"Hkv", k.headsKv},
                 {"D", k.headDim},
                 {"Dv", k.valueDim},
                 {"F", k.featureDim},
                 {"chunk", k.chunk},
                 {"dv_slice", k.dvSlice},
                 {"decay", stringify(k.decay)},
                 {"causal", k.causal},
                 {"normalize", k.normalize},
                 {"scale", k.scale}};
  writeLaunch(o, k.main, "kernel", "dynamic_smem");
  if (k.scratch) {
    // Its element count as a product ("B * 4 * N * 66").
    std::string elements;
    for (auto [i, f] : llvm::enumerate(k.scratch->shape))
      elements += (i ? " * " : "") + sizeText(f);
    o["scratch"] = json::Object{{"name", k.scratch->name},
                                {"dtype", k.scratch->dtype},
                                {"elements", elements}};
  }
  // With a feature kernel, captures and workspace are written even when
  // empty (bench/linear_gpu.py reads them).
  if (k.featureKernel || !k.captures.empty())
    o["captures"] = buffersJson(k.captures);
  if (k.featureKernel || !k.workspace.empty())
    o["workspace"] = buffersJson(k.workspace);
  if (k.featureKernel) {
    o["feature_kernel"] = launchJson(*k.featureKernel);
    o["launch_order"] = json::Array{k.featureKernel->kernel, k.main.kernel};
  }
  return o;
}

json::Object attnc::abi::toJson(const Signature &s) {
  json::Object o;
  writeSignature(o, s);
  return o;
}

json::Value attnc::abi::toJson(const KernelSet &set) {
  json::Array kernels;
  for (const Kernel &k : set.kernels)
    kernels.push_back(kernelJson(k));
  return json::Object{{"schema_version", set.schemaVersion},
                      {"generator", set.generator},
                      {"target", set.target},
                      {"kernels", std::move(kernels)}};
}

namespace {
bool isContainer(const json::Value &v) {
  return v.kind() == json::Value::Object || v.kind() == json::Value::Array;
}

/// Whether `v` holds objects or arrays.
bool holdsContainers(const json::Value &v) {
  if (const json::Object *o = v.getAsObject())
    return llvm::any_of(*o,
                        [](const auto &kv) { return isContainer(kv.second); });
  if (const json::Array *a = v.getAsArray())
    return llvm::any_of(*a, isContainer);
  return false;
}

/// `v` with sorted keys and ": ", ", " separators; with `lines`, containers
/// of containers are broken over lines indented by `depth`.
void print(llvm::raw_ostream &os, const json::Value &v, bool lines,
           unsigned depth) {
  if (!isContainer(v)) {
    os << v; // scalars: llvm::json's writer (escaping, numbers)
    return;
  }
  bool broken = lines && holdsContainers(v);
  std::string sep = broken ? ",\n" + std::string(2 * (depth + 1), ' ') : ", ";
  std::string open = broken ? "\n" + std::string(2 * (depth + 1), ' ') : "";
  std::string close = broken ? "\n" + std::string(2 * depth, ' ') : "";
  if (const json::Array *a = v.getAsArray()) {
    os << "[" << (a->empty() ? "" : open);
    for (auto [i, e] : llvm::enumerate(*a)) {
      os << (i ? sep : "");
      print(os, e, lines, depth + 1);
    }
    os << (a->empty() ? "" : close) << "]";
    return;
  }
  const json::Object &o = *v.getAsObject();
  llvm::SmallVector<llvm::StringRef> keys;
  for (const auto &kv : o)
    keys.push_back(kv.first);
  llvm::sort(keys);
  os << "{" << (keys.empty() ? "" : open);
  for (auto [i, k] : llvm::enumerate(keys)) {
    os << (i ? sep : "") << json::Value(k) << ": ";
    print(os, *o.get(k), lines, depth + 1);
  }
  os << (keys.empty() ? "" : close) << "}";
}
} // namespace

std::string attnc::abi::formatJson(const json::Value &v, bool lines) {
  std::string text;
  llvm::raw_string_ostream os(text);
  print(os, v, lines, 0);
  if (lines)
    os << "\n";
  return text;
}

std::string attnc::abi::formatKernelSet(const KernelSet &set) {
  return formatJson(toJson(set), /*lines=*/true);
}

//===----------------------------------------------------------------------===//
// Reader
//===----------------------------------------------------------------------===//

namespace {
StringRef kindName(const json::Value &v) {
  switch (v.kind()) {
  case json::Value::Null:
    return "null";
  case json::Value::Boolean:
    return "a boolean";
  case json::Value::Number:
    return "a number";
  case json::Value::String:
    return "a string";
  case json::Value::Array:
    return "an array";
  case json::Value::Object:
    return "an object";
  }
  return "a value";
}

/// Reads JSON values, keeping the first error ("<path>: <message>"); once
/// one failed, every read returns a default.
class Reader {
public:
  bool failed() const { return !error.empty(); }
  void fail(const Twine &path, const Twine &msg) {
    if (error.empty())
      error = (path + ": " + msg).str();
  }
  llvm::Error takeError() {
    if (error.empty())
      return llvm::Error::success();
    return llvm::createStringError(llvm::inconvertibleErrorCode(), error);
  }

  /// `v` (null: the field is missing) when it has JSON kind `kind`.
  const json::Value *expect(const json::Value *v, const Twine &path,
                            json::Value::Kind kind, StringRef what) {
    if (failed())
      return nullptr;
    if (!v) {
      fail(path, "missing field");
      return nullptr;
    }
    if (v->kind() != kind) {
      fail(path, "expected " + what + ", got " + kindName(*v));
      return nullptr;
    }
    return v;
  }
  const json::Object *object(const json::Value *v, const Twine &path) {
    v = expect(v, path, json::Value::Object, "an object");
    return v ? v->getAsObject() : nullptr;
  }
  const json::Array *array(const json::Value *v, const Twine &path,
                           size_t minSize = 0, size_t maxSize = kMaxItems) {
    v = expect(v, path, json::Value::Array, "an array");
    if (!v)
      return nullptr;
    const json::Array *a = v->getAsArray();
    if (a->size() < minSize || a->size() > maxSize) {
      fail(path, "expected " + Twine(minSize) + " to " + Twine(maxSize) +
                     " entries, got " + Twine(a->size()));
      return nullptr;
    }
    return a;
  }
  int64_t integer(const json::Value *v, const Twine &path, int64_t lo,
                  int64_t hi) {
    std::string range =
        ("an integer in [" + Twine(lo) + ", " + Twine(hi) + "]").str();
    v = expect(v, path, json::Value::Number, range);
    if (!v)
      return 0;
    std::optional<int64_t> i = v->getAsInteger();
    if (!i || *i < lo || *i > hi) {
      fail(path,
           "expected " + range + ", got " + llvm::formatv("{0}", *v).str());
      return 0;
    }
    return *i;
  }
  double number(const json::Value *v, const Twine &path) {
    v = expect(v, path, json::Value::Number, "a number");
    if (!v)
      return 0;
    double d = *v->getAsNumber();
    if (!std::isfinite(d))
      fail(path, "expected a finite number");
    return d;
  }
  bool boolean(const json::Value *v, const Twine &path) {
    v = expect(v, path, json::Value::Boolean, "a boolean");
    return v && *v->getAsBoolean();
  }
  std::string string(const json::Value *v, const Twine &path) {
    v = expect(v, path, json::Value::String, "a string");
    if (!v)
      return "";
    StringRef s = *v->getAsString();
    if (s.size() > kMaxString) {
      fail(path, "string of " + Twine(s.size()) + " characters (at most " +
                     Twine(kMaxString) + ")");
      return "";
    }
    return s.str();
  }
  /// A C identifier (kernel and argument names: they become symbols).
  std::string identifier(const json::Value *v, const Twine &path) {
    std::string s = string(v, path);
    if (!failed() &&
        (s.empty() || llvm::isDigit(s.front()) ||
         !llvm::all_of(s, [](char c) { return llvm::isAlnum(c) || c == '_'; })))
      fail(path, "'" + s + "' is not an identifier");
    return s;
  }
  /// A file of the kernel set's directory: a plain name.
  std::string fileName(const json::Value *v, const Twine &path) {
    std::string s = string(v, path);
    if (!failed() && (s.empty() || s == "." || s == ".." ||
                      StringRef(s).find_first_of("/\\") != StringRef::npos))
      fail(path, "'" + s + "' is not a file name in the kernel directory");
    return s;
  }
  /// The index of the string `v` in `names`.
  template <size_t N>
  int oneOf(const json::Value *v, const Twine &path,
            const StringLiteral (&names)[N], StringRef what) {
    std::string s = string(v, path);
    if (failed())
      return 0;
    for (size_t i = 0; i < N; ++i)
      if (names[i] == s)
        return int(i);
    std::string known;
    for (size_t i = 0; i < N; ++i)
      known += (i ? ", " : "") + names[i].str();
    fail(path, "unknown " + what + " '" + s + "' (expected " + known + ")");
    return 0;
  }
  /// A size: an integer in [lo, hi], a launch variable or ceil(var/n).
  SizeExpr size(const json::Value *v, const Twine &path, int64_t lo,
                int64_t hi) {
    if (v && v->kind() == json::Value::Number)
      return SizeExpr::constant(integer(v, path, lo, hi));
    return sizeText(string(v, path), path, lo, hi);
  }
  SizeExpr sizeText(StringRef s, const Twine &path, int64_t lo, int64_t hi);

private:
  std::string error;
};

SizeExpr Reader::sizeText(StringRef text, const Twine &path, int64_t lo,
                          int64_t hi) {
  if (failed())
    return {};
  StringRef s = text.trim();
  int64_t c = 0;
  if (!s.empty() && llvm::all_of(s, llvm::isDigit)) {
    if (s.getAsInteger(10, c) || c < lo || c > hi)
      fail(path,
           "size " + s + " is outside [" + Twine(lo) + ", " + Twine(hi) + "]");
    return SizeExpr::constant(c);
  }
  auto isVar = [](StringRef v) { return llvm::is_contained(kVars, v); };
  if (isVar(s))
    return SizeExpr::of(s);
  StringRef body = s;
  if (body.consume_front("ceil(") && body.consume_back(")")) {
    auto [var, div] = body.split('/');
    var = var.trim();
    div = div.trim();
    if (isVar(var) && !div.getAsInteger(10, c) && c >= 1 && c <= kMaxGrid)
      return SizeExpr::of(var, c);
  }
  fail(path, "expected a size (an integer, B, H, N, Nq, Nk, slices, n or "
             "ceil(<variable>/<integer>)), got '" +
                 text + "'");
  return {};
}

/// An object being read: its fields by key, their paths.
struct Obj {
  Reader &r;
  const json::Object *o;
  std::string path;

  Obj(Reader &r, const json::Value *v, std::string p)
      : r(r), o(r.object(v, p)), path(std::move(p)) {}
  const json::Value *get(StringRef key) const {
    return o ? o->get(key) : nullptr;
  }
  std::string at(StringRef key) const { return path + "." + key.str(); }
  /// Present and not null.
  bool has(StringRef key) const {
    const json::Value *v = get(key);
    return v && v->kind() != json::Value::Null;
  }
  Obj object(StringRef key) const { return Obj(r, get(key), at(key)); }
  int64_t integer(StringRef key, int64_t lo, int64_t hi) const {
    return r.integer(get(key), at(key), lo, hi);
  }
  double number(StringRef key) const { return r.number(get(key), at(key)); }
  bool boolean(StringRef key) const { return r.boolean(get(key), at(key)); }
  std::string string(StringRef key) const {
    return r.string(get(key), at(key));
  }
  std::string identifier(StringRef key) const {
    return r.identifier(get(key), at(key));
  }
  template <size_t N>
  int oneOf(StringRef key, const StringLiteral (&names)[N],
            StringRef what) const {
    return r.oneOf(get(key), at(key), names, what);
  }
  /// Calls `each(element, path)` for the entries of array `key`.
  void forEach(StringRef key,
               llvm::function_ref<void(const json::Value &, std::string)> each,
               size_t minSize = 0, size_t maxSize = kMaxItems) const {
    const json::Array *a = r.array(get(key), at(key), minSize, maxSize);
    if (!a)
      return;
    for (auto [i, v] : llvm::enumerate(*a)) {
      if (r.failed())
        return;
      each(v, at(key) + "[" + std::to_string(i) + "]");
    }
  }
};

std::string quoted(StringRef s) { return ("'" + s + "'").str(); }

/// Why `a` (of role `role`) is not a valid argument; "" when it is.
std::string argProblem(const Arg &a, ArgRole role) {
  bool tensor = a.kind != ArgKind::Scalar;
  std::string name = quoted(a.name);
  if (isTensorRole(role) != tensor)
    return "argument " + name + " is " + (tensor ? "a scalar" : "a tensor") +
           " but passed as " + stringify(a.kind).str();
  if (!tensor)
    return a.elem.empty() && a.rank == 0
               ? ""
               : "scalar " + name + " has an element type or rank";
  if (!llvm::is_contained(kDtypes, a.elem))
    return "unknown element type " + quoted(a.elem) + " of " + name;
  if (a.rank < 1)
    return "tensor " + name + " needs rank >= 1";
  if (a.kind == ArgKind::MemrefF32 && (a.elem != "f32" || a.rank != 1))
    return "memref_f32 " + name + " must be f32 of rank 1";
  if (a.kind != ArgKind::TensorMap)
    return "";
  if (role != ArgRole::Query && role != ArgRole::Key && role != ArgRole::Value)
    return "only q, k and v are passed as tensor maps, not " + name;
  if (a.rank != 4 || !llvm::is_contained(kKernelDtypes, a.elem))
    return "tensor map " + name + " must be bf16 or f16 of rank 4";
  return "";
}

Arg parseArg(Reader &r, const json::Value &v, const std::string &path) {
  Obj o(r, &v, path);
  Arg a;
  a.name = o.identifier("name");
  a.kind = ArgKind(o.oneOf("kind", kArgKinds, "argument kind"));
  a.elem = o.string("elem");
  a.rank = o.integer("rank", 0, kMaxRank);
  if (a.kind == ArgKind::TensorMap)
    a.boxRows = o.integer("box_rows", 1, kMaxBoxRows);
  if (r.failed())
    return a;
  std::optional<ArgRole> role = argRole(a.name);
  if (!role)
    r.fail(o.at("name"), "unknown argument role " + quoted(a.name));
  else if (std::string problem = argProblem(a, *role); !problem.empty())
    r.fail(path, problem);
  return a;
}

/// A launch in `o`: see writeLaunch.
Launch parseLaunch(const Obj &o, StringRef nameKey, StringRef smemKey) {
  Reader &r = o.r;
  Launch l;
  if (!nameKey.empty())
    l.kernel = o.identifier(nameKey);
  size_t i = 0;
  o.forEach(
      "grid",
      [&](const json::Value &v, std::string p) {
        l.grid[i++] = r.size(&v, p, 1, kMaxGrid);
      },
      3, 3);
  i = 0;
  o.forEach(
      "block",
      [&](const json::Value &v, std::string p) {
        l.block[i++] = r.integer(&v, p, 1, kMaxThreads);
      },
      3, 3);
  if (!r.failed() && l.block[0] * l.block[1] * l.block[2] > kMaxThreads)
    r.fail(o.at("block"),
           "more than " + Twine(kMaxThreads) + " threads per block");
  if (!smemKey.empty())
    l.dynamicSharedBytes = o.integer(smemKey, 0, kMaxShared);
  llvm::StringSet<> names;
  o.forEach("args", [&](const json::Value &v, std::string p) {
    l.args.push_back(parseArg(r, v, p));
    if (!r.failed() && !names.insert(l.args.back().name).second)
      r.fail(p, "argument " + quoted(l.args.back().name) + " appears twice");
  });
  return l;
}

/// `launch_order` of `o`, if present, must name `want` in order.
void checkLaunchOrder(const Obj &o, llvm::ArrayRef<std::string> want) {
  if (!o.has("launch_order"))
    return;
  std::vector<std::string> got;
  o.forEach("launch_order", [&](const json::Value &v, std::string p) {
    got.push_back(o.r.identifier(&v, p));
  });
  if (!o.r.failed() && llvm::ArrayRef<std::string>(got) != want)
    o.r.fail(o.at("launch_order"),
             "does not match the kernel's launches (expected " +
                 llvm::join(want, ", ") + ")");
}

/// The fields an attention kernel and its backward share (writeShape).
template <typename K> void parseShape(const Obj &o, K &a) {
  a.dtype = kKernelDtypes[o.oneOf("dtype", kKernelDtypes, "dtype")];
  a.headDim = o.integer("head_dim", 1, kMaxDim);
  a.valueDim = o.integer("value_dim", 1, kMaxDim);
  a.headsQ = o.integer("heads_q", 1, kMaxHeads);
  a.headsKv = o.integer("heads_kv", 1, kMaxHeads);
  a.scale = o.number("scale");
  a.blockQ = o.integer("block_q", 1, kMaxThreads);
  a.blockKv = o.integer("block_kv", 1, kMaxThreads);
  a.maskKind = kMaskKinds[o.oneOf("mask_kind", kMaskKinds, "mask kind")];
}

/// A block map: its slices and the map kernel's launch.
BlockMap parseBlockMap(const Obj &m) {
  BlockMap bm;
  bm.slices = MapSlices(m.oneOf("slices", kSlices, "block-map slices"));
  bm.launch = parseLaunch(m, "kernel", "");
  return bm;
}

/// A split-KV form: its tiles, its query limit and its two launches.
SplitKv parseSplitKv(const Obj &o) {
  SplitKv sk;
  sk.blockRows = o.integer("block_rows", 16, kMaxThreads);
  sk.blockKv = o.integer("block_kv", 16, kMaxThreads);
  sk.maxQueries = o.integer("max_queries", 1, kMaxExtent);
  sk.partial = parseLaunch(o.object("partial"), "kernel", "dynamic_smem");
  sk.combine = parseLaunch(o.object("combine"), "kernel", "dynamic_smem");
  return sk;
}

void parseAttention(const Obj &o, StringRef name, AttentionKernel &a) {
  Reader &r = o.r;
  parseShape(o, a);
  a.lse = o.boolean("lse");
  a.variant = Variant(o.oneOf("variant", kVariants, "kernel variant"));
  a.sharedBytes = o.integer("shared_bytes", 0, kMaxShared);
  if (o.has("fallback"))
    a.fallback = o.string("fallback");
  a.main = parseLaunch(o, "", "dynamic_shared_bytes");
  a.main.kernel = name.str();
  if (!r.failed() && !o.get("block_map"))
    r.fail(o.at("block_map"), "missing field (null when there is none)");
  if (o.has("block_map"))
    a.blockMap = parseBlockMap(o.object("block_map"));
  if (o.has("split_kv"))
    a.splitKv = parseSplitKv(o.object("split_kv"));
  // The page table and the sinks name capture arguments of the main kernel.
  auto isCapture = [&](const std::string &name) {
    return llvm::any_of(a.main.args, [&](const Arg &arg) {
      return arg.name == name && argRole(arg.name) == ArgRole::Capture;
    });
  };
  if (o.has("paged")) {
    Obj paged = o.object("paged");
    a.pageSize = paged.integer("page_size", 1, kMaxExtent);
    a.pageTable = paged.string("table");
    if (!r.failed() && !isCapture(a.pageTable))
      return r.fail(paged.at("table"),
                    "names no capture argument of " + quoted(a.main.kernel));
  }
  if (o.has("sinks")) {
    a.sinks = o.string("sinks");
    if (!r.failed() && !isCapture(a.sinks))
      return r.fail(o.at("sinks"),
                    "names no capture argument of " + quoted(a.main.kernel));
  }
  if (o.has("varlen")) {
    Obj v = o.object("varlen");
    a.cuSeqlensQ = v.string("cu_seqlens_q");
    a.cuSeqlensK = v.string("cu_seqlens_k");
    std::pair<const char *, const std::string *> fields[] = {
        {"cu_seqlens_q", &a.cuSeqlensQ}, {"cu_seqlens_k", &a.cuSeqlensK}};
    for (auto [key, name] : fields)
      if (!r.failed() && !isCapture(*name))
        return r.fail(v.at(key),
                      "names no capture argument of " + quoted(a.main.kernel));
  }
  if (r.failed())
    return;
  for (const Arg &arg : a.main.args)
    if (arg.kind == ArgKind::TensorMap && a.variant != Variant::Wgmma)
      return r.fail(o.path, "tensor map " + quoted(arg.name) +
                                " in an mma_sync kernel");
  if (a.variant == Variant::MmaSync && a.main.dynamicSharedBytes != 0)
    return r.fail(o.at("dynamic_shared_bytes"),
                  "an mma_sync kernel uses static shared memory only");
  std::vector<std::string> order;
  if (a.blockMap)
    order.push_back(a.blockMap->launch.kernel);
  order.push_back(a.main.kernel);
  checkLaunchOrder(o, order);
}

/// Why the arguments of `l`, a launch of an attention backward with
/// `captures` captures and `grads` capture gradients, do not fit it ("":
/// they do): every capture<i> and dcapture<i> below those counts, no
/// others, and no tensor maps.
std::string gradArgsProblem(const Launch &l, int64_t captures, int64_t grads) {
  int64_t seenCaptures = 0, seenGrads = 0;
  for (const Arg &a : l.args) {
    if (a.kind == ArgKind::TensorMap)
      return "tensor map " + quoted(a.name) + " in an attention_grad kernel";
    std::optional<ArgRole> role = argRole(a.name);
    if (role == ArgRole::Capture)
      ++seenCaptures;
    else if (role == ArgRole::CaptureGrad)
      ++seenGrads;
    else
      continue;
    StringRef index = StringRef(a.name).drop_until(llvm::isDigit);
    int64_t limit = role == ArgRole::Capture ? captures : grads;
    if (unsigned i; index.getAsInteger(10, i) || i >= limit)
      return "argument " + quoted(a.name) + " beyond the kernel's " +
             std::to_string(limit) +
             (role == ArgRole::Capture ? " captures" : " capture gradients");
  }
  if (seenCaptures != captures || seenGrads != grads)
    return "has " + std::to_string(seenCaptures) + " capture and " +
           std::to_string(seenGrads) + " capture-gradient arguments for " +
           std::to_string(captures) + " and " + std::to_string(grads);
  return "";
}

void parseAttentionGrad(const Obj &o, AttentionGradKernel &g) {
  Reader &r = o.r;
  parseShape(o, g);
  g.captures = o.integer("captures", 0, kMaxItems);
  g.captureGrads = o.integer("capture_grads", 0, g.captures);
  g.dq = parseLaunch(o.object("dq"), "kernel", "dynamic_smem");
  g.dkdv = parseLaunch(o.object("dkdv"), "kernel", "dynamic_smem");
  if (o.has("block_map"))
    g.blockMap = parseBlockMap(o.object("block_map"));
  if (r.failed())
    return;
  for (auto [key, l] :
       {std::pair<StringRef, const Launch *>{"dq", &g.dq}, {"dkdv", &g.dkdv}})
    if (std::string p = gradArgsProblem(*l, g.captures, g.captureGrads);
        !p.empty())
      return r.fail(o.at(key), p);
  std::vector<std::string> order;
  if (g.blockMap)
    order.push_back(g.blockMap->launch.kernel);
  order.push_back(g.dq.kernel);
  order.push_back(g.dkdv.kernel);
  checkLaunchOrder(o, order);
}

Buffer parseBuffer(Reader &r, const json::Value &v, const std::string &path) {
  Obj o(r, &v, path);
  Buffer b;
  b.name = o.identifier("name");
  b.dtype = kDtypes[o.oneOf("dtype", kDtypes, "dtype")];
  o.forEach(
      "shape",
      [&](const json::Value &d, std::string p) {
        b.shape.push_back(r.size(&d, p, -1, kMaxExtent));
      },
      0, kMaxRank);
  return b;
}

std::vector<Buffer> parseBuffers(const Obj &o, StringRef key) {
  std::vector<Buffer> out;
  if (o.has(key))
    o.forEach(key, [&](const json::Value &v, std::string p) {
      out.push_back(parseBuffer(o.r, v, p));
    });
  return out;
}

/// The scratch: {name, dtype f32, elements "<factor> * <factor> ..."}.
Buffer parseScratch(const Obj &s) {
  Buffer b;
  b.name = s.identifier("name");
  b.dtype = s.string("dtype");
  std::string elements = s.string("elements");
  if (s.r.failed())
    return b;
  if (b.name != "scratch" || b.dtype != "f32")
    s.r.fail(s.path, "the scratch is an f32 buffer named 'scratch'");
  llvm::SmallVector<StringRef> factors;
  StringRef(elements).split(factors, '*');
  if (factors.size() > size_t(kMaxRank))
    s.r.fail(s.at("elements"), "more than " + Twine(kMaxRank) + " factors");
  for (StringRef f : factors)
    b.shape.push_back(s.r.sizeText(f, s.at("elements"), 0, kMaxExtent));
  return b;
}

LinearKernel parseLinear(const Obj &o) {
  Reader &r = o.r;
  LinearKernel k;
  k.dtype = kKernelDtypes[o.oneOf("dtype", kKernelDtypes, "dtype")];
  k.heads = o.integer("H", 1, kMaxHeads);
  k.headsKv = o.integer("Hkv", 1, kMaxHeads);
  k.headDim = o.integer("D", 1, kMaxDim);
  k.valueDim = o.integer("Dv", 1, kMaxDim);
  k.featureDim = o.integer("F", 1, kMaxDim);
  k.chunk = o.integer("chunk", 1, kMaxThreads);
  k.dvSlice = o.integer("dv_slice", 1, kMaxDim);
  k.decay = Decay(o.oneOf("decay", kDecays, "decay"));
  k.causal = o.boolean("causal");
  k.normalize = o.boolean("normalize");
  k.scale = o.number("scale");
  k.main = parseLaunch(o, "kernel", "dynamic_smem");
  if (o.has("scratch"))
    k.scratch = parseScratch(o.object("scratch"));
  k.captures = parseBuffers(o, "captures");
  k.workspace = parseBuffers(o, "workspace");
  if (o.has("feature_kernel"))
    k.featureKernel =
        parseLaunch(o.object("feature_kernel"), "kernel", "dynamic_smem");
  if (r.failed())
    return k;
  if (k.valueDim % k.dvSlice)
    r.fail(o.at("dv_slice"), "does not divide Dv = " + Twine(k.valueDim));
  else if (k.featureKernel.has_value() != !k.workspace.empty())
    r.fail(o.path, "a feature kernel and its workspace come together");
  std::vector<std::string> order;
  if (k.featureKernel)
    order.push_back(k.featureKernel->kernel);
  order.push_back(k.main.kernel);
  checkLaunchOrder(o, order);
  return k;
}

Param parseParam(Reader &r, const json::Value &v, const std::string &path) {
  Obj o(r, &v, path);
  Param p;
  p.name = o.string("name");
  p.dtype = kDtypes[o.oneOf("dtype", kDtypes, "dtype")];
  o.forEach(
      "shape",
      [&](const json::Value &d, std::string dp) {
        p.shape.push_back(r.integer(&d, dp, -1, kMaxExtent));
      },
      0, kMaxRank);
  return p;
}

/// Tuples of `N` integers in `key`; (input, dim) pairs at `pairs` (the
/// indices of their first entries) must name dims of `inputs`, the other
/// entries are in [lo, kMaxExtent].
template <size_t N>
std::vector<std::array<int64_t, N>>
parseTuples(const Obj &o, StringRef key, llvm::ArrayRef<Param> inputs,
            llvm::ArrayRef<size_t> pairs, int64_t lo) {
  Reader &r = o.r;
  std::vector<std::array<int64_t, N>> out;
  o.forEach(key, [&](const json::Value &v, std::string p) {
    const json::Array *a = r.array(&v, p, N, N);
    if (!a)
      return;
    std::array<int64_t, N> t{};
    for (size_t i = 0; i < N; ++i) {
      std::string ip = p + "[" + std::to_string(i) + "]";
      if (llvm::is_contained(pairs, i)) {
        t[i] = r.integer(&(*a)[i], ip, 0, int64_t(inputs.size()) - 1);
        if (r.failed())
          return;
        t[i + 1] =
            r.integer(&(*a)[i + 1], p + "[" + std::to_string(i + 1) + "]", 0,
                      int64_t(inputs[t[i]].shape.size()) - 1);
        ++i;
      } else {
        t[i] = r.integer(&(*a)[i], ip, lo, kMaxExtent);
      }
    }
    out.push_back(t);
  });
  return out;
}

Signature parseSignature(const Obj &o) {
  Reader &r = o.r;
  Signature s;
  auto params = [&](StringRef key, std::vector<Param> &dst) {
    o.forEach(key, [&](const json::Value &v, std::string p) {
      dst.push_back(parseParam(r, v, p));
    });
  };
  params("inputs", s.inputs);
  params("outputs", s.outputs);
  o.forEach("input_names", [&](const json::Value &v, std::string p) {
    s.inputNames.push_back(r.identifier(&v, p));
  });
  o.forEach("const_decay", [&](const json::Value &v, std::string p) {
    s.constDecay.push_back(r.number(&v, p));
  });
  if (!r.failed() && s.inputNames.size() != s.inputs.size())
    r.fail(o.at("input_names"), "has " + Twine(s.inputNames.size()) +
                                    " names for " + Twine(s.inputs.size()) +
                                    " inputs");
  Obj c = o.object("checks");
  c.forEach("log_gates", [&](const json::Value &v, std::string p) {
    s.checks.logGates.push_back(
        r.integer(&v, p, 0, int64_t(s.inputs.size()) - 1));
  });
  s.checks.lengths = parseTuples<3>(c, "lengths", s.inputs, {0}, 0);
  s.checks.equalDims = parseTuples<4>(c, "equal_dims", s.inputs, {0, 2}, 0);
  s.checks.minExtents = parseTuples<5>(c, "min_extents", s.inputs, {0, 2}, 1);
  if (c.has("page_tables"))
    s.checks.pageTables = parseTuples<5>(c, "page_tables", s.inputs, {0, 2}, 1);
  if (c.has("kv_lens"))
    s.checks.kvLens = parseTuples<5>(c, "kv_lens", s.inputs, {0, 2}, 0);
  if (c.has("cu_seqlens"))
    s.checks.cuSeqlens = parseTuples<4>(c, "cu_seqlens", s.inputs, {0, 2}, 0);
  if (c.has("per_sequence"))
    s.checks.perSequence =
        parseTuples<4>(c, "per_sequence", s.inputs, {0, 2}, 0);
  return s;
}

/// A kernel's record; `needSignature`: as a manifest holds it (elementwise
/// and backward kernels with their signatures), not as a code generator
/// writes it (the signature comes from the spec function later).
Kernel parseKernel(Reader &r, const json::Value &v, const std::string &path,
                   bool needSignature = true) {
  Obj o(r, &v, path);
  Kernel k;
  k.name = o.identifier("name");
  k.kind = KernelKind(o.oneOf("kind", kKernelKinds, "kernel kind"));
  k.ptxFile = r.fileName(o.get("ptx"), o.at("ptx"));
  if (!r.failed() && !o.get("cubin"))
    r.fail(o.at("cubin"), "missing field (null when there is none)");
  if (o.has("cubin"))
    k.cubinFile = r.fileName(o.get("cubin"), o.at("cubin"));
  if (r.failed())
    return k;
  if (k.kind == KernelKind::Attention)
    parseAttention(o, k.name, k.attention);
  else if (k.kind == KernelKind::Elementwise)
    k.elementwise = parseLaunch(o, "kernel", "");
  else if (k.kind == KernelKind::AttentionGrad)
    parseAttentionGrad(o, k.attentionGrad);
  else
    k.linear = parseLinear(o.object("abi"));
  if (o.has("reductions"))
    o.forEach("reductions", [&](const json::Value &l, std::string p) {
      k.reductions.push_back(
          parseLaunch(Obj(r, &l, p), "kernel", "dynamic_smem"));
    });
  if (o.has("inputs"))
    k.signature = parseSignature(o);
  else if (!r.failed() && needSignature &&
           (k.kind == KernelKind::Elementwise ||
            k.kind == KernelKind::AttentionGrad))
    r.fail(o.at("inputs"), "missing field (an " + stringify(k.kind) +
                               " kernel records its signature)");
  return k;
}
} // namespace

llvm::Expected<LinearKernel>
attnc::abi::parseLinearKernel(const json::Value &json) {
  Reader r;
  LinearKernel k = parseLinear(Obj(r, &json, "abi"));
  if (llvm::Error e = r.takeError())
    return std::move(e);
  return k;
}

llvm::Expected<Kernel> attnc::abi::parseKernel(const json::Value &json) {
  Reader r;
  Kernel k = parseKernel(r, json, "kernel", /*needSignature=*/false);
  if (llvm::Error e = r.takeError())
    return std::move(e);
  return k;
}

llvm::Expected<Signature> attnc::abi::parseSignature(const json::Value &json) {
  Reader r;
  Signature s = parseSignature(Obj(r, &json, "signature"));
  if (llvm::Error e = r.takeError())
    return std::move(e);
  return s;
}

llvm::Expected<KernelSet> attnc::abi::parseKernelSet(const json::Value &json) {
  Reader r;
  Obj o(r, &json, "manifest");
  KernelSet set;
  if (o.o && !o.get("schema_version"))
    r.fail(o.at("schema_version"),
           "missing field (the manifest predates schema versions; rebuild "
           "it with this attnc)");
  set.schemaVersion = o.integer("schema_version", 0, kMaxGrid);
  if (!r.failed() && set.schemaVersion != kSchemaVersion)
    r.fail(o.at("schema_version"),
           "unsupported version " + Twine(set.schemaVersion) +
               " (this attnc reads version " + Twine(kSchemaVersion) + ")");
  set.generator = kGenerators[o.oneOf("generator", kGenerators, "generator")];
  set.target = kTargets[o.oneOf("target", kTargets, "target")];
  llvm::StringSet<> names;
  o.forEach(
      "kernels",
      [&](const json::Value &v, std::string p) {
        set.kernels.push_back(parseKernel(r, v, p));
        if (!r.failed() && !names.insert(set.kernels.back().name).second)
          r.fail(p, "kernel " + quoted(set.kernels.back().name) +
                        " appears twice");
      },
      1);
  if (llvm::Error e = r.takeError())
    return std::move(e);
  return set;
}

llvm::Expected<KernelSet> attnc::abi::parseKernelSetText(StringRef text) {
  llvm::Expected<json::Value> v = json::parse(text);
  if (!v)
    return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                   "manifest: not JSON: " +
                                       llvm::toString(v.takeError()));
  return parseKernelSet(*v);
}
