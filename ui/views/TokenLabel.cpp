#include "ui/views/TokenLabel.h"

#include <QStringDecoder>

namespace cs::ui {

QString tokenLabel(const std::string& text) {
    QStringDecoder utf8(QStringDecoder::Utf8, QStringDecoder::Flag::Stateless);
    QString s = utf8(QByteArray::fromStdString(text));
    if (utf8.hasError()) {
        QString hex;
        for (unsigned char c : text) hex += QStringLiteral("<0x%1>").arg(c, 2, 16, QChar('0')).toUpper().replace("0X", "0x");
        return hex;
    }
    s.replace(' ', QChar(0x00B7)).replace('\n', QChar(0x21B5)).replace('\t', QChar(0x2192));
    // Other control characters are invisible on screen and invalid in SVG/XML: spell them out.
    QString out;
    for (QChar c : s) {
        if (c.unicode() < 0x20 || c.unicode() == 0x7f) out += QStringLiteral("<0x%1>").arg(c.unicode(), 2, 16, QChar('0')).toUpper().replace("0X", "0x");
        else out += c;
    }
    return out;
}

QString shortTokenLabel(const std::string& text, int maxChars) {
    QString s = tokenLabel(text);
    if (s.size() > maxChars) s = s.left(maxChars - 1) + QChar(0x2026);
    return s;
}

bool isWhitespaceToken(const std::string& text) {
    if (text.empty()) return false;
    for (char c : text)
        if (c != ' ' && c != '\n' && c != '\t' && c != '\r') return false;
    return true;
}

}  // namespace cs::ui
