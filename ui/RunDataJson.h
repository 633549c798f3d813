#pragma once
// The session's current run as JSON: analysisToJson plus, when the logit lens tracks a token, its
// probabilities at every layer and position. What File > Export Data and `export --out FILE.json`
// both write.
#include "ui/SessionController.h"

#include <nlohmann/json.hpp>

#include <string>

namespace cs::ui {

// Needs a finished run; throws cs::Error as analysisToJson does.
nlohmann::json runDataJson(const SessionController& session, const std::string& view, int layer = 0, int head = 0);

}  // namespace cs::ui
