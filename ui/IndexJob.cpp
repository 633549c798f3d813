#include "ui/IndexJob.h"

#include "model/ModelLoader.h"
#include "model/Transformer.h"
#include "runtime/DemoBundle.h"
#include "sae/SaeLoader.h"
#include "store/FeatureIndexer.h"
#include "tokenize/Tokenizer.h"

#include <QDir>
#include <QElapsedTimer>
#include <QFileInfo>
#include <QMetaObject>
#include <QPointer>

namespace cs::ui {

namespace {
constexpr qint64 kProgressIntervalMs = 200;
}

IndexJob::IndexJob(QObject* parent) : QObject(parent) {}

IndexJob::~IndexJob() {
    if (cancel_) *cancel_ = true;
    if (thread_.joinable()) thread_.join();
}

void IndexJob::cancel() {
    if (cancel_) *cancel_ = true;
}

bool IndexJob::start(const IndexRequest& r) {
    if (running_) return false;
    if (thread_.joinable()) thread_.join();  // the last one has reported; its thread is ending
    request_ = r;
    running_ = true;
    cancel_ = std::make_shared<std::atomic<bool>>(false);
    auto cancel = cancel_;
    QPointer<IndexJob> self(this);
    thread_ = std::thread([this, r, cancel, self] {
        QString error;
        IndexResult result;
        try {
            const std::string dir = cs::resolveModelDir(r.modelDir.toStdString());
            std::shared_ptr<Transformer> model = cs::loadModel(dir);
            std::shared_ptr<Tokenizer> tok = cs::loadTokenizer(dir);
            std::vector<IndexSae> saes;
            for (int i = 0; i < r.saePaths.size(); ++i)
                saes.push_back({r.saeIds.value(i).toStdString(), r.saePaths[i].toStdString(), cs::loadSae(r.saePaths[i].toStdString())});
            IndexOptions o;
            o.modelDir = r.modelDir.toStdString();
            o.corpusPath = r.corpusPath.toStdString();
            o.generateDocuments = r.generateDocuments;
            o.maxTokens = r.maxTokens;
            QElapsedTimer timer;
            timer.start();
            qint64 last = -kProgressIntervalMs;
            auto onProgress = [&](const IndexProgress& p) {
                if (timer.elapsed() - last < kProgressIntervalMs && p.phase != "done") return;
                last = timer.elapsed();
                const QString phase = QString::fromStdString(p.phase);
                const qint64 done = p.done, total = p.total;
                QMetaObject::invokeMethod(this, [this, self, phase, done, total] {
                    if (self) Q_EMIT progress(phase, done, total);
                });
            };
            QDir().mkpath(QFileInfo(r.dbPath).path());
            result = indexFeatures(r.dbPath.toStdString(), *model, tok.get(), saes, o, onProgress, cancel.get());
        } catch (const std::exception& e) {
            error = QString::fromUtf8(e.what()).section('\n', 0, 0);
        }
        const bool cancelled = result.cancelled;
        const bool resumed = result.resumed;
        QMetaObject::invokeMethod(this, [this, self, r, error, cancelled, resumed] {
            if (!self) return;
            running_ = false;
            Q_EMIT finished(r.dbPath, error, cancelled, resumed);
        });
    });
    return true;
}

}  // namespace cs::ui
