#pragma once
// A saved session: the model, the prompt and its generation settings, the selection, the
// steering rows and the window layout, as a small JSON file (*.csession). Opening it reruns the prompt with the same
// settings (generation is deterministic for a given seed) and restores the selection and layout.
#include "steer/SteeringRule.h"
#include "ui/SessionController.h"

#include <QByteArray>
#include <QString>

namespace cs::ui {

struct SessionState {
    QString modelDir;
    RunSettings settings;
    Selection selection;
    QString theme;          // "light" / "dark"
    QByteArray windowState; // QMainWindow::saveState, may be empty
    SteeringPlan steering;  // the Steering dock's rows and condition (as a preset holds them)
};

// Returns an empty string on success, else a one-line error naming the file (and field).
QString saveSessionFile(const SessionState& state, const QString& path);
QString loadSessionFile(const QString& path, SessionState& state);

}  // namespace cs::ui
