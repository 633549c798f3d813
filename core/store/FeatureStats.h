#pragma once
// The per-feature bookkeeping of indexing, kept in memory between batches and small: top
// examples, interval samples, a histogram and counts, without storing every activation.
//
// Every rule picks the same result whatever order candidates arrive in (docs/store.md), which is
// what makes an interrupted index resumable to the very same store:
//  - top examples: the kTop largest window maxima, ties to the lower window;
//  - histogram: 50 bins over [0, M), M the smallest power of two above every value seen; when a
//    value reaches M, M doubles and bins merge in pairs (exact);
//  - intervals: kIntervals bins over the same [0, M) by window maximum, each keeping the
//    kPerInterval candidates of lowest splitmix64 priority (a bottom-k sample, which merges
//    exactly when M doubles).
#include <cstdint>
#include <vector>

namespace cs {

constexpr int kTopExamples = 20;
constexpr int kHistogramBins = 50;
constexpr int kIntervals = 20;
constexpr int kPerInterval = 5;
constexpr int kSpanBefore = 15;  // tokens shown before an example's peak
constexpr int kSpanAfter = 5;    // the peak and tokens after it

uint64_t splitmix64(uint64_t x);
inline uint64_t samplePriority(long window, long feature) {
    return splitmix64((static_cast<uint64_t>(window) << 32) | static_cast<uint64_t>(feature));
}
// The smallest power of two strictly greater than v (v > 0).
double powerOfTwoAbove(double v);

struct Candidate {
    float max = 0;
    long window = 0;
    uint64_t priority = 0;
};

// A candidate dropped from a feature's top list or interval sample (its stored row must go).
struct Eviction {
    long feature;
    bool top;  // false: interval sample
    long window;
};

struct FeatureStats {
    float maxActivation = 0;
    int64_t firings = 0;
    double scale = 0;  // M; 0 until the feature first fires
    std::vector<int64_t> histogram;              // kHistogramBins, empty until the first value
    std::vector<Candidate> top;                  // a heap: worst candidate in front
    std::vector<std::vector<Candidate>> intervals;  // kIntervals bins, each <= kPerInterval

    // Counts one non-zero activation (doubling the scale as needed; evictions go to `out`).
    void addValue(float v, long feature, std::vector<Eviction>& out);
    // Offers a window's maximum; returns which lists took it. Call after addValue for its values.
    struct Taken { bool top = false, interval = false; };
    Taken offer(const Candidate& c, long feature, std::vector<Eviction>& out);

    int intervalOf(float max) const;  // bin under the current scale
    // Rebuilds the heaps and bins from stored rows (resume), under the stored scale.
    void restore(std::vector<Candidate> topRows, const std::vector<Candidate>& intervalRows);

private:
    void doubleScale(long feature, std::vector<Eviction>& out);
};

// True when a is a better top example than b (higher max, then lower window).
inline bool betterTop(const Candidate& a, const Candidate& b) {
    return a.max != b.max ? a.max > b.max : a.window < b.window;
}
// Lower priority first, then lower window.
inline bool betterSample(const Candidate& a, const Candidate& b) {
    return a.priority != b.priority ? a.priority < b.priority : a.window < b.window;
}

// The intervals a reader shows: the bins up to the one holding `maxActivation`, merged in pairs
// when 14 or more are covered; each keeps its kPerInterval best samples, highest max first.
struct ShownInterval {
    double low, high;
    std::vector<Candidate> samples;
};
std::vector<ShownInterval> shownIntervals(double scale, float maxActivation, const std::vector<Candidate>& samples);

}  // namespace cs
