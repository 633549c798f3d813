#include "ui/SessionController.h"

#include "diff/ModelDiff.h"
#include "model/Generation.h"
#include "model/ModelLoader.h"
#include "model/Transformer.h"
#include "runtime/DemoBundle.h"
#include "sae/SaeLoader.h"
#include "steer/Steering.h"
#include "store/FeatureStore.h"
#include "tokenize/ContinuationText.h"
#include "tokenize/TokenIdPrompt.h"
#include "tokenize/Tokenizer.h"

#include <QDir>
#include <QElapsedTimer>
#include <QFileInfo>
#include <QMetaObject>
#include <QPointer>
#include <QThreadPool>

#include <algorithm>

namespace cs::ui {

namespace {
constexpr qint64 kProgressIntervalMs = 100;
QString firstLine(const std::exception& e) { return QString::fromUtf8(e.what()).section('\n', 0, 0); }

// What a folder of SAEs is called in views and stores: its folder name (a file's parent folder
// for params.npz and the like), as `index` names it.
std::string saeId(const QString& path) {
    QFileInfo fi(path);
    if (fi.isFile()) fi = QFileInfo(fi.path());
    return fi.fileName().toStdString();
}

bool sameDir(const QString& a, const QString& b) {
    const QString ca = QFileInfo(a).canonicalFilePath(), cb = QFileInfo(b).canonicalFilePath();
    return !ca.isEmpty() && ca == cb;
}

// Loads every path (throws on the first failure, naming it) and returns them with `keep`, in the
// order the model's forward pass reaches their input hooks (layer order when there is no model;
// stable: SAEs on one hook keep their order), ids made unique.
void loadSaes(const QStringList& paths, std::vector<AnalysisSae>& saes, QStringList& saePaths, const Transformer* model) {
    for (const QString& p : paths) {
        AnalysisSae s;
        s.id = saeId(p);
        s.sae = cs::loadSae(p.toStdString());
        saes.push_back(std::move(s));
        saePaths.push_back(p);
    }
    std::vector<size_t> order(saes.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = i;
    auto rank = [&](size_t i) {
        const std::string& hook = saes[i].sae->config().hookName;
        if (model) {
            const auto& points = model->hookPoints();
            for (size_t k = 0; k < points.size(); ++k)
                if (points[k].name == hook) return static_cast<long>(k);
        }
        return static_cast<long>(layerOfHook(hook)) * 1000;
    };
    std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return rank(a) < rank(b); });
    std::vector<AnalysisSae> sorted;
    QStringList sortedPaths;
    for (size_t i : order) {
        AnalysisSae s = saes[i];
        const std::string base = s.id;
        for (int n = 2; std::any_of(sorted.begin(), sorted.end(), [&](const AnalysisSae& o) { return o.id == s.id; }); ++n)
            s.id = base + "-" + std::to_string(n);
        sorted.push_back(std::move(s));
        sortedPaths.push_back(saePaths[static_cast<int>(i)]);
    }
    saes = std::move(sorted);
    saePaths = std::move(sortedPaths);
}
}  // namespace

SessionController::SessionController(QObject* parent)
    : QObject(parent), ticket_(std::make_shared<std::atomic<int>>(0)), steerTicket_(std::make_shared<std::atomic<int>>(0)) {
    // One model thread for the session's life, not the global pool's: that pool hands successive
    // jobs to whichever thread has waited longest (runs alternated between two) and ends threads
    // idle for 30 s, and each new thread starts a fresh OpenMP team and malloc arena. Jobs run in
    // order; a superseded one gives way at its next check (every generated token).
    worker_.setMaxThreadCount(1);
    worker_.setExpiryTimeout(-1);
    qRegisterMetaType<cs::ui::RunResult>("cs::ui::RunResult");
    qRegisterMetaType<cs::ui::Selection>("cs::ui::Selection");
    qRegisterMetaType<cs::ui::SteerOutcome>("cs::ui::SteerOutcome");
}

SessionController::~SessionController() {
    ++*ticket_;
    ++*steerTicket_;
    worker_.waitForDone();
}

QString SessionController::modelName() const {
    QString name = QFileInfo(modelDir_).fileName();
    // The embedded demo lives in .../demo/model: "model" alone says nothing.
    if (name == "model") name = QFileInfo(QFileInfo(modelDir_).path()).fileName() + "/" + name;
    return name;
}

long SessionController::parameterCount() const { return model_ ? model_->config().parameterCount : 0; }
int SessionController::layers() const { return model_ ? model_->config().nLayers : 0; }
int SessionController::heads() const { return model_ ? model_->config().nHeads : 0; }

QString SessionController::modelSummary() const {
    if (!model_) return tr("no model");
    const auto& c = model_->config();
    // Weights' dtype and bytes: what decides whether a bigger model fits, and how fast it decodes.
    const double mb = c.weightBytes / 1e6;
    const QString memory = mb >= 1000 ? QStringLiteral("%1 GB").arg(mb / 1000, 0, 'f', 2)
                                      : QStringLiteral("%1 MB").arg(mb, 0, 'f', mb < 10 ? 1 : 0);
    return QStringLiteral("%1 (%2, %3 layers, %4 heads, %5M params, %6, %7)")
        .arg(modelName(), QString::fromStdString(c.modelType))
        .arg(c.nLayers)
        .arg(c.nHeads)
        .arg(c.parameterCount / 1e6, 0, 'f', 2)
        .arg(QString::fromStdString(c.weightDtype), memory);
}

void SessionController::setBusy(bool busy) {
    if (busy_ == busy) return;
    busy_ = busy;
    Q_EMIT busyChanged(busy);
}

void SessionController::cancel() {
    ++*ticket_;
    setBusy(false);
    restoreComplete();
}

void SessionController::restoreComplete() {
    if (!midRun_) return;
    midRun_ = false;
    shown_ = result_.analysis;
    shownRun_ = result_.run;
    Selection s = selection_;
    s.position = positionBeforeRun_;
    selection_ = clamped(s);
    Q_EMIT shownAnalysisChanged();
}

void SessionController::showStage(std::shared_ptr<const PromptAnalysis> stage, int run) {
    const bool first = !midRun_;  // the views still show a complete run
    if (first) positionBeforeRun_ = selection_.position;
    shown_ = std::move(stage);
    shownRun_ = run;
    midRun_ = shown_->stage != AnalysisStage::Complete;
    // The layer and head carry over; the position stays if it still exists, else the last token
    // (a restored session's selection instead, on its run's first stage). Set before the signal,
    // which every view handles by rebuilding from the analysis and the selection together.
    Selection next = selection_;
    if (hasPending_) {  // set just before this run started: stale runs never get here
        next = pendingSelection_;
        hasPending_ = false;
    } else if (first && run == newPromptRun_) {
        // A new prompt: the old index points at an unrelated token; the last prompt token is
        // where the prediction being looked at is made.
        next.position = std::max(0, shown_->promptLength - 1);
    } else if (next.position >= shown_->length()) {
        next.position = -1;
    }
    selection_ = clamped(next);
    Q_EMIT shownAnalysisChanged();
}

Selection SessionController::clamped(Selection s) const {
    const int T = shown_ ? shown_->length() : 0;
    s.position = T == 0 ? -1 : std::clamp(s.position < 0 ? T - 1 : s.position, 0, T - 1);
    s.layer = std::clamp(s.layer, 0, std::max(0, layers() - 1));
    s.head = std::clamp(s.head, 0, std::max(0, heads() - 1));
    if (!model_ || s.lensToken < 0 || s.lensToken >= model_->config().vocabSize) s.lensToken = -1;
    return s;
}

void SessionController::applySelection(const Selection& want) {
    const Selection s = clamped(want);
    if (s == selection_) return;
    selection_ = s;
    Q_EMIT selectionChanged(selection_);
}

void SessionController::select(int position, int layer, int head) {
    Selection want = selection_;
    want.position = position;
    want.layer = layer;
    want.head = head;
    applySelection(want);
}

void SessionController::selectLensToken(int tokenId) {
    Selection want = selection_;
    want.lensToken = tokenId;
    applySelection(want);
}

bool SessionController::takesOnlyTokenIds() const {
    return dynamic_cast<const cs::TokenIdTokenizer*>(tokenizer_.get()) != nullptr;
}

int SessionController::tokenIdFor(const QString& text, QString* error) const {
    auto fail = [&](const QString& why) {
        if (error) *error = why;
        return -1;
    };
    if (!model_ || !tokenizer_) return fail(tr("no model with a tokenizer is loaded"));
    const int vocab = model_->config().vocabSize;
    if (text.isEmpty()) return fail(tr("no token given"));
    if (text.startsWith('#') && text.size() > 1) {
        bool ok = false;
        const int id = text.mid(1).toInt(&ok);
        if (!ok || id < 0 || id >= vocab) return fail(tr("%1: not a token id of this model (0 to %2)").arg(text).arg(vocab - 1));
        return id;
    }
    const std::string utf8 = text.toStdString();
    std::vector<int> ids;
    try {  // a model without a tokenizer takes only ids
        ids = tokenizer_->encode(utf8);
    } catch (const std::exception& e) {
        return fail(QString::fromUtf8(e.what()));
    }
    if (ids.size() == 1 && ids[0] >= 0 && ids[0] < vocab) return ids[0];
    const int piece = tokenizer_->idOf(utf8);
    if (piece >= 0 && piece < vocab) return piece;
    return fail(tr("'%1' is %2 tokens here; type one token, a vocabulary piece, or #id").arg(text).arg(ids.size()));
}

QString SessionController::tokenText(int tokenId) const {
    if (!tokenizer_ || tokenId < 0 || tokenId >= tokenizer_->vocabSize()) return {};
    return QString::fromStdString(tokenizer_->tokenText(tokenId));
}

std::vector<std::vector<float>> SessionController::lensProbabilities(const PromptAnalysis& a, int tokenId) const {
    if (!model_ || !a.hasLens()) return {};
    try {
        return cs::lensProbabilities(*model_, a, tokenId);
    } catch (const std::exception&) {
        return {};  // an id outside the vocabulary: nothing to show
    }
}

bool SessionController::isDemoModel() const {
    const std::string demo = cs::demoBundleDir();
    return model_ && !demo.empty() && sameDir(modelDir_, QString::fromStdString(demo + "/model"));
}

void SessionController::attachSaes(const QStringList& paths, bool replace) {
    auto keep = replace ? std::vector<AnalysisSae>() : saes_;
    QStringList keepPaths = replace ? QStringList() : saePaths_;
    auto model = model_;
    worker_.start([this, paths, keep, keepPaths, model]() mutable {
        QString error;
        try {
            loadSaes(paths, keep, keepPaths, model.get());
            for (const AnalysisSae& s : keep) {
                const std::string& hook = s.sae->config().hookName;
                if (model && std::none_of(model->hookPoints().begin(), model->hookPoints().end(),
                                          [&](const HookPointInfo& h) { return h.name == hook; }))
                    throw std::runtime_error(s.id + ": the model has no hook " + hook);
            }
        } catch (const std::exception& e) {
            error = firstLine(e);
        }
        QMetaObject::invokeMethod(this, [this, keep, keepPaths, error] {
            if (!error.isEmpty()) {
                Q_EMIT failed(error);
                return;
            }
            saes_ = keep;
            saePaths_ = keepPaths;
            Q_EMIT saesChanged();
        });
    });
}

void SessionController::detachSaes() {
    saes_.clear();
    saePaths_.clear();
    Q_EMIT saesChanged();
}

void SessionController::runOnWorker(QObject* context, WorkerJob job) {
    auto model = model_;
    auto tok = tokenizer_;
    if (!model || !tok) {
        Q_EMIT failed(tr("Open a model with a tokenizer first (File > Open Model)."));
        return;
    }
    QPointer<QObject> ctx(context);
    worker_.start([this, model, tok, job, ctx] {
        std::function<void()> done;
        QString error;
        try {
            done = job(*model, *tok);
        } catch (const std::exception& e) {
            error = firstLine(e);
        }
        QMetaObject::invokeMethod(this, [this, done, error, ctx] {
            if (!error.isEmpty()) Q_EMIT failed(error);
            else if (ctx && done) done();
        });
    });
}

QString SessionController::openStore(const QString& path) {
    std::shared_ptr<FeatureStore> store;
    try {
        store = std::make_shared<FeatureStore>(path.toStdString(), FeatureStore::Mode::ReadWrite);
    } catch (const std::exception& first) {
        try {  // a store on read-only media: browse it, labels cannot be saved
            store = std::make_shared<FeatureStore>(path.toStdString(), FeatureStore::Mode::ReadOnly);
        } catch (const std::exception&) {
            return firstLine(first);
        }
    }
    store_ = std::move(store);
    storePath_ = path;
    Q_EMIT storeChanged();
    return {};
}

void SessionController::closeStore() {
    if (!store_) return;
    store_.reset();
    storePath_.clear();
    Q_EMIT storeChanged();
}

QString SessionController::featureLabel(const std::string& saeId, long index, bool* isAuto) const {
    if (isAuto) *isAuto = true;
    if (!store_) return {};
    try {
        return QString::fromStdString(store_->label(saeId, index, isAuto));
    } catch (const std::exception&) {
        return {};  // an SAE this store has not indexed
    }
}

QString SessionController::setFeatureLabel(const std::string& saeId, long index, const QString& label,
                                           const QString& notes) {
    if (!store_) return tr("no feature store is open");
    try {
        store_->setLabel(saeId, index, label.trimmed().toStdString(), notes.toStdString());
    } catch (const std::exception& e) {
        return firstLine(e);
    }
    Q_EMIT labelChanged(QString::fromStdString(saeId), index);
    return {};
}

void SessionController::loadModel(const QString& dir) {
    const int ticket = ++*ticket_;
    auto counter = ticket_;
    ++*steerTicket_;  // continuations of the old model's prompt mean nothing now
    setBusy(true);
    const bool withDemoSaes = attachDemoSaes_;
    cs::ModelLoadOptions loadOptions;
    loadOptions.precision = precision_;
    worker_.start([this, dir, ticket, counter, withDemoSaes, loadOptions] {
        std::shared_ptr<Transformer> model;
        std::shared_ptr<Tokenizer> tok;
        std::vector<AnalysisSae> saes;
        QStringList saePaths;
        QString error;
        try {
            model = cs::loadModel(dir.toStdString(), loadOptions);
            QDir d(dir);
            if (d.exists("tokenizer.json") || d.exists("vocab.json") || d.exists("tokenizer.model"))
                tok = cs::loadTokenizer(dir.toStdString());
            else  // a bare checkpoint still runs, on prompts written as token ids
                tok = std::make_shared<cs::TokenIdTokenizer>(static_cast<int>(model->config().vocabSize));
            const std::string demo = cs::demoBundleDir();
            if (withDemoSaes && !demo.empty() && sameDir(dir, QString::fromStdString(demo + "/model"))) {
                QStringList paths;
                for (const std::string& p : cs::demoSaeDirs()) paths << QString::fromStdString(p);
                loadSaes(paths, saes, saePaths, model.get());
            }
        } catch (const std::exception& e) {
            error = firstLine(e);
        }
        QMetaObject::invokeMethod(this, [this, model, tok, saes, saePaths, error, dir, ticket, counter] {
            if (*counter != ticket) return;
            setBusy(false);
            if (!error.isEmpty()) {
                Q_EMIT modelLoadFailed(dir);
                Q_EMIT failed(error);
                return;
            }
            model_ = model;
            tokenizer_ = tok;
            modelDir_ = dir;
            saes_ = saes;
            saePaths_ = saePaths;
            modelTicket_ = ticket;
            steerBaseline_.reset();
            result_ = RunResult();  // an analysis of another model's tokens means nothing here
            shown_.reset();
            shownRun_ = ticket;
            lastAnalysisSeconds_ = -1;
            midRun_ = false;
            selection_ = Selection();
            if (compareModel_) {
                try {  // a reload in another precision keeps the comparison; another shape drops it
                    cs::checkSameArchitecture(*model_, *compareModel_);
                } catch (const std::exception&) {
                    compareModel_.reset();
                    compareModelDir_.clear();
                    Q_EMIT compareModelChanged();
                }
            }
            Q_EMIT modelLoaded(modelSummary());
        });
    });
}

void SessionController::loadCompareModel(const QString& dir) {
    auto base = model_;
    if (!base) {
        Q_EMIT failed(tr("Open a model first, then the model to compare it with."));
        return;
    }
    cs::ModelLoadOptions loadOptions;
    loadOptions.precision = precision_;
    worker_.start([this, dir, base, loadOptions] {
        std::shared_ptr<const Transformer> model;
        QString error;
        try {
            model = cs::loadModel(cs::resolveModelDir(dir.toStdString()), loadOptions);
            cs::checkSameArchitecture(*base, *model);
        } catch (const std::exception& e) {
            error = tr("%1: %2").arg(dir, firstLine(e));
        }
        QMetaObject::invokeMethod(this, [this, model, dir, error, base] {
            if (!error.isEmpty()) {
                Q_EMIT failed(error);
                return;
            }
            if (base != model_) return;  // another model was opened meanwhile
            compareModel_ = model;
            compareModelDir_ = dir;
            Q_EMIT compareModelChanged();
        });
    });
}

void SessionController::clearCompareModel() {
    if (!compareModel_) return;
    compareModel_.reset();
    compareModelDir_.clear();
    Q_EMIT compareModelChanged();
}

void SessionController::run(const RunSettings& settings) {
    if (!model_) {
        Q_EMIT failed(tr("Open a model first (File > Open Model)."));
        return;
    }
    const int ticket = ++*ticket_;
    auto counter = ticket_;
    auto model = model_;
    auto tok = tokenizer_;
    AnalysisOptions options = analysisOptions_;
    options.saes = saes_;
    options.steering = nullptr;
    std::optional<SteeringPlan> steerPlan;
    if (runSteering_ && runSteering_->active()) steerPlan = runSteering_;
    const bool staged = lastAnalysisSeconds_ < 0 || lastAnalysisSeconds_ > stagesAbove_;
    if (!result_.analysis || settings.prompt != result_.settings.prompt) newPromptRun_ = ticket;
    setBusy(true);
    worker_.start([this, model, tok, settings, ticket, counter, staged, options, steerPlan]() mutable {
        RunResult r;
        r.settings = settings;
        QString error;
        try {
            // "#1 #403 ..." is an exact sequence of ids, for any model (and the only way to
            // prompt one without a tokenizer); anything else is text.
            std::vector<int> ids = cs::promptTokenIds(*tok, settings.prompt.toStdString(),
                                                      static_cast<int>(model->config().vocabSize));
            if (ids.empty()) throw std::runtime_error("empty prompt");
            // Generation stops at the context; the analysis covers prompt and continuation.
            const SamplingOptions s = samplingFor(settings, static_cast<long>(ids.size()), model->config().nCtx);
            if (s.maxNewTokens < settings.maxNewTokens) r.contextStop = static_cast<int>(model->config().nCtx);
            // A steered run: generated and analysed with the same hooks (a bad row fails the run).
            std::unique_ptr<Steering> steering;
            if (steerPlan) steering = std::make_unique<Steering>(*model, steeringSaes(options.saes), *steerPlan);
            options.steering = steering.get();
            r.steered = steering != nullptr;
            QElapsedTimer timer;
            timer.start();
            std::vector<long> out;
            if (s.maxNewTokens > 0) {
                int done = 0;
                qint64 lastReport = 0;
                const std::vector<long> prompt(ids.begin(), ids.end());
                auto onToken = [&](long) {
                    if (*counter != ticket) return false;
                    ++done;
                    // Progress at most every 100 ms: a report per token would keep the GUI thread
                    // repainting the progress bar, on the cores the model is running on.
                    if (timer.elapsed() - lastReport >= kProgressIntervalMs) {
                        lastReport = timer.elapsed();
                        QMetaObject::invokeMethod(this, [this, done, s, ticket, counter] {
                            if (*counter == ticket) Q_EMIT progress(done, s.maxNewTokens);
                        });
                    }
                    return true;
                };
                out = steering ? generateSteered(*model, prompt, s, *steering, onToken)
                               : cs::generate(*model, prompt, s, nullptr, onToken);
            }
            if (*counter != ticket) return;  // cancelled while generating: drop quietly
            r.generateSeconds = timer.nsecsElapsed() / 1e9;
            std::vector<int> all = ids;
            for (long id : out) all.push_back(static_cast<int>(id));
            r.continuation = QString::fromStdString(cs::continuationText(*tok, ids, std::vector<int>(all.begin() + ids.size(), all.end())));
            AnalysisStageCallback onStage;
            if (staged)
                onStage = [this, ticket, counter](std::shared_ptr<const PromptAnalysis> stage) {
                    // The last comes with the result.
                    if (stage->stage == AnalysisStage::Complete || *counter != ticket) return;
                    QMetaObject::invokeMethod(this, [this, stage, ticket, counter] {
                        if (*counter == ticket) showStage(stage, ticket);
                    });
                };
            r.analysis = analyzeTokensInStages(model, tok, all, static_cast<int>(ids.size()), onStage, options);
            r.analysisSeconds = r.analysis->totalSeconds;
        } catch (const std::exception& e) {
            error = firstLine(e);
        }
        QMetaObject::invokeMethod(this, [this, r, error, ticket, counter] {
            if (*counter != ticket) return;  // superseded or cancelled
            setBusy(false);
            if (!error.isEmpty()) {
                restoreComplete();
                Q_EMIT failed(error);
                return;
            }
            result_ = r;
            result_.run = ticket;
            lastAnalysisSeconds_ = r.analysisSeconds;
            showStage(r.analysis, ticket);
            Q_EMIT runFinished(result_);
        });
    });
}

int SessionController::steer(const SteerRequest& request) {
    const int ticket = ++*steerTicket_;
    ++steersStarted_;
    auto counter = steerTicket_;
    auto model = model_;
    auto tok = tokenizer_;
    std::optional<SteeredText> baseline;
    if (steerBaseline_ && steerBaseline_->model == modelTicket_ && steerBaseline_->settings == request.settings)
        baseline = steerBaseline_->text;
    const int modelTicket = modelTicket_;
    auto report = [this, request, ticket, counter, modelTicket](std::optional<SteerOutcome> out, QString error) {
        if (*counter != ticket) {
            ++steersSuperseded_;
            return;
        }
        SteerOutcome o;
        if (out && error.isEmpty()) o = std::move(*out);
        o.ticket = ticket;
        o.settings = request.settings;
        o.columns = request.columns;
        if (!error.isEmpty()) o.error = error;
        if (o.error.isEmpty() && modelTicket == modelTicket_)
            steerBaseline_ = CachedBaseline{request.settings, modelTicket, o.baseline};
        Q_EMIT steerFinished(o);
    };
    if (!model || !tok) {
        // Reported like a result (after the caller has marked its columns busy), not as a failure
        // dialog: a slider moved before a model is open is no reason for a message box.
        QMetaObject::invokeMethod(this, [report] { report(std::nullopt, tr("Open a model with a tokenizer first.")); },
                                  Qt::QueuedConnection);
        return ticket;
    }
    const std::vector<AnalysisSae> saes = saes_;
    worker_.start([this, model, tok, saes, request, baseline, ticket, counter, report] {
        std::optional<SteerOutcome> out;
        QString error;
        try {
            out = computeSteering(*model, *tok, saes, request, baseline ? &*baseline : nullptr,
                                  [&] { return *counter == ticket; });
        } catch (const std::exception& e) {
            error = firstLine(e);
        }
        QMetaObject::invokeMethod(this, [report, out, error] { report(out, error); });
    });
    return ticket;
}

}  // namespace cs::ui
