//===- gpu_launch_check.cpp - the C++ JIT's GPU launch on a real GPU ------===//
//
// Part of attnc. The GPU machine has no MLIR, so libattnc.so (which links
// libMLIR.so) cannot run there. This program drives the launch library
// (libattnc_runtime.so, the one launcher of the JIT, the AOT launcher and
// Python) through its C API: it loads an attn-aot directory
// (attnc_rt_module_load) and launches each attention kernel
// (attnc_rt_kernel_launch) on device pointers, in the [B, H, N, D] layout and
// in [B, N, H, D] through strides, then compares with a float64 reference
// computed here.
//   attnc-gpu-launch-check DIR causal|strict|none
// Prints PASS/FAIL lines; exit 1 on any failure.
//
//===----------------------------------------------------------------------===//

#include "attnc/Abi/TensorChecks.h"
#include "attnc/attnc_runtime.h"

#include "llvm/Support/FormatVariadic.h"

#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/raw_ostream.h"

#include <cmath>
#include <cstring>
#include <random>

using namespace attnc;

namespace {
uint16_t toHalf(float f, bool bf16) {
  if (bf16) {
    uint32_t u;
    std::memcpy(&u, &f, 4);
    u += 0x7FFF + ((u >> 16) & 1); // round to nearest even
    return uint16_t(u >> 16);
  }
  // IEEE half, round to nearest (inputs are small normals here).
  uint32_t u;
  std::memcpy(&u, &f, 4);
  uint32_t sign = (u >> 16) & 0x8000;
  int32_t exp = int32_t((u >> 23) & 0xFF) - 127 + 15;
  uint32_t mant = u & 0x7FFFFF;
  if (exp <= 0)
    return uint16_t(sign);
  uint32_t h = sign | (uint32_t(exp) << 10) | (mant >> 13);
  if ((mant >> 12) & 1)
    ++h;
  return uint16_t(h);
}

float fromHalf(uint16_t h, bool bf16) {
  if (bf16) {
    uint32_t u = uint32_t(h) << 16;
    float f;
    std::memcpy(&f, &u, 4);
    return f;
  }
  uint32_t sign = uint32_t(h & 0x8000) << 16;
  uint32_t exp = (h >> 10) & 0x1F, mant = h & 0x3FF;
  uint32_t u = exp == 0 ? sign : sign | ((exp - 15 + 127) << 23) | (mant << 13);
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

/// The launch library's last error.
llvm::Error rtError() { return makeError(attnc_rt_last_error()); }

llvm::Expected<void *> allocate(size_t bytes) {
  void *p = nullptr;
  if (attnc_rt_alloc(bytes, &p))
    return rtError();
  return p;
}

llvm::Error status(int failed) {
  return failed ? rtError() : llvm::Error::success();
}

/// attnc_rt_kernel_launch on TensorRefs.
llvm::Error launch(attnc_rt_kernel *k, llvm::ArrayRef<TensorRef> ins,
                   llvm::ArrayRef<TensorRef> outs) {
  auto c = [](llvm::ArrayRef<TensorRef> ts) {
    std::vector<attnc_tensor> out;
    for (const TensorRef &t : ts)
      out.push_back({t.data, int32_t(t.dtype), int32_t(t.shape.size()),
                     t.shape.data(),
                     t.strides.empty() ? nullptr : t.strides.data()});
    return out;
  };
  auto ci = c(ins), co = c(outs);
  return status(attnc_rt_kernel_launch(k, ci.data(), int32_t(ci.size()),
                                       co.data(), int32_t(co.size()), nullptr));
}

int fails = 0;
void report(bool ok, const std::string &what) {
  fails += !ok;
  llvm::outs() << (ok ? "PASS " : "FAIL ") << what << "\n";
}

/// One launch at (B, Nq, Nk) in the given layout; returns the relative error.
llvm::Expected<double> runOnce(attnc_rt_kernel *kernel,
                               const abi::AttentionKernel &info,
                               llvm::StringRef mask, int64_t B, int64_t Nq,
                               int64_t Nk, bool bnhd, std::mt19937 &rng) {
  bool bf16 = info.dtype == "bf16";
  DType dt = bf16 ? DType::BF16 : DType::F16;
  int64_t Hq = info.headsQ, Hk = info.headsKv, D = info.headDim,
          Dv = info.valueDim;
  std::normal_distribution<float> nd(0.f, 1.f);
  auto make = [&](int64_t H, int64_t N, int64_t d, std::vector<uint16_t> &h,
                  std::vector<float> &f) {
    h.resize(B * H * N * d);
    f.resize(h.size());
    for (size_t i = 0; i < h.size(); ++i) {
      h[i] = toHalf(nd(rng), bf16);
      f[i] = fromHalf(h[i], bf16);
    }
  };
  std::vector<uint16_t> qh, kh, vh;
  std::vector<float> qf, kf, vf;
  make(Hq, Nq, D, qh, qf);
  make(Hk, Nk, D, kh, kf);
  make(Hk, Nk, Dv, vh, vf);
  // Element (b, h, n, d) lives at b*sB + h*sH + n*sN + d.
  auto strides = [&](int64_t H, int64_t N, int64_t d) {
    return bnhd ? llvm::SmallVector<int64_t, 4>{N * H * d, d, H * d, 1}
                : llvm::SmallVector<int64_t, 4>{H * N * d, N * d, d, 1};
  };
  auto at = [&](const llvm::SmallVector<int64_t, 4> &s, int64_t b, int64_t h,
                int64_t n, int64_t d) {
    return b * s[0] + h * s[1] + n * s[2] + d * s[3];
  };
  // The host arrays are filled in logical [B, H, N, D] order; lay them out.
  auto layout = [&](const std::vector<uint16_t> &src, int64_t H, int64_t N,
                    int64_t d) {
    std::vector<uint16_t> out(src.size());
    auto s = strides(H, N, d);
    for (int64_t b = 0; b < B; ++b)
      for (int64_t h = 0; h < H; ++h)
        for (int64_t n = 0; n < N; ++n)
          for (int64_t x = 0; x < d; ++x)
            out[at(s, b, h, n, x)] = src[((b * H + h) * N + n) * d + x];
    return out;
  };
  std::vector<void *> bufs;
  auto upload = [&](const std::vector<uint16_t> &v) -> llvm::Expected<void *> {
    auto p = allocate(v.size() * 2);
    if (!p)
      return p.takeError();
    bufs.push_back(*p);
    if (llvm::Error e =
            status(attnc_rt_copy_to_device(*p, v.data(), v.size() * 2)))
      return std::move(e);
    return *p;
  };
  auto freeAll = [&] {
    for (void *p : bufs)
      (void)attnc_rt_free(p);
  };
  auto q = upload(layout(qh, Hq, Nq, D));
  auto k = upload(layout(kh, Hk, Nk, D));
  auto v = upload(layout(vh, Hk, Nk, Dv));
  std::vector<uint16_t> oh(B * Hq * Nq * Dv, 0xFFFF); // NaN-ish fill
  auto o = upload(oh);
  std::vector<float> lseh(B * Hq * Nq, NAN);
  void *lse = nullptr;
  if (!q || !k || !v || !o) {
    freeAll();
    return llvm::joinErrors(
        q.takeError(),
        llvm::joinErrors(k.takeError(),
                         llvm::joinErrors(v.takeError(), o.takeError())));
  }
  if (info.lse) {
    auto p = allocate(lseh.size() * 4);
    if (!p) {
      freeAll();
      return p.takeError();
    }
    lse = *p;
    bufs.push_back(lse);
  }
  auto ref = [&](void *p, int64_t H, int64_t N, int64_t d) {
    TensorRef t;
    t.data = p;
    t.dtype = dt;
    t.shape = {B, H, N, d};
    t.strides = strides(H, N, d);
    return t;
  };
  std::vector<TensorRef> ins = {ref(*q, Hq, Nq, D), ref(*k, Hk, Nk, D),
                                ref(*v, Hk, Nk, Dv)};
  std::vector<TensorRef> outs = {ref(*o, Hq, Nq, Dv)};
  if (lse) {
    TensorRef t;
    t.data = lse;
    t.dtype = DType::F32;
    t.shape = {B, Hq, Nq};
    outs.push_back(t);
  }
  if (llvm::Error e = launch(kernel, ins, outs)) {
    freeAll();
    return std::move(e);
  }
  if (llvm::Error e = status(attnc_rt_synchronize())) {
    freeAll();
    return std::move(e);
  }
  llvm::Error e = status(attnc_rt_copy_to_host(oh.data(), *o, oh.size() * 2));
  if (!e && lse)
    e = status(attnc_rt_copy_to_host(lseh.data(), lse, lseh.size() * 4));
  freeAll();
  if (e)
    return std::move(e);
  // float64 reference.
  double num = 0, den = 0, lseErr = 0;
  auto os = strides(Hq, Nq, Dv);
  std::vector<double> p(Nk), acc(Dv);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < Hq; ++h) {
      int64_t hk = h / (Hq / Hk);
      for (int64_t i = 0; i < Nq; ++i) {
        double mx = -INFINITY;
        for (int64_t j = 0; j < Nk; ++j) {
          bool keep = mask == "causal"   ? j <= i
                      : mask == "strict" ? j < i
                                         : true;
          double s = -INFINITY;
          if (keep) {
            s = 0;
            for (int64_t x = 0; x < D; ++x)
              s += double(qf[((b * Hq + h) * Nq + i) * D + x]) *
                   kf[((b * Hk + hk) * Nk + j) * D + x];
            s *= info.scale;
          }
          p[j] = s;
          mx = std::max(mx, s);
        }
        double l = 0;
        std::fill(acc.begin(), acc.end(), 0.0);
        for (int64_t j = 0; j < Nk; ++j) {
          double w = std::isinf(mx) ? 0 : std::exp(p[j] - mx);
          l += w;
          for (int64_t x = 0; x < Dv; ++x)
            acc[x] += w * vf[((b * Hk + hk) * Nk + j) * Dv + x];
        }
        for (int64_t x = 0; x < Dv; ++x) {
          double r = l > 0 ? acc[x] / l : 0;
          double g = fromHalf(oh[at(os, b, h, i, x)], bf16);
          num += (g - r) * (g - r);
          den += r * r;
        }
        if (lse) {
          double r = l > 0 ? mx + std::log(l) : -INFINITY;
          double g = lseh[(b * Hq + h) * Nq + i];
          if (std::isinf(r) != std::isinf(g) || (std::isinf(r) && r != g))
            lseErr = INFINITY;
          else if (!std::isinf(r))
            lseErr =
                std::max(lseErr, std::abs(g - r) / std::max(1.0, std::abs(r)));
        }
      }
    }
  double err = std::sqrt(num / std::max(den, 1e-300));
  return std::max(err, lseErr);
}
} // namespace

int main(int argc, char **argv) {
  if (argc != 3) {
    llvm::errs()
        << "usage: attnc-gpu-launch-check AOT_DIR causal|strict|none\n";
    return 2;
  }
  std::string dir = argv[1];
  llvm::StringRef mask = argv[2];
  auto mf = llvm::MemoryBuffer::getFile(dir + "/manifest.json");
  if (!mf) {
    llvm::errs() << "cannot read " << dir << "/manifest.json\n";
    return 2;
  }
  auto set = abi::parseKernelSetText((*mf)->getBuffer());
  if (!set) {
    llvm::errs() << llvm::toString(set.takeError()) << "\n";
    return 2;
  }
  if (attnc_rt_use_device(0)) {
    report(false, std::string("use device 0: ") + attnc_rt_last_error());
    return 1;
  }
  char tgt[16] = "?";
  if (attnc_rt_current_target(tgt, sizeof(tgt)))
    tgt[0] = '?', tgt[1] = 0;
  attnc_rt_module *module = nullptr;
  if (attnc_rt_module_load(dir.c_str(), &module)) {
    report(false, std::string("loading: ") + attnc_rt_last_error());
    return 1;
  }
  std::mt19937 rng(1234);
  for (auto [index, k] : llvm::enumerate(set->kernels)) {
    if (k.kind != abi::KernelKind::Attention) {
      llvm::outs() << "SKIP " << k.name << ": not an attention kernel\n";
      continue;
    }
    const abi::AttentionKernel &info = k.attention;
    attnc_rt_kernel *kernel = attnc_rt_module_kernel(module, int32_t(index));
    struct Case {
      int64_t B, Nq, Nk;
      bool bnhd;
    } cases[] = {{2, 300, 300, false}, {1, 129, 257, true}, {2, 64, 64, true}};
    for (const Case &c : cases) {
      auto err = runOnce(kernel, info, mask, c.B, c.Nq, c.Nk, c.bnhd, rng);
      std::string what =
          llvm::formatv("{0} ({1} {2} kernel on {3}) B={4} Nq={5} Nk={6} {7}",
                        k.name, abi::stringify(info.variant), set->target, tgt,
                        c.B, c.Nq, c.Nk, c.bnhd ? "bnhd" : "bhnd");
      if (!err) {
        report(false, what + ": " + llvm::toString(err.takeError()));
        continue;
      }
      double tol = info.dtype == "bf16" ? 1e-2 : 5e-3;
      report(*err < tol, what + llvm::formatv(" rel_err={0:e}", *err).str());
    }
    // A launch error is an llvm::Error, not a crash: a misaligned stride.
    TensorRef bad;
    bad.data = reinterpret_cast<void *>(16);
    bad.dtype = info.dtype == "bf16" ? DType::BF16 : DType::F16;
    bad.shape = {1, info.headsQ, 10, info.headDim};
    bad.strides = {info.headsQ * 10 * info.headDim + 3, 10 * info.headDim,
                   info.headDim, 1};
    TensorRef kv = bad;
    kv.shape[1] = info.headsKv;
    kv.strides = {};
    TensorRef o = kv;
    o.shape = {1, info.headsQ, 10, info.valueDim};
    std::vector<TensorRef> outs = {o};
    if (info.lse) {
      TensorRef l;
      l.data = bad.data;
      l.dtype = DType::F32;
      l.shape = {1, info.headsQ, 10};
      outs.push_back(l);
    }
    TensorRef vv = kv;
    vv.shape[3] = info.valueDim;
    llvm::Error e = launch(kernel, {bad, kv, vv}, outs);
    std::string msg = e ? llvm::toString(std::move(e)) : "";
    report(msg.find("strides") != std::string::npos,
           k.name + ": bad strides refused: " + msg);
  }
  attnc_rt_module_destroy(module);
  return fails ? 1 : 0;
}
