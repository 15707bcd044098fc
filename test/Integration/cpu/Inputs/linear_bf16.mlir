// A bf16 scan: attn-run --backward compares the chunked backward with the
// reference (no finite differences: the forward is not f32).
func.func @scan_bf16(%q: tensor<?x2x?x16xbf16>, %k: tensor<?x2x?x16xbf16>,
                     %v: tensor<?x2x?x16xbf16>) -> tensor<?x2x?x16xbf16> {
  %o = attn.scan causal %q, %k, %v
    : tensor<?x2x?x16xbf16>, tensor<?x2x?x16xbf16>, tensor<?x2x?x16xbf16>
      -> tensor<?x2x?x16xbf16>
  return %o : tensor<?x2x?x16xbf16>
}
