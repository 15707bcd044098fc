//===- TensorChecks.cpp - checking tensors against a kernel's signature ---===//
//
// Part of attnc. Every launch checks shapes, dtypes and strides against the
// kernel's signature before anything runs.
//
//===----------------------------------------------------------------------===//

#include "attnc/Abi/TensorChecks.h"

#include "llvm/ADT/StringExtras.h"

#include <cmath>

using namespace attnc;
using llvm::ArrayRef;
using llvm::StringRef;

llvm::Error attnc::makeError(const llvm::Twine &msg) {
  return llvm::createStringError(llvm::inconvertibleErrorCode(), msg);
}

StringRef attnc::dtypeName(DType t) {
  switch (t) {
  case DType::F32:
    return "f32";
  case DType::F16:
    return "f16";
  case DType::BF16:
    return "bf16";
  case DType::I1:
    return "i1";
  case DType::I8:
    return "i8";
  case DType::I32:
    return "i32";
  case DType::I64:
    return "i64";
  }
  return "?";
}

int64_t attnc::dtypeSize(DType t) {
  switch (t) {
  case DType::F32:
  case DType::I32:
    return 4;
  case DType::F16:
  case DType::BF16:
    return 2;
  case DType::I1:
  case DType::I8:
    return 1;
  case DType::I64:
    return 8;
  }
  return 0;
}

llvm::Expected<DType> attnc::dtypeFromName(StringRef name) {
  for (DType t : {DType::F32, DType::F16, DType::BF16, DType::I1, DType::I8,
                  DType::I32, DType::I64})
    if (dtypeName(t) == name)
      return t;
  return makeError("unsupported element type '" + name + "'");
}

llvm::json::Array attnc::paramsJson(ArrayRef<ParamInfo> params) {
  llvm::json::Array a;
  for (const ParamInfo &p : params) {
    llvm::json::Array shape;
    for (int64_t d : p.shape)
      shape.push_back(d);
    a.push_back(llvm::json::Object{{"name", p.name},
                                   {"dtype", dtypeName(p.dtype)},
                                   {"shape", std::move(shape)}});
  }
  return a;
}

std::string attnc::shapeStr(ArrayRef<int64_t> shape) {
  std::string s = "[";
  for (auto [i, d] : llvm::enumerate(shape))
    s += (i ? ", " : "") + (d < 0 ? std::string("?") : std::to_string(d));
  return s + "]";
}

llvm::SmallVector<int64_t, 4>
attnc::contiguousStrides(ArrayRef<int64_t> shape) {
  llvm::SmallVector<int64_t, 4> st(shape.size(), 1);
  for (int i = int(shape.size()) - 2; i >= 0; --i)
    st[i] = st[i + 1] * std::max<int64_t>(shape[i + 1], 1);
  return st;
}

llvm::SmallVector<int64_t, 4> attnc::stridesOf(const TensorRef &t) {
  return t.strides.empty() ? contiguousStrides(t.shape) : t.strides;
}

/// Checks `t` against `p`: dtype, rank, static dims, non-negative sizes,
/// strides of the right rank.
llvm::Error attnc::checkParam(StringRef kernel, StringRef role,
                              const ParamInfo &p, const TensorRef &t) {
  std::string what = (kernel + ": " + role + " '" + p.name + "'").str();
  if (t.dtype != p.dtype)
    return makeError(what + " must be " + dtypeName(p.dtype) + ", got " +
                     dtypeName(t.dtype));
  if (t.shape.size() != p.shape.size())
    return makeError(what + " must have rank " + llvm::Twine(p.shape.size()) +
                     " " + shapeStr(p.shape) + ", got " + shapeStr(t.shape));
  for (auto [want, got] : llvm::zip(p.shape, t.shape)) {
    if (got < 0)
      return makeError(what + " has a negative size: " + shapeStr(t.shape));
    if (want >= 0 && want != got)
      return makeError(what + " must have shape " + shapeStr(p.shape) +
                       ", got " + shapeStr(t.shape));
  }
  if (!t.strides.empty() && t.strides.size() != t.shape.size())
    return makeError(what + " has " + llvm::Twine(t.strides.size()) +
                     " strides for rank " + llvm::Twine(t.shape.size()));
  bool empty = llvm::any_of(t.shape, [](int64_t d) { return d == 0; });
  if (!t.data && !empty)
    return makeError(what + " is a null pointer");
  return llvm::Error::success();
}

llvm::Error attnc::checkCounts(const KernelSignature &sig, size_t nin,
                               size_t nout) {
  if (nin != sig.inputs.size() || nout != sig.outputs.size())
    return makeError(sig.name + ": expected " + llvm::Twine(sig.inputs.size()) +
                     " input(s) and " + llvm::Twine(sig.outputs.size()) +
                     " output(s), got " + llvm::Twine(nin) + " and " +
                     llvm::Twine(nout));
  return llvm::Error::success();
}

llvm::Error attnc::checkSignature(const KernelSignature &sig,
                                  ArrayRef<TensorRef> inputs,
                                  ArrayRef<TensorRef> outputs) {
  if (llvm::Error e = checkCounts(sig, inputs.size(), outputs.size()))
    return e;
  for (auto [p, t] : llvm::zip(sig.inputs, inputs))
    if (llvm::Error e = checkParam(sig.name, "input", p, t))
      return e;
  for (auto [p, t] : llvm::zip(sig.outputs, outputs))
    if (llvm::Error e = checkParam(sig.name, "output", p, t))
      return e;
  return llvm::Error::success();
}

/// For q, k, v, o (and lse): equal batch sizes, equal k/v lengths, o of
/// shape [B, Hq, Nq, Dv].
llvm::Error attnc::checkAttentionShapes(const KernelSignature &sig,
                                        ArrayRef<TensorRef> in,
                                        ArrayRef<TensorRef> out,
                                        PagedKv paged) {
  const auto &q = in[0].shape, &k = in[1].shape, &v = in[2].shape;
  if (q.size() != 4 || k.size() != 4 || v.size() != 4)
    return llvm::Error::success();
  if (paged) {
    if (size_t(paged.input) >= in.size())
      return makeError(sig.name + ": no page table among the " +
                       llvm::Twine(in.size()) + " inputs");
    const auto &table = in[paged.input].shape;
    if (v[0] != k[0] || v[2] != k[2])
      return makeError(sig.name + ": the k and v page pools differ: k " +
                       shapeStr(k) + ", v " + shapeStr(v));
    if (table.size() != 2 || table[0] != q[0])
      return makeError(sig.name + ": the page table " + shapeStr(table) +
                       " needs one row per batch (" + llvm::Twine(q[0]) + ")");
  } else if (k[0] != q[0] || v[0] != q[0])
    return makeError(sig.name + ": batch sizes differ: q " + llvm::Twine(q[0]) +
                     ", k " + llvm::Twine(k[0]) + ", v " + llvm::Twine(v[0]));
  if (!paged && v[2] != k[2])
    return makeError(sig.name + ": k and v sequence lengths differ: " +
                     llvm::Twine(k[2]) + " vs " + llvm::Twine(v[2]));
  llvm::SmallVector<int64_t, 4> oShape = {q[0], q[1], q[2], v[3]};
  if (out[0].shape != ArrayRef<int64_t>(oShape))
    return makeError(sig.name + ": o must have shape " + shapeStr(oShape) +
                     ", got " + shapeStr(out[0].shape));
  if (out.size() > 1) {
    llvm::SmallVector<int64_t, 3> lShape = {q[0], q[1], q[2]};
    if (out[1].shape != ArrayRef<int64_t>(lShape))
      return makeError(sig.name + ": lse must have shape " + shapeStr(lShape) +
                       ", got " + shapeStr(out[1].shape));
  }
  return llvm::Error::success();
}

int64_t attnc::attentionKeys(ArrayRef<TensorRef> inputs, PagedKv paged) {
  if (!paged)
    return inputs[1].shape[2];
  return inputs[paged.input].shape[1] * paged.pageSize;
}

int64_t InputChecks::extentOf(ArrayRef<TensorRef> inputs, unsigned in,
                              unsigned dim) const {
  int64_t size = inputs[in].shape[dim];
  for (const PageTable &pt : pageTables)
    if (pt.table == in && dim == 1)
      return size * pt.pageSize;
  return size;
}

/// Every entry of a block table names a page of the pool.
static llvm::Error checkPageTable(const KernelSignature &sig,
                                  const InputChecks::PageTable &pt,
                                  ArrayRef<TensorRef> inputs) {
  const TensorRef &t = inputs[pt.table];
  if (t.dtype != DType::I32 || t.shape.size() != 2)
    return llvm::Error::success();
  int64_t pages = inputs[pt.pool].shape[0];
  auto st = stridesOf(t);
  const int32_t *data = static_cast<const int32_t *>(t.data);
  for (int64_t r = 0; r < t.shape[0]; ++r)
    for (int64_t c = 0; c < t.shape[1]; ++c) {
      int32_t page = data[r * st[0] + c * st[1]];
      if (page < 0 || page >= pages)
        return makeError(
            sig.name + ": page table '" + sig.inputs[pt.table].name +
            "' entry [" + llvm::Twine(r) + ", " + llvm::Twine(c) + "] is " +
            llvm::Twine(page) + ", outside the " + llvm::Twine(pages) +
            " pages of '" + sig.inputs[pt.pool].name + "'");
    }
  return llvm::Error::success();
}

/// Every per-sequence key count lies in [Nq with queries_at_end, else 0,
/// Nk].
static llvm::Error checkKvLens(const KernelSignature &sig,
                               const InputChecks &checks,
                               const InputChecks::KvLens &kl,
                               ArrayRef<TensorRef> inputs) {
  const TensorRef &t = inputs[kl.lens];
  if (t.dtype != DType::I32 || t.shape.size() != 1)
    return llvm::Error::success();
  int64_t nk = checks.extentOf(inputs, kl.keys, kl.keysDim);
  int64_t nq = kl.atEnd ? inputs[0].shape[2] : 0;
  int64_t stride = stridesOf(t)[0];
  const int32_t *data = static_cast<const int32_t *>(t.data);
  for (int64_t b = 0; b < t.shape[0]; ++b) {
    int64_t n = data[b * stride];
    if (n >= nq && n <= nk)
      continue;
    std::string why =
        n > nk ? "more than the " + std::to_string(nk) + " keys"
        : n < 0
            ? std::string("negative")
            : "fewer than the " + std::to_string(nq) +
                  " queries (queries_at_end puts them at the last positions)";
    return makeError(sig.name + ": kv_lens '" + sig.inputs[kl.lens].name +
                     "' entry [" + llvm::Twine(b) + "] is " + llvm::Twine(n) +
                     ", " + why);
  }
  return llvm::Error::success();
}

/// Packed sequences' offsets start at 0, never decrease and stay within
/// the packed tokens.
static llvm::Error checkCuSeqlens(const KernelSignature &sig,
                                  const InputChecks::CuSeqlens &cs,
                                  ArrayRef<TensorRef> inputs) {
  const TensorRef &t = inputs[cs.offsets];
  if (t.dtype != DType::I32 || t.shape.size() != 1 || t.shape[0] == 0)
    return llvm::Error::success();
  int64_t tokens = inputs[cs.tokens].shape[cs.tokensDim];
  int64_t stride = stridesOf(t)[0];
  const int32_t *data = static_cast<const int32_t *>(t.data);
  auto fail = [&](int64_t i, const llvm::Twine &why) {
    return makeError(sig.name + ": cu_seqlens '" + sig.inputs[cs.offsets].name +
                     "' entry [" + llvm::Twine(i) + "] is " +
                     llvm::Twine(data[i * stride]) + ", " + why);
  };
  if (data[0] != 0)
    return fail(0, "not 0 (the first sequence starts at token 0)");
  for (int64_t i = 1; i < t.shape[0]; ++i) {
    int64_t at = data[i * stride], prev = data[(i - 1) * stride];
    if (at < prev)
      return fail(i, "below entry [" + llvm::Twine(i - 1) + "] (" +
                         llvm::Twine(prev) + "): offsets must not decrease");
    if (at > tokens)
      return fail(i, "past the " + llvm::Twine(tokens) + " packed tokens of '" +
                         sig.inputs[cs.tokens].name + "'");
  }
  return llvm::Error::success();
}

llvm::Error attnc::checkInputValues(const KernelSignature &sig,
                                    const InputChecks &checks,
                                    ArrayRef<TensorRef> inputs, bool host) {
  for (const std::array<unsigned, 4> &eq : checks.equalDims) {
    int64_t x = inputs[eq[0]].shape[eq[1]], y = inputs[eq[2]].shape[eq[3]];
    if (x != y)
      return makeError(sig.name + ": input '" + sig.inputs[eq[0]].name +
                       "' has size " + llvm::Twine(x) + " in dim " +
                       llvm::Twine(eq[1]) + " but input '" +
                       sig.inputs[eq[2]].name + "' has " + llvm::Twine(y) +
                       " in dim " + llvm::Twine(eq[3]) + "; they must match");
  }
  for (const InputChecks::MinExtent &m : checks.minExtents) {
    int64_t ref = checks.extentOf(inputs, m.refInput, m.refDim);
    int64_t need = (ref + m.divisor - 1) / m.divisor;
    int64_t have = inputs[m.input].shape[m.dim];
    if (have < need && m.dim == 1 &&
        llvm::any_of(checks.pageTables, [&](const InputChecks::PageTable &p) {
          return p.table == m.input;
        }))
      return makeError(
          sig.name + ": page table '" + sig.inputs[m.input].name + "' holds " +
          llvm::Twine(have) + " pages (" + llvm::Twine(have * m.divisor) +
          " keys) per sequence, fewer than the " + llvm::Twine(ref) +
          " queries (queries_at_end puts them at the last key "
          "positions)");
    if (have < need)
      return makeError(
          sig.name + ": input '" + sig.inputs[m.input].name + "' has " +
          llvm::Twine(have) + " elements in dim " + llvm::Twine(m.dim) +
          ", but the spec indexes it up to " + llvm::Twine(need - 1) +
          " (from input '" + sig.inputs[m.refInput].name + "' dim " +
          llvm::Twine(m.refDim) + " = " + llvm::Twine(ref) +
          (m.divisor > 1 ? " / " + std::to_string(m.divisor) : std::string()) +
          ")");
  }
  for (const InputChecks::PerSequence &ps : checks.perSequence) {
    int64_t need = inputs[ps.offsets].shape[0] - 1;
    int64_t have = inputs[ps.input].shape[ps.dim];
    if (have < need)
      return makeError(sig.name + ": input '" + sig.inputs[ps.input].name +
                       "' has " + llvm::Twine(have) + " elements in dim " +
                       llvm::Twine(ps.dim) +
                       ", but the spec reads it per packed sequence, and "
                       "cu_seqlens '" +
                       sig.inputs[ps.offsets].name + "' holds " +
                       llvm::Twine(need) + " sequences");
  }
  for (auto [in, dim, len] : checks.lengths)
    if (inputs[in].shape[dim] != len)
      return makeError(sig.name + ": the token order of '" + sig.name +
                       "' is for sequences of " + llvm::Twine(len) +
                       " tokens, got " + llvm::Twine(inputs[in].shape[dim]));
  if (!host)
    return llvm::Error::success();
  for (const InputChecks::PageTable &pt : checks.pageTables)
    if (llvm::Error e = checkPageTable(sig, pt, inputs))
      return e;
  for (const InputChecks::KvLens &kl : checks.kvLens)
    if (llvm::Error e = checkKvLens(sig, checks, kl, inputs))
      return e;
  for (const InputChecks::CuSeqlens &cs : checks.cuSeqlens)
    if (llvm::Error e = checkCuSeqlens(sig, cs, inputs))
      return e;
  for (unsigned in : checks.logGates) {
    const TensorRef &t = inputs[in];
    if (t.dtype != DType::F32)
      continue;
    int64_t n = 1;
    for (int64_t d : t.shape)
      n *= d;
    const float *g = static_cast<const float *>(t.data);
    for (int64_t i = 0; i < n; ++i)
      if (!(g[i] <= 0.0f) || !std::isfinite(g[i]))
        return makeError(sig.name + ": input '" + sig.inputs[in].name +
                         "' holds log-gates of a decay, which must be finite "
                         "and <= 0 (the decay is exp(g)); element " +
                         llvm::Twine(i) + " is " + std::to_string(g[i]));
  }
  return llvm::Error::success();
}

abi::ValueChecks attnc::abiChecks(const InputChecks &c) {
  abi::ValueChecks out;
  for (unsigned g : c.logGates)
    out.logGates.push_back(g);
  for (auto [in, dim, len] : c.lengths)
    out.lengths.push_back({in, dim, len});
  for (const std::array<unsigned, 4> &eq : c.equalDims)
    out.equalDims.push_back({eq[0], eq[1], eq[2], eq[3]});
  for (const InputChecks::MinExtent &m : c.minExtents)
    out.minExtents.push_back({m.input, m.dim, m.refInput, m.refDim, m.divisor});
  for (const InputChecks::PageTable &pt : c.pageTables)
    out.pageTables.push_back({pt.table, 1, pt.pool, 0, pt.pageSize});
  for (const InputChecks::KvLens &kl : c.kvLens)
    out.kvLens.push_back({kl.lens, 0, kl.keys, kl.keysDim, kl.atEnd ? 1 : 0});
  for (const InputChecks::CuSeqlens &cs : c.cuSeqlens)
    out.cuSeqlens.push_back({cs.offsets, 0, cs.tokens, cs.tokensDim});
  for (const InputChecks::PerSequence &ps : c.perSequence)
    out.perSequence.push_back({ps.input, ps.dim, ps.offsets, 0});
  return out;
}

/// The ABI's reader has checked that every index names an input and dim.
InputChecks attnc::inputChecksOf(const abi::ValueChecks &c) {
  InputChecks out;
  for (int64_t g : c.logGates)
    out.logGates.push_back(unsigned(g));
  for (const std::array<int64_t, 3> &l : c.lengths)
    out.lengths.push_back({unsigned(l[0]), unsigned(l[1]), l[2]});
  for (const std::array<int64_t, 4> &eq : c.equalDims)
    out.equalDims.push_back(
        {unsigned(eq[0]), unsigned(eq[1]), unsigned(eq[2]), unsigned(eq[3])});
  for (const std::array<int64_t, 5> &m : c.minExtents)
    out.minExtents.push_back(
        {unsigned(m[0]), unsigned(m[1]), unsigned(m[2]), unsigned(m[3]), m[4]});
  for (const std::array<int64_t, 5> &pt : c.pageTables)
    out.pageTables.push_back({unsigned(pt[0]), unsigned(pt[2]), pt[4]});
  for (const std::array<int64_t, 5> &kl : c.kvLens)
    out.kvLens.push_back(
        {unsigned(kl[0]), unsigned(kl[2]), unsigned(kl[3]), kl[4] != 0});
  for (const std::array<int64_t, 4> &cs : c.cuSeqlens)
    out.cuSeqlens.push_back(
        {unsigned(cs[0]), unsigned(cs[2]), unsigned(cs[3])});
  for (const std::array<int64_t, 4> &ps : c.perSequence)
    out.perSequence.push_back(
        {unsigned(ps[0]), unsigned(ps[1]), unsigned(ps[2])});
  return out;
}

abi::Signature attnc::abiSignature(const KernelSignature &sig,
                                   ArrayRef<std::string> inputNames,
                                   ArrayRef<float> constDecay,
                                   const InputChecks &checks) {
  abi::Signature s;
  auto params = [](ArrayRef<ParamInfo> ps, std::vector<abi::Param> &dst) {
    for (const ParamInfo &p : ps)
      dst.push_back({p.name, dtypeName(p.dtype).str(),
                     std::vector<int64_t>(p.shape.begin(), p.shape.end())});
  };
  params(sig.inputs, s.inputs);
  params(sig.outputs, s.outputs);
  s.inputNames.assign(inputNames.begin(), inputNames.end());
  s.constDecay.assign(constDecay.begin(), constDecay.end());
  s.checks = abiChecks(checks);
  return s;
}

llvm::Expected<KernelSignature> attnc::kernelSignature(const abi::Signature &s,
                                                       StringRef name,
                                                       StringRef target) {
  KernelSignature sig;
  sig.name = name.str();
  sig.target = target.str();
  auto params = [](ArrayRef<abi::Param> ps,
                   llvm::SmallVectorImpl<ParamInfo> &dst) -> llvm::Error {
    for (const abi::Param &p : ps) {
      auto dtype = dtypeFromName(p.dtype);
      if (!dtype)
        return dtype.takeError();
      dst.push_back({p.name, *dtype, {p.shape.begin(), p.shape.end()}});
    }
    return llvm::Error::success();
  };
  if (llvm::Error e = params(s.inputs, sig.inputs))
    return std::move(e);
  if (llvm::Error e = params(s.outputs, sig.outputs))
    return std::move(e);
  return sig;
}

KernelSignature attnc::gpuSignature(const abi::Kernel &kernel,
                                    StringRef target) {
  const abi::AttentionKernel &a = kernel.attention;
  KernelSignature s;
  s.name = kernel.name;
  s.target = target.str();
  DType dt = a.dtype == "bf16" ? DType::BF16 : DType::F16;
  s.inputs.push_back({"q", dt, {-1, a.headsQ, -1, a.headDim}});
  s.inputs.push_back({"k", dt, {-1, a.headsKv, -1, a.headDim}});
  s.inputs.push_back({"v", dt, {-1, a.headsKv, -1, a.valueDim}});
  s.outputs.push_back({"o", dt, {-1, a.headsQ, -1, a.valueDim}});
  if (a.lse)
    s.outputs.push_back({"lse", DType::F32, {-1, a.headsQ, -1}});
  for (const abi::Arg &arg : a.main.args)
    if (abi::argRole(arg.name) == abi::ArgRole::Capture) {
      ParamInfo p;
      p.name = arg.name;
      p.dtype = llvm::cantFail(dtypeFromName(arg.elem));
      p.shape.assign(arg.rank, -1);
      s.inputs.push_back(p);
    }
  return s;
}

/// Parameters written by paramsJson.
static llvm::Error paramsOf(const llvm::json::Array *a,
                            llvm::SmallVectorImpl<ParamInfo> &out) {
  if (!a)
    return makeError("the kernel description has no parameter list");
  for (const llvm::json::Value &v : *a) {
    const llvm::json::Object *o = v.getAsObject();
    const llvm::json::Array *shape = o ? o->getArray("shape") : nullptr;
    auto name = o ? o->getString("name") : std::nullopt;
    auto dtype = o ? o->getString("dtype") : std::nullopt;
    if (!shape || !name || !dtype)
      return makeError("a parameter of the kernel description lacks name, "
                       "dtype or shape");
    ParamInfo p;
    p.name = name->str();
    auto dt = dtypeFromName(*dtype);
    if (!dt)
      return dt.takeError();
    p.dtype = *dt;
    for (const llvm::json::Value &d : *shape)
      p.shape.push_back(d.getAsInteger().value_or(-1));
    out.push_back(std::move(p));
  }
  return llvm::Error::success();
}

llvm::Expected<KernelSignature>
attnc::signatureOfInfo(const llvm::json::Value &info, StringRef target) {
  const llvm::json::Object *o = info.getAsObject();
  const llvm::json::Object *s = o ? o->getObject("signature") : nullptr;
  if (!s || !o->getString("name"))
    return makeError("the kernel description has no name or signature");
  KernelSignature sig;
  sig.name = o->getString("name")->str();
  sig.target = target.str();
  if (llvm::Error e = paramsOf(s->getArray("inputs"), sig.inputs))
    return std::move(e);
  if (llvm::Error e = paramsOf(s->getArray("outputs"), sig.outputs))
    return std::move(e);
  return sig;
}
