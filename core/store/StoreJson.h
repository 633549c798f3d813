#pragma once
// The feature store's records as JSON, in the exact shapes the command line promises
// (`circuitscope feature --json`, `saes --json`, `search --json`; docs/cli.md).
#include "store/FeatureRecord.h"

#include <nlohmann/json.hpp>

#include <vector>

namespace cs {

nlohmann::json featureJson(const FeatureDetail& d);
nlohmann::json exampleJson(const FeatureExample& e);
nlohmann::json saesJson(const std::vector<StoredSae>& saes);
nlohmann::json hitsJson(const std::vector<FeatureHit>& hits, const char* scoreName);

}  // namespace cs
