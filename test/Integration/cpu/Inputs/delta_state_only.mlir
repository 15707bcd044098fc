// A delta rule whose output nothing reads (attnc.distributed.delta_rule's
// state call): the lowerings compute only the final state.
func.func @delta_state(%q: tensor<?x2x?x16xf32>,
                       %k: tensor<?x2x?x16xf32> {attn.run_init = "uniform:-0.2:0.2"},
                       %v: tensor<?x2x?x24xf32>,
                       %beta: tensor<?x2x?xf32> {attn.run_init = "uniform:0:1"},
                       %g: tensor<?x2x?xf32>, %s0: tensor<?x2x16x24xf32>)
    -> tensor<?x2x16x24xf32> {
  %o, %s = attn.delta_rule %q, %k, %v, %beta decay(%g : tensor<?x2x?xf32>)
    initial_state(%s0 : tensor<?x2x16x24xf32>)
    : tensor<?x2x?x16xf32>, tensor<?x2x?x16xf32>, tensor<?x2x?x24xf32>,
      tensor<?x2x?xf32> -> tensor<?x2x?x24xf32>, tensor<?x2x16x24xf32>
  return %s : tensor<?x2x16x24xf32>
}
