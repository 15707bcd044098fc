// Linear attention and scans whose backward attn-run checks against finite
// differences (linear-backward.test): every decay kind as a function
// argument (so that its gradient is checked), GQA, Dv != D, initial and
// final states, F != D with a position-dependent map, separate query and
// key maps, token orders. The maps are smooth: central differences across
// a kink (relu) are not derivatives.

// GQA (4 query heads on 2 kv heads), a per-head decay, D = 32.
func.func @gqa_head_decay(%q: tensor<?x4x?x32xf32>, %k: tensor<?x2x?x32xf32>,
                          %v: tensor<?x2x?x32xf32>, %g: tensor<4xf32>)
    -> tensor<?x4x?x32xf32> {
  %o = attn.linear_attention causal %q, %k, %v decay(%g : tensor<4xf32>)
    scale = 0.25
    : tensor<?x4x?x32xf32>, tensor<?x2x?x32xf32>, tensor<?x2x?x32xf32>
      -> tensor<?x4x?x32xf32>
  return %o : tensor<?x4x?x32xf32>
}

// GLA gates per token and feature, Dv = 16 != D = 32, an initial state and
// the final state returned (its gradient is an input of the backward).
func.func @gla_state(%q: tensor<?x2x?x32xf32>, %k: tensor<?x2x?x32xf32>,
                     %v: tensor<?x2x?x16xf32>, %g: tensor<?x2x?x32xf32>,
                     %s0: tensor<?x2x32x16xf32>)
    -> (tensor<?x2x?x16xf32>, tensor<?x2x32x16xf32>) {
  %o, %s = attn.linear_attention causal %q, %k, %v
    decay(%g : tensor<?x2x?x32xf32>) initial_state(%s0 : tensor<?x2x32x16xf32>)
    scale = 0.5
    : tensor<?x2x?x32xf32>, tensor<?x2x?x32xf32>, tensor<?x2x?x16xf32>
      -> tensor<?x2x?x16xf32>, tensor<?x2x32x16xf32>
  return %o, %s : tensor<?x2x?x16xf32>, tensor<?x2x32x16xf32>
}

// cosFormer's position reweighting on a smooth map: F = 2 D, the map reads
// the token's position, with the normalizer.
func.func @smooth_cos(%q: tensor<?x2x?x16xf32>, %k: tensor<?x2x?x16xf32>,
                      %v: tensor<?x2x?x16xf32>) -> tensor<?x2x?x16xf32> {
  %o = attn.linear_attention causal %q, %k, %v normalize
    feature_map(%x: vector<16xf32>, %t: index) {
      %e = math.exp %x : vector<16xf32>
      %ti = arith.index_cast %t : index to i64
      %tf = arith.sitofp %ti : i64 to f32
      %c = arith.constant 0.05 : f32
      %angle = arith.mulf %tf, %c : f32
      %cos = math.cos %angle : f32
      %sin = math.sin %angle : f32
      %cb = vector.broadcast %cos : f32 to vector<16xf32>
      %sb = vector.broadcast %sin : f32 to vector<16xf32>
      %rc = arith.mulf %e, %cb : vector<16xf32>
      %rs = arith.mulf %e, %sb : vector<16xf32>
      %r = vector.shuffle %rc, %rs [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12,
        13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29,
        30, 31] : vector<16xf32>, vector<16xf32>
      attn.yield %r : vector<32xf32>
    } : tensor<?x2x?x16xf32>, tensor<?x2x?x16xf32>, tensor<?x2x?x16xf32>
      -> tensor<?x2x?x16xf32>
  return %o : tensor<?x2x?x16xf32>
}

// Different query and key maps, bidirectional, normalized; a softmax over
// the features (exp, sum, divide: no max, which the check would take for a
// kink) in the key map.
func.func @two_maps(%q: tensor<?x2x?x16xf32>, %k: tensor<?x2x?x16xf32>,
                    %v: tensor<?x2x?x16xf32>) -> tensor<?x2x?x16xf32> {
  %o = attn.linear_attention bidirectional %q, %k, %v normalize
    feature_map(%x: vector<16xf32>) {
      %e = math.exp %x : vector<16xf32>
      attn.yield %e : vector<16xf32>
    }
    key_feature_map(%x: vector<16xf32>) {
      %pad = arith.constant 0.0 : f32
      %e = math.exp %x : vector<16xf32>
      %z = vector.reduction <add>, %e, %pad : vector<16xf32> into f32
      %zb = vector.broadcast %z : f32 to vector<16xf32>
      %p = arith.divf %e, %zb : vector<16xf32>
      attn.yield %p : vector<16xf32>
    } : tensor<?x2x?x16xf32>, tensor<?x2x?x16xf32>, tensor<?x2x?x16xf32>
      -> tensor<?x2x?x16xf32>
  return %o : tensor<?x2x?x16xf32>
}

// A bidirectional scan in a rotary token order (review tokens first, then
// a 2 x 3 x 4 grid w-major): gates read and positions counted in scan
// order, gradients written back in storage order. Run with --nq 26.
func.func @ordered_scan(%q: tensor<?x2x?x16xf32>, %k: tensor<?x2x?x16xf32>,
                        %v: tensor<?x2x?x16xf32>, %g: tensor<?x2x?xf32>)
    -> tensor<?x2x?x16xf32> {
  %o = attn.scan bidirectional %q, %k, %v decay(%g : tensor<?x2x?xf32>)
    {order = #attn.token_order<grid = [2, 3, 4], perm = [2, 0, 1], review = 2>}
    : tensor<?x2x?x16xf32>, tensor<?x2x?x16xf32>, tensor<?x2x?x16xf32>
      -> tensor<?x2x?x16xf32>
  return %o : tensor<?x2x?x16xf32>
}

// The same order on a causal scan with a final state.
func.func @ordered_causal_scan(%q: tensor<?x2x?x16xf32>,
                               %k: tensor<?x2x?x16xf32>,
                               %v: tensor<?x2x?x16xf32>,
                               %g: tensor<?x2x?xf32>)
    -> (tensor<?x2x?x16xf32>, tensor<?x2x16x16xf32>) {
  %o, %s = attn.scan causal %q, %k, %v decay(%g : tensor<?x2x?xf32>)
    {order = #attn.token_order<grid = [2, 3, 4], perm = [1, 2, 0], review = 2>}
    : tensor<?x2x?x16xf32>, tensor<?x2x?x16xf32>, tensor<?x2x?x16xf32>
      -> tensor<?x2x?x16xf32>, tensor<?x2x16x16xf32>
  return %o, %s : tensor<?x2x?x16xf32>, tensor<?x2x16x16xf32>
}
