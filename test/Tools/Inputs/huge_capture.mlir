// A captured layout whose attn.run_dims are too large for attn-run: ceil of
// INT64_MAX / 2 = 2^62 rows of 8 bytes overflow 64-bit byte counts (the
// rounding up itself must not overflow).
func.func @huge_capture(%q: tensor<1x1x8x16xf32>, %k: tensor<1x1x8x16xf32>,
                        %v: tensor<1x1x8x16xf32>,
                        %layout: tensor<?x?xi8> {attn.run_dims = ["9223372036854775807/2", "8"],
                                                 attn.run_init = "bits:0.5"})
    -> tensor<1x1x8x16xf32> {
  %o = attn.attention %q, %k, %v captures(%layout : tensor<?x?xi8>)
    mask(%b: index, %h: index, %i: index, %j: index) {
      %zero = arith.constant 0 : i8
      %x = tensor.extract %layout[%i, %j] : tensor<?x?xi8>
      %keep = arith.cmpi ne, %x, %zero : i8
      attn.yield %keep : i1
    } : tensor<1x1x8x16xf32>, tensor<1x1x8x16xf32>, tensor<1x1x8x16xf32>
      -> tensor<1x1x8x16xf32>
  return %o : tensor<1x1x8x16xf32>
}
