// func.func @commented_out holds attn.attention only in this comment.
func.func @helper(%x: index) -> index {
  return %x : index
}
