// cosFormer (Qin et al.): ReLU features reweighted by position,
// phi(x, t) = [relu(x) cos(pi t / 2M), relu(x) sin(pi t / 2M)] with
// M = 4096 (the longest sequence), so that q_i . k_j carries
// cos(pi (i - j) / 2M); 128 features from a head dim of 64; causal, with
// the normalizer.
func.func @cosformer(%q: tensor<?x4x?x64xf32>, %k: tensor<?x4x?x64xf32>,
                     %v: tensor<?x4x?x64xf32>) -> tensor<?x4x?x64xf32> {
  %o = attn.linear_attention causal %q, %k, %v normalize
    feature_map(%x: vector<64xf32>, %t: index) {
      %zero = arith.constant dense<0.0> : vector<64xf32>
      %relu = arith.maximumf %x, %zero : vector<64xf32>
      %ti = arith.index_cast %t : index to i64
      %tf = arith.sitofp %ti : i64 to f32
      %c = arith.constant 3.83495197e-04 : f32  // pi / (2 * 4096)
      %angle = arith.mulf %tf, %c : f32
      %cos = math.cos %angle : f32
      %sin = math.sin %angle : f32
      %cb = vector.broadcast %cos : f32 to vector<64xf32>
      %sb = vector.broadcast %sin : f32 to vector<64xf32>
      %rc = arith.mulf %relu, %cb : vector<64xf32>
      %rs = arith.mulf %relu, %sb : vector<64xf32>
      %r = vector.shuffle %rc, %rs [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12,
        13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30,
        31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 45, 46, 47, 48,
        49, 50, 51, 52, 53, 54, 55, 56, 57, 58, 59, 60, 61, 62, 63, 64, 65, 66,
        67, 68, 69, 70, 71, 72, 73, 74, 75, 76, 77, 78, 79, 80, 81, 82, 83, 84,
        85, 86, 87, 88, 89, 90, 91, 92, 93, 94, 95, 96, 97, 98, 99, 100, 101,
        102, 103, 104, 105, 106, 107, 108, 109, 110, 111, 112, 113, 114, 115,
        116, 117, 118, 119, 120, 121, 122, 123, 124, 125, 126, 127]
        : vector<64xf32>, vector<64xf32>
      attn.yield %r : vector<128xf32>
    } : tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>
      -> tensor<?x4x?x64xf32>
  return %o : tensor<?x4x?x64xf32>
}
