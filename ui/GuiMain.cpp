#include "ui/GuiMain.h"

#include "runtime/DemoBundle.h"
#include "runtime/Threads.h"
#include "ui/MainWindow.h"
#include "ui/SessionController.h"

#include <QApplication>
#include <QCommandLineParser>
#include <QSettings>
#include <QTimer>

namespace cs::ui {

int runGui(int argc, char** argv) {
    QApplication app(argc, argv);
    QApplication::setOrganizationName("Circuitscope");
    QApplication::setApplicationName("circuitscope");
    QCommandLineParser parser;
    parser.addHelpOption();
    QCommandLineOption modelOpt("model", "Hugging Face model directory to open, or 'demo'", "DIR");
    QCommandLineOption threadsOpt("threads", "Compute threads", "N");
    // For the README's screenshots and for checking a real window by eye: grab the window once
    // the first run has finished (or after a timeout), save it, and quit.
    QCommandLineOption shotOpt("screenshot", "Save the window to FILE after the first run, then quit", "FILE");
    parser.addOption(modelOpt);
    parser.addOption(threadsOpt);
    parser.addOption(shotOpt);
    parser.process(app);
    cs::setComputeThreads(parser.value(threadsOpt).toInt());

    SessionController session;
    MainWindow window(&session);
    window.resize(1100, 720);
    window.show();
    QString dir = parser.value(modelOpt);
    const std::string demo = cs::demoBundleDir();
    const QString demoModel = demo.empty() ? QString() : QString::fromStdString(demo + "/model");
    if (dir == "demo") dir = demoModel;
    if (dir.isEmpty()) dir = QSettings().value("lastModel").toString();
    if (dir.isEmpty()) dir = demoModel;
    if (!dir.isEmpty()) window.openModel(dir);
    if (parser.isSet(shotOpt)) {
        const QString file = parser.value(shotOpt);
        auto shoot = [&window, file] {
            window.grab().save(file);
            QApplication::quit();
        };
        QObject::connect(&session, &SessionController::generated, &window, [shoot] { QTimer::singleShot(300, shoot); });
        QObject::connect(&session, &SessionController::failed, &window, [shoot] { QTimer::singleShot(300, shoot); });
        QTimer::singleShot(30000, shoot);
    }
    return app.exec();
}

}  // namespace cs::ui
