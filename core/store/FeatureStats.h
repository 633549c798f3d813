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
constexpr int kIntervals = 10;
constexpr int kPerInterval = 4;
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

struct FeatureStats {
    float maxActivation = 0;
    int64_t firings = 0;
    double scale = 0;  // M; 0 until the feature first fires
    std::vector<int64_t> histogram;              // kHistogramBins, empty until the first value
    std::vector<Candidate> top;                  // a heap: worst candidate in front
    std::vector<std::vector<Candidate>> intervals;  // kIntervals bins, each <= kPerInterval

    // Counts one non-zero activation (doubling the scale as needed).
    void addValue(float v);
    // Offers a window's maximum; returns which lists took it. Call after addValue for its values.
    struct Taken { bool top = false, interval = false; };
    Taken offer(const Candidate& c);
    // Whether a candidate is still kept (it may have been pushed out since it was taken).
    bool keepsTop(long window) const;
    bool keepsSample(const Candidate& c) const;

    int intervalOf(float max) const;  // bin under the current scale
    // Rebuilds the lists from stored rows (resume) under the stored scale. The rows may be a
    // superset of what was kept (the store appends and never deletes while indexing): the same
    // rules pick the same survivors from it.
    void restore(std::vector<Candidate> topRows, const std::vector<Candidate>& intervalRows);

private:
    void doubleScale();
};

// True when a is a better top example than b (higher max, then lower window).
inline bool betterTop(const Candidate& a, const Candidate& b) {
    return a.max != b.max ? a.max > b.max : a.window < b.window;
}
// Lower priority first, then lower window.
inline bool betterSample(const Candidate& a, const Candidate& b) {
    return a.priority != b.priority ? a.priority < b.priority : a.window < b.window;
}

// The kTopExamples best of `rows`, best first.
std::vector<Candidate> bestTop(std::vector<Candidate> rows);

// The intervals a reader shows: the non-empty bins up to the one holding `maxActivation` (6 to
// 10 of them, since the scale is at most twice the max); each keeps its kPerInterval best
// samples, shown highest max first.
struct ShownInterval {
    double low, high;
    std::vector<Candidate> samples;
};
std::vector<ShownInterval> shownIntervals(double scale, float maxActivation, const std::vector<Candidate>& samples);

}  // namespace cs
