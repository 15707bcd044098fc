// Region ops the GPU kernels have no lowering for, found by the robustness
// fuzzer: math.ctlz/cttz/ctpop failed the LLVM translation (unrealized
// casts), arith.remf failed to legalize llvm.frem. They compile for the CPU
// and get a diagnostic for sm_80 and sm_90a.
// RUN: attn-opt %s -split-input-file --attn-compile=target=cpu -o /dev/null
// RUN: attn-opt %s -split-input-file -verify-diagnostics --attn-compile=target=sm_80 -o /dev/null
// RUN: attn-opt %s -split-input-file -verify-diagnostics --attn-compile=target=sm_90a -o /dev/null

func.func @ctlz(%q: tensor<?x4x?x64xbf16>, %k: tensor<?x4x?x64xbf16>, %v: tensor<?x4x?x64xbf16>) -> tensor<?x4x?x64xbf16> {
  // expected-error @+1 {{'math.ctlz' in a region has no GPU lowering}}
  %o = attn.attention %q, %k, %v
    mask(%b: index, %h: index, %i: index, %j: index) {
      %x = math.ctlz %i : index
      %c = arith.cmpi uge, %x, %j : index
      attn.yield %c : i1
    } : tensor<?x4x?x64xbf16>, tensor<?x4x?x64xbf16>, tensor<?x4x?x64xbf16> -> tensor<?x4x?x64xbf16>
  return %o : tensor<?x4x?x64xbf16>
}

// -----

func.func @ctpop(%q: tensor<?x4x?x64xf16>, %k: tensor<?x4x?x64xf16>, %v: tensor<?x4x?x64xf16>) -> tensor<?x4x?x64xf16> {
  // expected-error @+1 {{'math.ctpop' in a region has no GPU lowering}}
  %o = attn.attention %q, %k, %v
    mask(%b: index, %h: index, %i: index, %j: index) {
      %ii = arith.index_cast %i : index to i32
      %x = math.ctpop %ii : i32
      %c1 = arith.constant 1 : i32
      %c = arith.cmpi eq, %x, %c1 : i32
      attn.yield %c : i1
    } : tensor<?x4x?x64xf16>, tensor<?x4x?x64xf16>, tensor<?x4x?x64xf16> -> tensor<?x4x?x64xf16>
  return %o : tensor<?x4x?x64xf16>
}

// -----

func.func @remf(%q: tensor<?x4x?x64xbf16>, %k: tensor<?x4x?x64xbf16>, %v: tensor<?x4x?x64xbf16>) -> tensor<?x4x?x64xbf16> {
  // expected-error @+1 {{'arith.remf' in a region has no GPU lowering}}
  %o = attn.attention %q, %k, %v
    score(%s: f32, %b: index, %h: index, %i: index, %j: index) {
      %c = arith.constant 30.0 : f32
      %r = arith.remf %s, %c : f32
      attn.yield %r : f32
    } : tensor<?x4x?x64xbf16>, tensor<?x4x?x64xbf16>, tensor<?x4x?x64xbf16> -> tensor<?x4x?x64xbf16>
  return %o : tensor<?x4x?x64xbf16>
}
