// attnc.trace: score_mod=generate_tanh_softcap.<locals>.tanh_softcap
func.func @flex_tanh_softcap_2(%q: tensor<?x2x?x64xbf16>, %k: tensor<?x2x?x64xbf16>, %v: tensor<?x2x?x64xbf16>) -> tensor<?x2x?x64xbf16> {
  %o = attn.attention %q, %k, %v
    score(%s: f32, %b: index, %h: index, %i: index, %j: index) {
      %0 = arith.constant 2.000000000e+00 : f32
      %1 = arith.divf %s, %0 : f32
      %2 = math.tanh %1 : f32
      %3 = arith.mulf %0, %2 : f32
      attn.yield %3 : f32
    }
    : tensor<?x2x?x64xbf16>, tensor<?x2x?x64xbf16>, tensor<?x2x?x64xbf16> -> tensor<?x2x?x64xbf16>
  return %o : tensor<?x2x?x64xbf16>
}
