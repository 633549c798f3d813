#include "ui/RunDataJson.h"

#include "analysis/AnalysisJson.h"

namespace cs::ui {

RunDataSource runDataSource(const SessionController& session) {
    RunDataSource s;
    s.analysis = session.result().analysis;
    s.model = session.model();
    s.trackedToken = session.selection().lensToken;
    if (s.trackedToken >= 0) s.trackedText = session.tokenText(s.trackedToken).toStdString();
    return s;
}

nlohmann::json runDataJson(const RunDataSource& source, const std::string& view, int layer, int head) {
    nlohmann::json doc = analysisToJson(*source.analysis, view, layer, head);
    if (source.trackedToken >= 0 && source.model && source.analysis->hasLens() &&
        (view == "logit-lens" || view == "all")) {
        std::vector<std::vector<float>> p;
        try {
            p = lensProbabilities(*source.model, *source.analysis, source.trackedToken);
        } catch (const std::exception&) {
            // an id outside the vocabulary: exported without the tracked rows, as the view shows none
        }
        if (!p.empty()) addTrackedLens(doc, source.trackedToken, source.trackedText, p);
    }
    return doc;
}

nlohmann::json runDataJson(const SessionController& session, const std::string& view, int layer, int head) {
    return runDataJson(runDataSource(session), view, layer, head);
}

}  // namespace cs::ui
