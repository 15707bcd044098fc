// Decode with the lse output (cascade attention merges by it): 32 heads.
func.func @decode_mha_lse(%q: tensor<?x32x?x128xbf16>, %k: tensor<?x32x?x128xbf16>,
                          %v: tensor<?x32x?x128xbf16>)
    -> (tensor<?x32x?x128xbf16>, tensor<?x32x?xf32>) {
  %o, %lse = attn.attention %q, %k, %v
    : tensor<?x32x?x128xbf16>, tensor<?x32x?x128xbf16>, tensor<?x32x?x128xbf16>
      -> tensor<?x32x?x128xbf16>, tensor<?x32x?xf32>
  return %o, %lse : tensor<?x32x?x128xbf16>, tensor<?x32x?xf32>
}
