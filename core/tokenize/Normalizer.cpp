#include "tokenize/Normalizer.h"

#include "tokenize/JsonSite.h"

namespace cs {

Normalizer Normalizer::fromJson(const JsonSite& site) {
    Normalizer n;
    if (!site.isNull()) n.addFrom(site);
    return n;
}

void Normalizer::addFrom(const JsonSite& site) {
    const std::string type = site.type();
    if (type == "Sequence") {
        const size_t count = site.arraySize("normalizers");
        for (size_t i = 0; i < count; ++i) addFrom(site.at("normalizers").at(i));
        return;
    }
    Step step;
    if (type == "NFC") {
        step.form = NormalizationForm::Nfc;
    } else if (type == "NFD") {
        step.form = NormalizationForm::Nfd;
    } else if (type == "NFKC") {
        step.form = NormalizationForm::Nfkc;
    } else if (type == "NFKD") {
        step.form = NormalizationForm::Nfkd;
    } else if (type == "Replace") {
        step.kind = Step::Replace;
        step.pattern = TextPattern::fromJson(site.at("pattern"));
        step.content = site.string("content");
    } else if (type == "Prepend") {
        step.kind = Step::Prepend;
        step.content = site.string("prepend");
    } else {
        site.unsupportedType("NFC, NFD, NFKC, NFKD, Replace, Prepend, Sequence");
    }
    steps_.push_back(std::move(step));
}

std::string Normalizer::apply(std::string_view text) const {
    std::string s(text);
    for (const Step& step : steps_) {
        switch (step.kind) {
        case Step::Unicode: s = normalizeUnicode(s, step.form); break;
        case Step::Replace: s = step.pattern.replaceAll(s, step.content); break;
        case Step::Prepend:
            if (!s.empty()) s.insert(0, step.content);
            break;
        }
    }
    return s;
}

}  // namespace cs
