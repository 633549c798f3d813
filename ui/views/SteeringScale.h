#pragma once
// The strength slider's scale: -10..+10 multiples of a row's unit on an integer slider, quadratic
// so that the first tenth of the travel covers +-0.1 (fine control where small changes already
// matter) and the last reaches 10x. Rounded to the numeric box's 0.01 so both always agree.
#include <cmath>

namespace cs::ui::steering_scale {

constexpr int kSliderSteps = 1000;  // the slider runs -kSliderSteps..kSliderSteps
constexpr double kMaxMultiple = 10.0;

inline double multipleForSlider(int s) {
    const double f = static_cast<double>(s) / kSliderSteps;
    const double m = kMaxMultiple * f * std::fabs(f);
    return std::round(m * 100.0) / 100.0;
}

inline int sliderForMultiple(double m) {
    const double f = std::sqrt(std::fmin(std::fabs(m), kMaxMultiple) / kMaxMultiple);
    return static_cast<int>(std::lround((m < 0 ? -f : f) * kSliderSteps));
}

}  // namespace cs::ui::steering_scale
