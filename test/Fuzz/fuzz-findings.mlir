// Inputs the robustness fuzzer (bench/fuzz/attn_fuzz.py) found crashing or
// failing deep in a lowering; each now gets a diagnostic.
// RUN: attn-opt %s -split-input-file -verify-diagnostics

// MLIR 22's arith canonicalization (CmpFIntToFPConst) segfaults on an
// always-true/false arith.cmpf of a value converted from an integer: every
// CPU and GPU pipeline crashed.
func.func @cmpf_false_of_uitofp(%q: tensor<?x4x?x64xbf16>, %k: tensor<?x4x?x64xbf16>, %v: tensor<?x4x?x64xbf16>, %t: tensor<?xi1>) -> tensor<?x4x?x64xbf16> {
  %o = attn.attention %q, %k, %v captures(%t : tensor<?xi1>)
    mask(%b: index, %h: index, %i: index, %j: index) {
      %x = tensor.extract %t[%i] : tensor<?xi1>
      %f = arith.uitofp %x : i1 to f32
      %z = arith.constant 0.0 : f32
      // expected-error @+1 {{'arith.cmpf' op with predicate 'false' is a constant: write arith.constant false}}
      %c = arith.cmpf false, %f, %z : f32
      attn.yield %c : i1
    } : tensor<?x4x?x64xbf16>, tensor<?x4x?x64xbf16>, tensor<?x4x?x64xbf16> -> tensor<?x4x?x64xbf16>
  return %o : tensor<?x4x?x64xbf16>
}

// -----

func.func @cmpf_true_in_score(%q: tensor<?x4x?x64xbf16>, %k: tensor<?x4x?x64xbf16>, %v: tensor<?x4x?x64xbf16>) -> tensor<?x4x?x64xbf16> {
  %o = attn.attention %q, %k, %v
    score(%s: f32, %b: index, %h: index, %i: index, %j: index) {
      %ii = arith.index_cast %i : index to i64
      %f = arith.sitofp %ii : i64 to f32
      // expected-error @+1 {{'arith.cmpf' op with predicate 'true' is a constant: write arith.constant true}}
      %c = arith.cmpf true, %f, %s : f32
      %r = arith.select %c, %s, %f : f32
      attn.yield %r : f32
    } : tensor<?x4x?x64xbf16>, tensor<?x4x?x64xbf16>, tensor<?x4x?x64xbf16> -> tensor<?x4x?x64xbf16>
  return %o : tensor<?x4x?x64xbf16>
}

// -----

// A value used before its definition (found by attn-parse-fuzzer): region
// safety followed the cycle %d -> %a -> %d until the stack overflowed; the
// dominance check reports it.
func.func @use_before_def(%q: tensor<?x4x?x64xf32>, %k: tensor<?x4x?x64xf32>, %v: tensor<?x4x?x64xf32>, %bias: tensor<4x32xf32>) -> tensor<?x4x?x64xf32> {
  %o = attn.attention %q, %k, %v captures(%bias : tensor<4x32xf32>)
    score(%s: f32, %b: index, %h: index, %i: index, %j: index) {
      %c31 = arith.constant 31 : index
      // expected-error @+1 {{operand #0 does not dominate this use}}
      %d = arith.subi %a, %j : index
      // expected-note @+1 {{operand defined here}}
      %a = math.absi %d : index
      %bucket = arith.minui %a, %c31 : index
      %bv = tensor.extract %bias[%h, %bucket] : tensor<4x32xf32>
      %r = arith.addf %s, %bv : f32
      attn.yield %r : f32
    } : tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32> -> tensor<?x4x?x64xf32>
  return %o : tensor<?x4x?x64xf32>
}
