// DeltaNet: S_t = (I - beta_t k_t k_t^T) S_{t-1} + beta_t k_t v_t^T,
// o_t = S_t^T (q_t / 8). Keys small enough that ||k_t|| < 1 and betas in
// (0, 1), as l2-normalized keys and sigmoid betas give in a model.
func.func @deltanet(%q: tensor<?x4x?x64xf32>,
                    %k: tensor<?x4x?x64xf32> {attn.run_init = "uniform:-0.12:0.12"},
                    %v: tensor<?x4x?x64xf32>,
                    %beta: tensor<?x4x?xf32> {attn.run_init = "uniform:0:1"})
    -> tensor<?x4x?x64xf32> {
  %o = attn.delta_rule %q, %k, %v, %beta {scale = 0.125 : f32}
    : tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>,
      tensor<?x4x?xf32> -> tensor<?x4x?x64xf32>
  return %o : tensor<?x4x?x64xf32>
}
