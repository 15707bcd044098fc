// Two kernels and a function that is none (no attn.attention).
// func.func @commented_out is not one either.
func.func @helper(%x: index) -> index {
  return %x : index
}

func.func @first(%q: tensor<?x4x?x64xbf16>, %k: tensor<?x4x?x64xbf16>,
                 %v: tensor<?x4x?x64xbf16>) -> tensor<?x4x?x64xbf16> {
  %o = attn.attention %q, %k, %v
    mask(%b: index, %h: index, %i: index, %j: index) {
      %c = arith.cmpi uge, %i, %j : index
      attn.yield %c : i1
    } : tensor<?x4x?x64xbf16>, tensor<?x4x?x64xbf16>, tensor<?x4x?x64xbf16>
      -> tensor<?x4x?x64xbf16>
  return %o : tensor<?x4x?x64xbf16>
}

func.func private @second(%q: tensor<?x2x?x32xf16>, %k: tensor<?x2x?x32xf16>,
                          %v: tensor<?x2x?x32xf16>) -> tensor<?x2x?x32xf16> {
  %o = attn.attention %q, %k, %v
    : tensor<?x2x?x32xf16>, tensor<?x2x?x32xf16>, tensor<?x2x?x32xf16>
      -> tensor<?x2x?x32xf16>
  return %o : tensor<?x2x?x32xf16>
}
