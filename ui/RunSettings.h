#pragma once
// A prompt and how to continue it: what a run, a saved session and a steered comparison share.
#include <QString>

namespace cs::ui {

struct RunSettings {
    QString prompt;
    int maxNewTokens = 32;
    bool greedy = true;
    double temperature = 1.0;
    quint64 seed = 0;

    bool operator==(const RunSettings& o) const {
        return prompt == o.prompt && maxNewTokens == o.maxNewTokens && greedy == o.greedy &&
               temperature == o.temperature && seed == o.seed;
    }
    bool operator!=(const RunSettings& o) const { return !(*this == o); }
};

}  // namespace cs::ui
