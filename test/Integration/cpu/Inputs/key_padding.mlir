// key padding: batch b sees keys j < len[b]
func.func @pad(%q: tensor<?x4x?x64xf32>, %k: tensor<?x4x?x64xf32>,
               %v: tensor<?x4x?x64xf32>,
               %len: tensor<?xi32> {attn.run_dims = ["b"], attn.run_init = "randint:1:150"})
    -> (tensor<?x4x?x64xf32>, tensor<?x4x?xf32>) {
  %o, %lse = attn.attention %q, %k, %v captures(%len : tensor<?xi32>)
    mask(%b: index, %h: index, %i: index, %j: index) {
      %l = tensor.extract %len[%b] : tensor<?xi32>
      %li = arith.index_cast %l : i32 to index
      %c = arith.cmpi ult, %j, %li : index
      attn.yield %c : i1
    } : tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32> -> tensor<?x4x?x64xf32>, tensor<?x4x?xf32>
  return %o, %lse : tensor<?x4x?x64xf32>, tensor<?x4x?xf32>
}
