// A 128x128 grid with a 15x15 window (bench/specs.py neighborhood_2d), bf16, d=128.
func.func @neighborhood_2d(%q: tensor<?x16x?x128xbf16>, %k: tensor<?x16x?x128xbf16>, %v: tensor<?x16x?x128xbf16>) -> tensor<?x16x?x128xbf16> {
  %o = attn.attention %q, %k, %v
    mask(%b: index, %h: index, %i: index, %j: index) {
      %w = arith.constant 128 : index
      %r = arith.constant 7 : index
      %ri = arith.divui %i, %w : index
      %ci = arith.remui %i, %w : index
      %rj = arith.divui %j, %w : index
      %cj = arith.remui %j, %w : index
      %dr = arith.subi %ri, %rj : index
      %dc = arith.subi %ci, %cj : index
      %adr = math.absi %dr : index
      %adc = math.absi %dc : index
      %okr = arith.cmpi sle, %adr, %r : index
      %okc = arith.cmpi sle, %adc, %r : index
      %m = arith.andi %okr, %okc : i1
      attn.yield %m : i1
    }
    : tensor<?x16x?x128xbf16>, tensor<?x16x?x128xbf16>, tensor<?x16x?x128xbf16> -> tensor<?x16x?x128xbf16>
  return %o : tensor<?x16x?x128xbf16>
}
