#include "ui/GuiMain.h"

#include "runtime/Threads.h"
#include "ui/MainWindow.h"
#include "ui/SessionController.h"

#include <QApplication>
#include <QCommandLineParser>
#include <QSettings>

namespace cs::ui {

int runGui(int argc, char** argv) {
    QApplication app(argc, argv);
    QApplication::setOrganizationName("Circuitscope");
    QApplication::setApplicationName("circuitscope");
    QCommandLineParser parser;
    parser.addHelpOption();
    QCommandLineOption modelOpt("model", "Hugging Face model directory to open", "DIR");
    QCommandLineOption threadsOpt("threads", "Compute threads", "N");
    parser.addOption(modelOpt);
    parser.addOption(threadsOpt);
    parser.process(app);
    cs::setComputeThreads(parser.value(threadsOpt).toInt());

    SessionController session;
    MainWindow window(&session);
    window.resize(1100, 720);
    window.show();
    QString dir = parser.value(modelOpt);
    if (dir.isEmpty()) dir = QSettings().value("lastModel").toString();
    if (!dir.isEmpty()) window.openModel(dir);
    return app.exec();
}

}  // namespace cs::ui
