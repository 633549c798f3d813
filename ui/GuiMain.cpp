#include "ui/GuiMain.h"

#include "runtime/DemoBundle.h"
#include "runtime/Threads.h"
#include "ui/MainWindow.h"
#include "ui/QtMessages.h"
#include "ui/SessionController.h"
#include "ui/Theme.h"
#include "ui/views/AttentionView.h"
#include "ui/views/FeaturesView.h"
#include "ui/views/LogitLensView.h"
#include "ui/views/GraphView.h"
#include "ui/views/DiffView.h"
#include "ui/views/PatchingView.h"
#include "ui/views/SteeringView.h"
#include "ui/views/TokenStreamView.h"

#include <QApplication>
#include <QCheckBox>
#include <QIcon>
#include <QDockWidget>
#include <QCommandLineParser>
#include <QSettings>
#include <QTimer>

#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace cs::ui {

int runGui(int argc, char** argv) {
    // QGuiApplication takes "-session"/"--session ID" for X11 session management and removes it
    // from the arguments, so our --session FILE would never reach the parser: take it out first.
    QString sessionFile;
    std::vector<char*> args;
    for (int i = 0; i < argc; ++i) {
        const std::string a = argv[i];
        if ((a == "--session" || a == "-session") && i + 1 < argc) sessionFile = QString::fromLocal8Bit(argv[++i]);
        else if (a.rfind("--session=", 0) == 0) sessionFile = QString::fromLocal8Bit(argv[i] + 10);
        else args.push_back(argv[i]);
    }
    int qtArgc = static_cast<int>(args.size());
    args.push_back(nullptr);
    keepQtWarningsOffTheTerminal();
    QApplication app(qtArgc, args.data());
    app.setWindowIcon(QIcon(QStringLiteral(":/circuitscope.svg")));
    QApplication::setOrganizationName("Circuitscope");
    QApplication::setApplicationName("circuitscope");
    QCommandLineParser parser;
    parser.addHelpOption();
    QCommandLineOption modelOpt("model", "Hugging Face model directory to open, or 'demo'", "DIR");
    QCommandLineOption threadsOpt("threads", "Compute threads", "N");
    QCommandLineOption themeOpt("theme", "light or dark", "NAME");
    // For the README's screenshots and for checking a real window by eye: grab the window (or one
    // view) once the first run has finished, save it, and quit.
    QCommandLineOption shotOpt("screenshot", "Save the window to FILE after the first run, then quit", "FILE");
    QCommandLineOption shotViewOpt("screenshot-view",
                                   "With --screenshot: grab only tokens, attention, logit-lens, features, dashboard, steering, graph, patching or diff", "VIEW");
    QCommandLineOption shotDelayOpt("screenshot-delay", "With --screenshot: wait MS after the first run (default 500)", "MS");
    QCommandLineOption featureOpt("open-feature", "After the first run, open the dashboard of SAE:INDEX (and select that feature)",
                                  "SAE:INDEX");
    QCommandLineOption presetOpt("steer-preset", "After the first run, load this steering preset into the Steering dock", "FILE");
    QCommandLineOption graphOpt("open-graph", "After the first run, open this attribution graph file in the graph dock", "FILE");
    QCommandLineOption compareOpt("compare", "After the first run, compare the model with this checkpoint (or demo-dog) in the Model diff dock", "DIR");
    QCommandLineOption patchOpt("patch", "After the first run, run the Patching dock on CLEAN|CORRUPTED|ANSWER|WRONG", "PROMPTS");
    QCommandLineOption positionOpt("position", "After the first run, select token POSITION", "POSITION");
    QCommandLineOption sizeOpt("size", "Window size WxH", "WxH");
    QCommandLineOption dtypeOpt("dtype", "Hold weight matrices as auto (stored), f32 or bf16 (this run only)", "DTYPE");
    // For the start-up benchmark: quit as soon as the first run is on screen.
    QCommandLineOption quitOpt("quit-after-first-run", "Quit once the first run has been shown");
    for (const auto* o : {&modelOpt, &threadsOpt, &themeOpt, &shotOpt, &shotViewOpt, &shotDelayOpt, &featureOpt, &positionOpt, &presetOpt, &graphOpt, &patchOpt, &compareOpt, &sizeOpt, &dtypeOpt, &quitOpt}) parser.addOption(*o);
    parser.process(app);

    cs::setComputeThreads(parser.value(threadsOpt).toInt());
    applyTheme(themeFromName(parser.isSet(themeOpt) ? parser.value(themeOpt) : QSettings().value("theme", "light").toString()));

    SessionController session;
    MainWindow window(&session);
    if (parser.isSet(sizeOpt)) {
        const QStringList wh = parser.value(sizeOpt).split('x');
        if (wh.size() == 2) window.resize(wh[0].toInt(), wh[1].toInt());
    } else if (!QSettings().contains("geometry")) {
        window.resize(1280, 820);
    }
    if (parser.isSet(dtypeOpt)) {
        try {
            window.setWeightPrecision(cs::parseWeightPrecision(parser.value(dtypeOpt).toStdString()));
        } catch (const std::exception& e) {
            std::fprintf(stderr, "--dtype: %s\n", e.what());
            return 2;
        }
    }
    window.show();
    if (!sessionFile.isEmpty()) {
        const QString error = window.openSession(sessionFile);
        if (!error.isEmpty()) {
            std::fprintf(stderr, "%s\n", qPrintable(error));
            return 1;
        }
    } else {
        QString dir = parser.value(modelOpt);
        const std::string demo = cs::demoBundleDir();
        const QString demoModel = demo.empty() ? QString() : QString::fromStdString(demo + "/model");
        if (dir == "demo") dir = demoModel;
        if (dir.isEmpty()) dir = QSettings().value("lastModel").toString();
        if (dir.isEmpty()) dir = demoModel;
        if (!dir.isEmpty()) window.openModel(dir);
    }
    // Launch options that act on the first run's result, each once.
    auto afterFirstRun = [&session, &window](std::function<void()> fn) {
        auto once = std::make_shared<QMetaObject::Connection>();
        *once = QObject::connect(&session, &SessionController::runFinished, &window, [fn, once] {
            QObject::disconnect(*once);
            fn();
        });
    };
    if (parser.isSet(featureOpt) || parser.isSet(positionOpt)) {
        const QString feature = parser.value(featureOpt);
        const int position = parser.isSet(positionOpt) ? parser.value(positionOpt).toInt() : -1;
        afterFirstRun([&window, &session, feature, position] {
            if (position >= 0) session.selectPosition(position);
            const int colon = feature.lastIndexOf(':');
            if (colon > 0) {
                const QString sae = feature.left(colon);
                const long index = feature.mid(colon + 1).toLong();
                FeaturesView* fv = window.featuresView();
                for (int r = 0; r < static_cast<int>(fv->rows().size()); ++r)
                    if (!fv->rows()[r].header && fv->rows()[r].feature == index &&
                        QString::fromStdString(fv->drawnAnalysis()->features[fv->rows()[r].track].id) == sae)
                        fv->selectRow(r);
                window.openDashboard(sae, index);
            }
        });
    }
    if (parser.isSet(presetOpt)) {
        const QString preset = parser.value(presetOpt);
        afterFirstRun([&window, preset] {
            const QString error = window.steeringView()->loadPreset(preset);
            if (!error.isEmpty()) std::fprintf(stderr, "%s\n", qPrintable(error));
            window.steeringDock()->show();
            window.steeringDock()->raise();
        });
    }
    if (parser.isSet(graphOpt)) {
        const QString graph = parser.value(graphOpt);
        afterFirstRun([&window, graph] {
            const QString error = window.graphView()->openGraph(graph);
            if (!error.isEmpty()) std::fprintf(stderr, "%s\n", qPrintable(error));
            window.graphDock()->show();
            window.graphDock()->raise();
        });
    }
    if (parser.isSet(patchOpt)) {
        const QStringList parts = parser.value(patchOpt).split('|');
        afterFirstRun([&window, parts] {
            if (parts.size() == 4) window.patchingView()->setPrompts(parts[0], parts[1], parts[2], parts[3]);
            window.patchingDock()->show();
            window.patchingDock()->raise();
            window.patchingView()->runPatching();
        });
    }
    if (parser.isSet(compareOpt)) {
        const QString dir = parser.value(compareOpt);
        afterFirstRun([&window, dir] {
            window.diffView()->shadeCheck()->setChecked(true);
            window.compareWith(dir);
        });
    }
    if (parser.isSet(quitOpt)) {
        QObject::connect(&session, &SessionController::runFinished, &window, [&window] {
            window.repaint();
            QApplication::exit(0);
        });
        QObject::connect(&session, &SessionController::failed, &window, [] { QApplication::exit(1); });
    }
    if (parser.isSet(shotOpt)) {
        const QString file = parser.value(shotOpt), view = parser.value(shotViewOpt);
        auto shoot = [&window, file, view] {
            QWidget* w = &window;
            if (view == "tokens") w = window.tokenView()->parentWidget()->parentWidget();  // the scroll area
            else if (view == "attention") w = window.attentionView();
            else if (view == "logit-lens") w = window.logitLensView();
            else if (view == "features") w = window.featuresDock();
            else if (view == "dashboard") w = window.dashboardsDock();
            else if (view == "steering") w = window.steeringDock();
            else if (view == "graph") w = window.graphDock();
            else if (view == "patching") w = window.patchingDock();
            else if (view == "diff") w = window.diffDock();
            w->grab().save(file);
            QApplication::quit();
        };
        const int delay = parser.isSet(shotDelayOpt) ? parser.value(shotDelayOpt).toInt() : 500;
        QObject::connect(&session, &SessionController::runFinished, &window, [shoot, delay] { QTimer::singleShot(delay, shoot); });
        QObject::connect(&session, &SessionController::failed, &window, [shoot, delay] { QTimer::singleShot(delay, shoot); });
        QTimer::singleShot(30000 + delay, shoot);
    }
    return app.exec();
}

}  // namespace cs::ui
