#pragma once
// Finds and loads an SAE or transcoder from what is on disk, and writes SAELens folders.
//
//   SAELens:     a folder with cfg.json + sae_weights.safetensors (+ sparsity.safetensors)
//   Gemma Scope: params.npz, or a folder holding one (JumpReLU; the hook comes from the caller or
//                from the path, e.g. .../layer_12/width_16k/... -> blocks.12.hook_resid_post)
//   Llama Scope: a folder with hyperparams.json + checkpoints/final.safetensors
#include "sae/Sae.h"

#include <memory>
#include <string>

namespace cs {

// `path` is a folder or one of the files named above. `hookOverride`, when given, replaces the
// (input) hook the file names. Throws cs::Error naming the file and the tensor or field at fault.
std::shared_ptr<Sae> loadSae(const std::string& path, const std::string& hookOverride = "");

// Writes `dir`/cfg.json (v6 layout, nested metadata) and `dir`/sae_weights.safetensors with
// SAELens' tensor names and orientation (W_skip back to [d_out, d_in]), plus sparsity.safetensors
// when the SAE has one; SAE.load_from_disk reads the result.
// f16: tensors stored as float16 and cfg.json's dtype "float16" (half the size; loading converts
// back to float32), as SAELens writes half-precision SAEs.
void saveSaeLens(const Sae& sae, const std::string& dir, bool f16 = false);

}  // namespace cs
