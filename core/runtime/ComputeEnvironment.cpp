#include "runtime/ComputeEnvironment.h"

#include "runtime/ComputeVariables.h"

#include <ATen/Context.h>

#include <cstdlib>
#include <malloc.h>
#include <unistd.h>

namespace cs {

void flushDenormals() {
    // Softmax and log-softmax over a vocabulary produce many probabilities below float's normal
    // range (exp(-90) and less); on x86 each denormal operand costs about 100 cycles, which made
    // the logit lens 10x slower than its arithmetic. Flush-to-zero / denormals-are-zero live in
    // the per-thread MXCSR and new threads inherit them, so this runs before any thread starts.
    at::globalContext().setFlushDenormal(true);
}

void keepFreedMemory() {
    // glibc serves allocations over 128 KB-32 MB with fresh mmap()s and hands freed heap tops back
    // to the kernel, so every tensor of a repeated step (a [layers, T, vocab] lens, an activation
    // batch) is page-faulted in again. Page faults are slow in virtual machines: they were over
    // half of the logit lens' time here. Tensors under 64 MB now come from the heap and freed
    // memory stays with the process for the next step (peak RSS is kept, not returned).
    ::mallopt(M_MMAP_THRESHOLD, 64 << 20);
    ::mallopt(M_TRIM_THRESHOLD, 512 << 20);
    ::mallopt(M_TOP_PAD, 16 << 20);
}

void prepareComputeEnvironment(char** argv) {
    flushDenormals();
    keepFreedMemory();
    if (std::getenv("CIRCUITSCOPE_KEEP_ENV")) return;
    // Started without the launcher (app/launcher sets the variables and CIRCUITSCOPE_KEEP_ENV):
    // the libraries have read the environment already, so only a fresh start applies it.
    if (!setComputeVariables()) return;
    ::setenv("CIRCUITSCOPE_KEEP_ENV", "1", 1);  // never loop
    ::execv("/proc/self/exe", argv);
    // exec failed: carry on at the slower speed rather than not at all
}

}  // namespace cs
