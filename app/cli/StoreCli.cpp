#include "cli/StoreCli.h"

#include "runtime/DemoBundle.h"
#include "sae/SaeLoader.h"
#include "util/Error.h"

#include <filesystem>
#include <set>

namespace cs::cli {

std::vector<std::string> saeIdsFor(const std::vector<std::string>& paths) {
    std::vector<std::string> ids;
    std::set<std::string> used;
    for (const auto& p : paths) {
        std::filesystem::path path(p);
        while (path.has_parent_path() && path.filename().empty()) path = path.parent_path();  // trailing '/'
        std::string base = std::filesystem::is_directory(path) ? path.filename().string()
                                                               : path.parent_path().filename().string();
        if (base.empty()) base = "sae";
        std::string id = base;
        for (int n = 2; used.count(id); ++n) id = base + "-" + std::to_string(n);
        used.insert(id);
        ids.push_back(id);
    }
    return ids;
}

std::vector<IndexSae> loadIndexSaes(const std::string& model, const std::vector<std::string>& given, const char* command) {
    std::vector<std::string> paths = given;
    if (paths.empty() && model == "demo") paths = demoSaeDirs();
    if (paths.empty()) throw Error(std::string(command) + ": give at least one --sae PATH");
    const auto ids = saeIdsFor(paths);
    std::vector<IndexSae> out;
    for (size_t i = 0; i < paths.size(); ++i) {
        const std::string abs = std::filesystem::absolute(paths[i]).lexically_normal().string();
        out.push_back({ids[i], abs, loadSae(paths[i])});
    }
    return out;
}

}  // namespace cs::cli
