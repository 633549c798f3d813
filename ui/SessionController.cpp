#include "ui/SessionController.h"

#include "model/Generation.h"
#include "model/ModelLoader.h"
#include "tokenize/Tokenizer.h"

#include <ATen/ATen.h>

#include <QDir>
#include <QElapsedTimer>
#include <QFileInfo>
#include <QMetaObject>
#include <QThreadPool>

namespace cs::ui {

SessionController::SessionController(QObject* parent)
    : QObject(parent), generation_(std::make_shared<std::atomic<int>>(0)) {
    qRegisterMetaType<cs::ui::GenerationResult>("cs::ui::GenerationResult");
}

SessionController::~SessionController() {
    ++*generation_;
    QThreadPool::globalInstance()->waitForDone();
}

QString SessionController::modelSummary() const {
    if (!model_) return tr("no model");
    const auto& c = model_->config();
    return QStringLiteral("%1 (%2, %3 layers, %4M params)")
        .arg(QFileInfo(modelDir_).fileName(), QString::fromStdString(c.modelType))
        .arg(c.nLayers)
        .arg(c.parameterCount / 1e6, 0, 'f', 2);
}

void SessionController::cancel() { ++*generation_; Q_EMIT busyChanged(false); }

void SessionController::loadModel(const QString& dir) {
    const int ticket = ++*generation_;
    auto counter = generation_;
    Q_EMIT busyChanged(true);
    QThreadPool::globalInstance()->start([this, dir, ticket, counter] {
        std::shared_ptr<Transformer> model;
        std::shared_ptr<Tokenizer> tok;
        QString error;
        try {
            model = cs::loadModel(dir.toStdString());
            QDir d(dir);
            if (d.exists("tokenizer.json") || d.exists("vocab.json") || d.exists("tokenizer.model"))
                tok = cs::loadTokenizer(dir.toStdString());
        } catch (const std::exception& e) {
            error = QString::fromUtf8(e.what()).section('\n', 0, 0);
        }
        QMetaObject::invokeMethod(this, [this, model, tok, error, dir, ticket, counter] {
            if (*counter != ticket) return;
            Q_EMIT busyChanged(false);
            if (!error.isEmpty()) {
                Q_EMIT failed(error);
                return;
            }
            model_ = model;
            tokenizer_ = tok;
            modelDir_ = dir;
            Q_EMIT modelLoaded(modelSummary());
        });
    });
}

void SessionController::generate(const QString& prompt, int maxNew, bool greedy, double temperature,
                                 quint64 seed) {
    if (!model_) {
        Q_EMIT failed(tr("Open a model first (File > Open Model)."));
        return;
    }
    const int ticket = ++*generation_;
    auto counter = generation_;
    auto model = model_;
    auto tok = tokenizer_;
    Q_EMIT busyChanged(true);
    QThreadPool::globalInstance()->start([this, model, tok, prompt, maxNew, greedy, temperature, seed, ticket,
                                          counter] {
        GenerationResult r;
        QString error;
        QElapsedTimer timer;
        timer.start();
        try {
            if (!tok) throw std::runtime_error("this model directory has no tokenizer");
            std::vector<int> ids = tok->encodePrompt(prompt.toStdString());
            if (ids.empty()) throw std::runtime_error("empty prompt");
            std::vector<long> prompt64(ids.begin(), ids.end());
            SamplingOptions s;
            s.maxNewTokens = maxNew;
            s.greedy = greedy;
            s.temperature = temperature;
            s.seed = seed;
            std::vector<long> out = cs::generate(*model, prompt64, s, nullptr,
                                                 [&](long) { return *counter == ticket; });
            for (int id : ids) r.promptTokens << QString::fromStdString(tok->tokenText(id));
            std::vector<int> out32(out.begin(), out.end());
            for (int id : out32) r.newTokens << QString::fromStdString(tok->tokenText(id));
            r.text = QString::fromStdString(tok->decode(out32));
        } catch (const std::exception& e) {
            error = QString::fromUtf8(e.what()).section('\n', 0, 0);
        }
        r.seconds = timer.elapsed() / 1000.0;
        QMetaObject::invokeMethod(this, [this, r, error, ticket, counter] {
            if (*counter != ticket) return;  // superseded or cancelled
            Q_EMIT busyChanged(false);
            if (!error.isEmpty()) Q_EMIT failed(error);
            else Q_EMIT generated(r);
        });
    });
}

}  // namespace cs::ui
