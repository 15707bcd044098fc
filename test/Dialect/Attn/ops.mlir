// RUN: attn-opt %s | attn-opt | FileCheck %s
// RUN: attn-opt %s --mlir-print-op-generic | attn-opt | FileCheck %s
// Round trip of the attn ops: the printed form parses back to the same IR.

// CHECK-LABEL: func.func @attention_full
// CHECK: attn.attention %{{.*}}, %{{.*}}, %{{.*}} captures(%{{.*}}, %{{.*}} : tensor<?xi32>, tensor<4x32xf32>) scale = 1.250000e-01
// CHECK: score(%{{.*}}: f32, %{{.*}}: index, %{{.*}}: index, %{{.*}}: index, %{{.*}}: index)
// CHECK: tensor.extract
// CHECK: attn.yield %{{.*}} : f32
// CHECK: mask(%{{.*}}: index, %{{.*}}: index, %{{.*}}: index, %{{.*}}: index)
// CHECK: arith.cmpi eq
// CHECK: attn.yield %{{.*}} : i1
// CHECK: : tensor<?x8x?x64xf32>, tensor<?x2x?x64xf32>, tensor<?x2x?x32xf32> -> tensor<?x8x?x32xf32>, tensor<?x8x?xf32>
func.func @attention_full(%q: tensor<?x8x?x64xf32>, %k: tensor<?x2x?x64xf32>,
                          %v: tensor<?x2x?x32xf32>, %docs: tensor<?xi32>,
                          %bias: tensor<4x32xf32>)
    -> (tensor<?x8x?x32xf32>, tensor<?x8x?xf32>) {
  %o, %lse = attn.attention %q, %k, %v
      captures(%docs, %bias : tensor<?xi32>, tensor<4x32xf32>) scale = 0.125
    score(%s: f32, %b: index, %h: index, %i: index, %j: index) {
      %c3 = arith.constant 3 : index
      %hh = arith.andi %h, %c3 : index
      %c31 = arith.constant 31 : index
      %d = arith.subi %i, %j : index
      %a = math.absi %d : index
      %bucket = arith.minsi %a, %c31 : index
      %bv = tensor.extract %bias[%hh, %bucket] : tensor<4x32xf32>
      %r = arith.addf %s, %bv : f32
      attn.yield %r : f32
    }
    mask(%b: index, %h: index, %i: index, %j: index) {
      %di = tensor.extract %docs[%i] : tensor<?xi32>
      %dj = tensor.extract %docs[%j] : tensor<?xi32>
      %c = arith.cmpi eq, %di, %dj : i32
      attn.yield %c : i1
    } : tensor<?x8x?x64xf32>, tensor<?x2x?x64xf32>, tensor<?x2x?x32xf32>
      -> tensor<?x8x?x32xf32>, tensor<?x8x?xf32>
  return %o, %lse : tensor<?x8x?x32xf32>, tensor<?x8x?xf32>
}

// CHECK-LABEL: func.func @attention_plain_f16
// CHECK: attn.attention %{{.*}}, %{{.*}}, %{{.*}} : tensor<2x4x128x64xf16>, tensor<2x4x256x64xf16>, tensor<2x4x256x64xf16> -> tensor<2x4x128x64xf16>
func.func @attention_plain_f16(%q: tensor<2x4x128x64xf16>, %k: tensor<2x4x256x64xf16>,
                               %v: tensor<2x4x256x64xf16>) -> tensor<2x4x128x64xf16> {
  %o = attn.attention %q, %k, %v
    : tensor<2x4x128x64xf16>, tensor<2x4x256x64xf16>, tensor<2x4x256x64xf16>
      -> tensor<2x4x128x64xf16>
  return %o : tensor<2x4x128x64xf16>
}

// CHECK-LABEL: func.func @attention_schedule
// CHECK: attn.attention
// CHECK: } {mask_info = #attn.mask_info<kind = index, batch = false, head = false, from_score = false>
// CHECK-SAME: schedule = #attn.schedule<target = "sm_80", block_q = 128, block_kv = 64, warps = 4, stages = 2, smem_bytes = 65536>
func.func @attention_schedule(%q: tensor<?x4x?x64xbf16>, %k: tensor<?x4x?x64xbf16>,
                              %v: tensor<?x4x?x64xbf16>) -> tensor<?x4x?x64xbf16> {
  %o = attn.attention %q, %k, %v
    mask(%b: index, %h: index, %i: index, %j: index) {
      %c = arith.cmpi uge, %i, %j : index
      attn.yield %c : i1
    } {mask_info = #attn.mask_info<kind = index, batch = false, head = false, from_score = false>,
       schedule = #attn.schedule<target = "sm_80", block_q = 128, block_kv = 64, warps = 4, stages = 2, smem_bytes = 65536>}
      : tensor<?x4x?x64xbf16>, tensor<?x4x?x64xbf16>, tensor<?x4x?x64xbf16>
      -> tensor<?x4x?x64xbf16>
  return %o : tensor<?x4x?x64xbf16>
}

// CHECK-LABEL: func.func @linear_causal_elu
// CHECK: attn.linear_attention causal %{{.*}}, %{{.*}}, %{{.*}} normalize
// CHECK: feature_map(%{{.*}}: vector<64xf32>)
// CHECK: math.exp %{{.*}} : vector<64xf32>
// CHECK: attn.yield %{{.*}} : vector<64xf32>
// CHECK: : tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32> -> tensor<?x4x?x64xf32>
func.func @linear_causal_elu(%q: tensor<?x4x?x64xf32>, %k: tensor<?x4x?x64xf32>,
                             %v: tensor<?x4x?x64xf32>) -> tensor<?x4x?x64xf32> {
  %o = attn.linear_attention causal %q, %k, %v normalize
    feature_map(%x: vector<64xf32>) {
      %one = arith.constant dense<1.0> : vector<64xf32>
      %zero = arith.constant dense<0.0> : vector<64xf32>
      %e = math.exp %x : vector<64xf32>
      %pos = arith.cmpf ogt, %x, %zero : vector<64xf32>
      %xp1 = arith.addf %x, %one : vector<64xf32>
      %r = arith.select %pos, %xp1, %e : vector<64xi1>, vector<64xf32>
      attn.yield %r : vector<64xf32>
    } : tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>
      -> tensor<?x4x?x64xf32>
  return %o : tensor<?x4x?x64xf32>
}

// CHECK-LABEL: func.func @linear_bidirectional_retnet
// CHECK: attn.linear_attention bidirectional %{{.*}}, %{{.*}}, %{{.*}} decay(%{{.*}} : tensor<4xf32>) scale = 1.250000e-01 : tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>, tensor<?x4x?x32xf32> -> tensor<?x4x?x32xf32>
func.func @linear_bidirectional_retnet(%q: tensor<?x4x?x64xf32>, %k: tensor<?x4x?x64xf32>,
                                       %v: tensor<?x4x?x32xf32>, %g: tensor<4xf32>)
    -> tensor<?x4x?x32xf32> {
  %o = attn.linear_attention bidirectional %q, %k, %v decay(%g : tensor<4xf32>)
      scale = 0.125
    : tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>, tensor<?x4x?x32xf32>
      -> tensor<?x4x?x32xf32>
  return %o : tensor<?x4x?x32xf32>
}

// CHECK-LABEL: func.func @linear_state
// CHECK: attn.linear_attention causal %{{.*}}, %{{.*}}, %{{.*}} decay(%{{.*}} : tensor<?x4x?xf32>) initial_state(%{{.*}} : tensor<?x4x16x64xf32>)
// CHECK: feature_map(%{{.*}}: vector<64xf32>)
// CHECK: vector.extract_strided_slice
// CHECK: key_feature_map(%{{.*}}: vector<64xf32>)
// CHECK: -> tensor<?x4x?x64xf32>, tensor<?x4x16x64xf32>
func.func @linear_state(%q: tensor<?x4x?x64xf32>, %k: tensor<?x4x?x64xf32>,
                        %v: tensor<?x4x?x64xf32>, %g: tensor<?x4x?xf32>,
                        %s0: tensor<?x4x16x64xf32>)
    -> (tensor<?x4x?x64xf32>, tensor<?x4x16x64xf32>) {
  %o, %s1 = attn.linear_attention causal %q, %k, %v decay(%g : tensor<?x4x?xf32>)
      initial_state(%s0 : tensor<?x4x16x64xf32>)
    feature_map(%x: vector<64xf32>) {
      %f = vector.extract_strided_slice %x {offsets = [0], sizes = [16], strides = [1]}
        : vector<64xf32> to vector<16xf32>
      %r = math.exp %f : vector<16xf32>
      attn.yield %r : vector<16xf32>
    }
    key_feature_map(%x: vector<64xf32>) {
      %f = vector.extract_strided_slice %x {offsets = [0], sizes = [16], strides = [1]}
        : vector<64xf32> to vector<16xf32>
      attn.yield %f : vector<16xf32>
    } : tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>
      -> tensor<?x4x?x64xf32>, tensor<?x4x16x64xf32>
  return %o, %s1 : tensor<?x4x?x64xf32>, tensor<?x4x16x64xf32>
}

// CHECK-LABEL: func.func @scan_causal
// CHECK: attn.scan causal %{{.*}}, %{{.*}}, %{{.*}} decay(%{{.*}} : tensor<?x8x?xf32>) : tensor<?x8x?x64xf32>, tensor<?x8x?x64xf32>, tensor<?x8x?x64xf32> -> tensor<?x8x?x64xf32>
func.func @scan_causal(%q: tensor<?x8x?x64xf32>, %k: tensor<?x8x?x64xf32>,
                       %v: tensor<?x8x?x64xf32>, %g: tensor<?x8x?xf32>)
    -> tensor<?x8x?x64xf32> {
  %o = attn.scan causal %q, %k, %v decay(%g : tensor<?x8x?xf32>)
    : tensor<?x8x?x64xf32>, tensor<?x8x?x64xf32>, tensor<?x8x?x64xf32>
      -> tensor<?x8x?x64xf32>
  return %o : tensor<?x8x?x64xf32>
}

// CHECK-LABEL: func.func @scan_bidirectional
// CHECK: attn.scan bidirectional %{{.*}}, %{{.*}}, %{{.*}} decay(%{{.*}} : tensor<?x8x?x64xf32>) : tensor<?x8x?x64xf32>, tensor<?x8x?x64xf32>, tensor<?x8x?x32xf32> -> tensor<?x8x?x32xf32>
func.func @scan_bidirectional(%q: tensor<?x8x?x64xf32>, %k: tensor<?x8x?x64xf32>,
                              %v: tensor<?x8x?x32xf32>, %g: tensor<?x8x?x64xf32>)
    -> tensor<?x8x?x32xf32> {
  %o = attn.scan bidirectional %q, %k, %v decay(%g : tensor<?x8x?x64xf32>)
    : tensor<?x8x?x64xf32>, tensor<?x8x?x64xf32>, tensor<?x8x?x32xf32>
      -> tensor<?x8x?x32xf32>
  return %o : tensor<?x8x?x32xf32>
}

// CHECK-LABEL: func.func @scan_state
// CHECK: attn.scan causal %{{.*}}, %{{.*}}, %{{.*}} initial_state(%{{.*}} : tensor<?x8x64x64xf32>) : {{.*}} -> tensor<?x8x?x64xf32>, tensor<?x8x64x64xf32>
func.func @scan_state(%q: tensor<?x8x?x64xf32>, %k: tensor<?x8x?x64xf32>,
                      %v: tensor<?x8x?x64xf32>, %s0: tensor<?x8x64x64xf32>)
    -> (tensor<?x8x?x64xf32>, tensor<?x8x64x64xf32>) {
  %o, %s1 = attn.scan causal %q, %k, %v initial_state(%s0 : tensor<?x8x64x64xf32>)
    : tensor<?x8x?x64xf32>, tensor<?x8x?x64xf32>, tensor<?x8x?x64xf32>
      -> tensor<?x8x?x64xf32>, tensor<?x8x64x64xf32>
  return %o, %s1 : tensor<?x8x?x64xf32>, tensor<?x8x64x64xf32>
}

// A divisor clamped away from zero and a capture index clamped into its
// table are proven safe (RegionSafety.cpp); b, h, i and j index dynamic
// capture dimensions, checked at launch.
// CHECK-LABEL: func.func @clamped_reads
// CHECK: arith.maxsi
// CHECK: arith.divsi
func.func @clamped_reads(%q: tensor<?x4x?x16xf32>, %k: tensor<?x4x?x16xf32>,
                         %v: tensor<?x4x?x16xf32>, %docs: tensor<?xi32>,
                         %bias: tensor<4x32xf32>) -> tensor<?x4x?x16xf32> {
  %o = attn.attention %q, %k, %v captures(%docs, %bias : tensor<?xi32>, tensor<4x32xf32>)
    score(%s: f32, %b: index, %h: index, %i: index, %j: index) {
      %c0 = arith.constant 0 : index
      %c31 = arith.constant 31 : index
      %d = arith.subi %i, %j : index
      %lo = arith.maxsi %d, %c0 : index
      %bucket = arith.minsi %lo, %c31 : index
      %x = tensor.extract %bias[%h, %bucket] : tensor<4x32xf32>
      %r = arith.addf %s, %x : f32
      attn.yield %r : f32
    }
    mask(%b: index, %h: index, %i: index, %j: index) {
      %one = arith.constant 1 : i32
      %di = tensor.extract %docs[%i] : tensor<?xi32>
      %dj = tensor.extract %docs[%j] : tensor<?xi32>
      %den = arith.maxsi %dj, %one : i32
      %x = arith.divsi %di, %den : i32
      %c = arith.cmpi eq, %x, %one : i32
      attn.yield %c : i1
    } : tensor<?x4x?x16xf32>, tensor<?x4x?x16xf32>, tensor<?x4x?x16xf32> -> tensor<?x4x?x16xf32>
  return %o : tensor<?x4x?x16xf32>
}

// attn.attention_grad (the backward, made by attn-differentiate).

// CHECK-LABEL: func.func @attention_grad
// CHECK: %dq, %dk, %dv, %capture_grads = attn.attention_grad %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}} captures(%{{.*}} : tensor<4x32xf32>) scale = 1.250000e-01
// CHECK: score(%{{.*}}: f32, %{{.*}}: index, %{{.*}}: index, %{{.*}}: index, %{{.*}}: index)
// CHECK: mask(%{{.*}}: index, %{{.*}}: index, %{{.*}}: index, %{{.*}}: index)
// CHECK: score_grad(%{{.*}}: f32, %{{.*}}: index, %{{.*}}: index, %{{.*}}: index, %{{.*}}: index)
// CHECK: attn.yield %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}} : f32, f32, index, index
// CHECK: } {capture_sites = array<i64: 0>} : tensor<?x8x?x64xf32>, tensor<?x2x?x64xf32>, tensor<?x2x?x32xf32>, tensor<?x8x?x32xf32>, tensor<?x8x?xf32>, tensor<?x8x?x32xf32> -> tensor<?x8x?x64xf32>, tensor<?x2x?x64xf32>, tensor<?x2x?x32xf32>, tensor<4x32xf32>
func.func @attention_grad(%q: tensor<?x8x?x64xf32>, %k: tensor<?x2x?x64xf32>,
                          %v: tensor<?x2x?x32xf32>, %o: tensor<?x8x?x32xf32>,
                          %lse: tensor<?x8x?xf32>, %do: tensor<?x8x?x32xf32>,
                          %bias: tensor<4x32xf32>)
    -> (tensor<?x8x?x64xf32>, tensor<?x2x?x64xf32>, tensor<?x2x?x32xf32>,
        tensor<4x32xf32>) {
  %dq, %dk, %dv, %db = attn.attention_grad %q, %k, %v, %o, %lse, %do
      captures(%bias : tensor<4x32xf32>) scale = 0.125
    score(%s: f32, %b: index, %h: index, %i: index, %j: index) {
      %c3 = arith.constant 3 : index
      %hh = arith.andi %h, %c3 : index
      %c31 = arith.constant 31 : index
      %jj = arith.minsi %j, %c31 : index
      %bv = tensor.extract %bias[%hh, %jj] : tensor<4x32xf32>
      %r = arith.addf %s, %bv : f32
      attn.yield %r : f32
    }
    mask(%b: index, %h: index, %i: index, %j: index) {
      %c = arith.cmpi uge, %i, %j : index
      attn.yield %c : i1
    }
    score_grad(%s: f32, %b: index, %h: index, %i: index, %j: index) {
      %one = arith.constant 1.0 : f32
      %c3 = arith.constant 3 : index
      %hh = arith.andi %h, %c3 : index
      %c31 = arith.constant 31 : index
      %jj = arith.minsi %j, %c31 : index
      attn.yield %one, %one, %hh, %jj : f32, f32, index, index
    } {capture_sites = array<i64: 0>}
    : tensor<?x8x?x64xf32>, tensor<?x2x?x64xf32>, tensor<?x2x?x32xf32>,
      tensor<?x8x?x32xf32>, tensor<?x8x?xf32>, tensor<?x8x?x32xf32>
    -> tensor<?x8x?x64xf32>, tensor<?x2x?x64xf32>, tensor<?x2x?x32xf32>,
       tensor<4x32xf32>
  return %dq, %dk, %dv, %db : tensor<?x8x?x64xf32>, tensor<?x2x?x64xf32>,
      tensor<?x2x?x32xf32>, tensor<4x32xf32>
}

// A loss reading lse: dLSE, a seventh operand.
// CHECK-LABEL: func.func @attention_grad_dlse
// CHECK: attn.attention_grad %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}} :
// CHECK-SAME: tensor<?x4x?x64xbf16>, tensor<?x4x?xf32>, tensor<?x4x?x64xbf16>, tensor<?x4x?xf32> ->
// CHECK-NOT: operandSegmentSizes
func.func @attention_grad_dlse(%q: tensor<?x4x?x64xbf16>,
    %o: tensor<?x4x?x64xbf16>, %lse: tensor<?x4x?xf32>, %dlse: tensor<?x4x?xf32>)
    -> tensor<?x4x?x64xbf16> {
  %dq, %dk, %dv = attn.attention_grad %q, %q, %q, %o, %lse, %o, %dlse
    : tensor<?x4x?x64xbf16>, tensor<?x4x?x64xbf16>, tensor<?x4x?x64xbf16>,
      tensor<?x4x?x64xbf16>, tensor<?x4x?xf32>, tensor<?x4x?x64xbf16>,
      tensor<?x4x?xf32>
    -> tensor<?x4x?x64xbf16>, tensor<?x4x?x64xbf16>, tensor<?x4x?x64xbf16>
  return %dq : tensor<?x4x?x64xbf16>
}

// CHECK-LABEL: func.func @attention_grad_plain
// CHECK: attn.attention_grad
// CHECK-NOT: score_grad
// CHECK-SAME: -> tensor<?x4x?x64xbf16>, tensor<?x4x?x64xbf16>, tensor<?x4x?x64xbf16>
func.func @attention_grad_plain(%q: tensor<?x4x?x64xbf16>,
    %o: tensor<?x4x?x64xbf16>, %lse: tensor<?x4x?xf32>)
    -> tensor<?x4x?x64xbf16> {
  %dq, %dk, %dv = attn.attention_grad %q, %q, %q, %o, %lse, %o
    : tensor<?x4x?x64xbf16>, tensor<?x4x?x64xbf16>, tensor<?x4x?x64xbf16>,
      tensor<?x4x?x64xbf16>, tensor<?x4x?xf32>, tensor<?x4x?x64xbf16>
    -> tensor<?x4x?x64xbf16>, tensor<?x4x?x64xbf16>, tensor<?x4x?x64xbf16>
  return %dq : tensor<?x4x?x64xbf16>
}

// Queries aligned to the last keys (decode, prefill against a cache).
// CHECK-LABEL: func.func @queries_at_end
// CHECK: attn.attention %{{.*}}, %{{.*}}, %{{.*}} queries_at_end scale = 1.250000e-01{{$}}
// CHECK: attn.attention_grad {{.*}} queries_at_end :
func.func @queries_at_end(%q: tensor<?x4x1x64xf32>, %k: tensor<?x4x?x64xf32>,
    %lse: tensor<?x4x1xf32>) -> tensor<?x4x1x64xf32> {
  %o = attn.attention %q, %k, %k queries_at_end scale = 0.125
    mask(%b: index, %h: index, %i: index, %j: index) {
      %c = arith.cmpi uge, %i, %j : index
      attn.yield %c : i1
    } : tensor<?x4x1x64xf32>, tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>
      -> tensor<?x4x1x64xf32>
  %dq, %dk, %dv = attn.attention_grad %q, %k, %k, %o, %lse, %o queries_at_end
    : tensor<?x4x1x64xf32>, tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>,
      tensor<?x4x1x64xf32>, tensor<?x4x1xf32>, tensor<?x4x1x64xf32>
    -> tensor<?x4x1x64xf32>, tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>
  return %dq : tensor<?x4x1x64xf32>
}

// CHECK-LABEL: func.func @paged
// CHECK: attn.attention %{{.*}}, %{{.*}}, %{{.*}} pages(%{{.*}} : tensor<?x?xi32>) captures(%{{.*}} : tensor<8xf32>) queries_at_end
// CHECK-NOT: operandSegmentSizes
// CHECK: : tensor<?x8x?x64xf32>, tensor<?x2x16x64xf32>, tensor<?x2x16x64xf32> -> tensor<?x8x?x64xf32>
func.func @paged(%q: tensor<?x8x?x64xf32>, %k: tensor<?x2x16x64xf32>,
                 %v: tensor<?x2x16x64xf32>, %table: tensor<?x?xi32>,
                 %slopes: tensor<8xf32>) -> tensor<?x8x?x64xf32> {
  %o = attn.attention %q, %k, %v pages(%table : tensor<?x?xi32>)
      captures(%slopes : tensor<8xf32>) queries_at_end
    score(%s: f32, %b: index, %h: index, %i: index, %j: index) {
      %m = tensor.extract %slopes[%h] : tensor<8xf32>
      %d = arith.subi %j, %i : index
      %di = arith.index_cast %d : index to i64
      %df = arith.sitofp %di : i64 to f32
      %bias = arith.mulf %m, %df : f32
      %r = arith.addf %s, %bias : f32
      attn.yield %r : f32
    } : tensor<?x8x?x64xf32>, tensor<?x2x16x64xf32>, tensor<?x2x16x64xf32>
      -> tensor<?x8x?x64xf32>
  return %o : tensor<?x8x?x64xf32>
}

// CHECK-LABEL: func.func @sinks
// CHECK: attn.attention %{{.*}}, %{{.*}}, %{{.*}} pages(%{{.*}} : tensor<?x?xi32>) kv_lens(%{{.*}} : tensor<?xi32>) sinks(%{{.*}} : tensor<8xf32>) queries_at_end :
func.func @sinks(%q: tensor<?x8x?x64xf32>, %k: tensor<?x2x16x64xf32>,
                 %v: tensor<?x2x16x64xf32>, %table: tensor<?x?xi32>,
                 %lens: tensor<?xi32>, %sink: tensor<8xf32>)
    -> tensor<?x8x?x64xf32> {
  %o = attn.attention %q, %k, %v pages(%table : tensor<?x?xi32>)
      kv_lens(%lens : tensor<?xi32>) sinks(%sink : tensor<8xf32>) queries_at_end
    : tensor<?x8x?x64xf32>, tensor<?x2x16x64xf32>, tensor<?x2x16x64xf32>
      -> tensor<?x8x?x64xf32>
  return %o : tensor<?x8x?x64xf32>
}

// CHECK-LABEL: func.func @varlen
// CHECK: attn.attention %{{.*}}, %{{.*}}, %{{.*}} cu_seqlens_q(%{{.*}} : tensor<?xi32>) cu_seqlens_k(%{{.*}} : tensor<?xi32>) sinks(%{{.*}} : tensor<8xf32>) queries_at_end :
func.func @varlen(%q: tensor<1x8x?x64xf32>, %k: tensor<1x2x?x64xf32>,
                  %v: tensor<1x2x?x64xf32>, %cq: tensor<?xi32>,
                  %ck: tensor<?xi32>, %sink: tensor<8xf32>)
    -> tensor<1x8x?x64xf32> {
  %o = attn.attention %q, %k, %v cu_seqlens_q(%cq : tensor<?xi32>)
      cu_seqlens_k(%ck : tensor<?xi32>) sinks(%sink : tensor<8xf32>) queries_at_end
    : tensor<1x8x?x64xf32>, tensor<1x2x?x64xf32>, tensor<1x2x?x64xf32>
      -> tensor<1x8x?x64xf32>
  return %o : tensor<1x8x?x64xf32>
}

// The argument attributes the dialect declares for attn-run.
// CHECK-LABEL: func.func private @run_attributes
// CHECK-SAME: attn.run_dims = ["nq/64", "nk/64"]
// CHECK-SAME: attn.run_init = "bits:0.25"
// CHECK-SAME: attn.run_init = "uniform:-0.5:-0.1"
// CHECK-SAME: attn.run_init = "permutation"
func.func private @run_attributes(
    tensor<?x?xi1> {attn.run_dims = ["nq/64", "nk/64"], attn.run_init = "bits:0.25"},
    tensor<?x4x?xf32> {attn.run_init = "uniform:-0.5:-0.1"},
    tensor<?x?xi32> {attn.run_init = "permutation"})

// attn.linear_attention_grad (the backward of linear attention and scans,
// made by attn-differentiate): optional decay, initial state, final-state
// gradient, feature maps with their tangent maps.
// CHECK-LABEL: func.func @linear_attention_grad
// CHECK: %dq, %dk, %dv, %d_decay, %d_initial_state = attn.linear_attention_grad causal %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}} decay(%{{.*}} : tensor<?x4x?xf32>) initial_state(%{{.*}} : tensor<?x4x64x64xf32>) final_state_grad(%{{.*}} : tensor<?x4x64x64xf32>) normalize scale = 2.500000e-01
// CHECK: feature_map(%{{.*}}: vector<64xf32>)
// CHECK: math.exp
// CHECK: feature_map_jvp(%{{.*}}: vector<64xf32>, %{{.*}}: vector<64xf32>)
// CHECK: arith.mulf
func.func @linear_attention_grad(%q: tensor<?x4x?x64xf32>,
                                 %k: tensor<?x4x?x64xf32>,
                                 %v: tensor<?x4x?x64xf32>,
                                 %do: tensor<?x4x?x64xf32>,
                                 %g: tensor<?x4x?xf32>,
                                 %s0: tensor<?x4x64x64xf32>,
                                 %ds: tensor<?x4x64x64xf32>)
    -> (tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>,
        tensor<?x4x?xf32>, tensor<?x4x64x64xf32>) {
  %dq, %dk, %dv, %dg, %ds0 = attn.linear_attention_grad causal %q, %k, %v, %do
      decay(%g : tensor<?x4x?xf32>) initial_state(%s0 : tensor<?x4x64x64xf32>)
      final_state_grad(%ds : tensor<?x4x64x64xf32>) normalize scale = 0.25
    feature_map(%x: vector<64xf32>) {
      %e = math.exp %x : vector<64xf32>
      attn.yield %e : vector<64xf32>
    }
    feature_map_jvp(%x: vector<64xf32>, %dx: vector<64xf32>) {
      %e = math.exp %x : vector<64xf32>
      %t = arith.mulf %e, %dx : vector<64xf32>
      attn.yield %t : vector<64xf32>
    } : tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>,
        tensor<?x4x?x64xf32>
      -> tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>,
         tensor<?x4x?xf32>, tensor<?x4x64x64xf32>
  return %dq, %dk, %dv, %dg, %ds0 : tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>,
      tensor<?x4x?x64xf32>, tensor<?x4x?xf32>, tensor<?x4x64x64xf32>
}

// A scan's backward: no decay, no states, bidirectional.
// CHECK-LABEL: func.func @scan_grad
// CHECK: %dq, %dk, %dv = attn.linear_attention_grad bidirectional
func.func @scan_grad(%q: tensor<2x4x8x16xf32>, %k: tensor<2x4x8x16xf32>,
                     %v: tensor<2x4x8x16xf32>, %do: tensor<2x4x8x16xf32>)
    -> (tensor<2x4x8x16xf32>, tensor<2x4x8x16xf32>, tensor<2x4x8x16xf32>) {
  %dq, %dk, %dv = attn.linear_attention_grad bidirectional %q, %k, %v, %do
    : tensor<2x4x8x16xf32>, tensor<2x4x8x16xf32>, tensor<2x4x8x16xf32>,
      tensor<2x4x8x16xf32>
    -> tensor<2x4x8x16xf32>, tensor<2x4x8x16xf32>, tensor<2x4x8x16xf32>
  return %dq, %dk, %dv
      : tensor<2x4x8x16xf32>, tensor<2x4x8x16xf32>, tensor<2x4x8x16xf32>
}

// attn.combine_states (LASP-2's state combine): per-head and per-feature
// log-decays, prefix and suffix.
// CHECK-LABEL: func.func @combine_states
// CHECK: attn.combine_states prefix %{{.*}}, %{{.*}} at %{{.*}} : tensor<?x?x4x64x32xf32>, tensor<?x?x4xf32> -> tensor<?x4x64x32xf32>
// CHECK: attn.combine_states suffix %{{.*}}, %{{.*}} at %{{.*}} : tensor<?x?x4x64x32xf32>, tensor<?x?x4x64xf32> -> tensor<?x4x64x32xf32>
func.func @combine_states(%m: tensor<?x?x4x64x32xf32>, %t: tensor<?x?x4xf32>,
                          %tf: tensor<?x?x4x64xf32>, %r: index)
    -> (tensor<?x4x64x32xf32>, tensor<?x4x64x32xf32>) {
  %p = attn.combine_states prefix %m, %t at %r
    : tensor<?x?x4x64x32xf32>, tensor<?x?x4xf32> -> tensor<?x4x64x32xf32>
  %s = attn.combine_states suffix %m, %tf at %r
    : tensor<?x?x4x64x32xf32>, tensor<?x?x4x64xf32> -> tensor<?x4x64x32xf32>
  return %p, %s : tensor<?x4x64x32xf32>, tensor<?x4x64x32xf32>
}

// CHECK-LABEL: func.func @delta_rule_gated
// CHECK: attn.delta_rule %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}} decay(%{{.*}} : tensor<?x2x?xf32>) initial_state(%{{.*}} : tensor<?x2x16x8xf32>) {scale = 2.500000e-01 : f32} : tensor<?x2x?x16xbf16>, tensor<?x2x?x16xbf16>, tensor<?x2x?x8xbf16>, tensor<?x2x?xbf16> -> tensor<?x2x?x8xbf16>, tensor<?x2x16x8xf32>
func.func @delta_rule_gated(%q: tensor<?x2x?x16xbf16>, %k: tensor<?x2x?x16xbf16>,
                            %v: tensor<?x2x?x8xbf16>, %beta: tensor<?x2x?xbf16>,
                            %g: tensor<?x2x?xf32>, %s0: tensor<?x2x16x8xf32>)
    -> (tensor<?x2x?x8xbf16>, tensor<?x2x16x8xf32>) {
  %o, %s = attn.delta_rule %q, %k, %v, %beta decay(%g : tensor<?x2x?xf32>)
    initial_state(%s0 : tensor<?x2x16x8xf32>) {scale = 0.25 : f32}
    : tensor<?x2x?x16xbf16>, tensor<?x2x?x16xbf16>, tensor<?x2x?x8xbf16>,
      tensor<?x2x?xbf16> -> tensor<?x2x?x8xbf16>, tensor<?x2x16x8xf32>
  return %o, %s : tensor<?x2x?x8xbf16>, tensor<?x2x16x8xf32>
}

// CHECK-LABEL: func.func @delta_rule_grad
// CHECK: attn.delta_rule_grad %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}} decay(%{{.*}} : tensor<2xf32>) final_state_grad(%{{.*}} : tensor<?x2x16x16xf32>) : {{.*}} -> tensor<?x2x?x16xf32>, tensor<?x2x?x16xf32>, tensor<?x2x?x16xf32>, tensor<?x2x?xf32> decay_grad tensor<2xf32>{{$}}
func.func @delta_rule_grad(%q: tensor<?x2x?x16xf32>, %k: tensor<?x2x?x16xf32>,
                           %v: tensor<?x2x?x16xf32>, %beta: tensor<?x2x?xf32>,
                           %g: tensor<2xf32>, %do: tensor<?x2x?x16xf32>,
                           %ds: tensor<?x2x16x16xf32>) {
  %dq, %dk, %dv, %db, %dg = attn.delta_rule_grad %q, %k, %v, %beta, %do
    decay(%g : tensor<2xf32>) final_state_grad(%ds : tensor<?x2x16x16xf32>)
    : tensor<?x2x?x16xf32>, tensor<?x2x?x16xf32>, tensor<?x2x?x16xf32>,
      tensor<?x2x?xf32>, tensor<?x2x?x16xf32>
    -> tensor<?x2x?x16xf32>, tensor<?x2x?x16xf32>, tensor<?x2x?x16xf32>,
       tensor<?x2x?xf32> decay_grad tensor<2xf32>
  return
}

// Grouped value heads: 2 q/k heads, 4 value heads.
// CHECK-LABEL: func.func @delta_rule_grouped_values
// CHECK: attn.delta_rule {{.*}} : tensor<?x2x?x16xf32>, tensor<?x2x?x16xf32>, tensor<?x4x?x8xf32>, tensor<?x4x?xf32> -> tensor<?x4x?x8xf32>
func.func @delta_rule_grouped_values(%q: tensor<?x2x?x16xf32>, %k: tensor<?x2x?x16xf32>,
                                     %v: tensor<?x4x?x8xf32>, %beta: tensor<?x4x?xf32>)
    -> tensor<?x4x?x8xf32> {
  %o = attn.delta_rule %q, %k, %v, %beta
    : tensor<?x2x?x16xf32>, tensor<?x2x?x16xf32>, tensor<?x4x?x8xf32>,
      tensor<?x4x?xf32> -> tensor<?x4x?x8xf32>
  return %o : tensor<?x4x?x8xf32>
}
