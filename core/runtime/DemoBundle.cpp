#include "runtime/DemoBundle.h"

#include "util/Error.h"

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <unistd.h>

namespace cs {

namespace fs = std::filesystem;

std::string demoBundleDir() {
    std::vector<fs::path> candidates;
    if (const char* env = std::getenv("CIRCUITSCOPE_DEMO")) candidates.emplace_back(env);
    std::error_code ec;
    const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
    if (!ec) candidates.push_back(exe.parent_path().parent_path() / "share/circuitscope/demo");
#ifdef CS_SOURCE_RESOURCES
    candidates.emplace_back(CS_SOURCE_RESOURCES "/demo");
#endif
    for (const auto& c : candidates)
        if (fs::exists(c / "model" / "config.json", ec)) return c.string();
    return "";
}

std::string resolveModelDir(const std::string& dirOrDemo) {
    if (dirOrDemo != "demo" && dirOrDemo != "demo-dog") return dirOrDemo;
    const std::string root = demoBundleDir();
    if (root.empty())
        throw Error("demo: the embedded demo bundle is not installed (expected resources/demo/model or "
                    "$CIRCUITSCOPE_DEMO/model)");
    if (dirOrDemo == "demo") return root + "/model";
    std::error_code ec;
    if (!fs::exists(root + "/model-dog/config.json", ec))
        throw Error("demo-dog: " + root + "/model-dog is missing (packaging/build-demo.sh makes it)");
    return root + "/model-dog";
}

std::vector<std::string> demoSaeDirs() {
    std::vector<std::string> out;
    const std::string root = demoBundleDir();
    std::error_code ec;
    if (root.empty() || !fs::exists(root + "/saes", ec)) return out;
    for (const auto& e : fs::directory_iterator(root + "/saes", ec))
        // Hidden folders are build-demo.sh's SAEs still in training.
        if (e.is_directory() && e.path().filename().string().rfind('.', 0) != 0 && fs::exists(e.path() / "cfg.json"))
            out.push_back(e.path().string());
    std::sort(out.begin(), out.end());
    return out;
}

}  // namespace cs
