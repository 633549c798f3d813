#pragma once
// Thread count for LibTorch's intra-op pool and the BLAS it calls. Set deliberately: Debian's
// LibTorch may report 1 thread, and OpenBLAS keeps its own pool.
namespace cs {

// n <= 0: one per core. Returns the count in force.
int setComputeThreads(int n);
int computeThreads();

}  // namespace cs
