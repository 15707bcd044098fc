// Linear attention with the elu(x) + 1 feature map and the normalizer
// (Katharopoulos et al., "Transformers are RNNs"), causal.
func.func @linear_elu(%q: tensor<?x4x?x64xf32>, %k: tensor<?x4x?x64xf32>,
                      %v: tensor<?x4x?x64xf32>) -> tensor<?x4x?x64xf32> {
  %o = attn.linear_attention causal %q, %k, %v normalize
    feature_map(%x: vector<64xf32>) {
      %zero = arith.constant dense<0.0> : vector<64xf32>
      %one = arith.constant dense<1.0> : vector<64xf32>
      %e = math.exp %x : vector<64xf32>
      %pos = arith.cmpf ogt, %x, %zero : vector<64xf32>
      %xp1 = arith.addf %x, %one : vector<64xf32>
      %r = arith.select %pos, %xp1, %e : vector<64xi1>, vector<64xf32>
      attn.yield %r : vector<64xf32>
    } : tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>
      -> tensor<?x4x?x64xf32>
  return %o : tensor<?x4x?x64xf32>
}
