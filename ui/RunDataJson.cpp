#include "ui/RunDataJson.h"

#include "analysis/AnalysisJson.h"

namespace cs::ui {

nlohmann::json runDataJson(const SessionController& session, const std::string& view, int layer, int head) {
    nlohmann::json doc = analysisToJson(*session.analysis(), view, layer, head);
    const int tracked = session.selection().lensToken;
    if (tracked >= 0 && (view == "logit-lens" || view == "all"))
        addTrackedLens(doc, tracked, session.tokenText(tracked).toStdString(), session.lensProbabilities(*session.analysis(), tracked));
    return doc;
}

}  // namespace cs::ui
