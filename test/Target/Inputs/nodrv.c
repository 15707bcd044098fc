/* Calls a generated launcher where no CUDA context (or no driver) exists:
 * the call must return an error code, not crash. */
#include "causal.h"
#include <stdio.h>

int main(void) {
  attnc_result r = attnc_causal_launch(0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 0,
                                       0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0);
  printf("launch returned %s (%d)\n", r ? "an error" : "success", r);
  return r == 0;
}
