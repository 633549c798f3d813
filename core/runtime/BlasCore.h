#pragma once
// Debian 12's OpenBLAS (0.3.21) does not recognise recent Xeons (this machine's AVX-512/AMX
// cores) and falls back to its Prescott SSE3 kernels: fp32 GEMM ~30 GFLOP/s instead of ~250.
// OpenBLAS reads OPENBLAS_CORETYPE only when it is loaded, so the fix is to set it and re-exec.
namespace cs {

// Call first thing in main(). When OpenBLAS reports a generic core on a CPU with AVX-512 (or
// AVX2), sets OPENBLAS_CORETYPE to SkylakeX (or Haswell) and re-executes the program; returns
// normally otherwise. An OPENBLAS_CORETYPE already set by the user is always respected.
void ensureFastBlas(int argc, char** argv);

// The kernel family OpenBLAS is using ("SkylakeX", "Prescott", ...), or "" without OpenBLAS.
const char* blasCoreName();

}  // namespace cs
