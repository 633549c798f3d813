#pragma once
#include "runtime/ComputeVariables.h"

// Two process-wide settings that decide whether LibTorch on Debian 12 runs at a fraction of this
// machine's speed, and that the libraries read only once, when they are loaded:
//  - OpenBLAS 0.3.21 does not recognise recent Xeons (AVX-512/AMX) and falls back to its
//    Prescott SSE3 kernels: fp32 GEMM ~30 GFLOP/s instead of ~250 (bench_forward prints both).
//  - LibTorch's OpenMP threads spin after each parallel region and fight OpenBLAS's own pthreads
//    for the two cores; OMP_WAIT_POLICY=passive made a 1 x 128 GPT-2-small forward ~3x faster.
// Both are set before the libraries load: by the launcher users run (app/launcher, ~10 ms), or,
// when the program is started directly, by re-executing it once first thing in main() (~0.6 s).
namespace cs {

// Sets the compute variables (setComputeVariables() in ComputeVariables.h) and re-executes the
// program if anything changed. CIRCUITSCOPE_KEEP_ENV=1 (which the launcher sets) turns this off.
// Also calls flushDenormals() and keepFreedMemory() (always).
void prepareComputeEnvironment(char** argv);

// Flush-to-zero and denormals-are-zero for this thread and every thread it starts afterwards:
// float results below 1.2e-38 become 0 instead of costing ~100 cycles each (softmax tails).
void flushDenormals();

// malloc settings that keep tensors' memory with the process between steps instead of mapping
// and faulting it in anew each time (see the .cpp for the measurement).
void keepFreedMemory();

}  // namespace cs
