// Gated linear attention (Yang et al.): a log-gate per token and key
// dimension, S_t = diag(a_t) S_{t-1} + k_t v_t^T.
func.func @gla(%q: tensor<?x4x?x64xf32>, %k: tensor<?x4x?x64xf32>,
               %v: tensor<?x4x?x64xf32>, %g: tensor<?x4x?x64xf32>)
    -> tensor<?x4x?x64xf32> {
  %o = attn.linear_attention causal %q, %k, %v decay(%g : tensor<?x4x?x64xf32>)
    scale = 0.125
    : tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>
      -> tensor<?x4x?x64xf32>
  return %o : tensor<?x4x?x64xf32>
}
