#include "store/FeatureStats.h"

#include <algorithm>
#include <cmath>

namespace cs {

uint64_t splitmix64(uint64_t x) {
    uint64_t z = x + 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

double powerOfTwoAbove(double v) {
    int e = 0;
    std::frexp(v, &e);        // v = m * 2^e, m in [0.5, 1)
    return std::ldexp(1.0, e);  // 2^e > v, and 2^(e-1) <= v
}

namespace {

// Heap order for the top list: the worst candidate at the front.
bool heapLess(const Candidate& a, const Candidate& b) { return betterTop(a, b); }

int binOf(double v, double scale, int bins) {
    // Clamped as a double: a store read back from disk may hold any scale, and converting an
    // out-of-range double (or NaN) to int is undefined.
    const double b = std::floor(v * bins / scale);
    if (!(b > 0)) return 0;
    return b >= bins - 1 ? bins - 1 : static_cast<int>(b);
}

void keepBestSamples(std::vector<Candidate>& v) {
    if (static_cast<int>(v.size()) <= kPerInterval) return;
    std::sort(v.begin(), v.end(), betterSample);
    v.resize(kPerInterval);
}

}  // namespace

int FeatureStats::intervalOf(float max) const { return binOf(max, scale, kIntervals); }

void FeatureStats::doubleScale() {
    scale *= 2;
    for (int i = 0; i < kHistogramBins / 2; ++i) histogram[i] = histogram[2 * i] + histogram[2 * i + 1];
    std::fill(histogram.begin() + kHistogramBins / 2, histogram.end(), 0);
    for (int i = 0; i < kIntervals / 2; ++i) {
        std::vector<Candidate> merged = std::move(intervals[2 * i]);
        merged.insert(merged.end(), intervals[2 * i + 1].begin(), intervals[2 * i + 1].end());
        keepBestSamples(merged);
        intervals[i] = std::move(merged);
    }
    for (int i = kIntervals / 2; i < kIntervals; ++i) intervals[i].clear();
}

void FeatureStats::addValue(float v) {
    if (scale == 0) {
        scale = powerOfTwoAbove(v);
        histogram.assign(kHistogramBins, 0);
        intervals.assign(kIntervals, {});
    }
    while (v >= scale) doubleScale();
    ++histogram[binOf(v, scale, kHistogramBins)];
    ++firings;
    if (v > maxActivation) maxActivation = v;
}

FeatureStats::Taken FeatureStats::offer(const Candidate& c) {
    Taken taken;
    if (static_cast<int>(top.size()) < kTopExamples) {
        top.push_back(c);
        std::push_heap(top.begin(), top.end(), heapLess);
        taken.top = true;
    } else if (betterTop(c, top.front())) {
        std::pop_heap(top.begin(), top.end(), heapLess);
        top.back() = c;
        std::push_heap(top.begin(), top.end(), heapLess);
        taken.top = true;
    }
    auto& bin = intervals[intervalOf(c.max)];
    if (static_cast<int>(bin.size()) < kPerInterval) {
        bin.push_back(c);
        taken.interval = true;
    } else {
        auto worst = std::max_element(bin.begin(), bin.end(), betterSample);
        if (betterSample(c, *worst)) {
            *worst = c;
            taken.interval = true;
        }
    }
    return taken;
}

bool FeatureStats::keepsTop(long window) const {
    return std::any_of(top.begin(), top.end(), [&](const Candidate& c) { return c.window == window; });
}

bool FeatureStats::keepsSample(const Candidate& c) const {
    if (scale <= 0) return false;
    const auto& bin = intervals[intervalOf(c.max)];
    return std::any_of(bin.begin(), bin.end(), [&](const Candidate& k) { return k.window == c.window; });
}

void FeatureStats::restore(std::vector<Candidate> topRows, const std::vector<Candidate>& intervalRows) {
    top = bestTop(std::move(topRows));
    std::make_heap(top.begin(), top.end(), heapLess);
    intervals.assign(kIntervals, {});
    if (scale > 0) {
        for (const auto& c : intervalRows) intervals[intervalOf(c.max)].push_back(c);
        for (auto& bin : intervals) keepBestSamples(bin);
    }
}

std::vector<Candidate> bestTop(std::vector<Candidate> rows) {
    std::sort(rows.begin(), rows.end(), betterTop);
    if (static_cast<int>(rows.size()) > kTopExamples) rows.resize(kTopExamples);
    return rows;
}

std::vector<ShownInterval> shownIntervals(double scale, float maxActivation, const std::vector<Candidate>& samples) {
    std::vector<ShownInterval> shown;
    if (scale <= 0 || maxActivation <= 0) return shown;
    const int count = binOf(maxActivation, scale, kIntervals) + 1;
    std::vector<std::vector<Candidate>> bins(count);
    for (const auto& c : samples) {
        const int b = binOf(c.max, scale, kIntervals);
        if (b < count) bins[b].push_back(c);
    }
    const double width = scale / kIntervals;
    for (int i = 0; i < count; ++i) {
        auto& v = bins[i];
        if (v.empty()) continue;
        std::sort(v.begin(), v.end(), betterSample);
        if (static_cast<int>(v.size()) > kPerInterval) v.resize(kPerInterval);
        std::sort(v.begin(), v.end(), betterTop);
        shown.push_back({i * width, (i + 1) * width, std::move(v)});
    }
    return shown;
}

}  // namespace cs
