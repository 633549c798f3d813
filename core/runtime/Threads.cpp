#include "runtime/Threads.h"

#include <ATen/Parallel.h>

#include <dlfcn.h>
#include <thread>

namespace cs {

namespace {

// OpenBLAS is reached through libblas.so.3, so its setter is looked up at run time: with the
// reference BLAS there is none, and that is fine.
void setBlasThreads(int n) {
    using Setter = void (*)(int);
    static Setter setter = reinterpret_cast<Setter>(::dlsym(RTLD_DEFAULT, "openblas_set_num_threads"));
    if (setter) setter(n);
}

}  // namespace

int setComputeThreads(int n) {
    if (n <= 0) n = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    at::set_num_threads(n);
    setBlasThreads(n);
    return at::get_num_threads();
}

int computeThreads() { return at::get_num_threads(); }

}  // namespace cs
