// Performer (Choromanski et al., FAVOR+): positive random features
// phi(x) = exp(W x - |x|^2 / 2) / sqrt(m) with a captured projection W
// (m = 64 random features), causal, with the normalizer.
func.func @performer(%q: tensor<?x4x?x64xf32>, %k: tensor<?x4x?x64xf32>,
                     %v: tensor<?x4x?x64xf32>,
                     %w: tensor<64x64xf32> {attn.run_init = "uniform:-0.5:0.5"})
    -> tensor<?x4x?x64xf32> {
  %o = attn.linear_attention causal %q, %k, %v captures(%w : tensor<64x64xf32>)
    normalize scale = 0.35
    feature_map(%x: vector<64xf32>) {
      %c0 = arith.constant 0 : index
      %pad = arith.constant 0.0 : f32
      %wm = vector.transfer_read %w[%c0, %c0], %pad {in_bounds = [true, true]}
        : tensor<64x64xf32>, vector<64x64xf32>
      %xb = vector.broadcast %x : vector<64xf32> to vector<64x64xf32>
      %prod = arith.mulf %wm, %xb : vector<64x64xf32>
      %zero = arith.constant dense<0.0> : vector<64xf32>
      %wx = vector.multi_reduction <add>, %prod, %zero [1]
        : vector<64x64xf32> to vector<64xf32>
      %sq = arith.mulf %x, %x : vector<64xf32>
      %norm2 = vector.reduction <add>, %sq, %pad : vector<64xf32> into f32
      %half = arith.constant 0.5 : f32
      %h = arith.mulf %norm2, %half : f32
      %hb = vector.broadcast %h : f32 to vector<64xf32>
      %arg = arith.subf %wx, %hb : vector<64xf32>
      %e = math.exp %arg : vector<64xf32>
      %inv = arith.constant dense<0.125> : vector<64xf32>
      %r = arith.mulf %e, %inv : vector<64xf32>
      attn.yield %r : vector<64xf32>
    } : tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>
      -> tensor<?x4x?x64xf32>
  return %o : tensor<?x4x?x64xf32>
}
