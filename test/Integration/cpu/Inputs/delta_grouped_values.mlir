// Gated DeltaNet with grouped value heads: 2 q/k heads, 4 value heads (each
// q/k head serves two), per-head gates, an initial and a final state.
func.func @delta_gva(%q: tensor<?x2x?x16xf32>,
                     %k: tensor<?x2x?x16xf32> {attn.run_init = "uniform:-0.2:0.2"},
                     %v: tensor<?x4x?x8xf32>,
                     %beta: tensor<?x4x?xf32> {attn.run_init = "uniform:0:1"},
                     %g: tensor<4xf32>, %s0: tensor<?x4x16x8xf32>)
    -> (tensor<?x4x?x8xf32>, tensor<?x4x16x8xf32>) {
  %o, %s = attn.delta_rule %q, %k, %v, %beta decay(%g : tensor<4xf32>)
    initial_state(%s0 : tensor<?x4x16x8xf32>) {scale = 0.25 : f32}
    : tensor<?x2x?x16xf32>, tensor<?x2x?x16xf32>, tensor<?x4x?x8xf32>,
      tensor<?x4x?xf32> -> tensor<?x4x?x8xf32>, tensor<?x4x16x8xf32>
  return %o, %s : tensor<?x4x?x8xf32>, tensor<?x4x16x8xf32>
}
