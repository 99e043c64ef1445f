// CPU thread count for libtorch's intra-op pool. 0 = automatic (physical cores reported by
// libtorch, overridable with OMP_NUM_THREADS as usual).
#pragma once

namespace genvis {

void set_num_threads(int n);
int num_threads();

}  // namespace genvis
