#pragma once
// The embedded demo: a small model this project trained on TinyStories with its own code, and
// SAEs / transcoders trained on it (resources/demo/, see README for the commands). It is found
// beside the executable's install prefix, or in the source tree the build came from.
#include <string>
#include <vector>

namespace cs {

// The demo's root directory (holding model/ and saes/), or "" when it is not installed.
std::string demoBundleDir();
// "demo" -> the demo model's directory, "demo-dog" -> its fine-tuned variant (model-dog/, the
// demo model trained further on stories that mention a dog, for `diff`); anything else is
// returned unchanged. Throws cs::Error when a demo model is asked for and is not installed.
std::string resolveModelDir(const std::string& dirOrDemo);
// Every SAE / transcoder folder of the demo, sorted by name.
std::vector<std::string> demoSaeDirs();

}  // namespace cs
