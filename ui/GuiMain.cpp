#include "ui/GuiMain.h"

#include "runtime/DemoBundle.h"
#include "runtime/Threads.h"
#include "ui/GuiOptions.h"
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
    for (const GuiOption& o : guiOptions()) {
        if (o.value) parser.addOption(QCommandLineOption(o.name, o.help, o.value));
        else parser.addOption(QCommandLineOption(o.name, o.help));
    }
    parser.process(app);

    cs::setComputeThreads(parser.value(QStringLiteral("threads")).toInt());
    applyTheme(themeFromName(parser.isSet(QStringLiteral("theme")) ? parser.value(QStringLiteral("theme")) : QSettings().value("theme", "light").toString()));

    SessionController session;
    MainWindow window(&session);
    if (parser.isSet(QStringLiteral("size"))) {
        const QStringList wh = parser.value(QStringLiteral("size")).split('x');
        if (wh.size() == 2) window.resize(wh[0].toInt(), wh[1].toInt());
    } else if (!QSettings().contains("geometry")) {
        window.resize(1280, 820);
    }
    if (parser.isSet(QStringLiteral("dtype"))) {
        try {
            window.setWeightPrecision(cs::parseWeightPrecision(parser.value(QStringLiteral("dtype")).toStdString()));
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
        QString dir = parser.value(QStringLiteral("model"));
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
    if (parser.isSet(QStringLiteral("open-feature")) || parser.isSet(QStringLiteral("position"))) {
        const QString feature = parser.value(QStringLiteral("open-feature"));
        const int position = parser.isSet(QStringLiteral("position")) ? parser.value(QStringLiteral("position")).toInt() : -1;
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
    if (parser.isSet(QStringLiteral("steer-preset"))) {
        const QString preset = parser.value(QStringLiteral("steer-preset"));
        afterFirstRun([&window, preset] {
            const QString error = window.steeringView()->loadPreset(preset);
            if (!error.isEmpty()) std::fprintf(stderr, "%s\n", qPrintable(error));
            window.steeringDock()->show();
            window.steeringDock()->raise();
        });
    }
    if (parser.isSet(QStringLiteral("open-graph"))) {
        const QString graph = parser.value(QStringLiteral("open-graph"));
        afterFirstRun([&window, graph] {
            const QString error = window.graphView()->openGraph(graph);
            if (!error.isEmpty()) std::fprintf(stderr, "%s\n", qPrintable(error));
            window.graphDock()->show();
            window.graphDock()->raise();
        });
    }
    if (parser.isSet(QStringLiteral("patch"))) {
        const QStringList parts = parser.value(QStringLiteral("patch")).split('|');
        afterFirstRun([&window, parts] {
            if (parts.size() == 4) window.patchingView()->setPrompts(parts[0], parts[1], parts[2], parts[3]);
            window.patchingDock()->show();
            window.patchingDock()->raise();
            window.patchingView()->runPatching();
        });
    }
    if (parser.isSet(QStringLiteral("compare"))) {
        const QString dir = parser.value(QStringLiteral("compare"));
        afterFirstRun([&window, dir] {
            window.diffView()->shadeCheck()->setChecked(true);
            window.compareWith(dir);
        });
    }
    if (parser.isSet(QStringLiteral("quit-after-first-run"))) {
        QObject::connect(&session, &SessionController::runFinished, &window, [&window] {
            window.repaint();
            QApplication::exit(0);
        });
        QObject::connect(&session, &SessionController::failed, &window, [] { QApplication::exit(1); });
    }
    if (parser.isSet(QStringLiteral("screenshot"))) {
        const QString file = parser.value(QStringLiteral("screenshot")), view = parser.value(QStringLiteral("screenshot-view"));
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
        const int delay = parser.isSet(QStringLiteral("screenshot-delay")) ? parser.value(QStringLiteral("screenshot-delay")).toInt() : 500;
        QObject::connect(&session, &SessionController::runFinished, &window, [shoot, delay] { QTimer::singleShot(delay, shoot); });
        QObject::connect(&session, &SessionController::failed, &window, [shoot, delay] { QTimer::singleShot(delay, shoot); });
        QTimer::singleShot(30000 + delay, shoot);
    }
    return app.exec();
}

}  // namespace cs::ui
