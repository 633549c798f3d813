#include "steer/SteeringRun.h"

#include "tokenize/ContinuationText.h"
#include "tokenize/Tokenizer.h"

#include <memory>

namespace cs {

SteeredText steeredText(const std::vector<long>& prompt, const std::vector<long>& ids, const Tokenizer* tok) {
    SteeredText t;
    t.ids = ids;
    if (tok) {
        for (long id : ids) t.texts.push_back(tok->tokenText(static_cast<int>(id)));
        t.text = continuationText(*tok, prompt, ids);
    }
    return t;
}

SteeringComparison runSteeringComparison(const Transformer& model, const Tokenizer* tok, const SteeringRequest& req,
                                         const std::function<bool()>& keepGoing) {
    std::vector<std::unique_ptr<Steering>> steerings;
    for (const auto& plan : req.settings) steerings.push_back(std::make_unique<Steering>(model, req.saes, plan));
    auto onToken = [&](long) { return !keepGoing || keepGoing(); };
    SteeringComparison c;
    c.prompt = req.promptText;
    c.promptTokens = req.prompt;
    c.baseline = steeredText(req.prompt, generate(model, req.prompt, req.sampling, nullptr, onToken), tok);
    for (size_t i = 0; i < steerings.size(); ++i) {
        if (keepGoing && !keepGoing()) break;
        SteeringColumn col;
        col.title = i < req.titles.size() && !req.titles[i].empty() ? req.titles[i] : "Setting " + std::to_string(i + 1);
        for (const auto& r : req.settings[i].rules)
            if (r.enabled) col.rows.push_back(describeRow(r));
        if (req.settings[i].condition) col.condition = req.settings[i].condition->toString();
        col.output = steeredText(req.prompt, generateSteered(model, req.prompt, req.sampling, *steerings[i], onToken), tok);
        c.columns.push_back(std::move(col));
    }
    return c;
}

}  // namespace cs
