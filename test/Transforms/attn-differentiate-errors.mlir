// RUN: attn-opt %s -split-input-file --attn-differentiate -verify-diagnostics
// RUN: not attn-opt %s --attn-differentiate=func=two_ops 2>&1 | FileCheck %s --check-prefix=NAMED
// RUN: not attn-opt %s --attn-differentiate=func=paged 2>&1 | FileCheck %s --check-prefix=PAGED
// RUN: not attn-opt %s --attn-differentiate=func=sinks 2>&1 | FileCheck %s --check-prefix=SINKS
// RUN: not attn-opt %s --attn-differentiate=func=kv_lens 2>&1 | FileCheck %s --check-prefix=LENS
// Score regions that attn-differentiate cannot differentiate: the
// diagnostic names the op.

func.func @erf(%q: tensor<?x4x?x64xf32>, %k: tensor<?x4x?x64xf32>,
               %v: tensor<?x4x?x64xf32>) -> tensor<?x4x?x64xf32> {
  %o = attn.attention %q, %k, %v
    score(%s: f32, %b: index, %h: index, %i: index, %j: index) {
      // expected-error @+1 {{'math.erf' op cannot be differentiated}}
      %r = math.erf %s : f32
      attn.yield %r : f32
    } : tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>
      -> tensor<?x4x?x64xf32>
  return %o : tensor<?x4x?x64xf32>
}

// -----

// The unknown op reads a captured bias (a derivative with respect to the
// capture is needed), not s.
func.func @powf_of_capture(%q: tensor<?x4x?x64xf32>, %k: tensor<?x4x?x64xf32>,
                           %v: tensor<?x4x?x64xf32>, %w: tensor<4xf32>)
    -> tensor<?x4x?x64xf32> {
  %o = attn.attention %q, %k, %v captures(%w : tensor<4xf32>)
    score(%s: f32, %b: index, %h: index, %i: index, %j: index) {
      %x = tensor.extract %w[%h] : tensor<4xf32>
      %two = arith.constant 2.0 : f32
      // expected-error @+1 {{'math.powf' op cannot be differentiated}}
      %p = math.powf %x, %two : f32
      %r = arith.addf %s, %p : f32
      attn.yield %r : f32
    } : tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>
      -> tensor<?x4x?x64xf32>
  return %o : tensor<?x4x?x64xf32>
}

// -----

// An op that computes a constant (no derivative flows through it) is fine
// whatever it is: no diagnostic.
func.func @constant_erf(%q: tensor<?x4x?x64xf32>, %k: tensor<?x4x?x64xf32>,
                        %v: tensor<?x4x?x64xf32>) -> tensor<?x4x?x64xf32> {
  %o = attn.attention %q, %k, %v
    score(%s: f32, %b: index, %h: index, %i: index, %j: index) {
      %hi = arith.index_cast %h : index to i64
      %hf = arith.uitofp %hi : i64 to f32
      %e = math.erf %hf : f32
      %r = arith.addf %s, %e : f32
      attn.yield %r : f32
    } : tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>
      -> tensor<?x4x?x64xf32>
  return %o : tensor<?x4x?x64xf32>
}

// -----

// A function named with func= must be one attn.attention whose results
// only the return uses.
// NAMED: attn-differentiate: function 'two_ops' uses the attn op's results in other operations
func.func @two_ops(%q: tensor<?x4x?x64xf32>, %k: tensor<?x4x?x64xf32>,
                   %v: tensor<?x4x?x64xf32>) -> tensor<?x4x?x64xf32> {
  %o = attn.attention %q, %k, %v
    : tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>
    -> tensor<?x4x?x64xf32>
  %r = arith.addf %o, %o : tensor<?x4x?x64xf32>
  return %r : tensor<?x4x?x64xf32>
}

// -----

// An op with a region: the values it reads from above are not operands, so
// no derivative could flow through them; refused.
func.func @region_op(%q: tensor<?x4x?x64xf32>, %k: tensor<?x4x?x64xf32>,
                     %v: tensor<?x4x?x64xf32>) -> tensor<?x4x?x64xf32> {
  %o = attn.attention %q, %k, %v
    score(%s: f32, %b: index, %h: index, %i: index, %j: index) {
      %c = arith.cmpi uge, %i, %j : index
      // expected-error @+1 {{'scf.if' op cannot be differentiated}}
      %r = scf.if %c -> (f32) {
        scf.yield %s : f32
      } else {
        %two = arith.constant 2.0 : f32
        %x = arith.mulf %s, %two : f32
        scf.yield %x : f32
      }
      attn.yield %r : f32
    } : tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>
      -> tensor<?x4x?x64xf32>
  return %o : tensor<?x4x?x64xf32>
}

// -----

// Paged KV caches are for inference: no backward (skipped without func=).
// PAGED: attn-differentiate: function 'paged' reads a paged KV cache (pages(...)): paged attention is for inference and has no backward
func.func @paged(%q: tensor<?x4x?x64xf32>, %k: tensor<?x4x16x64xf32>,
                 %v: tensor<?x4x16x64xf32>, %t: tensor<?x?xi32>)
    -> tensor<?x4x?x64xf32> {
  %o = attn.attention %q, %k, %v pages(%t : tensor<?x?xi32>)
    : tensor<?x4x?x64xf32>, tensor<?x4x16x64xf32>, tensor<?x4x16x64xf32>
      -> tensor<?x4x?x64xf32>
  return %o : tensor<?x4x?x64xf32>
}

// -----

// SINKS: attn-differentiate: function 'sinks' has attention sinks (sinks(...)), which have no backward yet
func.func @sinks(%q: tensor<?x4x?x64xf32>, %k: tensor<?x4x?x64xf32>,
                 %v: tensor<?x4x?x64xf32>, %s: tensor<4xf32>)
    -> tensor<?x4x?x64xf32> {
  %o = attn.attention %q, %k, %v sinks(%s : tensor<4xf32>)
    : tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>
      -> tensor<?x4x?x64xf32>
  return %o : tensor<?x4x?x64xf32>
}

// -----

// LENS: attn-differentiate: function 'kv_lens' has per-sequence key counts (kv_lens(...)), which have no backward yet
func.func @kv_lens(%q: tensor<?x4x?x64xf32>, %k: tensor<?x4x?x64xf32>,
                   %v: tensor<?x4x?x64xf32>, %n: tensor<?xi32>)
    -> tensor<?x4x?x64xf32> {
  %o = attn.attention %q, %k, %v kv_lens(%n : tensor<?xi32>)
    : tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>
      -> tensor<?x4x?x64xf32>
  return %o : tensor<?x4x?x64xf32>
}

// -----

// A feature map with an op that has no rule: the diagnostic names it.
func.func @feature_map_floor(%q: tensor<?x4x?x64xf32>,
                             %k: tensor<?x4x?x64xf32>,
                             %v: tensor<?x4x?x64xf32>) -> tensor<?x4x?x64xf32> {
  %o = attn.linear_attention causal %q, %k, %v
    feature_map(%x: vector<64xf32>) {
      // expected-error @+1 {{'math.floor' op cannot be differentiated}}
      %r = math.floor %x : vector<64xf32>
      attn.yield %r : vector<64xf32>
    } : tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>
      -> tensor<?x4x?x64xf32>
  return %o : tensor<?x4x?x64xf32>
}

// -----

// A max over a multi-dim reduction has no rule (vector.reduction's has).
func.func @feature_map_multi_max(%q: tensor<?x4x?x64xf32>,
                                 %k: tensor<?x4x?x64xf32>,
                                 %v: tensor<?x4x?x64xf32>)
    -> tensor<?x4x?x64xf32> {
  %o = attn.linear_attention causal %q, %k, %v
    feature_map(%x: vector<64xf32>) {
      %m = vector.shape_cast %x : vector<64xf32> to vector<8x8xf32>
      %init = arith.constant dense<-1.0e30> : vector<8xf32>
      // expected-error @+1 {{'vector.multi_reduction' op cannot be differentiated}}
      %r = vector.multi_reduction <maximumf>, %m, %init [1]
        : vector<8x8xf32> to vector<8xf32>
      attn.yield %r : vector<8xf32>
    } : tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>
      -> tensor<?x4x?x64xf32>
  return %o : tensor<?x4x?x64xf32>
}
