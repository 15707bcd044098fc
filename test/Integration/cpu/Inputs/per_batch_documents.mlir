// per-batch document ids docs[b, i]
func.func @doc2(%q: tensor<?x4x?x64xf32>, %k: tensor<?x4x?x64xf32>,
               %v: tensor<?x4x?x64xf32>,
               %docs: tensor<?x?xi32> {attn.run_dims = ["b", "n"], attn.run_init = "randint:0:3"})
    -> (tensor<?x4x?x64xf32>, tensor<?x4x?xf32>) {
  %o, %lse = attn.attention %q, %k, %v captures(%docs : tensor<?x?xi32>)
    mask(%b: index, %h: index, %i: index, %j: index) {
      %di = tensor.extract %docs[%b, %i] : tensor<?x?xi32>
      %dj = tensor.extract %docs[%b, %j] : tensor<?x?xi32>
      %c = arith.cmpi eq, %di, %dj : i32
      attn.yield %c : i1
    } : tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32> -> tensor<?x4x?x64xf32>, tensor<?x4x?xf32>
  return %o, %lse : tensor<?x4x?x64xf32>, tensor<?x4x?xf32>
}
