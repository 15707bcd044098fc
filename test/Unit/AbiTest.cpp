//===- AbiTest.cpp - the kernel-set ABI: round trips and rejections -------===//
//
// Links AttncAbi and LLVMSupport only (no MLIR).
//
//===----------------------------------------------------------------------===//

#include "attnc/Abi/KernelSet.h"

#include "llvm/Support/FormatVariadic.h"

#include <gtest/gtest.h>

using namespace attnc::abi;
namespace json = llvm::json;

namespace {

Arg mem(llvm::StringRef name, llvm::StringRef elem, int64_t rank = 1) {
  return {name.str(), ArgKind::Memref, elem.str(), rank, 0};
}
Arg memF32(llvm::StringRef name) {
  return {name.str(), ArgKind::MemrefF32, "f32", 1, 0};
}
Arg scalar(llvm::StringRef name) {
  return {name.str(), ArgKind::Scalar, "", 0, 0};
}
Arg tensorMap(llvm::StringRef name, int64_t rows) {
  return {name.str(), ArgKind::TensorMap, "f16", 4, rows};
}
std::vector<Arg> scalars(std::initializer_list<const char *> names) {
  std::vector<Arg> out;
  for (const char *n : names)
    out.push_back(scalar(n));
  return out;
}

/// An attention kernel as attn-aot writes it: mma_sync, or wgmma with tensor
/// maps and a block map over a capture.
Kernel attention(llvm::StringRef name, bool wgmma) {
  Kernel k;
  k.name = name.str();
  k.kind = KernelKind::Attention;
  k.ptxFile = k.name + ".ptx";
  k.cubinFile = wgmma ? k.name + ".cubin" : "";
  AttentionKernel &a = k.attention;
  a.dtype = wgmma ? "f16" : "bf16";
  a.headDim = a.valueDim = 64;
  a.headsQ = 8;
  a.headsKv = 2;
  a.blockQ = a.blockKv = wgmma ? 128 : 64;
  a.sharedBytes = wgmma ? 81920 : 36864;
  a.variant = wgmma ? Variant::Wgmma : Variant::MmaSync;
  a.lse = !wgmma;
  a.scale = 0.125;
  a.maskKind = wgmma ? "data" : "index";
  a.main.kernel = k.name;
  a.main.grid = {SizeExpr::of("Nq", a.blockQ), SizeExpr::constant(8),
                 SizeExpr::of("B")};
  a.main.block = {wgmma ? 256 : 128, 1, 1};
  a.main.dynamicSharedBytes = wgmma ? a.sharedBytes : 0;
  for (const char *t : {"q", "k", "v"})
    a.main.args.push_back(wgmma ? tensorMap(t, 128) : mem(t, a.dtype));
  a.main.args.push_back(mem("o", a.dtype));
  if (a.lse)
    a.main.args.push_back(mem("lse", "f32"));
  if (wgmma) {
    a.main.args.push_back(mem("capture0", "i32"));
    a.main.args.push_back(mem("block_map", "i8"));
    BlockMap bm;
    bm.slices = MapSlices::BatchHeads;
    bm.launch.kernel = k.name + "_blockmap";
    bm.launch.grid = {SizeExpr::of("Nq", 128), SizeExpr::of("Nk", 128),
                      SizeExpr::of("slices")};
    bm.launch.block = {256, 1, 1};
    bm.launch.args = {mem("capture0", "i32"), mem("block_map", "i8"),
                      scalar("slices"), scalar("Nq"), scalar("Nk")};
    a.blockMap = bm;
  }
  for (const Arg &s : scalars({"B", "Nq", "Nk", "q_stride_b", "q_stride_h",
                               "q_stride_n", "o_stride_n"}))
    a.main.args.push_back(s);
  return k;
}

/// A linear kernel as attnc's JIT writes it: plain, or with a feature kernel
/// (captures, workspaces), the bidirectional scratch and a signature.
Kernel linear(llvm::StringRef name, bool feature) {
  Kernel k;
  k.name = name.str();
  k.kind = KernelKind::Linear;
  k.ptxFile = k.name + ".ptx";
  LinearKernel &l = k.linear;
  l.dtype = "bf16";
  l.heads = l.headsKv = 4;
  l.headDim = l.valueDim = 64;
  l.featureDim = feature ? 128 : 64;
  l.chunk = 64;
  l.dvSlice = 32;
  l.decay = feature ? Decay::None : Decay::Token;
  l.causal = !feature;
  l.normalize = feature;
  l.scale = 0.125;
  l.main.kernel = k.name;
  l.main.grid = {SizeExpr::constant(2), SizeExpr::of("H"), SizeExpr::of("B")};
  l.main.block = {128, 1, 1};
  l.main.dynamicSharedBytes = 65024;
  l.main.args = {mem(feature ? "phi_q" : "q", "bf16"),
                 mem(feature ? "phi_k" : "k", "bf16"), mem("v", "bf16")};
  if (!feature)
    l.main.args.push_back(memF32("decay"));
  l.main.args.push_back(mem("o", "bf16"));
  for (const Arg &s : scalars({"B", "N", "v_stride_b", "o_stride_n"}))
    l.main.args.push_back(s);
  if (!feature)
    l.main.args.push_back(scalar("g_stride_n"));
  if (!feature)
    return k;
  l.main.args.push_back(memF32("scratch"));
  l.scratch = Buffer{"scratch",
                     "f32",
                     {SizeExpr::of("B"), SizeExpr::constant(4),
                      SizeExpr::of("N"), SizeExpr::constant(66)}};
  Launch phi;
  phi.kernel = k.name + "_phi";
  phi.grid = {SizeExpr::of("N", 128), SizeExpr::constant(8), SizeExpr::of("B")};
  phi.block = {128, 1, 1};
  phi.args = {
      mem("q", "bf16"),     mem("k", "bf16"),     mem("capture0", "f32"),
      mem("phi_q", "bf16"), mem("phi_k", "bf16"), scalar("B"),
      scalar("N"),          scalar("q_stride_b")};
  l.featureKernel = phi;
  l.captures = {Buffer{
      "capture0", "f32", {SizeExpr::constant(64), SizeExpr::constant(128)}}};
  for (const char *w : {"phi_q", "phi_k"})
    l.workspace.push_back(Buffer{w,
                                 "bf16",
                                 {SizeExpr::of("B"), SizeExpr::constant(4),
                                  SizeExpr::of("N"), SizeExpr::constant(128)}});
  Signature s;
  s.inputs = {{"q", "bf16", {-1, 4, -1, 64}},
              {"k", "bf16", {-1, 4, -1, 64}},
              {"v", "bf16", {-1, 4, -1, 64}},
              {"w", "f32", {64, 128}}};
  s.outputs = {{"o", "bf16", {-1, 4, -1, 64}}};
  s.inputNames = {"q", "k", "v", "capture0"};
  s.constDecay = {-0.5, -0.25};
  s.checks.logGates = {3};
  s.checks.lengths = {{0, 2, 512}};
  s.checks.equalDims = {{0, 0, 1, 0}};
  s.checks.minExtents = {{3, 0, 0, 2, 8}};
  k.signature = s;
  return k;
}

/// The backward of an attention spec with one capture that gets a gradient
/// (a bias table): two launches with the same arguments and a signature.
Kernel attentionGrad(llvm::StringRef name) {
  Kernel k;
  k.name = name.str();
  k.kind = KernelKind::AttentionGrad;
  k.ptxFile = k.name + ".ptx";
  k.cubinFile = k.name + ".cubin";
  AttentionGradKernel &g = k.attentionGrad;
  g.dtype = "bf16";
  g.headDim = g.valueDim = 64;
  g.headsQ = 8;
  g.headsKv = 2;
  g.blockQ = 64;
  g.blockKv = 128;
  g.scale = 0.125;
  g.maskKind = "index";
  g.captures = g.captureGrads = 1;
  std::vector<Arg> args;
  for (const char *t : {"q", "k", "v", "o", "do"})
    args.push_back(mem(t, "bf16"));
  args.push_back(mem("lse", "f32"));
  for (const char *t : {"dq", "dk", "dv"})
    args.push_back(mem(t, "bf16"));
  args.push_back(mem("capture0", "f32", 2));
  args.push_back(mem("dcapture0", "f32", 2));
  args.push_back(mem("delta", "f32"));
  for (const Arg &s : scalars({"B", "Nq", "Nk"}))
    args.push_back(s);
  for (const char *t : {"q", "k", "v", "o", "do", "dq", "dk", "dv"})
    for (const char *d : {"b", "h", "n"})
      args.push_back(scalar(std::string(t) + "_stride_" + d));
  g.dq = {k.name + "_dq",
          {SizeExpr::of("Nq", 64), SizeExpr::constant(8), SizeExpr::of("B")},
          {128, 1, 1},
          0,
          args};
  g.dkdv = {k.name + "_dkdv",
            {SizeExpr::of("Nk", 128), SizeExpr::constant(2), SizeExpr::of("B")},
            {256, 1, 1},
            0,
            args};
  Signature s;
  s.inputs = {{"q", "bf16", {-1, 8, -1, 64}}, {"k", "bf16", {-1, 2, -1, 64}},
              {"v", "bf16", {-1, 2, -1, 64}}, {"capture0", "f32", {8, 32}},
              {"o", "bf16", {-1, 8, -1, 64}}, {"lse", "f32", {-1, 8, -1}},
              {"do", "bf16", {-1, 8, -1, 64}}};
  s.outputs = {{"dq", "bf16", {-1, 8, -1, 64}},
               {"dk", "bf16", {-1, 2, -1, 64}},
               {"dv", "bf16", {-1, 2, -1, 64}},
               {"dcapture0", "f32", {8, 32}}};
  s.inputNames = {"q", "k", "v", "capture0", "o", "lse", "do"};
  k.signature = s;
  return k;
}

KernelSet setOf(std::vector<Kernel> kernels, llvm::StringRef target = "sm_90a",
                llvm::StringRef generator = "attn-aot") {
  KernelSet s;
  s.generator = generator.str();
  s.target = target.str();
  s.kernels = std::move(kernels);
  return s;
}

void expectRoundTrip(const KernelSet &set) {
  llvm::Expected<KernelSet> back = parseKernelSet(toJson(set));
  ASSERT_TRUE(bool(back)) << llvm::toString(back.takeError());
  EXPECT_TRUE(*back == set);
  // Through the text as well (what a file holds).
  llvm::Expected<KernelSet> text = parseKernelSetText(formatKernelSet(set));
  ASSERT_TRUE(bool(text)) << llvm::toString(text.takeError());
  EXPECT_TRUE(*text == set);
  EXPECT_EQ(formatKernelSet(*text), formatKernelSet(set));
}

TEST(Abi, RoundTripAttentionMmaSync) {
  expectRoundTrip(setOf({attention("causal", false)}, "sm_80"));
}

TEST(Abi, RoundTripAttentionWgmmaWithBlockMap) {
  expectRoundTrip(setOf({attention("doc", true)}));
}

TEST(Abi, RoundTripAttentionFallback) {
  // A wgmma kernel that spilled and was rebuilt as mma.sync says so; the
  // field is written only when set.
  Kernel k = attention("nb", false);
  k.attention.fallback = "wgmma spilled 8 bytes; mma.sync used";
  KernelSet set = setOf({k}, "sm_90a");
  expectRoundTrip(set);
  json::Value v = toJson(set);
  const json::Object &a =
      *(*v.getAsObject()->getArray("kernels"))[0].getAsObject();
  EXPECT_EQ(a.getString("fallback"), k.attention.fallback);
  json::Value plain = toJson(setOf({attention("causal", false)}, "sm_80"));
  const json::Object &b =
      *(*plain.getAsObject()->getArray("kernels"))[0].getAsObject();
  EXPECT_FALSE(b.get("fallback"));
}

/// The split-KV form attn-aot gives every attention kernel.
SplitKv splitKvOf(const Kernel &k) {
  SplitKv sk;
  sk.blockRows = sk.blockKv = 64;
  sk.maxQueries = 64;
  sk.partial.kernel = k.name + "_splitkv";
  sk.partial.grid = {SizeExpr::of("Nq*G", 64), SizeExpr::of("splits"),
                     SizeExpr::of("B*Hkv")};
  sk.partial.block = {128, 1, 1};
  for (const char *t : {"q", "k", "v"})
    sk.partial.args.push_back(mem(t, k.attention.dtype));
  sk.partial.args.push_back(mem("o_part", "f32"));
  sk.partial.args.push_back(mem("lse_part", "f32"));
  for (const Arg &a : scalars({"B", "Nq", "Nk", "q_stride_b", "k_stride_n"}))
    sk.partial.args.push_back(a);
  sk.combine.kernel = k.name + "_combine";
  sk.combine.grid = {SizeExpr::of("Nq"), SizeExpr::constant(8),
                     SizeExpr::of("B")};
  sk.combine.block = {64, 1, 1};
  sk.combine.args = {mem("o_part", "f32"), mem("lse_part", "f32"),
                     mem("o", k.attention.dtype)};
  for (const Arg &a : scalars({"B", "Nq", "splits", "o_stride_b"}))
    sk.combine.args.push_back(a);
  return sk;
}

TEST(Abi, RoundTripLinear) {
  expectRoundTrip(setOf({linear("gla", false)}, "sm_80", "attnc"));
}

TEST(Abi, RoundTripLinearWithFeatureKernelAndSignature) {
  expectRoundTrip(setOf({linear("hedgehog", true)}, "sm_80", "attnc"));
  Kernel noCaptures = linear("cosformer", true);
  noCaptures.linear.captures.clear();
  noCaptures.linear.featureKernel->args.erase(
      noCaptures.linear.featureKernel->args.begin() + 2);
  expectRoundTrip(setOf({noCaptures}, "sm_80", "attnc"));
}

TEST(Abi, RoundTripSeveralKernelsAndReductions) {
  Kernel k = attention("split", false);
  Launch red;
  red.kernel = "split_reduce";
  red.grid = {SizeExpr::of("Nq"), SizeExpr::of("H"), SizeExpr::of("B")};
  red.block = {64, 1, 1};
  red.args = {mem("o", "bf16"), scalar("Nq")};
  k.reductions.push_back(red);
  KernelSet set = setOf({k, attention("doc", true), linear("gla", false)});
  expectRoundTrip(set);
  auto seq = launchSequence(set.kernels[1]);
  ASSERT_EQ(seq.size(), 2u);
  EXPECT_EQ(seq[0]->kernel, "doc_blockmap");
  EXPECT_EQ(seq[1]->kernel, "doc");
  seq = launchSequence(set.kernels[0]);
  ASSERT_EQ(seq.size(), 2u);
  EXPECT_EQ(seq[1]->kernel, "split_reduce");
}

/// An elementwise kernel of a GPU program: o = a <op> b over n elements.
TEST(Abi, ElementwiseRoundTrip) {
  Kernel k;
  k.name = "elementwise";
  k.kind = KernelKind::Elementwise;
  k.ptxFile = "elementwise.ptx";
  k.elementwise.kernel = "elementwise";
  k.elementwise.grid = {SizeExpr::of("n", 256), SizeExpr::constant(1),
                        SizeExpr::constant(1)};
  k.elementwise.block = {256, 1, 1};
  k.elementwise.args = {mem("a", "bf16"), mem("b", "bf16"), mem("o", "bf16"),
                        scalar("n")};
  Signature sig;
  sig.inputs = {{"a", "bf16", {-1, 4}}, {"b", "bf16", {-1, 4}}};
  sig.outputs = {{"o", "bf16", {-1, 4}}};
  sig.inputNames = {"a", "b"};
  k.signature = sig;
  KernelSet set = setOf({k});
  llvm::Expected<KernelSet> back = parseKernelSetText(formatKernelSet(set));
  ASSERT_TRUE(bool(back)) << llvm::toString(back.takeError());
  EXPECT_EQ(*back, set);
  EXPECT_EQ(launchSequence(back->kernels[0]).front()->kernel, "elementwise");
  // Its signature is what the launcher checks: without it, it is refused.
  set.kernels[0].signature.reset();
  llvm::Expected<KernelSet> bad = parseKernelSetText(formatKernelSet(set));
  ASSERT_FALSE(bool(bad));
  EXPECT_EQ(llvm::toString(bad.takeError()),
            "manifest.kernels[0].inputs: missing field (an elementwise kernel "
            "records its signature)");
}

TEST(Abi, LinearKernelAlone) {
  LinearKernel l = linear("hedgehog", true).linear;
  llvm::Expected<LinearKernel> back = parseLinearKernel(toJson(l));
  ASSERT_TRUE(bool(back)) << llvm::toString(back.takeError());
  EXPECT_TRUE(*back == l);
}

TEST(Abi, RoundTripAttentionGrad) {
  KernelSet set = setOf({attentionGrad("bias_backward")}, "sm_80", "attnc");
  expectRoundTrip(set);
  auto seq = launchSequence(set.kernels[0]);
  ASSERT_EQ(seq.size(), 2u);
  EXPECT_EQ(seq[0]->kernel, "bias_backward_dq");
  EXPECT_EQ(seq[1]->kernel, "bias_backward_dkdv");
  // Beside its forward in one set; without capture gradients.
  Kernel plain = attentionGrad("causal_backward");
  plain.attentionGrad.captureGrads = 0;
  for (Launch *l : {&plain.attentionGrad.dq, &plain.attentionGrad.dkdv})
    l->args.erase(l->args.begin() + 10);
  plain.signature->outputs.pop_back();
  expectRoundTrip(setOf({attention("causal", false), plain}, "sm_80"));
  json::Value v = toJson(set);
  const json::Object &k =
      *(*v.getAsObject()->getArray("kernels"))[0].getAsObject();
  EXPECT_EQ(k.getString("kind"), "attention_grad");
  EXPECT_EQ(llvm::formatv("{0}", *k.get("launch_order")).str(),
            R"j(["bias_backward_dq","bias_backward_dkdv"])j");
  EXPECT_EQ(llvm::formatv("{0}", *k.getObject("dkdv")->get("grid")).str(),
            R"j(["ceil(Nk/128)",2,"B"])j");
}

TEST(Abi, RoundTripAttentionGradBlockMap) {
  // A mask on captured data: the map kernel first, into `block_map`.
  Kernel k = attentionGrad("doc_backward");
  AttentionGradKernel &g = k.attentionGrad;
  for (Launch *l : {&g.dq, &g.dkdv})
    l->args.insert(l->args.begin() + 13, mem("block_map", "i8"));
  BlockMap bm;
  bm.slices = MapSlices::Batch;
  bm.launch = {
      "doc_backward_blockmap",
      {SizeExpr::of("Nq", 32), SizeExpr::of("Nk", 32), SizeExpr::of("slices")},
      {64, 1, 1},
      0,
      {mem("capture0", "f32", 2), mem("block_map", "i8")}};
  for (const Arg &s : scalars({"slices", "Nq", "Nk"}))
    bm.launch.args.push_back(s);
  g.blockMap = bm;
  KernelSet set = setOf({k}, "sm_80", "attnc");
  expectRoundTrip(set);
  auto seq = launchSequence(set.kernels[0]);
  ASSERT_EQ(seq.size(), 3u);
  EXPECT_EQ(seq[0]->kernel, "doc_backward_blockmap");
  json::Value v = toJson(set);
  const json::Object &o =
      *(*v.getAsObject()->getArray("kernels"))[0].getAsObject();
  EXPECT_EQ(
      llvm::formatv("{0}", *o.get("launch_order")).str(),
      R"j(["doc_backward_blockmap","doc_backward_dq","doc_backward_dkdv"])j");
}

/// The format the readers outside C++ (python/attnc/_aot.py, the linear
/// ABI's consumers) rely on.
TEST(Abi, WrittenFieldNames) {
  json::Value v = toJson(setOf({attention("doc", true), linear("h", true)}));
  const json::Object &o = *v.getAsObject();
  EXPECT_EQ(o.getInteger("schema_version"), kSchemaVersion);
  const json::Object &a = *(*o.getArray("kernels"))[0].getAsObject();
  EXPECT_EQ(a.getString("kind"), "attention");
  EXPECT_EQ(a.getInteger("dynamic_shared_bytes"), 81920);
  EXPECT_EQ(llvm::formatv("{0}", *a.get("grid")).str(),
            R"j(["ceil(Nq/128)",8,"B"])j");
  const json::Object &q = *(*a.getArray("args"))[0].getAsObject();
  EXPECT_EQ(
      llvm::formatv("{0}", json::Value(json::Object(q))).str(),
      R"j({"box_cols":64,"box_rows":128,"elem":"f16","kind":"tensormap",)j"
      R"j("name":"q","rank":4,"swizzle":"128B"})j");
  EXPECT_EQ(a.getObject("block_map")->getString("slices"), "B*Hq");
  const json::Object &l = *(*o.getArray("kernels"))[1].getAsObject();
  const json::Object &abi = *l.getObject("abi");
  EXPECT_EQ(abi.getInteger("dynamic_smem"), 65024);
  EXPECT_EQ(abi.getObject("scratch")->getString("elements"), "B * 4 * N * 66");
  EXPECT_EQ(
      llvm::formatv("{0}", *abi.getObject("feature_kernel")->get("grid")).str(),
      R"j(["ceil(N/128)",8,"B"])j");
  EXPECT_EQ(llvm::formatv("{0}", *abi.get("launch_order")).str(),
            R"j(["h_phi","h"])j");
  EXPECT_TRUE(l.getArray("input_names") && l.getObject("checks"));
}

//===----------------------------------------------------------------------===//
// Rejections
//===----------------------------------------------------------------------===//

/// The error of parsing `set`'s JSON after `edit`.
std::string errorAfter(const KernelSet &set,
                       llvm::function_ref<void(json::Object &)> edit) {
  json::Value v = toJson(set);
  edit(*v.getAsObject());
  llvm::Expected<KernelSet> r = parseKernelSet(v);
  if (r)
    return "(accepted)";
  return llvm::toString(r.takeError());
}

json::Object &kernel0(json::Object &m) {
  return *(*m.getArray("kernels"))[0].getAsObject();
}
json::Object &arg(json::Object &k, size_t i) {
  return *(*k.getArray("args"))[i].getAsObject();
}

const KernelSet &wgmmaSet() {
  static const KernelSet s = setOf({attention("doc", true)});
  return s;
}
const KernelSet &linearSet() {
  static const KernelSet s = setOf({linear("h", true)}, "sm_80", "attnc");
  return s;
}

TEST(Abi, RejectsSchemaVersions) {
  EXPECT_EQ(errorAfter(wgmmaSet(),
                       [](json::Object &m) { m.erase("schema_version"); }),
            "manifest.schema_version: missing field (the manifest predates "
            "schema versions; rebuild it with this attnc)");
  EXPECT_EQ(
      errorAfter(wgmmaSet(), [](json::Object &m) { m["schema_version"] = 2; }),
      "manifest.schema_version: unsupported version 2 (this attnc reads "
      "version 1)");
  EXPECT_EQ(errorAfter(wgmmaSet(),
                       [](json::Object &m) { m["schema_version"] = "1"; }),
            "manifest.schema_version: expected an integer in [0, 2147483647], "
            "got a string");
}

TEST(Abi, RejectsMissingFields) {
  EXPECT_EQ(errorAfter(wgmmaSet(),
                       [](json::Object &m) { kernel0(m).erase("head_dim"); }),
            "manifest.kernels[0].head_dim: missing field");
  EXPECT_EQ(errorAfter(wgmmaSet(),
                       [](json::Object &m) { kernel0(m).erase("block_map"); }),
            "manifest.kernels[0].block_map: missing field (null when there is "
            "none)");
  EXPECT_EQ(errorAfter(linearSet(),
                       [](json::Object &m) {
                         kernel0(m).getObject("abi")->erase("dv_slice");
                       }),
            "manifest.kernels[0].abi.dv_slice: missing field");
  EXPECT_EQ(
      errorAfter(wgmmaSet(),
                 [](json::Object &m) { arg(kernel0(m), 0).erase("box_rows"); }),
      "manifest.kernels[0].args[0].box_rows: missing field");
  EXPECT_EQ(errorAfter(wgmmaSet(),
                       [](json::Object &m) { m["kernels"] = json::Array(); }),
            "manifest.kernels: expected 1 to 4096 entries, got 0");
}

TEST(Abi, RejectsWrongTypes) {
  EXPECT_EQ(errorAfter(wgmmaSet(),
                       [](json::Object &m) { kernel0(m)["head_dim"] = "64"; }),
            "manifest.kernels[0].head_dim: expected an integer in [1, 4096], "
            "got a string");
  EXPECT_EQ(errorAfter(wgmmaSet(),
                       [](json::Object &m) { kernel0(m)["head_dim"] = 64.5; }),
            "manifest.kernels[0].head_dim: expected an integer in [1, 4096], "
            "got 64.5");
  EXPECT_EQ(
      errorAfter(wgmmaSet(), [](json::Object &m) { kernel0(m)["lse"] = 0; }),
      "manifest.kernels[0].lse: expected a boolean, got a number");
  EXPECT_EQ(
      errorAfter(wgmmaSet(),
                 [](json::Object &m) { kernel0(m)["args"] = json::Object(); }),
      "manifest.kernels[0].args: expected an array, got an object");
  EXPECT_EQ(
      errorAfter(wgmmaSet(),
                 [](json::Object &m) { (*m.getArray("kernels"))[0] = 3; }),
      "manifest.kernels[0]: expected an object, got a number");
  llvm::Expected<KernelSet> notJson = parseKernelSetText("{");
  ASSERT_FALSE(bool(notJson));
  EXPECT_TRUE(llvm::StringRef(llvm::toString(notJson.takeError()))
                  .starts_with("manifest: not JSON: "));
  llvm::Expected<KernelSet> array = parseKernelSet(json::Value(json::Array()));
  ASSERT_FALSE(bool(array));
  EXPECT_EQ(llvm::toString(array.takeError()),
            "manifest: expected an object, got an array");
}

TEST(Abi, RejectsNegativeAndHugeValues) {
  EXPECT_EQ(
      errorAfter(wgmmaSet(),
                 [](json::Object &m) { kernel0(m)["shared_bytes"] = -1; }),
      "manifest.kernels[0].shared_bytes: expected an integer in [0, "
      "1048576], got -1");
  EXPECT_EQ(errorAfter(wgmmaSet(),
                       [](json::Object &m) {
                         kernel0(m)["heads_q"] = int64_t(1) << 40;
                       }),
            "manifest.kernels[0].heads_q: expected an integer in [1, 65536], "
            "got 1099511627776");
  EXPECT_EQ(errorAfter(wgmmaSet(),
                       [](json::Object &m) { kernel0(m)["block_q"] = 1e300; }),
            "manifest.kernels[0].block_q: expected an integer in [1, 1024], "
            "got 1.0000000000000001e+300");
  EXPECT_EQ(errorAfter(wgmmaSet(),
                       [](json::Object &m) {
                         kernel0(m)["block"] = json::Array{1024, 2, 1};
                       }),
            "manifest.kernels[0].block: more than 1024 threads per block");
  EXPECT_EQ(errorAfter(wgmmaSet(),
                       [](json::Object &m) {
                         (*kernel0(m).getArray("grid"))[1] = int64_t(1) << 32;
                       }),
            "manifest.kernels[0].grid[1]: expected an integer in [1, "
            "2147483647], got 4294967296");
  EXPECT_EQ(errorAfter(wgmmaSet(),
                       [](json::Object &m) { kernel0(m)["scale"] = "inf"; }),
            "manifest.kernels[0].scale: expected a number, got a string");
  EXPECT_EQ(errorAfter(linearSet(),
                       [](json::Object &m) {
                         (*kernel0(m).getObject("abi")->getArray("captures"))[0]
                             .getAsObject()
                             ->getArray("shape")
                             ->front() = -5;
                       }),
            "manifest.kernels[0].abi.captures[0].shape[0]: expected an integer "
            "in [-1, 1099511627776], got -5");
  EXPECT_EQ(errorAfter(wgmmaSet(),
                       [](json::Object &m) {
                         kernel0(m)["name"] = std::string(300, 'a');
                       }),
            "manifest.kernels[0].name: string of 300 characters (at most 256)");
}

TEST(Abi, RejectsUnknownRolesKindsAndNames) {
  EXPECT_EQ(
      errorAfter(wgmmaSet(),
                 [](json::Object &m) { arg(kernel0(m), 3)["name"] = "out"; }),
      "manifest.kernels[0].args[3].name: unknown argument role 'out'");
  EXPECT_EQ(errorAfter(wgmmaSet(),
                       [](json::Object &m) {
                         arg(kernel0(m), 3)["name"] = "capture01";
                       }),
            "manifest.kernels[0].args[3].name: unknown argument role "
            "'capture01'");
  EXPECT_EQ(errorAfter(wgmmaSet(),
                       [](json::Object &m) {
                         arg(kernel0(m), 3)["kind"] = "pointer";
                       }),
            "manifest.kernels[0].args[3].kind: unknown argument kind 'pointer' "
            "(expected memref, memref_f32, i64, tensormap)");
  EXPECT_EQ(
      errorAfter(wgmmaSet(),
                 [](json::Object &m) { arg(kernel0(m), 3)["name"] = "B"; }),
      "manifest.kernels[0].args[3]: argument 'B' is a scalar but passed "
      "as memref");
  EXPECT_EQ(
      errorAfter(wgmmaSet(),
                 [](json::Object &m) { arg(kernel0(m), 4)["name"] = "q"; }),
      "manifest.kernels[0].args[4]: argument 'q' appears twice");
  EXPECT_EQ(
      errorAfter(wgmmaSet(),
                 [](json::Object &m) { arg(kernel0(m), 3)["elem"] = "f8"; }),
      "manifest.kernels[0].args[3]: unknown element type 'f8' of 'o'");
  EXPECT_EQ(errorAfter(wgmmaSet(),
                       [](json::Object &m) { kernel0(m)["variant"] = "wmma"; }),
            "manifest.kernels[0].variant: unknown kernel variant 'wmma' "
            "(expected mma_sync, wgmma)");
  EXPECT_EQ(
      errorAfter(wgmmaSet(), [](json::Object &m) { m["target"] = "sm_100"; }),
      "manifest.target: unknown target 'sm_100' (expected sm_80, "
      "sm_90a)");
  EXPECT_EQ(errorAfter(wgmmaSet(),
                       [](json::Object &m) {
                         (*kernel0(m).getArray("grid"))[0] = "ceil(Q/128)";
                       }),
            "manifest.kernels[0].grid[0]: expected a size (an integer, B, H, "
            "N, Nq, Nk, slices, n or ceil(<variable>/<integer>)), got "
            "'ceil(Q/128)'");
  EXPECT_EQ(errorAfter(wgmmaSet(),
                       [](json::Object &m) { kernel0(m)["name"] = "a-b"; }),
            "manifest.kernels[0].name: 'a-b' is not an identifier");
  EXPECT_EQ(errorAfter(wgmmaSet(),
                       [](json::Object &m) { kernel0(m)["ptx"] = "../x.ptx"; }),
            "manifest.kernels[0].ptx: '../x.ptx' is not a file name in the "
            "kernel directory");
}

TEST(Abi, RejectsInconsistentKernels) {
  EXPECT_EQ(
      errorAfter(wgmmaSet(),
                 [](json::Object &m) { kernel0(m)["variant"] = "mma_sync"; }),
      "manifest.kernels[0]: tensor map 'q' in an mma_sync kernel");
  EXPECT_EQ(
      errorAfter(
          wgmmaSet(),
          [](json::Object &m) {
            kernel0(m)["launch_order"] = json::Array{"doc", "doc_blockmap"};
          }),
      "manifest.kernels[0].launch_order: does not match the kernel's "
      "launches (expected doc_blockmap, doc)");
  EXPECT_EQ(errorAfter(linearSet(),
                       [](json::Object &m) {
                         (*kernel0(m).getObject("abi"))["dv_slice"] = 48;
                       }),
            "manifest.kernels[0].abi.dv_slice: does not divide Dv = 64");
  EXPECT_EQ(errorAfter(linearSet(),
                       [](json::Object &m) {
                         kernel0(m).getObject("abi")->erase("workspace");
                       }),
            "manifest.kernels[0].abi: a feature kernel and its workspace come "
            "together");
  EXPECT_EQ(errorAfter(linearSet(),
                       [](json::Object &m) {
                         kernel0(m).getArray("input_names")->pop_back();
                       }),
            "manifest.kernels[0].input_names: has 3 names for 4 inputs");
  EXPECT_EQ(
      errorAfter(
          linearSet(),
          [](json::Object &m) {
            kernel0(m).getObject("checks")->getArray("log_gates")->push_back(4);
          }),
      "manifest.kernels[0].checks.log_gates[1]: expected an integer in "
      "[0, 3], got 4");
  EXPECT_EQ(errorAfter(linearSet(),
                       [](json::Object &m) {
                         (*kernel0(m).getObject("checks")->getArray(
                             "lengths"))[0] = json::Array{0, 4, 512};
                       }),
            "manifest.kernels[0].checks.lengths[0][1]: expected an integer in "
            "[0, 3], got 4");
  EXPECT_EQ(
      errorAfter(linearSet(),
                 [](json::Object &m) {
                   (*kernel0(m).getObject("abi"))["scratch"] =
                       json::Object{{"name", "scratch"},
                                    {"dtype", "f32"},
                                    {"elements", "B * x"}};
                 }),
      "manifest.kernels[0].abi.scratch.elements: expected a size (an "
      "integer, B, H, N, Nq, Nk, slices, n or ceil(<variable>/<integer>)), "
      "got ' x'");
  KernelSet twice = setOf({attention("a", false), attention("a", false)});
  EXPECT_EQ(errorAfter(twice, [](json::Object &) {}),
            "manifest.kernels[1]: kernel 'a' appears twice");
}

TEST(Abi, RejectsInconsistentAttentionGrad) {
  KernelSet set = setOf({attentionGrad("g")}, "sm_80", "attnc");
  EXPECT_EQ(
      errorAfter(set,
                 [](json::Object &m) {
                   kernel0(m)["launch_order"] = json::Array{"g_dkdv", "g_dq"};
                 }),
      "manifest.kernels[0].launch_order: does not match the kernel's "
      "launches (expected g_dq, g_dkdv)");
  EXPECT_EQ(
      errorAfter(set, [](json::Object &m) { kernel0(m)["capture_grads"] = 2; }),
      "manifest.kernels[0].capture_grads: expected an integer in [0, 1], "
      "got 2");
  EXPECT_EQ(errorAfter(set,
                       [](json::Object &m) {
                         arg(*kernel0(m).getObject("dkdv"), 10)["name"] =
                             "dcapture1";
                       }),
            "manifest.kernels[0].dkdv: argument 'dcapture1' beyond the "
            "kernel's 1 capture gradients");
  EXPECT_EQ(
      errorAfter(set,
                 [](json::Object &m) {
                   kernel0(m).getObject("dq")->getArray("args")->erase(
                       kernel0(m).getObject("dq")->getArray("args")->begin() +
                       10);
                 }),
      "manifest.kernels[0].dq: has 1 capture and 0 capture-gradient "
      "arguments for 1 and 1");
  EXPECT_EQ(
      errorAfter(set, [](json::Object &m) { kernel0(m).erase("inputs"); }),
      "manifest.kernels[0].inputs: missing field (an attention_grad "
      "kernel records its signature)");
  EXPECT_EQ(errorAfter(set, [](json::Object &m) { kernel0(m).erase("dkdv"); }),
            "manifest.kernels[0].dkdv: missing field");
}

TEST(Abi, RoundTripAttentionSplitKv) {
  Kernel k = attention("decode", false);
  k.attention.splitKv = splitKvOf(k);
  KernelSet set = setOf({k}, "sm_90a");
  expectRoundTrip(set);
  // The launch sequence lists the split-KV launches after the main one.
  llvm::SmallVector<const Launch *, 4> seq = launchSequence(k);
  ASSERT_EQ(seq.size(), 3u);
  EXPECT_EQ(seq[1]->kernel, "decode_splitkv");
  EXPECT_EQ(seq[2]->kernel, "decode_combine");
  // A split-KV form with no queries is refused by field path.
  EXPECT_EQ(errorAfter(set,
                       [](json::Object &m) {
                         (*kernel0(m).getObject("split_kv"))["max_queries"] = 0;
                       }),
            "manifest.kernels[0].split_kv.max_queries: expected an integer "
            "in [1, 1099511627776], got 0");
}

TEST(Abi, Roles) {
  EXPECT_EQ(argRole("do"), ArgRole::GradOutput);
  EXPECT_EQ(argRole("dv"), ArgRole::Gradient);
  EXPECT_EQ(argRole("dcapture3"), ArgRole::CaptureGrad);
  EXPECT_EQ(argRole("delta"), ArgRole::Delta);
  EXPECT_EQ(argRole("do_stride_n"), ArgRole::Stride);
  EXPECT_EQ(argRole("dcapture03"), std::nullopt);
  EXPECT_TRUE(isTensorRole(ArgRole::Delta));
  EXPECT_EQ(argRole("capture12"), ArgRole::Capture);
  EXPECT_EQ(argRole("g_stride_h"), ArgRole::Stride);
  EXPECT_EQ(argRole("x_stride_h"), std::nullopt);
  EXPECT_EQ(argRole("q_stride_d"), std::nullopt);
  EXPECT_EQ(argRole("capture"), std::nullopt);
  EXPECT_TRUE(isTensorRole(ArgRole::Scratch));
  EXPECT_FALSE(isTensorRole(ArgRole::Slices));
  EXPECT_EQ(argRole("o_part"), ArgRole::PartialOutput);
  EXPECT_EQ(argRole("lse_part"), ArgRole::PartialLse);
  EXPECT_EQ(argRole("splits"), ArgRole::Splits);
  EXPECT_TRUE(isTensorRole(ArgRole::PartialLse));
  EXPECT_FALSE(isTensorRole(ArgRole::Splits));
}

} // namespace

TEST(Abi, RoundTripAttentionPagedWithSinksAndChecks) {
  // A paged kernel (its table and sinks are capture arguments) whose
  // signature checks the table and the per-sequence key counts.
  Kernel k = attention("doc", true);
  k.attention.pageSize = 16;
  k.attention.pageTable = "capture0";
  k.attention.sinks = "capture0";
  Signature s;
  s.inputs = {{"q", "bf16", {-1, 8, -1, 64}},
              {"k", "bf16", {-1, 2, 16, 64}},
              {"v", "bf16", {-1, 2, 16, 64}},
              {"capture0", "i32", {-1, -1}},
              {"capture1", "i32", {-1}}};
  s.outputs = {{"o", "bf16", {-1, 8, -1, 64}}};
  s.inputNames = {"q", "k", "v", "capture0", "capture1"};
  s.checks.pageTables = {{3, 1, 1, 0, 16}};
  s.checks.kvLens = {{4, 0, 3, 1, 1}};
  k.signature = s;
  KernelSet set = setOf({k}, "sm_90a");
  expectRoundTrip(set);
  // Without them the fields are not written (older manifests read alike).
  json::Value plain = toJson(setOf({attention("doc", true)}, "sm_90a"));
  const json::Object &k0 =
      *(*plain.getAsObject()->getArray("kernels"))[0].getAsObject();
  EXPECT_EQ(k0.get("paged"), nullptr);
  EXPECT_EQ(k0.get("sinks"), nullptr);
  EXPECT_EQ(errorAfter(set,
                       [](json::Object &m) {
                         (*kernel0(m).getObject("paged"))["table"] = "q";
                       }),
            "manifest.kernels[0].paged.table: names no capture argument of "
            "'doc'");
  EXPECT_EQ(errorAfter(set, [](json::Object &m) { kernel0(m)["sinks"] = "k"; }),
            "manifest.kernels[0].sinks: names no capture argument of 'doc'");
}

TEST(Abi, RoundTripAttentionVarlenAndChecks) {
  // Packed sequences: the offsets are capture arguments; the signature
  // checks them and a capture read per sequence.
  Kernel k = attention("doc", true);
  k.attention.cuSeqlensQ = "capture0";
  k.attention.cuSeqlensK = "capture0";
  Signature s;
  s.inputs = {{"q", "bf16", {1, 8, -1, 64}},
              {"k", "bf16", {1, 2, -1, 64}},
              {"v", "bf16", {1, 2, -1, 64}},
              {"capture0", "i32", {-1}},
              {"capture1", "i32", {-1}}};
  s.outputs = {{"o", "bf16", {1, 8, -1, 64}}};
  s.inputNames = {"q", "k", "v", "capture0", "capture1"};
  s.checks.cuSeqlens = {{3, 0, 0, 2}, {3, 0, 1, 2}};
  s.checks.perSequence = {{4, 0, 3, 0}};
  k.signature = s;
  KernelSet set = setOf({k}, "sm_90a");
  expectRoundTrip(set);
  json::Value plain = toJson(setOf({attention("doc", true)}, "sm_90a"));
  const json::Object &k0 =
      *(*plain.getAsObject()->getArray("kernels"))[0].getAsObject();
  EXPECT_EQ(k0.get("varlen"), nullptr);
  EXPECT_EQ(errorAfter(set,
                       [](json::Object &m) {
                         (*kernel0(m).getObject("varlen"))["cu_seqlens_k"] =
                             "v";
                       }),
            "manifest.kernels[0].varlen.cu_seqlens_k: names no capture "
            "argument of 'doc'");
}
