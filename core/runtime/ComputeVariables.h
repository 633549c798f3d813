#pragma once
// The environment variables LibTorch's OpenMP runtime and OpenBLAS read once, when they are
// loaded (ComputeEnvironment.h says why they matter). Kept free of LibTorch so that the small
// launcher (app/launcher) can set them before the program that loads those libraries starts.
namespace cs {

// The kernel family OpenBLAS is using ("SkylakeX", "Prescott", ...), or "" without OpenBLAS.
const char* blasCoreName();

// Sets OMP_WAIT_POLICY=passive (unless set) and, when the loaded OpenBLAS reports a generic core
// on a CPU with AVX-512 (or AVX2), OPENBLAS_CORETYPE=SkylakeX (or Haswell). Variables the user
// already set are always respected. Returns whether anything was set.
bool setComputeVariables();

}  // namespace cs
