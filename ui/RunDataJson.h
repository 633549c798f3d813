#pragma once
// The session's current run as JSON: analysisToJson plus, when the logit lens tracks a token, its
// probabilities at every layer and position. What File > Export Data and `export --out FILE.json`
// both write.
#include "ui/SessionController.h"

#include <nlohmann/json.hpp>

#include <string>

namespace cs::ui {

// What a run's data export reads, copied off the GUI thread's session so that the export can
// run on the worker: filling in the whole lens and every head takes seconds on a long prompt.
struct RunDataSource {
    std::shared_ptr<const PromptAnalysis> analysis;
    std::shared_ptr<const Transformer> model;
    int trackedToken = -1;  // the lens' tracked token, or -1
    std::string trackedText;
};

RunDataSource runDataSource(const SessionController& session);

// Needs a finished run; throws cs::Error as analysisToJson does. Any thread.
nlohmann::json runDataJson(const RunDataSource& source, const std::string& view, int layer = 0, int head = 0);
nlohmann::json runDataJson(const SessionController& session, const std::string& view, int layer = 0, int head = 0);

}  // namespace cs::ui
