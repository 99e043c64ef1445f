// CPU thread count for libtorch's intra-op pool. 0 = automatic: the physical cores of the CPUs
// this process may use (libtorch's count, or sysfs's where that is larger: some VMs make libtorch
// see 1 core for 2), overridable with OMP_NUM_THREADS as usual.
#pragma once

namespace genvis {

void set_num_threads(int n);
int num_threads();

}  // namespace genvis
