#include "tokenize/UnicodeNormalization.h"

#include "tokenize/Utf8.h"

#include <QString>

namespace cs {
namespace {

QString::NormalizationForm qtForm(NormalizationForm form) {
    switch (form) {
    case NormalizationForm::Nfc: return QString::NormalizationForm_C;
    case NormalizationForm::Nfd: return QString::NormalizationForm_D;
    case NormalizationForm::Nfkc: return QString::NormalizationForm_KC;
    case NormalizationForm::Nfkd: return QString::NormalizationForm_KD;
    }
    return QString::NormalizationForm_C;
}

void appendNormalized(std::string& out, std::string_view wellFormed, NormalizationForm form) {
    if (utf8::isAscii(wellFormed)) {
        out.append(wellFormed.data(), wellFormed.size());
        return;
    }
    const QByteArray bytes =
        QString::fromUtf8(wellFormed.data(), static_cast<qsizetype>(wellFormed.size()))
            .normalized(qtForm(form))
            .toUtf8();
    out.append(bytes.constData(), static_cast<size_t>(bytes.size()));
}

}  // namespace

std::string normalizeUnicode(std::string_view text, NormalizationForm form) {
    if (utf8::isAscii(text)) return std::string(text);
    // QString would turn stray bytes into U+FFFD, so only the well-formed stretches go through it.
    std::string out;
    out.reserve(text.size());
    size_t run = 0;
    for (size_t i = 0; i < text.size();) {
        uint32_t cp = 0;
        const int k = utf8::scan(text, i, &cp);
        if (k > 0) {
            i += k;
            continue;
        }
        appendNormalized(out, text.substr(run, i - run), form);
        out.append(text.data() + i, -k);
        i += -k;
        run = i;
    }
    appendNormalized(out, text.substr(run), form);
    return out;
}

}  // namespace cs
