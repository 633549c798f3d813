#include "ui/QtMessages.h"

#include <QtGlobal>

#include <cstdlib>

namespace cs::ui {

namespace {

QtMessageHandler qtDefault = nullptr;

void filter(QtMsgType type, const QMessageLogContext& context, const QString& message) {
    if (type == QtDebugMsg || type == QtInfoMsg || type == QtWarningMsg) return;
    if (qtDefault) qtDefault(type, context, message);
}

}  // namespace

void keepQtWarningsOffTheTerminal() {
    const char* show = std::getenv("CIRCUITSCOPE_QT_MESSAGES");
    if (show && *show && *show != '0') return;
    QtMessageHandler previous = qInstallMessageHandler(filter);
    if (previous != filter) qtDefault = previous;
}

}  // namespace cs::ui
