// Bidirectional Mamba2 (as in LinGen's MATE block): a forward and a backward
// gated scan summed, the diagonal counted once:
// o_t = sum_s exp(-|L_t - L_s|) (q_t . k_s) v_s.
func.func @bidirectional_mamba2(%q: tensor<?x4x?x64xf32>,
                                %k: tensor<?x4x?x64xf32>,
                                %v: tensor<?x4x?x64xf32>,
                                %g: tensor<?x4x?xf32>) -> tensor<?x4x?x64xf32> {
  %o = attn.scan bidirectional %q, %k, %v decay(%g : tensor<?x4x?xf32>)
    : tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>
      -> tensor<?x4x?x64xf32>
  return %o : tensor<?x4x?x64xf32>
}
