// Mamba2 / SSD-style gated scan: S_t = exp(g_t) S_{t-1} + k_t v_t^T,
// o_t = S_t^T q_t, with a scalar log-gate per token and head, an initial
// state (chunked prefill) and the final state returned.
func.func @mamba2_scan(%q: tensor<?x4x?x64xf32>, %k: tensor<?x4x?x64xf32>,
                       %v: tensor<?x4x?x64xf32>, %g: tensor<?x4x?xf32>,
                       %s0: tensor<?x4x64x64xf32>)
    -> (tensor<?x4x?x64xf32>, tensor<?x4x64x64xf32>) {
  %o, %s = attn.scan causal %q, %k, %v decay(%g : tensor<?x4x?xf32>)
    initial_state(%s0 : tensor<?x4x64x64xf32>)
    : tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>
      -> tensor<?x4x?x64xf32>, tensor<?x4x64x64xf32>
  return %o, %s : tensor<?x4x?x64xf32>, tensor<?x4x64x64xf32>
}
