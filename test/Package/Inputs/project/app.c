/* The kernels' headers come with the `kernels` library. */
#include "first.h"
#include "second.h"
#include <stdio.h>

int main(void) {
  printf("%d %d\n", attnc_first_load() != 0, attnc_second_load() != 0);
  return 0;
}
