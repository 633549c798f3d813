#pragma once
// One ranked prediction: a token and the probability a softmax gave it.
#include <string>

namespace cs {

struct TokenProbability {
    int id = 0;
    std::string text;
    float probability = 0;
};

}  // namespace cs
