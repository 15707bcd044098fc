// RUN: attn-opt %s -split-input-file -verify-diagnostics
// One case per user-facing diagnostic of the attn dialect (AttnDialect.cpp).

//===----------------------------------------------------------------------===//
// attn.attention: operand and result types
//===----------------------------------------------------------------------===//

func.func @q_rank(%q: tensor<?x?x64xf32>, %k: tensor<?x4x?x64xf32>, %v: tensor<?x4x?x64xf32>) {
  // expected-error @+1 {{q must be a rank-4 tensor [B, H, N, D], got 'tensor<?x?x64xf32>'}}
  %o = attn.attention %q, %k, %v : tensor<?x?x64xf32>, tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32> -> tensor<?x4x?x64xf32>
  return
}

// -----

func.func @k_element_type(%q: tensor<?x4x?x64xf32>, %k: tensor<?x4x?x64xi32>, %v: tensor<?x4x?x64xf32>) {
  // expected-error @+1 {{k element type must be f32, f16 or bf16, got 'i32'}}
  %o = attn.attention %q, %k, %v : tensor<?x4x?x64xf32>, tensor<?x4x?x64xi32>, tensor<?x4x?x64xf32> -> tensor<?x4x?x64xf32>
  return
}

// -----

func.func @v_dynamic_heads(%q: tensor<?x4x?x64xf32>, %k: tensor<?x4x?x64xf32>, %v: tensor<?x?x?x64xf32>) {
  // expected-error @+1 {{v must have static head count and head dim}}
  %o = attn.attention %q, %k, %v : tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>, tensor<?x?x?x64xf32> -> tensor<?x4x?x64xf32>
  return
}

// -----

func.func @mixed_element_types(%q: tensor<?x4x?x64xf16>, %k: tensor<?x4x?x64xf16>, %v: tensor<?x4x?x64xbf16>) {
  // expected-error @+1 {{q, k and v must have the same element type, got 'f16', 'f16' and 'bf16'}}
  %o = attn.attention %q, %k, %v : tensor<?x4x?x64xf16>, tensor<?x4x?x64xf16>, tensor<?x4x?x64xbf16> -> tensor<?x4x?x64xf16>
  return
}

// -----

func.func @batch_mismatch(%q: tensor<2x4x?x64xf32>, %k: tensor<3x4x?x64xf32>, %v: tensor<?x4x?x64xf32>) {
  // expected-error @+1 {{batch sizes of q, k and v differ (2, 3, ?)}}
  %o = attn.attention %q, %k, %v : tensor<2x4x?x64xf32>, tensor<3x4x?x64xf32>, tensor<?x4x?x64xf32> -> tensor<2x4x?x64xf32>
  return
}

// -----

func.func @head_dim_mismatch(%q: tensor<?x4x?x64xf32>, %k: tensor<?x4x?x32xf32>, %v: tensor<?x4x?x64xf32>) {
  // expected-error @+1 {{head dim of q (64) and k (32) differ}}
  %o = attn.attention %q, %k, %v : tensor<?x4x?x64xf32>, tensor<?x4x?x32xf32>, tensor<?x4x?x64xf32> -> tensor<?x4x?x64xf32>
  return
}

// -----

func.func @kv_heads(%q: tensor<?x8x?x64xf32>, %k: tensor<?x2x?x64xf32>, %v: tensor<?x4x?x64xf32>) {
  // expected-error @+1 {{k and v must have the same number of heads, got 2 and 4}}
  %o = attn.attention %q, %k, %v : tensor<?x8x?x64xf32>, tensor<?x2x?x64xf32>, tensor<?x4x?x64xf32> -> tensor<?x8x?x64xf32>
  return
}

// -----

func.func @kv_seq(%q: tensor<?x4x?x64xf32>, %k: tensor<?x4x128x64xf32>, %v: tensor<?x4x64x64xf32>) {
  // expected-error @+1 {{k and v sequence lengths differ (128 vs 64)}}
  %o = attn.attention %q, %k, %v : tensor<?x4x?x64xf32>, tensor<?x4x128x64xf32>, tensor<?x4x64x64xf32> -> tensor<?x4x?x64xf32>
  return
}

// -----

func.func @gqa_ratio(%q: tensor<?x6x?x64xf32>, %k: tensor<?x4x?x64xf32>, %v: tensor<?x4x?x64xf32>) {
  // expected-error @+1 {{query heads (6) must be a multiple of key/value heads (4)}}
  %o = attn.attention %q, %k, %v : tensor<?x6x?x64xf32>, tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32> -> tensor<?x6x?x64xf32>
  return
}

// -----

func.func @o_shape(%q: tensor<?x8x?x64xf32>, %k: tensor<?x2x?x64xf32>, %v: tensor<?x2x?x32xf32>) {
  // expected-error @+1 {{result o must be tensor<?x8x?x32x}}
  %o = attn.attention %q, %k, %v : tensor<?x8x?x64xf32>, tensor<?x2x?x64xf32>, tensor<?x2x?x32xf32> -> tensor<?x8x?x64xf32>
  return
}

// -----

func.func @o_element_type(%q: tensor<?x4x?x64xf16>, %k: tensor<?x4x?x64xf16>, %v: tensor<?x4x?x64xf16>) {
  // expected-error @+1 {{result o must be tensor<?x4x?x64x}}
  %o = attn.attention %q, %k, %v : tensor<?x4x?x64xf16>, tensor<?x4x?x64xf16>, tensor<?x4x?x64xf16> -> tensor<?x4x?x64xf32>
  return
}

// -----

func.func @lse_shape(%q: tensor<?x4x?x64xf32>, %k: tensor<?x4x?x64xf32>, %v: tensor<?x4x?x64xf32>) {
  // expected-error @+1 {{result lse must be tensor<?x4x?x}}
  %o, %lse = attn.attention %q, %k, %v : tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32> -> tensor<?x4x?x64xf32>, tensor<?x4x?x1xf32>
  return
}

// -----

func.func @lse_f16(%q: tensor<?x4x?x64xf16>, %k: tensor<?x4x?x64xf16>, %v: tensor<?x4x?x64xf16>) {
  // expected-error @+1 {{result lse must be tensor<?x4x?x}}
  %o, %lse = attn.attention %q, %k, %v : tensor<?x4x?x64xf16>, tensor<?x4x?x64xf16>, tensor<?x4x?x64xf16> -> tensor<?x4x?x64xf16>, tensor<?x4x?xf16>
  return
}

// -----

func.func @scale_zero(%q: tensor<?x4x?x64xf32>, %k: tensor<?x4x?x64xf32>, %v: tensor<?x4x?x64xf32>) {
  // expected-error @+1 {{scale must be finite and non-zero, got 0}}
  %o = attn.attention %q, %k, %v scale = 0.0 : tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32> -> tensor<?x4x?x64xf32>
  return
}

// -----

func.func @scale_inf(%q: tensor<?x4x?x64xf32>, %k: tensor<?x4x?x64xf32>, %v: tensor<?x4x?x64xf32>) {
  // expected-error @+1 {{scale must be finite and non-zero}}
  %o = attn.attention %q, %k, %v scale = 0x7F800000 : tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32> -> tensor<?x4x?x64xf32>
  return
}

//===----------------------------------------------------------------------===//
// attn.attention: custom syntax
//===----------------------------------------------------------------------===//

// -----

func.func @two_input_types(%q: tensor<?x4x?x64xf32>, %k: tensor<?x4x?x64xf32>, %v: tensor<?x4x?x64xf32>) {
  // expected-error @+1 {{expected 3 input types (q, k, v), got 2}}
  %o = attn.attention %q, %k, %v : tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32> -> tensor<?x4x?x64xf32>
  return
}

// -----

func.func @three_result_types(%q: tensor<?x4x?x64xf32>, %k: tensor<?x4x?x64xf32>, %v: tensor<?x4x?x64xf32>) {
  // expected-error @+1 {{expected 1 or 2 result types (o and optionally lse)}}
  %o:3 = attn.attention %q, %k, %v : tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32> -> tensor<?x4x?x64xf32>, tensor<?x4x?xf32>, tensor<?x4x?xf32>
  return
}

// -----

func.func @captures_count(%q: tensor<?x4x?x64xf32>, %k: tensor<?x4x?x64xf32>, %v: tensor<?x4x?x64xf32>, %d: tensor<?xi32>) {
  // expected-error @+1 {{captures: 2 values but 1 types}}
  %o = attn.attention %q, %k, %v captures(%d, %d : tensor<?xi32>) : tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32> -> tensor<?x4x?x64xf32>
  return
}

// -----

// A named region with neither arguments nor a body.
func.func @score_region_empty(%q: tensor<?x4x?x64xf32>, %k: tensor<?x4x?x64xf32>, %v: tensor<?x4x?x64xf32>) {
  // expected-error @+2 {{'score' region must not be empty}}
  %o = attn.attention %q, %k, %v
    score() {} : tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32> -> tensor<?x4x?x64xf32>
  return
}

//===----------------------------------------------------------------------===//
// attn.attention: regions
//===----------------------------------------------------------------------===//

// -----

func.func @mask_arg_count(%q: tensor<?x4x?x64xf32>, %k: tensor<?x4x?x64xf32>, %v: tensor<?x4x?x64xf32>) {
  // expected-error @+1 {{'mask' region must take 4 arguments}}
  %o = attn.attention %q, %k, %v
    mask(%i: index, %j: index) {
      %c = arith.cmpi uge, %i, %j : index
      attn.yield %c : i1
    } : tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32> -> tensor<?x4x?x64xf32>
  return
}

// -----

func.func @score_arg_type(%q: tensor<?x4x?x64xf32>, %k: tensor<?x4x?x64xf32>, %v: tensor<?x4x?x64xf32>) {
  // expected-error @+1 {{'score' region argument #0 must be 'f32', got 'f16'}}
  %o = attn.attention %q, %k, %v
    score(%s: f16, %b: index, %h: index, %i: index, %j: index) {
      %r = arith.extf %s : f16 to f32
      attn.yield %r : f32
    } : tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32> -> tensor<?x4x?x64xf32>
  return
}

// -----

func.func @mask_arg_type(%q: tensor<?x4x?x64xf32>, %k: tensor<?x4x?x64xf32>, %v: tensor<?x4x?x64xf32>) {
  // expected-error @+1 {{'mask' region argument #2 must be 'index', got 'i32'}}
  %o = attn.attention %q, %k, %v
    mask(%b: index, %h: index, %i: i32, %j: index) {
      %t = arith.constant true
      attn.yield %t : i1
    } : tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32> -> tensor<?x4x?x64xf32>
  return
}

// -----

func.func @mask_yield_type(%q: tensor<?x4x?x64xf32>, %k: tensor<?x4x?x64xf32>, %v: tensor<?x4x?x64xf32>) {
  // expected-error @+1 {{'mask' region must yield one 'i1', got 1 value(s) of another type}}
  %o = attn.attention %q, %k, %v
    mask(%b: index, %h: index, %i: index, %j: index) {
      %d = arith.subi %i, %j : index
      attn.yield %d : index
    } : tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32> -> tensor<?x4x?x64xf32>
  return
}

// -----

func.func @score_yield_count(%q: tensor<?x4x?x64xf32>, %k: tensor<?x4x?x64xf32>, %v: tensor<?x4x?x64xf32>) {
  // expected-error @+1 {{'score' region must yield one 'f32', got 2 value(s)}}
  %o = attn.attention %q, %k, %v
    score(%s: f32, %b: index, %h: index, %i: index, %j: index) {
      attn.yield %s, %s : f32, f32
    } : tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32> -> tensor<?x4x?x64xf32>
  return
}

// -----

func.func @mask_terminator(%q: tensor<?x4x?x64xf32>, %k: tensor<?x4x?x64xf32>, %v: tensor<?x4x?x64xf32>) {
  // expected-error @+1 {{'mask' region must end with attn.yield}}
  %o = attn.attention %q, %k, %v
    mask(%b: index, %h: index, %i: index, %j: index) {
      llvm.unreachable
    } : tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32> -> tensor<?x4x?x64xf32>
  return
}

// -----

func.func @side_effect(%q: tensor<?x4x?x64xf32>, %k: tensor<?x4x?x64xf32>, %v: tensor<?x4x?x64xf32>) {
  %o = attn.attention %q, %k, %v
    mask(%b: index, %h: index, %i: index, %j: index) {
      // expected-error @+1 {{'memref.alloca' op has side effects; attn regions must be pure scalar code}}
      %m = memref.alloca() : memref<1xi1>
      %c0 = arith.constant 0 : index
      %c = memref.load %m[%c0] : memref<1xi1>
      attn.yield %c : i1
    } : tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32> -> tensor<?x4x?x64xf32>
  return
}

// -----

func.func @produces_tensor(%q: tensor<?x4x?x64xf32>, %k: tensor<?x4x?x64xf32>, %v: tensor<?x4x?x64xf32>) {
  %o = attn.attention %q, %k, %v
    score(%s: f32, %b: index, %h: index, %i: index, %j: index) {
      // expected-error @+1 {{'tensor.empty' op produces 'tensor<4xf32>'; attn regions must be pure scalar code}}
      %t = tensor.empty() : tensor<4xf32>
      %c0 = arith.constant 0 : index
      %x = tensor.extract %t[%c0] : tensor<4xf32>
      %r = arith.addf %s, %x : f32
      attn.yield %r : f32
    } : tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32> -> tensor<?x4x?x64xf32>
  return
}

// -----

func.func @produces_vector(%q: tensor<?x4x?x64xf32>, %k: tensor<?x4x?x64xf32>, %v: tensor<?x4x?x64xf32>) {
  %o = attn.attention %q, %k, %v
    score(%s: f32, %b: index, %h: index, %i: index, %j: index) {
      // expected-error @+1 {{'vector.broadcast' op produces 'vector<4xf32>'; attn regions must be pure scalar code}}
      %x = vector.broadcast %s : f32 to vector<4xf32>
      %r = vector.reduction <add>, %x : vector<4xf32> into f32
      attn.yield %r : f32
    } : tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32> -> tensor<?x4x?x64xf32>
  return
}

// -----

func.func @not_captured(%q: tensor<?x4x?x64xf32>, %k: tensor<?x4x?x64xf32>, %v: tensor<?x4x?x64xf32>) {
  // expected-note @+1 {{value defined here}}
  %w = arith.constant 64 : index
  // expected-error @+1 {{region uses a value defined outside the op that is not listed in captures(...)}}
  %o = attn.attention %q, %k, %v
    mask(%b: index, %h: index, %i: index, %j: index) {
      %d = arith.subi %i, %j : index
      %c = arith.cmpi ult, %d, %w : index
      attn.yield %c : i1
    } : tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32> -> tensor<?x4x?x64xf32>
  return
}

// -----

func.func @unused_capture(%q: tensor<?x4x?x64xf32>, %k: tensor<?x4x?x64xf32>, %v: tensor<?x4x?x64xf32>, %d: tensor<?xi32>, %e: tensor<?xi32>) {
  // expected-error @+1 {{capture #1 is not used by any region}}
  %o = attn.attention %q, %k, %v captures(%d, %e : tensor<?xi32>, tensor<?xi32>)
    mask(%b: index, %h: index, %i: index, %j: index) {
      %di = tensor.extract %d[%i] : tensor<?xi32>
      %dj = tensor.extract %d[%j] : tensor<?xi32>
      %c = arith.cmpi eq, %di, %dj : i32
      attn.yield %c : i1
    } : tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32> -> tensor<?x4x?x64xf32>
  return
}

//===----------------------------------------------------------------------===//
// #attn.schedule
//===----------------------------------------------------------------------===//

// -----

func.func @schedule_block_size(%q: tensor<?x4x?x64xf32>, %k: tensor<?x4x?x64xf32>, %v: tensor<?x4x?x64xf32>) {
  // expected-error @+1 {{block_q and block_kv must be powers of two, got 48 and 64}}
  %o = attn.attention %q, %k, %v {schedule = #attn.schedule<target = "cpu", block_q = 48, block_kv = 64, warps = 1, stages = 1, smem_bytes = 0>} : tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32> -> tensor<?x4x?x64xf32>
  return
}

// -----

func.func @schedule_warps(%q: tensor<?x4x?x64xf32>, %k: tensor<?x4x?x64xf32>, %v: tensor<?x4x?x64xf32>) {
  // expected-error @+1 {{warps and stages must be positive, got 0 and 2}}
  %o = attn.attention %q, %k, %v {schedule = #attn.schedule<target = "sm_80", block_q = 128, block_kv = 64, warps = 0, stages = 2, smem_bytes = 65536>} : tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32> -> tensor<?x4x?x64xf32>
  return
}

// -----

func.func @schedule_target(%q: tensor<?x4x?x64xf32>, %k: tensor<?x4x?x64xf32>, %v: tensor<?x4x?x64xf32>) {
  // expected-error @+2 {{unknown target 'sm_70' (expected cpu, sm_80 or sm_90a)}}
  // expected-error @+1 {{failed to parse Attn_ScheduleAttr parameter 'target'}}
  %o = attn.attention %q, %k, %v {schedule = #attn.schedule<target = "sm_70", block_q = 128, block_kv = 64, warps = 4, stages = 2, smem_bytes = 65536>} : tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32> -> tensor<?x4x?x64xf32>
  return
}

//===----------------------------------------------------------------------===//
// attn.linear_attention and attn.scan
//===----------------------------------------------------------------------===//

// -----

func.func @linear_direction(%q: tensor<?x4x?x64xf32>, %k: tensor<?x4x?x64xf32>, %v: tensor<?x4x?x64xf32>) {
  // expected-error @+1 {{expected 'causal' or 'bidirectional', got 'forward'}}
  %o = attn.linear_attention forward %q, %k, %v : tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32> -> tensor<?x4x?x64xf32>
  return
}

// -----

func.func @linear_two_input_types(%q: tensor<?x4x?x64xf32>, %k: tensor<?x4x?x64xf32>, %v: tensor<?x4x?x64xf32>) {
  // expected-error @+1 {{expected 3 input types (q, k, v), got 2}}
  %o = attn.linear_attention causal %q, %k, %v : tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32> -> tensor<?x4x?x64xf32>
  return
}

// -----

func.func @linear_result_count(%q: tensor<?x4x?x64xf32>, %k: tensor<?x4x?x64xf32>, %v: tensor<?x4x?x64xf32>) {
  // expected-error @+1 {{expected 1 or 2 result types (o and optionally the final state)}}
  %o:3 = attn.scan causal %q, %k, %v : tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32> -> tensor<?x4x?x64xf32>, tensor<?x4x64x64xf32>, tensor<?x4x64x64xf32>
  return
}

// -----

func.func @linear_seq(%q: tensor<?x4x128x64xf32>, %k: tensor<?x4x64x64xf32>, %v: tensor<?x4x64x64xf32>) {
  // expected-error @+1 {{q and k sequence lengths differ (128 vs 64)}}
  %o = attn.linear_attention causal %q, %k, %v : tensor<?x4x128x64xf32>, tensor<?x4x64x64xf32>, tensor<?x4x64x64xf32> -> tensor<?x4x128x64xf32>
  return
}

// -----

func.func @scan_gqa_ratio(%q: tensor<?x3x?x64xf32>, %k: tensor<?x2x?x64xf32>, %v: tensor<?x2x?x64xf32>) {
  // expected-error @+1 {{query heads (3) must be a multiple of key/value heads (2)}}
  %o = attn.scan causal %q, %k, %v : tensor<?x3x?x64xf32>, tensor<?x2x?x64xf32>, tensor<?x2x?x64xf32> -> tensor<?x3x?x64xf32>
  return
}

// -----

func.func @linear_o_shape(%q: tensor<?x4x?x64xf32>, %k: tensor<?x4x?x64xf32>, %v: tensor<?x4x?x32xf32>) {
  // expected-error @+1 {{result o must be tensor<?x4x?x32x}}
  %o = attn.linear_attention causal %q, %k, %v : tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>, tensor<?x4x?x32xf32> -> tensor<?x4x?x64xf32>
  return
}

// -----

func.func @decay_f16(%q: tensor<?x4x?x64xf32>, %k: tensor<?x4x?x64xf32>, %v: tensor<?x4x?x64xf32>, %g: tensor<4xf16>) {
  // expected-error @+1 {{decay must hold f32 log-gates, got 'f16'}}
  %o = attn.linear_attention causal %q, %k, %v decay(%g : tensor<4xf16>) : tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32> -> tensor<?x4x?x64xf32>
  return
}

// -----

func.func @decay_per_head(%q: tensor<?x4x?x64xf32>, %k: tensor<?x4x?x64xf32>, %v: tensor<?x4x?x64xf32>, %g: tensor<8xf32>) {
  // expected-error @+1 {{per-head decay must be tensor<4x}}
  %o = attn.linear_attention causal %q, %k, %v decay(%g : tensor<8xf32>) : tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32> -> tensor<?x4x?x64xf32>
  return
}

// -----

func.func @decay_per_token(%q: tensor<?x4x?x64xf32>, %k: tensor<?x4x?x64xf32>, %v: tensor<?x4x?x64xf32>, %g: tensor<?x2x?xf32>) {
  // expected-error @+1 {{per-token decay must be tensor<?x4x?x}}
  %o = attn.scan causal %q, %k, %v decay(%g : tensor<?x2x?xf32>) : tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32> -> tensor<?x4x?x64xf32>
  return
}

// -----

func.func @decay_per_feature(%q: tensor<?x4x?x64xf32>, %k: tensor<?x4x?x64xf32>, %v: tensor<?x4x?x64xf32>, %g: tensor<?x4x?x32xf32>) {
  // expected-error @+1 {{per-token, per-feature decay must be tensor<?x4x?x64x}}
  %o = attn.scan bidirectional %q, %k, %v decay(%g : tensor<?x4x?x32xf32>) : tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32> -> tensor<?x4x?x64xf32>
  return
}

// -----

func.func @decay_rank(%q: tensor<?x4x?x64xf32>, %k: tensor<?x4x?x64xf32>, %v: tensor<?x4x?x64xf32>, %g: tensor<?x4xf32>) {
  // expected-error @+1 {{decay must be [H] (per head), [B, H, N] (per token) or [B, H, N, F] (per token and feature), got 'tensor<?x4xf32>'}}
  %o = attn.linear_attention causal %q, %k, %v decay(%g : tensor<?x4xf32>) : tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32> -> tensor<?x4x?x64xf32>
  return
}

// -----

func.func @initial_state_bidirectional(%q: tensor<?x4x?x64xf32>, %k: tensor<?x4x?x64xf32>, %v: tensor<?x4x?x64xf32>, %s: tensor<?x4x64x64xf32>) {
  // expected-error @+1 {{initial_state requires a causal scan}}
  %o = attn.scan bidirectional %q, %k, %v initial_state(%s : tensor<?x4x64x64xf32>) : tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32> -> tensor<?x4x?x64xf32>
  return
}

// -----

func.func @initial_state_shape(%q: tensor<?x4x?x64xf32>, %k: tensor<?x4x?x64xf32>, %v: tensor<?x4x?x32xf32>, %s: tensor<?x4x64x64xf32>) {
  // expected-error @+1 {{initial_state must be tensor<?x4x64x32x}}
  %o = attn.scan causal %q, %k, %v initial_state(%s : tensor<?x4x64x64xf32>) : tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>, tensor<?x4x?x32xf32> -> tensor<?x4x?x32xf32>
  return
}

// -----

func.func @final_state_bidirectional(%q: tensor<?x4x?x64xf32>, %k: tensor<?x4x?x64xf32>, %v: tensor<?x4x?x64xf32>) {
  // expected-error @+1 {{a final state result requires a causal scan}}
  %o, %s = attn.linear_attention bidirectional %q, %k, %v : tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32> -> tensor<?x4x?x64xf32>, tensor<?x4x64x64xf32>
  return
}

// -----

func.func @final_state_shape(%q: tensor<?x4x?x64xf32>, %k: tensor<?x4x?x64xf32>, %v: tensor<?x4x?x64xf32>) {
  // expected-error @+1 {{final state must be tensor<?x4x16x64x}}
  %o, %s = attn.linear_attention causal %q, %k, %v
    feature_map(%x: vector<64xf32>) {
      %f = vector.extract_strided_slice %x {offsets = [0], sizes = [16], strides = [1]} : vector<64xf32> to vector<16xf32>
      attn.yield %f : vector<16xf32>
    } : tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32> -> tensor<?x4x?x64xf32>, tensor<?x4x64x64xf32>
  return
}

// -----

func.func @key_feature_map_alone(%q: tensor<?x4x?x64xf32>, %k: tensor<?x4x?x64xf32>, %v: tensor<?x4x?x64xf32>) {
  // expected-error @+1 {{'key_feature_map' requires a 'feature_map' region}}
  %o = attn.linear_attention causal %q, %k, %v
    key_feature_map(%x: vector<64xf32>) {
      attn.yield %x : vector<64xf32>
    } : tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32> -> tensor<?x4x?x64xf32>
  return
}

// -----

func.func @feature_map_scalar(%q: tensor<?x4x?x64xf32>, %k: tensor<?x4x?x64xf32>, %v: tensor<?x4x?x64xf32>) {
  // expected-error @+1 {{'feature_map' region must yield a vector<Fxf32>, got 'f32'}}
  %o = attn.linear_attention causal %q, %k, %v
    feature_map(%x: vector<64xf32>) {
      %r = vector.reduction <add>, %x : vector<64xf32> into f32
      attn.yield %r : f32
    } : tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32> -> tensor<?x4x?x64xf32>
  return
}

// -----

func.func @schedule_smem(%q: tensor<?x4x?x64xf32>, %k: tensor<?x4x?x64xf32>, %v: tensor<?x4x?x64xf32>) {
  // expected-error @+1 {{smem_bytes must not be negative, got -1}}
  %o = attn.attention %q, %k, %v {schedule = #attn.schedule<target = "sm_80", block_q = 128, block_kv = 64, warps = 4, stages = 2, smem_bytes = -1>} : tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32> -> tensor<?x4x?x64xf32>
  return
}

// -----

func.func @zero_kv_heads(%q: tensor<?x4x?x64xf32>, %k: tensor<?x0x?x64xf32>, %v: tensor<?x0x?x64xf32>) {
  // expected-error @+1 {{k must have at least one head and a non-zero head dim, got 'tensor<?x0x?x64xf32>'}}
  %o = attn.attention %q, %k, %v : tensor<?x4x?x64xf32>, tensor<?x0x?x64xf32>, tensor<?x0x?x64xf32> -> tensor<?x4x?x64xf32>
  return
}

// -----

func.func @zero_head_dim(%q: tensor<?x4x?x0xf32>, %k: tensor<?x4x?x0xf32>, %v: tensor<?x4x?x64xf32>) {
  // expected-error @+1 {{q must have at least one head and a non-zero head dim, got 'tensor<?x4x?x0xf32>'}}
  %o = attn.attention %q, %k, %v : tensor<?x4x?x0xf32>, tensor<?x4x?x0xf32>, tensor<?x4x?x64xf32> -> tensor<?x4x?x64xf32>
  return
}

// -----

func.func @scan_zero_heads(%q: tensor<?x0x?x64xf32>, %k: tensor<?x0x?x64xf32>, %v: tensor<?x0x?x64xf32>) {
  // expected-error @+1 {{q must have at least one head and a non-zero head dim}}
  %o = attn.scan causal %q, %k, %v : tensor<?x0x?x64xf32>, tensor<?x0x?x64xf32>, tensor<?x0x?x64xf32> -> tensor<?x0x?x64xf32>
  return
}

// -----

// The token order reads q's sequence length only once q is known to be
// rank 4.
func.func @token_order_rank(%q: tensor<4xf32>, %k: tensor<?x4x?x64xf32>, %v: tensor<?x4x?x64xf32>) {
  // expected-error @+1 {{q must be a rank-4 tensor [B, H, N, D], got 'tensor<4xf32>'}}
  %o = attn.scan causal %q, %k, %v {order = #attn.token_order<grid = [2, 3, 4], perm = [0, 1, 2], review = 0>}
    : tensor<4xf32>, tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32> -> tensor<?x4x?x64xf32>
  return
}

// -----

func.func @feature_map_arg_count(%q: tensor<?x4x?x64xf32>, %k: tensor<?x4x?x64xf32>, %v: tensor<?x4x?x64xf32>) {
  // expected-error @+1 {{'feature_map' region must take the row ('vector<64xf32>') and optionally the token's position (index), got 3 arguments}}
  %o = attn.linear_attention causal %q, %k, %v
    feature_map(%x: vector<64xf32>, %t: index, %u: index) {
      attn.yield %x : vector<64xf32>
    } : tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32> -> tensor<?x4x?x64xf32>
  return
}

// -----

func.func @feature_map_arg_type(%q: tensor<?x4x?x64xf32>, %k: tensor<?x4x?x64xf32>, %v: tensor<?x4x?x64xf32>) {
  // expected-error @+1 {{'feature_map' region argument #0 must be 'vector<64xf32>', got 'vector<32xf32>'}}
  %o = attn.linear_attention causal %q, %k, %v
    feature_map(%x: vector<32xf32>) {
      attn.yield %x : vector<32xf32>
    } : tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32> -> tensor<?x4x?x64xf32>
  return
}

// -----

func.func @key_feature_map_width(%q: tensor<?x4x?x64xf32>, %k: tensor<?x4x?x64xf32>, %v: tensor<?x4x?x64xf32>) {
  // expected-error @+1 {{'key_feature_map' region must yield one 'vector<16xf32>', got 1 value(s) of another type}}
  %o = attn.linear_attention causal %q, %k, %v
    feature_map(%x: vector<64xf32>) {
      %f = vector.extract_strided_slice %x {offsets = [0], sizes = [16], strides = [1]} : vector<64xf32> to vector<16xf32>
      attn.yield %f : vector<16xf32>
    }
    key_feature_map(%x: vector<64xf32>) {
      attn.yield %x : vector<64xf32>
    } : tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32> -> tensor<?x4x?x64xf32>
  return
}

// -----

func.func @feature_map_tensor(%q: tensor<?x4x?x64xf32>, %k: tensor<?x4x?x64xf32>, %v: tensor<?x4x?x64xf32>) {
  %o = attn.linear_attention causal %q, %k, %v
    feature_map(%x: vector<64xf32>) {
      // expected-error @+1 {{'tensor.empty' op produces 'tensor<64xf32>'; attn regions must be pure scalar or vector code}}
      %t = tensor.empty() : tensor<64xf32>
      attn.yield %x : vector<64xf32>
    } : tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32> -> tensor<?x4x?x64xf32>
  return
}

// -----

func.func @linear_unused_capture(%q: tensor<?x4x?x64xf32>, %k: tensor<?x4x?x64xf32>, %v: tensor<?x4x?x64xf32>, %w: tensor<64xf32>) {
  // expected-error @+1 {{capture #0 is not used by any region}}
  %o = attn.linear_attention causal %q, %k, %v captures(%w : tensor<64xf32>)
    feature_map(%x: vector<64xf32>) {
      attn.yield %x : vector<64xf32>
    } : tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32> -> tensor<?x4x?x64xf32>
  return
}

// -----

// An empty feature-map body is a clean error, not a crash in the verifier.
func.func @empty_feature_map(%q: tensor<?x4x?x64xf32>, %k: tensor<?x4x?x64xf32>, %v: tensor<?x4x?x64xf32>) -> tensor<?x4x?x64xf32> {
  // expected-error @+1 {{empty block: expect at least a terminator}}
  %o = attn.linear_attention causal %q, %k, %v
    feature_map(%x: vector<64xf32>) {
    } : tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32> -> tensor<?x4x?x64xf32>
  return %o : tensor<?x4x?x64xf32>
}

// -----

func.func @linear_zero_scale(%q: tensor<?x4x?x64xf32>, %k: tensor<?x4x?x64xf32>, %v: tensor<?x4x?x64xf32>) -> tensor<?x4x?x64xf32> {
  // expected-error @+1 {{scale must be finite and non-zero}}
  %o = attn.linear_attention causal %q, %k, %v scale = 0.0
    : tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32> -> tensor<?x4x?x64xf32>
  return %o : tensor<?x4x?x64xf32>
}

// -----

func.func @feature_map_position_type(%q: tensor<?x4x?x64xf32>, %k: tensor<?x4x?x64xf32>, %v: tensor<?x4x?x64xf32>) {
  // expected-error @+1 {{'feature_map' region argument #1 must be 'index', got 'i64'}}
  %o = attn.linear_attention causal %q, %k, %v
    feature_map(%x: vector<64xf32>, %t: i64) {
      attn.yield %x : vector<64xf32>
    } : tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32> -> tensor<?x4x?x64xf32>
  return
}

// -----

func.func @token_order_perm(%q: tensor<?x4x?x64xf32>, %k: tensor<?x4x?x64xf32>, %v: tensor<?x4x?x64xf32>) {
  // expected-error @+2 {{perm must be a permutation of 0..2}}
  %o = attn.scan causal %q, %k, %v
    {order = #attn.token_order<grid = [2, 3, 4], perm = [0, 0, 2], review = 0>}
    : tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32> -> tensor<?x4x?x64xf32>
  return
}

// -----

func.func @token_order_grid(%q: tensor<?x4x?x64xf32>, %k: tensor<?x4x?x64xf32>, %v: tensor<?x4x?x64xf32>) {
  // expected-error @+2 {{grid dims must be positive}}
  %o = attn.scan causal %q, %k, %v
    {order = #attn.token_order<grid = [2, 0, 4], perm = [0, 1, 2], review = 0>}
    : tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32> -> tensor<?x4x?x64xf32>
  return
}

// -----

func.func @token_order_review(%q: tensor<?x4x?x64xf32>, %k: tensor<?x4x?x64xf32>, %v: tensor<?x4x?x64xf32>) {
  // expected-error @+2 {{review must not be negative, got -1}}
  %o = attn.linear_attention causal %q, %k, %v
    {order = #attn.token_order<grid = [2, 3, 4], perm = [0, 1, 2], review = -1>}
    : tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32> -> tensor<?x4x?x64xf32>
  return
}

// -----

func.func @token_order_length(%q: tensor<1x4x30x64xf32>, %k: tensor<1x4x30x64xf32>, %v: tensor<1x4x30x64xf32>) {
  // expected-error @+1 {{token order is for sequences of 28 tokens (review + product(grid)), got 30}}
  %o = attn.scan causal %q, %k, %v
    {order = #attn.token_order<grid = [2, 3, 4], perm = [2, 1, 0], review = 4>}
    : tensor<1x4x30x64xf32>, tensor<1x4x30x64xf32>, tensor<1x4x30x64xf32> -> tensor<1x4x30x64xf32>
  return
}

// -----

func.func @decay_positive(%q: tensor<?x4x?x64xf32>, %k: tensor<?x4x?x64xf32>, %v: tensor<?x4x?x64xf32>) {
  %g = arith.constant dense<[-0.1, -0.2, 0.5, -0.1]> : tensor<4xf32>
  // expected-error @+1 {{decay holds log-gates, which must be finite and <= 0 (the decay is exp(g)); element 2 is 5.000000e-01}}
  %o = attn.linear_attention causal %q, %k, %v decay(%g : tensor<4xf32>) : tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32> -> tensor<?x4x?x64xf32>
  return
}

// -----

// A -inf log-gate (a decay of exactly 0) gives -inf - -inf in the chunked
// form's cumulative sums: refused; a large finite one resets the state.
func.func @decay_neg_inf(%q: tensor<?x4x?x64xf32>, %k: tensor<?x4x?x64xf32>, %v: tensor<?x4x?x64xf32>) {
  %g = arith.constant dense<[-0.1, 0xFF800000, -0.5, -0.1]> : tensor<4xf32>
  // expected-error @+1 {{decay holds log-gates, which must be finite and <= 0 (the decay is exp(g)); element 1 is -INF}}
  %o = attn.linear_attention causal %q, %k, %v decay(%g : tensor<4xf32>) : tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32> -> tensor<?x4x?x64xf32>
  return
}

// -----

func.func @extract_out_of_bounds(%q: tensor<?x4x?x16xf32>, %k: tensor<?x4x?x16xf32>, %v: tensor<?x4x?x16xf32>, %t: tensor<4xf32>) {
  %o = attn.attention %q, %k, %v captures(%t : tensor<4xf32>)
    score(%s: f32, %b: index, %h: index, %i: index, %j: index) {
      %c9 = arith.constant 9 : index
      // expected-error @+1 {{reads capture #0 of type 'tensor<4xf32>' along dimension 0 (4 elements) at indices [9, 9], outside the tensor}}
      %x = tensor.extract %t[%c9] : tensor<4xf32>
      %r = arith.addf %s, %x : f32
      attn.yield %r : f32
    } : tensor<?x4x?x16xf32>, tensor<?x4x?x16xf32>, tensor<?x4x?x16xf32> -> tensor<?x4x?x16xf32>
  return
}

// -----

func.func @mask_divides_by_zero(%q: tensor<?x4x?x16xf32>, %k: tensor<?x4x?x16xf32>, %v: tensor<?x4x?x16xf32>) {
  %o = attn.attention %q, %k, %v
    mask(%b: index, %h: index, %i: index, %j: index) {
      %c0 = arith.constant 0 : index
      // expected-error @+1 {{divides by a constant zero}}
      %x = arith.divui %i, %c0 : index
      %c = arith.cmpi uge, %x, %j : index
      attn.yield %c : i1
    } : tensor<?x4x?x16xf32>, tensor<?x4x?x16xf32>, tensor<?x4x?x16xf32> -> tensor<?x4x?x16xf32>
  return
}

//===----------------------------------------------------------------------===//
// Region safety (RegionSafety.cpp): divisions and capture reads defined on
// every (b, h, i, j)
//===----------------------------------------------------------------------===//

// -----

func.func @intmin_divsi(%q: tensor<?x4x?x16xf32>, %k: tensor<?x4x?x16xf32>, %v: tensor<?x4x?x16xf32>) {
  %o = attn.attention %q, %k, %v
    mask(%b: index, %h: index, %i: index, %j: index) {
      %m = arith.constant -9223372036854775808 : index
      %n1 = arith.constant -1 : index
      // expected-error @+1 {{'arith.divsi' op may divide the minimum of 'index' by -1, which overflows}}
      %x = arith.divsi %m, %n1 : index
      %z = arith.constant 0 : index
      %c = arith.cmpi sge, %x, %z : index
      attn.yield %c : i1
    } : tensor<?x4x?x16xf32>, tensor<?x4x?x16xf32>, tensor<?x4x?x16xf32> -> tensor<?x4x?x16xf32>
  return
}

// -----

func.func @intmin_ceildivsi(%q: tensor<?x4x?x16xf32>, %k: tensor<?x4x?x16xf32>, %v: tensor<?x4x?x16xf32>) {
  %o = attn.attention %q, %k, %v
    mask(%b: index, %h: index, %i: index, %j: index) {
      %m = arith.constant -9223372036854775808 : index
      %n1 = arith.constant -1 : index
      // expected-error @+1 {{'arith.ceildivsi' op may divide the minimum of 'index' by -1, which overflows}}
      %x = arith.ceildivsi %m, %n1 : index
      %z = arith.constant 0 : index
      %c = arith.cmpi sge, %x, %z : index
      attn.yield %c : i1
    } : tensor<?x4x?x16xf32>, tensor<?x4x?x16xf32>, tensor<?x4x?x16xf32> -> tensor<?x4x?x16xf32>
  return
}

// -----

func.func @intmin_floordivsi(%q: tensor<?x4x?x16xf32>, %k: tensor<?x4x?x16xf32>, %v: tensor<?x4x?x16xf32>) {
  %o = attn.attention %q, %k, %v
    mask(%b: index, %h: index, %i: index, %j: index) {
      %m = arith.constant -9223372036854775808 : index
      %n1 = arith.constant -1 : index
      // expected-error @+1 {{'arith.floordivsi' op may divide the minimum of 'index' by -1, which overflows}}
      %x = arith.floordivsi %m, %n1 : index
      %z = arith.constant 0 : index
      %c = arith.cmpi sge, %x, %z : index
      attn.yield %c : i1
    } : tensor<?x4x?x16xf32>, tensor<?x4x?x16xf32>, tensor<?x4x?x16xf32> -> tensor<?x4x?x16xf32>
  return
}

// -----

func.func @intmin_remsi(%q: tensor<?x4x?x16xf32>, %k: tensor<?x4x?x16xf32>, %v: tensor<?x4x?x16xf32>) {
  %o = attn.attention %q, %k, %v
    mask(%b: index, %h: index, %i: index, %j: index) {
      %m = arith.constant -9223372036854775808 : index
      %n1 = arith.constant -1 : index
      // expected-error @+1 {{'arith.remsi' op may divide the minimum of 'index' by -1, which overflows}}
      %x = arith.remsi %m, %n1 : index
      %z = arith.constant 0 : index
      %c = arith.cmpi sge, %x, %z : index
      attn.yield %c : i1
    } : tensor<?x4x?x16xf32>, tensor<?x4x?x16xf32>, tensor<?x4x?x16xf32> -> tensor<?x4x?x16xf32>
  return
}

// -----

func.func @intmin_divsi_range(%q: tensor<?x4x?x16xf32>, %k: tensor<?x4x?x16xf32>, %v: tensor<?x4x?x16xf32>) {
  %o = attn.attention %q, %k, %v
    mask(%b: index, %h: index, %i: index, %j: index) {
      %m = arith.constant -9223372036854775808 : index
      %n1 = arith.constant -1 : index
      %y = arith.addi %i, %m : index
      // expected-error @+1 {{'arith.divsi' op may divide the minimum of 'index' by -1, which overflows; the dividend is in [-9223372036854775808, -9223370937343148032]}}
      %x = arith.divsi %y, %n1 : index
      %z = arith.constant 0 : index
      %c = arith.cmpi sge, %x, %z : index
      attn.yield %c : i1
    } : tensor<?x4x?x16xf32>, tensor<?x4x?x16xf32>, tensor<?x4x?x16xf32> -> tensor<?x4x?x16xf32>
  return
}

// -----

func.func @intmin_divsi_i32(%q: tensor<?x4x?x16xf32>, %k: tensor<?x4x?x16xf32>, %v: tensor<?x4x?x16xf32>) {
  %o = attn.attention %q, %k, %v
    mask(%b: index, %h: index, %i: index, %j: index) {
      %m = arith.constant -2147483648 : i32
      %n1 = arith.constant -1 : i32
      %i32 = arith.index_cast %i : index to i32
      %y = arith.addi %i32, %m : i32
      // expected-error @+1 {{'arith.divsi' op may divide the minimum of 'i32' by -1, which overflows; the dividend is unbounded}}
      %x = arith.divsi %y, %n1 : i32
      %z = arith.constant 0 : i32
      %c = arith.cmpi sge, %x, %z : i32
      attn.yield %c : i1
    } : tensor<?x4x?x16xf32>, tensor<?x4x?x16xf32>, tensor<?x4x?x16xf32> -> tensor<?x4x?x16xf32>
  return
}

// -----

func.func @divisor_may_be_zero(%q: tensor<?x4x?x16xf32>, %k: tensor<?x4x?x16xf32>, %v: tensor<?x4x?x16xf32>) {
  %o = attn.attention %q, %k, %v
    mask(%b: index, %h: index, %i: index, %j: index) {
      %c1 = arith.constant 1 : index
      %d = arith.subi %j, %c1 : index
      // expected-error @+1 {{'arith.divsi' op divides by a value in [-1, 1099511627775], which may be zero}}
      %x = arith.divsi %i, %d : index
      %c = arith.cmpi sge, %x, %h : index
      attn.yield %c : i1
    } : tensor<?x4x?x16xf32>, tensor<?x4x?x16xf32>, tensor<?x4x?x16xf32> -> tensor<?x4x?x16xf32>
  return
}

// -----

func.func @divisor_from_data(%q: tensor<?x4x?x16xf32>, %k: tensor<?x4x?x16xf32>, %v: tensor<?x4x?x16xf32>, %t: tensor<?xi32>) {
  %o = attn.attention %q, %k, %v captures(%t : tensor<?xi32>)
    mask(%b: index, %h: index, %i: index, %j: index) {
      %d = tensor.extract %t[%j] : tensor<?xi32>
      %i32 = arith.constant 7 : i32
      // expected-error @+1 {{'arith.divui' op has a divisor the analysis cannot bound}}
      %x = arith.divui %i32, %d : i32
      %z = arith.constant 0 : i32
      %c = arith.cmpi eq, %x, %z : i32
      attn.yield %c : i1
    } : tensor<?x4x?x16xf32>, tensor<?x4x?x16xf32>, tensor<?x4x?x16xf32> -> tensor<?x4x?x16xf32>
  return
}

// -----

func.func @capture_index_unchecked(%q: tensor<?x4x?x16xf32>, %k: tensor<?x4x?x16xf32>, %v: tensor<?x4x?x16xf32>, %t: tensor<?xi32>) {
  %o = attn.attention %q, %k, %v captures(%t : tensor<?xi32>)
    mask(%b: index, %h: index, %i: index, %j: index) {
      %c = arith.constant 4096 : index
      %ii = arith.muli %i, %c : index
      %x = arith.addi %ii, %j : index
      // expected-error @+1 {{reads capture #0 of type 'tensor<?xi32>' along its dynamic dimension 0 at an index no launch can check (in [0, 4504699138998272])}}
      %y = tensor.extract %t[%x] : tensor<?xi32>
      %z = arith.constant 0 : i32
      %keep = arith.cmpi eq, %y, %z : i32
      attn.yield %keep : i1
    } : tensor<?x4x?x16xf32>, tensor<?x4x?x16xf32>, tensor<?x4x?x16xf32> -> tensor<?x4x?x16xf32>
  return
}

// -----

func.func @capture_index_past_heads(%q: tensor<?x4x?x16xf32>, %k: tensor<?x4x?x16xf32>, %v: tensor<?x4x?x16xf32>, %t: tensor<2xi1>) {
  %o = attn.attention %q, %k, %v captures(%t : tensor<2xi1>)
    mask(%b: index, %h: index, %i: index, %j: index) {
      // expected-error @+1 {{reads capture #0 of type 'tensor<2xi1>' along dimension 0 (2 elements) at indices [0, 3], outside the tensor}}
      %y = tensor.extract %t[%h] : tensor<2xi1>
      attn.yield %y : i1
    } : tensor<?x4x?x16xf32>, tensor<?x4x?x16xf32>, tensor<?x4x?x16xf32> -> tensor<?x4x?x16xf32>
  return
}

// -----

func.func @capture_index_unbounded_static(%q: tensor<?x4x?x16xf32>, %k: tensor<?x4x?x16xf32>, %v: tensor<?x4x?x16xf32>, %t: tensor<8xindex>) {
  %o = attn.attention %q, %k, %v captures(%t : tensor<8xindex>)
    mask(%b: index, %h: index, %i: index, %j: index) {
      %c0 = arith.constant 0 : index
      %x = tensor.extract %t[%c0] : tensor<8xindex>
      // expected-error @+1 {{reads capture #0 of type 'tensor<8xindex>' along dimension 0 (8 elements) at an index the analysis cannot bound; clamp it with arith.minsi / arith.maxsi}}
      %y = tensor.extract %t[%x] : tensor<8xindex>
      %c = arith.cmpi uge, %y, %j : index
      attn.yield %c : i1
    } : tensor<?x4x?x16xf32>, tensor<?x4x?x16xf32>, tensor<?x4x?x16xf32> -> tensor<?x4x?x16xf32>
  return
}

// -----

func.func @transfer_read_in_bounds_unproven(%q: tensor<?x4x?x16xf32>, %k: tensor<?x4x?x16xf32>, %v: tensor<?x4x?x16xf32>, %w: tensor<16x16xf32>) {
  %o = attn.linear_attention causal %q, %k, %v captures(%w : tensor<16x16xf32>)
    feature_map(%x: vector<16xf32>) {
      %c = arith.constant 4294967296 : index
      %c0 = arith.constant 0 : index
      %pad = arith.constant 0.0 : f32
      // expected-error @+1 {{'vector.transfer_read' op reads capture #0 of type 'tensor<16x16xf32>' along dimension 0 (16 elements) at indices [4294967296, 4294967296] + 15, outside the tensor}}
      %wm = vector.transfer_read %w[%c, %c0], %pad {in_bounds = [true, true]} : tensor<16x16xf32>, vector<16x16xf32>
      %zero = arith.constant dense<0.0> : vector<16xf32>
      %xb = vector.broadcast %x : vector<16xf32> to vector<16x16xf32>
      %p = arith.mulf %wm, %xb : vector<16x16xf32>
      %r = vector.multi_reduction <add>, %p, %zero [1] : vector<16x16xf32> to vector<16xf32>
      attn.yield %r : vector<16xf32>
    } : tensor<?x4x?x16xf32>, tensor<?x4x?x16xf32>, tensor<?x4x?x16xf32> -> tensor<?x4x?x16xf32>
  return
}

// -----

//===----------------------------------------------------------------------===//
// attn.attention_grad
//===----------------------------------------------------------------------===//

func.func @grad_lse_type(%q: tensor<?x4x?x64xf32>, %lse: tensor<?x4x?xf16>) {
  // expected-error @+1 {{lse must be tensor<?x4x?xf32>, got 'tensor<?x4x?xf16>'}}
  %dq, %dk, %dv = attn.attention_grad %q, %q, %q, %q, %lse, %q
    : tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>, tensor<?x4x?xf16>, tensor<?x4x?x64xf32>
    -> tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>
  return
}

// -----

func.func @grad_dlse_shape(%q: tensor<?x4x?x64xf32>, %lse: tensor<?x4x?xf32>, %dlse: tensor<?x4x?x64xf32>) {
  // expected-error @+1 {{dLSE must be tensor<?x4x?xf32>, got 'tensor<?x4x?x64xf32>'}}
  %dq, %dk, %dv = attn.attention_grad %q, %q, %q, %q, %lse, %q, %dlse
    : tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>, tensor<?x4x?xf32>, tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>
    -> tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>
  return
}

// -----

func.func @grad_operand_count(%q: tensor<?x4x?x64xf32>, %lse: tensor<?x4x?xf32>) {
  // expected-error @+1 {{expected 6 or 7 operands (q, k, v, o, lse, dO and optionally dLSE), got 5}}
  %dq, %dk, %dv = attn.attention_grad %q, %q, %q, %q, %lse
    : tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>, tensor<?x4x?xf32>
    -> tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>
  return
}

// -----

func.func @grad_do_shape(%q: tensor<?x4x?x64xf32>, %lse: tensor<?x4x?xf32>, %do: tensor<?x4x?x32xf32>) {
  // expected-error @+1 {{dO must be tensor<?x4x?x64xf32>, got 'tensor<?x4x?x32xf32>'}}
  %dq, %dk, %dv = attn.attention_grad %q, %q, %q, %q, %lse, %do
    : tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>, tensor<?x4x?xf32>, tensor<?x4x?x32xf32>
    -> tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>
  return
}

// -----

func.func @grad_dk_type(%q: tensor<?x4x?x64xf32>, %k: tensor<?x2x?x64xf32>, %o: tensor<?x4x?x64xf32>, %lse: tensor<?x4x?xf32>) {
  // expected-error @+1 {{result dk must have the type of k ('tensor<?x2x?x64xf32>'), got 'tensor<?x4x?x64xf32>'}}
  %dq, %dk, %dv = attn.attention_grad %q, %k, %k, %o, %lse, %o
    : tensor<?x4x?x64xf32>, tensor<?x2x?x64xf32>, tensor<?x2x?x64xf32>, tensor<?x4x?x64xf32>, tensor<?x4x?xf32>, tensor<?x4x?x64xf32>
    -> tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>, tensor<?x2x?x64xf32>
  return
}

// -----

func.func @grad_missing_score_grad(%q: tensor<?x4x?x64xf32>, %lse: tensor<?x4x?xf32>) {
  // expected-error @+1 {{has a 'score' region but no 'score_grad' region; run attn-differentiate to make one}}
  %dq, %dk, %dv = attn.attention_grad %q, %q, %q, %q, %lse, %q
    score(%s: f32, %b: index, %h: index, %i: index, %j: index) {
      %t = math.tanh %s : f32
      attn.yield %t : f32
    }
    : tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>, tensor<?x4x?xf32>, tensor<?x4x?x64xf32>
    -> tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>
  return
}

// -----

func.func @grad_capture_count(%q: tensor<?x4x?x64xf32>, %lse: tensor<?x4x?xf32>, %bias: tensor<4xf32>) {
  // expected-error @+1 {{expects 1 capture gradient(s) (one per captured float tensor the 'score' region reads), got 0}}
  %dq, %dk, %dv = attn.attention_grad %q, %q, %q, %q, %lse, %q captures(%bias : tensor<4xf32>)
    score(%s: f32, %b: index, %h: index, %i: index, %j: index) {
      %x = tensor.extract %bias[%h] : tensor<4xf32>
      %r = arith.addf %s, %x : f32
      attn.yield %r : f32
    }
    score_grad(%s: f32, %b: index, %h: index, %i: index, %j: index) {
      %one = arith.constant 1.0 : f32
      attn.yield %one, %one, %h : f32, f32, index
    } {capture_sites = array<i64: 0>}
    : tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>, tensor<?x4x?xf32>, tensor<?x4x?x64xf32>
    -> tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>
  return
}

// -----

func.func @grad_capture_type(%q: tensor<?x4x?x64xf32>, %lse: tensor<?x4x?xf32>, %bias: tensor<4xf16>) {
  // expected-error @+1 {{capture gradient #0 must be 'tensor<4xf32>' (capture #0's shape, f32), got 'tensor<4xf16>'}}
  %dq, %dk, %dv, %db = attn.attention_grad %q, %q, %q, %q, %lse, %q captures(%bias : tensor<4xf16>)
    score(%s: f32, %b: index, %h: index, %i: index, %j: index) {
      %x = tensor.extract %bias[%h] : tensor<4xf16>
      %y = arith.extf %x : f16 to f32
      %r = arith.addf %s, %y : f32
      attn.yield %r : f32
    }
    score_grad(%s: f32, %b: index, %h: index, %i: index, %j: index) {
      %one = arith.constant 1.0 : f32
      attn.yield %one, %one, %h : f32, f32, index
    } {capture_sites = array<i64: 0>}
    : tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>, tensor<?x4x?xf32>, tensor<?x4x?x64xf32>
    -> tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>, tensor<4xf16>
  return
}

// -----

func.func @grad_site_yield(%q: tensor<?x4x?x64xf32>, %lse: tensor<?x4x?xf32>, %bias: tensor<4xf32>) {
  // expected-error @+1 {{'score_grad' region must yield dS/ds and, per capture site, the derivative and the indices ('f32', 'f32', 'index'), got 2 value(s)}}
  %dq, %dk, %dv, %db = attn.attention_grad %q, %q, %q, %q, %lse, %q captures(%bias : tensor<4xf32>)
    score(%s: f32, %b: index, %h: index, %i: index, %j: index) {
      %x = tensor.extract %bias[%h] : tensor<4xf32>
      %r = arith.addf %s, %x : f32
      attn.yield %r : f32
    }
    score_grad(%s: f32, %b: index, %h: index, %i: index, %j: index) {
      %one = arith.constant 1.0 : f32
      attn.yield %one, %one : f32, f32
    } {capture_sites = array<i64: 0>}
    : tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>, tensor<?x4x?xf32>, tensor<?x4x?x64xf32>
    -> tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>, tensor<4xf32>
  return
}

// -----

func.func @grad_site_capture(%q: tensor<?x4x?x64xf32>, %lse: tensor<?x4x?xf32>, %bias: tensor<4xf32>) {
  // expected-error @+1 {{capture_sites[0] = 3 is not a captured float tensor read by the 'score' region}}
  %dq, %dk, %dv, %db = attn.attention_grad %q, %q, %q, %q, %lse, %q captures(%bias : tensor<4xf32>)
    score(%s: f32, %b: index, %h: index, %i: index, %j: index) {
      %x = tensor.extract %bias[%h] : tensor<4xf32>
      %r = arith.addf %s, %x : f32
      attn.yield %r : f32
    }
    score_grad(%s: f32, %b: index, %h: index, %i: index, %j: index) {
      %one = arith.constant 1.0 : f32
      attn.yield %one, %one, %h : f32, f32, index
    } {capture_sites = array<i64: 3>}
    : tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>, tensor<?x4x?xf32>, tensor<?x4x?x64xf32>
    -> tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>, tensor<4xf32>
  return
}

// -----

func.func @queries_at_end_more_queries(%q: tensor<1x4x9x64xf32>, %k: tensor<1x4x8x64xf32>) {
  // expected-error @+1 {{queries_at_end needs Nq <= Nk (the queries are the last Nq key positions), got Nq = 9 and Nk = 8}}
  %o = attn.attention %q, %k, %k queries_at_end
    : tensor<1x4x9x64xf32>, tensor<1x4x8x64xf32>, tensor<1x4x8x64xf32>
      -> tensor<1x4x9x64xf32>
  return
}

// -----

func.func @paged_table_type(%q: tensor<2x4x1x64xf32>, %k: tensor<9x4x16x64xf32>, %t: tensor<2x4xi64>) {
  // expected-error @+1 {{page table must be a rank-2 tensor of i32 [B, pages per sequence], got 'tensor<2x4xi64>'}}
  %o = attn.attention %q, %k, %k pages(%t : tensor<2x4xi64>)
    : tensor<2x4x1x64xf32>, tensor<9x4x16x64xf32>, tensor<9x4x16x64xf32>
      -> tensor<2x4x1x64xf32>
  return
}

// -----

func.func @paged_table_rows(%q: tensor<2x4x1x64xf32>, %k: tensor<9x4x16x64xf32>, %t: tensor<3x4xi32>) {
  // expected-error @+1 {{page table has 3 rows but q has batch size 2}}
  %o = attn.attention %q, %k, %k pages(%t : tensor<3x4xi32>)
    : tensor<2x4x1x64xf32>, tensor<9x4x16x64xf32>, tensor<9x4x16x64xf32>
      -> tensor<2x4x1x64xf32>
  return
}

// -----

func.func @paged_dynamic_page_size(%q: tensor<2x4x1x64xf32>, %k: tensor<9x4x?x64xf32>, %t: tensor<2x4xi32>) {
  // expected-error @+1 {{paged k and v need a static page size (dim 2) of at least 1, got 'tensor<9x4x?x64xf32>'}}
  %o = attn.attention %q, %k, %k pages(%t : tensor<2x4xi32>)
    : tensor<2x4x1x64xf32>, tensor<9x4x?x64xf32>, tensor<9x4x?x64xf32>
      -> tensor<2x4x1x64xf32>
  return
}

// -----

func.func @paged_pools_differ(%q: tensor<2x4x1x64xf32>, %k: tensor<9x4x16x64xf32>, %v: tensor<8x4x16x64xf32>, %t: tensor<2x4xi32>) {
  // expected-error @+1 {{k and v page pools have different page counts (9 vs 8)}}
  %o = attn.attention %q, %k, %v pages(%t : tensor<2x4xi32>)
    : tensor<2x4x1x64xf32>, tensor<9x4x16x64xf32>, tensor<8x4x16x64xf32>
      -> tensor<2x4x1x64xf32>
  return
}

// -----

func.func @paged_queries_at_end(%q: tensor<2x4x33x64xf32>, %k: tensor<9x4x16x64xf32>, %t: tensor<2x2xi32>) {
  // expected-error @+1 {{queries_at_end needs Nq <= Nk (the queries are the last Nq key positions), got Nq = 33 and Nk = 32}}
  %o = attn.attention %q, %k, %k pages(%t : tensor<2x2xi32>) queries_at_end
    : tensor<2x4x33x64xf32>, tensor<9x4x16x64xf32>, tensor<9x4x16x64xf32>
      -> tensor<2x4x33x64xf32>
  return
}

// -----

func.func @sinks_shape(%q: tensor<2x4x1x64xf32>, %k: tensor<2x4x8x64xf32>, %s: tensor<2xf32>) {
  // expected-error @+1 {{sinks must be tensor<4xf32>, got 'tensor<2xf32>'}}
  %o = attn.attention %q, %k, %k sinks(%s : tensor<2xf32>)
    : tensor<2x4x1x64xf32>, tensor<2x4x8x64xf32>, tensor<2x4x8x64xf32>
      -> tensor<2x4x1x64xf32>
  return
}

// -----

func.func @kv_lens_type(%q: tensor<2x4x1x64xf32>, %k: tensor<2x4x8x64xf32>, %n: tensor<2xi64>) {
  // expected-error @+1 {{kv_lens must be tensor<2xi32>, got 'tensor<2xi64>'}}
  %o = attn.attention %q, %k, %k kv_lens(%n : tensor<2xi64>)
    : tensor<2x4x1x64xf32>, tensor<2x4x8x64xf32>, tensor<2x4x8x64xf32>
      -> tensor<2x4x1x64xf32>
  return
}

//===----------------------------------------------------------------------===//
// Argument attributes declared by the dialect: attn.run_init, attn.run_dims
//===----------------------------------------------------------------------===//

// expected-error @+1 {{argument #0: unknown argument attribute 'attn.run_size' (the attn dialect declares attn.run_init and attn.run_dims)}}
func.func private @unknown_arg_attr(tensor<?xi32> {attn.run_size = 3})

// -----

// expected-error @+1 {{argument #0: attn.run_init must be a string}}
func.func private @run_init_not_string(tensor<?xi32> {attn.run_init = 3})

// -----

// expected-error @+1 {{argument #0: attn.run_init needs a ranked tensor, got 'f32'}}
func.func private @run_init_scalar(f32 {attn.run_init = "uniform:0:1"})

// -----

// expected-error @+1 {{argument #0: unknown attn.run_init 'normal:0:1' for a float argument (expected uniform:lo:hi)}}
func.func private @run_init_float_mode(tensor<?xf32> {attn.run_init = "normal:0:1"})

// -----

// expected-error @+1 {{argument #1: unknown attn.run_init 'uniform:0:1' for an integer argument (expected bits:p, randint:lo:hi, sorted:lo:hi, permutation, kv_lens or cu_seqlens)}}
func.func private @run_init_int_mode(tensor<?xf32>, tensor<?xi32> {attn.run_init = "uniform:0:1"})

// -----

// expected-error @+1 {{argument #0: attn.run_init 'uniform:1:-1': lo must be below hi}}
func.func private @run_init_order(tensor<?xf32> {attn.run_init = "uniform:1:-1"})

// -----

// expected-error @+1 {{argument #0: attn.run_init 'uniform:1': expected uniform:lo:hi}}
func.func private @run_init_count(tensor<?xf32> {attn.run_init = "uniform:1"})

// -----

// expected-error @+1 {{argument #0: attn.run_init 'randint:5:1': expected randint:lo:hi with lo <= hi}}
func.func private @run_init_int_order(tensor<?xi32> {attn.run_init = "randint:5:1"})

// -----

// expected-error @+1 {{argument #0: attn.run_init 'bits:2': expected bits:p with p in [0, 1]}}
func.func private @run_init_bits(tensor<?xi1> {attn.run_init = "bits:2"})

// -----

// expected-error @+1 {{argument #0: attn.run_init 'sorted:x:y': 'x' is not a number}}
func.func private @run_init_number(tensor<?xi32> {attn.run_init = "sorted:x:y"})

// -----

// expected-error @+1 {{argument #0: attn.run_init 'permutation:4': permutation takes no numbers}}
func.func private @run_init_permutation(tensor<?x?xi32> {attn.run_init = "permutation:4"})

// -----

// expected-error @+1 {{argument #0: attn.run_dims must list one of b, nq, nk, n, a positive integer or X/<int> per dimension}}
func.func private @run_dims_name(tensor<?xi32> {attn.run_dims = ["batch"]})

// -----

// expected-error @+1 {{argument #0: attn.run_dims must list one of b, nq, nk, n, a positive integer or X/<int> per dimension}}
func.func private @run_dims_count(tensor<?x?xi32> {attn.run_dims = ["b"]})

// -----

// expected-error @+1 {{argument #0: attn.run_dims must list one of b, nq, nk, n, a positive integer or X/<int> per dimension}}
func.func private @run_dims_divisor(tensor<?xi32> {attn.run_dims = ["nq/0"]})

// -----

// expected-error @+1 {{argument #0: attn.run_dims must list one of b, nq, nk, n, a positive integer or X/<int> per dimension}}
func.func private @run_dims_negative(tensor<?xi32> {attn.run_dims = ["-5"]})

// -----

func.func @varlen_half(%q: tensor<1x4x?x64xf32>, %k: tensor<1x4x?x64xf32>, %c: tensor<3xi32>) {
  // expected-error @+1 {{cu_seqlens_q and cu_seqlens_k come together}}
  %o = attn.attention %q, %k, %k cu_seqlens_q(%c : tensor<3xi32>)
    : tensor<1x4x?x64xf32>, tensor<1x4x?x64xf32>, tensor<1x4x?x64xf32> -> tensor<1x4x?x64xf32>
  return
}

// -----

func.func @varlen_batch(%q: tensor<2x4x?x64xf32>, %k: tensor<2x4x?x64xf32>, %c: tensor<3xi32>) {
  // expected-error @+1 {{packed sequences (cu_seqlens) need q, k and v with batch size 1, got 2}}
  %o = attn.attention %q, %k, %k cu_seqlens_q(%c : tensor<3xi32>) cu_seqlens_k(%c : tensor<3xi32>)
    : tensor<2x4x?x64xf32>, tensor<2x4x?x64xf32>, tensor<2x4x?x64xf32> -> tensor<2x4x?x64xf32>
  return
}

// -----

func.func @varlen_type(%q: tensor<1x4x?x64xf32>, %k: tensor<1x4x?x64xf32>, %c: tensor<3xi64>) {
  // expected-error @+1 {{cu_seqlens_q and cu_seqlens_k must be rank-1 tensors of i32 [B + 1], got 'tensor<3xi64>' and 'tensor<3xi64>'}}
  %o = attn.attention %q, %k, %k cu_seqlens_q(%c : tensor<3xi64>) cu_seqlens_k(%c : tensor<3xi64>)
    : tensor<1x4x?x64xf32>, tensor<1x4x?x64xf32>, tensor<1x4x?x64xf32> -> tensor<1x4x?x64xf32>
  return
}

// -----

func.func @varlen_sizes(%q: tensor<1x4x?x64xf32>, %k: tensor<1x4x?x64xf32>, %c: tensor<3xi32>, %d: tensor<4xi32>) {
  // expected-error @+1 {{cu_seqlens_q and cu_seqlens_k must both hold B + 1 >= 1 offsets, got 'tensor<3xi32>' and 'tensor<4xi32>'}}
  %o = attn.attention %q, %k, %k cu_seqlens_q(%c : tensor<3xi32>) cu_seqlens_k(%d : tensor<4xi32>)
    : tensor<1x4x?x64xf32>, tensor<1x4x?x64xf32>, tensor<1x4x?x64xf32> -> tensor<1x4x?x64xf32>
  return
}

// -----

func.func @varlen_lens(%q: tensor<1x4x?x64xf32>, %k: tensor<1x4x?x64xf32>, %c: tensor<3xi32>, %n: tensor<1xi32>) {
  // expected-error @+1 {{packed sequences (cu_seqlens) do not combine with pages or kv_lens yet}}
  %o = attn.attention %q, %k, %k kv_lens(%n : tensor<1xi32>) cu_seqlens_q(%c : tensor<3xi32>) cu_seqlens_k(%c : tensor<3xi32>)
    : tensor<1x4x?x64xf32>, tensor<1x4x?x64xf32>, tensor<1x4x?x64xf32> -> tensor<1x4x?x64xf32>
  return
}

// -----

//===----------------------------------------------------------------------===//
// attn.linear_attention_grad
//===----------------------------------------------------------------------===//

func.func @linear_grad_result_count(%q: tensor<2x4x8x16xf32>,
                                    %g: tensor<2x4x8xf32>) {
  // expected-error @+1 {{expected 4 result types (dq, dk, dv, then the gradients of the decay and the initial state when given), got 3}}
  %dq, %dk, %dv = attn.linear_attention_grad causal %q, %q, %q, %q
      decay(%g : tensor<2x4x8xf32>)
    : tensor<2x4x8x16xf32>, tensor<2x4x8x16xf32>, tensor<2x4x8x16xf32>,
      tensor<2x4x8x16xf32>
    -> tensor<2x4x8x16xf32>, tensor<2x4x8x16xf32>, tensor<2x4x8x16xf32>
  return
}

// -----

func.func @linear_grad_do_shape(%q: tensor<2x4x8x16xf32>,
                                %do: tensor<2x4x8x32xf32>) {
  // expected-error @+1 {{'attn.linear_attention_grad' op dO must be}}
  %dq, %dk, %dv = attn.linear_attention_grad causal %q, %q, %q, %do
    : tensor<2x4x8x16xf32>, tensor<2x4x8x16xf32>, tensor<2x4x8x16xf32>,
      tensor<2x4x8x32xf32>
    -> tensor<2x4x8x16xf32>, tensor<2x4x8x16xf32>, tensor<2x4x8x16xf32>
  return
}

// -----

func.func @linear_grad_dq_type(%q: tensor<2x4x8x16xf32>) {
  // expected-error @+1 {{'attn.linear_attention_grad' op result dq must have the type of q ('tensor<2x4x8x16xf32>'), got 'tensor<2x4x8x16xf16>'}}
  %dq, %dk, %dv = attn.linear_attention_grad causal %q, %q, %q, %q
    : tensor<2x4x8x16xf32>, tensor<2x4x8x16xf32>, tensor<2x4x8x16xf32>,
      tensor<2x4x8x16xf32>
    -> tensor<2x4x8x16xf16>, tensor<2x4x8x16xf32>, tensor<2x4x8x16xf32>
  return
}

// -----

func.func @linear_grad_bidirectional_state(%q: tensor<2x4x8x16xf32>,
                                           %ds: tensor<2x4x16x16xf32>) {
  // expected-error @+1 {{'attn.linear_attention_grad' op final_state_grad requires a causal scan}}
  %dq, %dk, %dv = attn.linear_attention_grad bidirectional %q, %q, %q, %q
      final_state_grad(%ds : tensor<2x4x16x16xf32>)
    : tensor<2x4x8x16xf32>, tensor<2x4x8x16xf32>, tensor<2x4x8x16xf32>,
      tensor<2x4x8x16xf32>
    -> tensor<2x4x8x16xf32>, tensor<2x4x8x16xf32>, tensor<2x4x8x16xf32>
  return
}

// -----

func.func @linear_grad_decay_sign(%q: tensor<2x4x8x16xf32>) {
  %g = arith.constant dense<[-0.1, 0.5, -0.1, -0.1]> : tensor<4xf32>
  // expected-error @+1 {{'attn.linear_attention_grad' op decay holds log-gates, which must be finite and <= 0 (the decay is exp(g)); element 1 is 5.000000e-01}}
  %dq, %dk, %dv, %dg = attn.linear_attention_grad causal %q, %q, %q, %q
      decay(%g : tensor<4xf32>)
    : tensor<2x4x8x16xf32>, tensor<2x4x8x16xf32>, tensor<2x4x8x16xf32>,
      tensor<2x4x8x16xf32>
    -> tensor<2x4x8x16xf32>, tensor<2x4x8x16xf32>, tensor<2x4x8x16xf32>,
       tensor<4xf32>
  return
}

// -----

func.func @linear_grad_missing_jvp(%q: tensor<2x4x8x16xf32>) {
  // expected-error @+1 {{'attn.linear_attention_grad' op has a 'feature_map' region but no 'feature_map_jvp' region; run attn-differentiate to make one}}
  %dq, %dk, %dv = attn.linear_attention_grad causal %q, %q, %q, %q
    feature_map(%x: vector<16xf32>) {
      %e = math.exp %x : vector<16xf32>
      attn.yield %e : vector<16xf32>
    } : tensor<2x4x8x16xf32>, tensor<2x4x8x16xf32>, tensor<2x4x8x16xf32>,
        tensor<2x4x8x16xf32>
    -> tensor<2x4x8x16xf32>, tensor<2x4x8x16xf32>, tensor<2x4x8x16xf32>
  return
}

// -----

func.func @linear_grad_jvp_signature(%q: tensor<2x4x8x16xf32>) {
  // expected-error @+1 {{'attn.linear_attention_grad' op 'feature_map_jvp' region must take 2 arguments ('vector<16xf32>', 'vector<16xf32>'), got 1}}
  %dq, %dk, %dv = attn.linear_attention_grad causal %q, %q, %q, %q
    feature_map(%x: vector<16xf32>) {
      %e = math.exp %x : vector<16xf32>
      attn.yield %e : vector<16xf32>
    }
    feature_map_jvp(%x: vector<16xf32>) {
      attn.yield %x : vector<16xf32>
    } : tensor<2x4x8x16xf32>, tensor<2x4x8x16xf32>, tensor<2x4x8x16xf32>,
        tensor<2x4x8x16xf32>
    -> tensor<2x4x8x16xf32>, tensor<2x4x8x16xf32>, tensor<2x4x8x16xf32>
  return
}

// -----

func.func @combine_states_rank(%m: tensor<?x4x64x32xf32>, %t: tensor<?x?x4xf32>,
                               %r: index) {
  // expected-error @+1 {{'attn.combine_states' op states must be [W, B, H, F, Dv], got 'tensor<?x4x64x32xf32>'}}
  %p = attn.combine_states prefix %m, %t at %r
    : tensor<?x4x64x32xf32>, tensor<?x?x4xf32> -> tensor<?x4x64x32xf32>
  return
}

// -----

func.func @combine_states_decays(%m: tensor<?x?x4x64x32xf32>, %t: tensor<?x?x8xf32>,
                                 %r: index) {
  // expected-error @+1 {{'attn.combine_states' op log_decays 'tensor<?x?x8xf32>' do not match the states 'tensor<?x?x4x64x32xf32>' in dimension 2}}
  %p = attn.combine_states prefix %m, %t at %r
    : tensor<?x?x4x64x32xf32>, tensor<?x?x8xf32> -> tensor<?x4x64x32xf32>
  return
}

// -----

func.func @combine_states_result(%m: tensor<?x?x4x64x32xf32>, %t: tensor<?x?x4xf32>,
                                 %r: index) {
  // expected-error @+1 {{'attn.combine_states' op result 'tensor<?x4x32x64xf32>' does not match the states 'tensor<?x?x4x64x32xf32>'}}
  %p = attn.combine_states suffix %m, %t at %r
    : tensor<?x?x4x64x32xf32>, tensor<?x?x4xf32> -> tensor<?x4x32x64xf32>
  return
}

// -----

func.func @combine_states_f16(%m: tensor<?x?x4x64x32xf16>, %t: tensor<?x?x4xf32>,
                              %r: index) {
  // expected-error @+1 {{'attn.combine_states' op states must be f32, got 'tensor<?x?x4x64x32xf16>'}}
  %p = attn.combine_states prefix %m, %t at %r
    : tensor<?x?x4x64x32xf16>, tensor<?x?x4xf32> -> tensor<?x4x64x32xf32>
  return
}

// -----

func.func @delta_rule_key_dim(%q: tensor<?x2x?x16xf32>, %k: tensor<?x2x?x8xf32>,
                              %v: tensor<?x2x?x16xf32>, %beta: tensor<?x2x?xf32>) {
  // expected-error @+1 {{'attn.delta_rule' op k 'tensor<?x2x?x8xf32>' does not match [B, H, N, D] like q in dimension 3}}
  %o = attn.delta_rule %q, %k, %v, %beta
    : tensor<?x2x?x16xf32>, tensor<?x2x?x8xf32>, tensor<?x2x?x16xf32>,
      tensor<?x2x?xf32> -> tensor<?x2x?x16xf32>
  return
}

// -----

func.func @delta_rule_beta(%q: tensor<?x2x?x16xf32>, %k: tensor<?x2x?x16xf32>,
                           %v: tensor<?x2x?x16xf32>, %beta: tensor<?x2x?x1xf32>) {
  // expected-error @+1 {{'attn.delta_rule' op beta must be [B, HV, N], got 'tensor<?x2x?x1xf32>'}}
  %o = attn.delta_rule %q, %k, %v, %beta
    : tensor<?x2x?x16xf32>, tensor<?x2x?x16xf32>, tensor<?x2x?x16xf32>,
      tensor<?x2x?x1xf32> -> tensor<?x2x?x16xf32>
  return
}

// -----

func.func @delta_rule_gate_kind(%q: tensor<?x2x?x16xf32>, %k: tensor<?x2x?x16xf32>,
                                %v: tensor<?x2x?x16xf32>, %beta: tensor<?x2x?xf32>,
                                %g: tensor<?x2x?x16xf32>) {
  // expected-error @+1 {{'attn.delta_rule' op decay must be [HV] (per head) or [B, HV, N] (per token), got 'tensor<?x2x?x16xf32>'}}
  %o = attn.delta_rule %q, %k, %v, %beta decay(%g : tensor<?x2x?x16xf32>)
    : tensor<?x2x?x16xf32>, tensor<?x2x?x16xf32>, tensor<?x2x?x16xf32>,
      tensor<?x2x?xf32> -> tensor<?x2x?x16xf32>
  return
}

// -----

func.func @delta_rule_state(%q: tensor<?x2x?x16xf32>, %k: tensor<?x2x?x16xf32>,
                            %v: tensor<?x2x?x8xf32>, %beta: tensor<?x2x?xf32>,
                            %s0: tensor<?x2x8x16xf32>) {
  // expected-error @+1 {{'attn.delta_rule' op initial_state 'tensor<?x2x8x16xf32>' does not match [B, HV, D, Dv] in dimension 2}}
  %o = attn.delta_rule %q, %k, %v, %beta initial_state(%s0 : tensor<?x2x8x16xf32>)
    : tensor<?x2x?x16xf32>, tensor<?x2x?x16xf32>, tensor<?x2x?x8xf32>,
      tensor<?x2x?xf32> -> tensor<?x2x?x8xf32>
  return
}

// -----

func.func @delta_rule_output(%q: tensor<?x2x?x16xf32>, %k: tensor<?x2x?x16xf32>,
                             %v: tensor<?x2x?x16xbf16>, %beta: tensor<?x2x?xf32>) {
  // expected-error @+1 {{'attn.delta_rule' op o must have v's element type 'bf16', got 'tensor<?x2x?x16xf32>'}}
  %o = attn.delta_rule %q, %k, %v, %beta
    : tensor<?x2x?x16xf32>, tensor<?x2x?x16xf32>, tensor<?x2x?x16xbf16>,
      tensor<?x2x?xf32> -> tensor<?x2x?x16xf32>
  return
}

// -----

func.func @delta_rule_final_state(%q: tensor<?x2x?x16xf32>, %k: tensor<?x2x?x16xf32>,
                                  %v: tensor<?x2x?x16xf32>, %beta: tensor<?x2x?xf32>) {
  // expected-error @+1 {{'attn.delta_rule' op final_state must be f32, got 'tensor<?x2x16x16xf16>'}}
  %o, %s = attn.delta_rule %q, %k, %v, %beta
    : tensor<?x2x?x16xf32>, tensor<?x2x?x16xf32>, tensor<?x2x?x16xf32>,
      tensor<?x2x?xf32> -> tensor<?x2x?x16xf32>, tensor<?x2x16x16xf16>
  return
}

// -----

func.func @delta_rule_grad_missing(%q: tensor<?x2x?x16xf32>, %k: tensor<?x2x?x16xf32>,
                                   %v: tensor<?x2x?x16xf32>, %beta: tensor<?x2x?xf32>,
                                   %g: tensor<?x2x?xf32>, %do: tensor<?x2x?x16xf32>) {
  // expected-error @+1 {{'attn.delta_rule_grad' op has a decay gradient result exactly when it has a decay operand}}
  %dq, %dk, %dv, %db = attn.delta_rule_grad %q, %k, %v, %beta, %do decay(%g : tensor<?x2x?xf32>)
    : tensor<?x2x?x16xf32>, tensor<?x2x?x16xf32>, tensor<?x2x?x16xf32>,
      tensor<?x2x?xf32>, tensor<?x2x?x16xf32>
    -> tensor<?x2x?x16xf32>, tensor<?x2x?x16xf32>, tensor<?x2x?x16xf32>, tensor<?x2x?xf32>
  return
}

// -----

func.func @delta_rule_grad_type(%q: tensor<?x2x?x16xf32>, %k: tensor<?x2x?x16xf32>,
                                %v: tensor<?x2x?x16xf32>, %beta: tensor<?x2x?xf32>,
                                %do: tensor<?x2x?x16xf32>) {
  // expected-error @+1 {{'attn.delta_rule_grad' op d_beta must have type 'tensor<?x2x?xf32>', got 'tensor<?x2x?xbf16>'}}
  %dq, %dk, %dv, %db = attn.delta_rule_grad %q, %k, %v, %beta, %do
    : tensor<?x2x?x16xf32>, tensor<?x2x?x16xf32>, tensor<?x2x?x16xf32>,
      tensor<?x2x?xf32>, tensor<?x2x?x16xf32>
    -> tensor<?x2x?x16xf32>, tensor<?x2x?x16xf32>, tensor<?x2x?x16xf32>, tensor<?x2x?xbf16>
  return
}

// -----

func.func @delta_rule_value_heads(%q: tensor<?x2x?x16xf32>, %k: tensor<?x2x?x16xf32>,
                                  %v: tensor<?x3x?x16xf32>, %beta: tensor<?x3x?xf32>) {
  // expected-error @+1 {{'attn.delta_rule' op has 3 value heads (v), not a multiple of the 2 heads of q and k}}
  %o = attn.delta_rule %q, %k, %v, %beta
    : tensor<?x2x?x16xf32>, tensor<?x2x?x16xf32>, tensor<?x3x?x16xf32>,
      tensor<?x3x?xf32> -> tensor<?x3x?x16xf32>
  return
}
