// Hedgehog (Zhang et al., "The Hedgehog & the Porcupine"): a learned
// feature map phi(x) = [softmax(W x), softmax(-W x)] with a captured
// projection W (32 x 64, so 64 features), causal, with the normalizer.
func.func @hedgehog(%q: tensor<?x4x?x64xf32>, %k: tensor<?x4x?x64xf32>,
                    %v: tensor<?x4x?x64xf32>,
                    %w: tensor<32x64xf32> {attn.run_init = "uniform:-0.3:0.3"})
    -> tensor<?x4x?x64xf32> {
  %o = attn.linear_attention causal %q, %k, %v captures(%w : tensor<32x64xf32>)
    normalize
    feature_map(%x: vector<64xf32>) {
      %c0 = arith.constant 0 : index
      %pad = arith.constant 0.0 : f32
      %wm = vector.transfer_read %w[%c0, %c0], %pad {in_bounds = [true, true]}
        : tensor<32x64xf32>, vector<32x64xf32>
      %xb = vector.broadcast %x : vector<64xf32> to vector<32x64xf32>
      %prod = arith.mulf %wm, %xb : vector<32x64xf32>
      %zero = arith.constant dense<0.0> : vector<32xf32>
      %wx = vector.multi_reduction <add>, %prod, %zero [1]
        : vector<32x64xf32> to vector<32xf32>
      %nwx = arith.negf %wx : vector<32xf32>
      // softmax over the 32 features, of W x and of -W x
      %m1 = vector.reduction <maximumf>, %wx : vector<32xf32> into f32
      %m1b = vector.broadcast %m1 : f32 to vector<32xf32>
      %s1 = arith.subf %wx, %m1b : vector<32xf32>
      %e1 = math.exp %s1 : vector<32xf32>
      %z1 = vector.reduction <add>, %e1, %pad : vector<32xf32> into f32
      %z1b = vector.broadcast %z1 : f32 to vector<32xf32>
      %p1 = arith.divf %e1, %z1b : vector<32xf32>
      %m2 = vector.reduction <maximumf>, %nwx : vector<32xf32> into f32
      %m2b = vector.broadcast %m2 : f32 to vector<32xf32>
      %s2 = arith.subf %nwx, %m2b : vector<32xf32>
      %e2 = math.exp %s2 : vector<32xf32>
      %z2 = vector.reduction <add>, %e2, %pad : vector<32xf32> into f32
      %z2b = vector.broadcast %z2 : f32 to vector<32xf32>
      %p2 = arith.divf %e2, %z2b : vector<32xf32>
      %r = vector.shuffle %p1, %p2 [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12,
        13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30,
        31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 45, 46, 47, 48,
        49, 50, 51, 52, 53, 54, 55, 56, 57, 58, 59, 60, 61, 62, 63]
        : vector<32xf32>, vector<32xf32>
      attn.yield %r : vector<64xf32>
    } : tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>
      -> tensor<?x4x?x64xf32>
  return %o : tensor<?x4x?x64xf32>
}
