#pragma once
// What the feature store holds about one SAE feature, as plain data: the dashboard, the browser,
// the CLI's JSON and figure export all read these structs, never SQL rows.
#include <string>
#include <vector>

namespace cs {

// One SAE or transcoder indexed in a store. `id` is how commands and views name it (the SAE
// folder's name, made unique within the store).
struct StoredSae {
    std::string id;
    std::string path;    // as given to `index` (absolute), for live search
    std::string hook;    // input hook
    std::string hookOut; // transcoders: the output hook; "" for SAEs
    std::string architecture;
    long dSae = 0;
    long dIn = 0;
    long tokens = 0;     // indexed tokens (positions that are not BOS)
    int ordinal = 0;     // order of attachment (layer order when indexed from the demo)
};

// A window of text around one activation: `tokens[i]` sits at position start + i of document
// `document` (0-based, corpus order); activations[i] is the feature's activation there (0 at
// positions that are not indexed, i.e. BOS); `maxOffset` indexes the highest one.
struct FeatureExample {
    long document = 0;
    long start = 0;
    std::vector<int> tokens;
    std::vector<std::string> pieces;  // each token's text, from the store's vocabulary
    std::vector<float> activations;
    float max = 0;
    int maxOffset = 0;
};

struct ActivationInterval {
    double low = 0, high = 0;  // window maxima in [low, high)
    std::vector<FeatureExample> examples;  // highest max first
};

struct ActivationHistogram {
    std::vector<double> edges;  // 51 edges, 0 .. a power of two above the feature's max
    std::vector<long> counts;   // 50 counts of non-zero activations
};

struct LogitEffect {
    int token = 0;
    std::string piece;
    float value = 0;
};

struct FeatureNeighbour {
    long index = 0;
    float cosine = 0;
};

// Browser row: cheap to load for every feature of an SAE at once.
struct FeatureSummary {
    long index = 0;
    std::string label;      // the user's label, else the automatic one
    bool labelIsAuto = true;
    double density = 0;     // firing tokens / indexed tokens
    float maxActivation = 0;
};

struct FeatureDetail {
    std::string sae;
    long index = 0;
    float maxActivation = 0;
    double density = 0;
    long firings = 0;
    std::string label;       // user label, or the automatic one when there is none
    bool labelIsAuto = true;
    std::string autoLabel;   // always the automatic one
    std::string notes;
    std::vector<FeatureExample> topExamples;  // highest max first
    std::vector<ActivationInterval> intervals;  // lowest interval first
    ActivationHistogram histogram;
    std::vector<LogitEffect> positiveLogits;  // largest first
    std::vector<LogitEffect> negativeLogits;  // most negative first
    std::vector<FeatureNeighbour> neighbours; // highest cosine first
};

// A search hit: `score` means what the search says (FTS rank, count of top examples whose max
// token matched, activation on a passage, difference of means between two prompt sets).
struct FeatureHit {
    std::string sae;
    long index = 0;
    std::string label;
    bool labelIsAuto = true;
    double score = 0;
    double a = 0, b = 0;  // contrast: mean max-activation on set A and on set B; prompt: (activation, relative)
};

}  // namespace cs
