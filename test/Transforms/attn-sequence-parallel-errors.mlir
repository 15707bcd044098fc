// RUN: attn-opt %s -split-input-file --attn-sequence-parallel=func=f -verify-diagnostics
// What attn-sequence-parallel cannot split yet is named on the function.

// expected-error @+1 {{attn-sequence-parallel: function 'f' is bidirectional: the bidirectional LASP-2 form}}
func.func @f(%q: tensor<?x2x?x16xf32>, %k: tensor<?x2x?x16xf32>,
             %v: tensor<?x2x?x16xf32>) -> tensor<?x2x?x16xf32> {
  %o = attn.scan bidirectional %q, %k, %v
    : tensor<?x2x?x16xf32>, tensor<?x2x?x16xf32>, tensor<?x2x?x16xf32>
      -> tensor<?x2x?x16xf32>
  return %o : tensor<?x2x?x16xf32>
}

// -----

// expected-error @+1 {{function 'f' computes its q in the function: the sequence-parallel phases map each gradient to an argument}}
func.func @f(%x: tensor<?x2x?x16xf32>, %k: tensor<?x2x?x16xf32>,
             %v: tensor<?x2x?x16xf32>) -> tensor<?x2x?x16xf32> {
  %q = arith.negf %x : tensor<?x2x?x16xf32>
  %o = attn.scan causal %q, %k, %v
    : tensor<?x2x?x16xf32>, tensor<?x2x?x16xf32>, tensor<?x2x?x16xf32>
      -> tensor<?x2x?x16xf32>
  return %o : tensor<?x2x?x16xf32>
}

// -----

// expected-error @+1 {{function 'f' uses the attn op's results in other operations}}
func.func @f(%q: tensor<?x2x?x16xf32>, %k: tensor<?x2x?x16xf32>,
             %v: tensor<?x2x?x16xf32>) -> tensor<?x2x?x16xf32> {
  %o = attn.scan causal %q, %k, %v
    : tensor<?x2x?x16xf32>, tensor<?x2x?x16xf32>, tensor<?x2x?x16xf32>
      -> tensor<?x2x?x16xf32>
  %r = arith.addf %o, %o : tensor<?x2x?x16xf32>
  return %r : tensor<?x2x?x16xf32>
}

// -----

// expected-error @+1 {{function 'f' aligns its queries to the end of the keys (queries_at_end)}}
func.func @f(%q: tensor<?x2x?x16xf32>, %k: tensor<?x2x?x16xf32>,
             %v: tensor<?x2x?x16xf32>) -> tensor<?x2x?x16xf32> {
  %o = attn.attention %q, %k, %v queries_at_end
    : tensor<?x2x?x16xf32>, tensor<?x2x?x16xf32>, tensor<?x2x?x16xf32>
      -> tensor<?x2x?x16xf32>
  return %o : tensor<?x2x?x16xf32>
}

// -----

// expected-error @+1 {{function 'f' has no single attn.attention, attn.linear_attention or attn.scan to split}}
func.func @f(%q: tensor<?x2x?x16xf32>, %k: tensor<?x2x?x16xf32>,
             %v: tensor<?x2x?x16xf32>) -> tensor<?x2x?x16xf32> {
  %o = attn.scan causal %q, %k, %v
    : tensor<?x2x?x16xf32>, tensor<?x2x?x16xf32>, tensor<?x2x?x16xf32>
      -> tensor<?x2x?x16xf32>
  %p = attn.scan causal %q, %k, %o
    : tensor<?x2x?x16xf32>, tensor<?x2x?x16xf32>, tensor<?x2x?x16xf32>
      -> tensor<?x2x?x16xf32>
  return %p : tensor<?x2x?x16xf32>
}

// -----

// expected-error @+1 {{'f_lasp_state' already exists}}
func.func @f(%q: tensor<?x2x?x16xf32>, %k: tensor<?x2x?x16xf32>,
             %v: tensor<?x2x?x16xf32>) -> tensor<?x2x?x16xf32> {
  %o = attn.scan causal %q, %k, %v
    : tensor<?x2x?x16xf32>, tensor<?x2x?x16xf32>, tensor<?x2x?x16xf32>
      -> tensor<?x2x?x16xf32>
  return %o : tensor<?x2x?x16xf32>
}
func.func @f_lasp_state() {
  return
}

// -----

// expected-error @+1 {{attn-sequence-parallel: no function 'f'}}
module {
}
