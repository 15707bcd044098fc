// Decode against a paged KV cache: pages of 64 tokens ([P, 8, 64, 128]),
// 32 query heads on 8 kv heads, d = 128, every key visible.
func.func @decode_paged64(%q: tensor<?x32x?x128xbf16>,
                         %k: tensor<?x8x64x128xbf16>,
                         %v: tensor<?x8x64x128xbf16>,
                         %table: tensor<?x?xi32>) -> tensor<?x32x?x128xbf16> {
  %o = attn.attention %q, %k, %v pages(%table : tensor<?x?xi32>)
    : tensor<?x32x?x128xbf16>, tensor<?x8x64x128xbf16>,
      tensor<?x8x64x128xbf16> -> tensor<?x32x?x128xbf16>
  return %o : tensor<?x32x?x128xbf16>
}
