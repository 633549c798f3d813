#include "ui/SteeringJob.h"

#include "model/Transformer.h"
#include "steer/Steering.h"
#include "steer/SteeringRun.h"
#include "tokenize/TokenIdPrompt.h"
#include "tokenize/Tokenizer.h"

#include <QCoreApplication>
#include <QElapsedTimer>

#include <algorithm>
#include <memory>

namespace cs::ui {

SamplingOptions samplingFor(const RunSettings& s, long promptLength, long contextLength) {
    SamplingOptions o;
    const long room = std::max<long>(0, contextLength - promptLength);
    o.maxNewTokens = static_cast<int>(std::min<long>(s.maxNewTokens, room));
    o.greedy = s.greedy;
    o.temperature = s.temperature;
    o.seed = s.seed;
    return o;
}

std::vector<SteeringSae> steeringSaes(const std::vector<AnalysisSae>& saes) {
    std::vector<SteeringSae> out;
    for (const AnalysisSae& s : saes) out.push_back({s.id, s.sae});
    return out;
}

std::optional<SteerOutcome> computeSteering(const Transformer& model, const Tokenizer& tok,
                                            const std::vector<AnalysisSae>& saes, const SteerRequest& request,
                                            const SteeredText* cachedBaseline, const std::function<bool()>& keepGoing) {
    if (keepGoing && !keepGoing()) return std::nullopt;  // superseded while queued
    SteerOutcome out;
    out.settings = request.settings;
    out.columns = request.columns;
    QElapsedTimer timer;
    timer.start();
    const std::vector<int> ids = promptTokenIds(tok, request.settings.prompt.toStdString(), static_cast<int>(model.config().vocabSize));
    if (ids.empty()) {
        out.error = QCoreApplication::translate("SteeringJob", "empty prompt");
        return out;
    }
    out.promptTokens.assign(ids.begin(), ids.end());
    const SamplingOptions sampling = samplingFor(request.settings, static_cast<long>(ids.size()), model.config().nCtx);
    bool stopped = false;
    auto onToken = [&](long) {
        stopped = stopped || (keepGoing && !keepGoing());
        return !stopped;
    };
    if (cachedBaseline) {
        out.baseline = *cachedBaseline;
    } else {
        out.baseline = steeredText(out.promptTokens, generate(model, out.promptTokens, sampling, nullptr, onToken), &tok);
        if (stopped) return std::nullopt;
    }
    const std::vector<SteeringSae> steerSaes = steeringSaes(saes);
    for (size_t i = 0; i < request.plans.size(); ++i) {
        const SteeringPlan& plan = request.plans[i];
        SteeredText text;
        QString error;
        if (!plan.active()) {
            text = out.baseline;  // nothing to apply: the hooks would change nothing
        } else {
            try {
                Steering steering(model, steerSaes, plan);
                text = steeredText(out.promptTokens, generateSteered(model, out.promptTokens, sampling, steering, onToken), &tok);
            } catch (const std::exception& e) {
                error = QString::fromUtf8(e.what()).section('\n', 0, 0);
            }
        }
        if (stopped) return std::nullopt;
        out.outputs.push_back(std::move(text));
        out.errors.push_back(error);
    }
    out.seconds = timer.nsecsElapsed() / 1e9;
    return out;
}

}  // namespace cs::ui
