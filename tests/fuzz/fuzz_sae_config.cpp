// SAE configuration files of each format: SAELens cfg.json (v6 nested and older flat layouts) and
// Llama Scope hyperparams.json are both tried on every input; Gemma Scope has no config, only the
// path, so the input's first line is also read as a path.
#include <nlohmann/json.hpp>

#include "FuzzInput.h"
#include "io/JsonFile.h"
#include "sae/SaeConfig.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string text(reinterpret_cast<const char*>(data), size);
    (void)cs::guessGemmaScopeHook(text.substr(0, text.find('\n')));
    nlohmann::json j;
    try {
        j = nlohmann::json::parse(text);
    } catch (const std::exception&) {
        return 0;  // the JSON library's own errors; readJsonFile turns them into cs::Error
    }
    try {
        cs::SaeConfig c = cs::parseSaeLensConfig(j, "cfg.json");
        (void)cs::toSaeLensJson(c).dump();  // what is written back must be serialisable
    } catch (const std::exception& e) {
        csfuzz::note(e.what());
    }
    try {
        (void)cs::parseLlamaScopeConfig(j, "hyperparams.json");
    } catch (const std::exception& e) {
        csfuzz::note(e.what());
    }
    return 0;
}
