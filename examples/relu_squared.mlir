// Linear attention with the squared-ReLU feature map phi(x) = relu(x)^2
// (as in Primer-style and ReLU-kernel linear attention), bidirectional (a
// non-causal encoder), with the normalizer.
func.func @relu_squared(%q: tensor<?x4x?x64xf32>, %k: tensor<?x4x?x64xf32>,
                        %v: tensor<?x4x?x64xf32>) -> tensor<?x4x?x64xf32> {
  %o = attn.linear_attention bidirectional %q, %k, %v normalize
    feature_map(%x: vector<64xf32>) {
      %zero = arith.constant dense<0.0> : vector<64xf32>
      %relu = arith.maximumf %x, %zero : vector<64xf32>
      %sq = arith.mulf %relu, %relu : vector<64xf32>
      attn.yield %sq : vector<64xf32>
    } : tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>
      -> tensor<?x4x?x64xf32>
  return %o : tensor<?x4x?x64xf32>
}
