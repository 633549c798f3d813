#pragma once
// What the Steering dock asks the model thread for, and what comes back: the session prompt's
// continuation under each of a few steering plans (the live setting and any pinned ones that are
// out of date), beside the unsteered baseline. Plain data plus one function that computes it, so
// the SessionController only adds the thread, the ticket and the cache around it.
#include "analysis/PromptAnalysis.h"
#include "model/Generation.h"
#include "steer/SteeringJson.h"
#include "steer/SteeringRule.h"
#include "ui/RunSettings.h"

#include <QMetaType>
#include <QString>
#include <QStringList>

#include <functional>
#include <optional>
#include <vector>

namespace cs {
class Transformer;
class Tokenizer;
struct SteeringSae;
}

namespace cs::ui {

struct SteerRequest {
    RunSettings settings;              // the prompt and sampling (the session's last run)
    std::vector<int> columns;          // the comparison column each plan is for (0 = live)
    std::vector<SteeringPlan> plans;   // one per column
};

struct SteerOutcome {
    int ticket = 0;
    RunSettings settings;
    std::vector<long> promptTokens;
    SteeredText baseline;
    std::vector<int> columns;
    std::vector<SteeredText> outputs;  // per column; empty where errors[i] is set
    QStringList errors;                // per column: a bad row's message, or empty
    QString error;                     // the whole request failed (no prompt, no tokenizer)
    double seconds = 0;                // generation time, baseline included when it was made
};

// The sampling a session run of `s` uses for a prompt of `promptLength` tokens: generation stops
// at the model's context, so a steered continuation is exactly as long as the run's.
SamplingOptions samplingFor(const RunSettings& s, long promptLength, long contextLength);

// Generates the baseline unless `cachedBaseline` holds it (for these settings), then each plan's
// continuation. A bad plan (cs::Error from its rows) sets that column's error; the others still
// run. `keepGoing` is asked after every token; when it says no, this returns std::nullopt.
std::optional<SteerOutcome> computeSteering(const Transformer& model, const Tokenizer& tok,
                                            const std::vector<AnalysisSae>& saes, const SteerRequest& request,
                                            const SteeredText* cachedBaseline, const std::function<bool()>& keepGoing);

// The SAEs a session reads, as a Steering wants them.
std::vector<SteeringSae> steeringSaes(const std::vector<AnalysisSae>& saes);

}  // namespace cs::ui

Q_DECLARE_METATYPE(cs::ui::SteerOutcome)
