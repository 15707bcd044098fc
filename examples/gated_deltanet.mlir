// Gated DeltaNet: S_t = exp(g_t) (I - beta_t k_t k_t^T) S_{t-1}
// + beta_t k_t v_t^T, o_t = S_t^T (q_t / 8), with a log-gate per token and
// head, an initial state (chunked prefill) and the final state returned;
// a value dim (32) other than the key dim (64).
func.func @gated_deltanet(%q: tensor<?x2x?x64xf32>,
                          %k: tensor<?x2x?x64xf32> {attn.run_init = "uniform:-0.12:0.12"},
                          %v: tensor<?x2x?x32xf32>,
                          %beta: tensor<?x2x?xf32> {attn.run_init = "uniform:0:1"},
                          %g: tensor<?x2x?xf32>,
                          %s0: tensor<?x2x64x32xf32>)
    -> (tensor<?x2x?x32xf32>, tensor<?x2x64x32xf32>) {
  %o, %s = attn.delta_rule %q, %k, %v, %beta decay(%g : tensor<?x2x?xf32>)
    initial_state(%s0 : tensor<?x2x64x32xf32>) {scale = 0.125 : f32}
    : tensor<?x2x?x64xf32>, tensor<?x2x?x64xf32>, tensor<?x2x?x32xf32>,
      tensor<?x2x?xf32> -> tensor<?x2x?x32xf32>, tensor<?x2x64x32xf32>
  return %o, %s : tensor<?x2x?x32xf32>, tensor<?x2x64x32xf32>
}
