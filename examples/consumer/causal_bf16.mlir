// Causal attention in bf16, 8 heads of dim 64: query i sees keys j <= i.
// attnc_add_kernels turns it into causal.h and causal_launcher.c.
func.func @causal(%q: tensor<?x8x?x64xbf16>, %k: tensor<?x8x?x64xbf16>,
                  %v: tensor<?x8x?x64xbf16>) -> tensor<?x8x?x64xbf16> {
  %o = attn.attention %q, %k, %v
    mask(%b: index, %h: index, %i: index, %j: index) {
      %c = arith.cmpi uge, %i, %j : index
      attn.yield %c : i1
    } : tensor<?x8x?x64xbf16>, tensor<?x8x?x64xbf16>, tensor<?x8x?x64xbf16>
      -> tensor<?x8x?x64xbf16>
  return %o : tensor<?x8x?x64xbf16>
}
