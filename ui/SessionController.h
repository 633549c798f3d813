#pragma once
// The session every view observes, and the thin async layer between views and core/: it owns the
// loaded model, runs loads and prompt runs on a worker thread, holds the latest analysis and the
// selection (position, layer, head) that all views share, and reports with signals on the GUI
// thread. A newer request supersedes an older one. A run's analysis arrives in stages (tokens,
// then attention, then the logit lens; analyzeTokensInStages) and each is shown as it comes; a
// cancelled or failed run puts the last complete analysis back.
#include "analysis/PromptAnalysis.h"
#include "model/WeightPrecision.h"
#include "ui/RunSettings.h"
#include "ui/SteeringJob.h"

#include <QMetaType>
#include <QObject>
#include <QString>
#include <QStringList>
#include <QThreadPool>

#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace cs {
class Transformer;
class Tokenizer;
class FeatureStore;
}

namespace cs::ui {

struct RunResult {
    std::shared_ptr<const PromptAnalysis> analysis;
    RunSettings settings;
    QString continuation;      // the generated text
    double generateSeconds = 0;
    double analysisSeconds = 0;
    bool steered = false;  // generated and analysed under runSteering()
    int contextStop = 0;   // the model's context length when it cut the continuation short, else 0
    int run = 0;  // SessionController::shownRun() while this result is shown
};

struct Selection {
    int position = -1;  // token index, -1 before any run
    int layer = 0;
    int head = 0;
    int lensToken = -1;  // token id the logit lens tracks; -1: the actual next token

    bool operator==(const Selection& o) const {
        return position == o.position && layer == o.layer && head == o.head && lensToken == o.lensToken;
    }
    bool operator!=(const Selection& o) const { return !(*this == o); }
};

class SessionController : public QObject {
    Q_OBJECT
public:
    explicit SessionController(QObject* parent = nullptr);
    ~SessionController() override;

    void loadModel(const QString& dir);
    void run(const RunSettings& settings);
    void cancel();

    // SAEs and transcoders whose features every run reads from its one forward pass (in layer
    // order). Loading the demo model attaches the demo's own SAEs in the same worker job (unless
    // switched off); other models start with none. attachSaes loads on the worker, then emits
    // saesChanged (or failed, attaching nothing); the next run carries them.
    void setAttachDemoSaes(bool on) { attachDemoSaes_ = on; }
    // How the next loadModel holds weight matrices (auto: as stored; bf16 halves an fp32 file).
    void setWeightPrecision(cs::WeightPrecision p) { precision_ = p; }
    cs::WeightPrecision weightPrecision() const { return precision_; }
    // A second checkpoint of the same architecture to compare the loaded one with (the Diff dock):
    // loaded on the worker with the session's weight precision, checked against the loaded
    // model's shape; emits compareModelChanged, or failed (keeping the previous one).
    void loadCompareModel(const QString& dir);
    void clearCompareModel();
    std::shared_ptr<const Transformer> compareModel() const { return compareModel_; }
    QString compareModelDir() const { return compareModelDir_; }
    void attachSaes(const QStringList& paths, bool replace = false);
    void detachSaes();
    const std::vector<AnalysisSae>& saes() const { return saes_; }
    QStringList saePaths() const { return saePaths_; }
    bool isDemoModel() const;
    // The model's directory has no tokenizer: prompts are token ids ("#1 #403").
    bool takesOnlyTokenIds() const;
    // The loaded model and tokenizer, for views that compute from weights (logit effects).
    std::shared_ptr<const Transformer> model() const { return model_; }
    std::shared_ptr<const Tokenizer> tokenizer() const { return tokenizer_; }
    // Runs `job` on the model thread after any queued run; the function it returns runs on the
    // GUI thread while `context` lives. A job that throws reports through failed(), as runs do.
    using WorkerJob = std::function<std::function<void()>(const Transformer&, const Tokenizer&)>;
    void runOnWorker(QObject* context, WorkerJob job);

    // Steered continuations of a prompt (the Steering dock's columns), on the model thread after
    // any queued job. A newer request supersedes an older one: the older stops at its next token
    // and never reports (steersSuperseded() counts such requests). The unsteered baseline is made
    // once per model and settings and reused. Reports with steerFinished; returns the ticket.
    int steer(const SteerRequest& request);
    int steersSuperseded() const { return steersSuperseded_; }
    int steersStarted() const { return steersStarted_; }
    // The steering every prompt run generates and is analysed under (the token stream, attention,
    // logit lens and features then show the steered run); nullopt: none. Takes effect on the next run.
    void setRunSteering(std::optional<SteeringPlan> plan) { runSteering_ = std::move(plan); }
    const std::optional<SteeringPlan>& runSteering() const { return runSteering_; }

    // The open feature store (one SQLite file; read on the GUI thread, which is fast: indexed
    // queries), or null. openStore returns an error line, or empty on success; emits storeChanged.
    QString openStore(const QString& path);
    void closeStore();
    FeatureStore* store() const { return store_.get(); }
    QString storePath() const { return storePath_; }
    // The label shown for a feature (user label, else the automatic one); empty without a store
    // or when the store does not know the SAE.
    QString featureLabel(const std::string& saeId, long index, bool* isAuto = nullptr) const;
    // Saves at once; returns an error line or empty. Emits labelChanged.
    QString setFeatureLabel(const std::string& saeId, long index, const QString& label, const QString& notes);

    bool hasModel() const { return model_ != nullptr; }
    bool isBusy() const { return busy_; }
    QString modelDir() const { return modelDir_; }
    QString modelName() const;
    QString modelSummary() const;
    long parameterCount() const;
    int layers() const;
    int heads() const;

    // The last complete run: what exports, saved sessions and the lens tracker work from.
    const RunResult& result() const { return result_; }
    const PromptAnalysis* analysis() const { return result_.analysis.get(); }
    // What the views show: the newest stage of the run under way, else the last complete run.
    // A view keeps the pointer it drew from, so a stage without its part (attention before the
    // forward pass ends) leaves its picture as it was, and consistent.
    const std::shared_ptr<const PromptAnalysis>& shownAnalysis() const { return shown_; }
    // Intermediate stages are shown only when the model's last analysis took longer than this
    // (and on a model's first run): on this 2-core machine, painting while the worker computes
    // slowed the worker by 40-80% (bench_gui), more than the overlap saved on the demo model's
    // 4 ms analysis; on GPT-2 small the tokens appear before its forward pass (80 ms at 32
    // tokens, 3 s at 1024). 0: always.
    void setStagesAbove(double seconds) { stagesAbove_ = seconds; }
    // What every run's analysis keeps and computes up front (AnalysisOptions: the attention
    // patterns' byte budget, the lens' cost budget, top-k); its SAEs and steering are the
    // session's own. Takes effect on the next run.
    void setAnalysisOptions(const AnalysisOptions& options) { analysisOptions_ = options; }
    // Which run shownAnalysis() comes from (stages of one run share it): a view whose part did
    // not change between stages can skip its update.
    int shownRun() const { return shownRun_; }

    const Selection& selection() const { return selection_; }
    // Clamped to the current analysis and model; emits selectionChanged only on a change.
    void select(int position, int layer, int head);
    void selectPosition(int position) { select(position, selection_.layer, selection_.head); }
    void selectLayer(int layer) { select(selection_.position, layer, selection_.head); }
    void selectHead(int head) { select(selection_.position, selection_.layer, head); }
    // The token the logit lens tracks (-1: the actual next token); ids outside the vocabulary mean -1.
    void selectLensToken(int tokenId);
    // One token id for what a user typed: "#123" (an id), text that encodes to a single token, or
    // a vocabulary piece ("▁cat", "Ġcat"). -1 with a one-line reason in `error` otherwise.
    int tokenIdFor(const QString& text, QString* error) const;
    QString tokenText(int tokenId) const;
    // P(tokenId) at every lens row and position of `a`, an analysis of the loaded model
    // ([row][t]); empty when it has no lens yet. The whole lens: positions not computed yet are
    // computed first, on the calling thread (a view reads LogitLens::probabilitiesOf instead).
    std::vector<std::vector<float>> lensProbabilities(const PromptAnalysis& a, int tokenId) const;
    // The selection the next finished run lands on (a restored session), instead of keeping the current one.
    void restoreSelectionAfterNextRun(const Selection& s) { pendingSelection_ = s; hasPending_ = true; }

Q_SIGNALS:
    void modelLoaded(const QString& summary);
    // Emitted with failed() when loadModel(dir) fails (the previous model stays loaded).
    void modelLoadFailed(const QString& dir);
    // A new result; the selection has already been updated for it (no selectionChanged follows).
    void runFinished(const cs::ui::RunResult& result);
    // shownAnalysis() changed: a stage of a run arrived, a run finished (emitted just before
    // runFinished), or a cancelled or failed run put the last complete analysis back. The selection
    // has already been clamped to it.
    void shownAnalysisChanged();
    void progress(int done, int total);
    void selectionChanged(const cs::ui::Selection& selection);
    void failed(const QString& message);
    void busyChanged(bool busy);
    void saesChanged();
    void storeChanged();
    void labelChanged(const QString& saeId, long index);
    void steerFinished(const cs::ui::SteerOutcome& outcome);
    void compareModelChanged();

private:
    void setBusy(bool busy);
    Selection clamped(Selection s) const;
    void applySelection(const Selection& want);  // clamps; emits selectionChanged on a change
    void showStage(std::shared_ptr<const PromptAnalysis> stage, int run);
    void restoreComplete();  // a run ended without a result: show the last complete one again

    std::shared_ptr<Transformer> model_;
    std::shared_ptr<Tokenizer> tokenizer_;
    QString modelDir_;
    std::vector<AnalysisSae> saes_;
    QStringList saePaths_;  // saes_[i] came from saePaths_[i]
    bool attachDemoSaes_ = true;
    cs::WeightPrecision precision_ = cs::WeightPrecision::Stored;
    std::shared_ptr<const Transformer> compareModel_;
    QString compareModelDir_;
    std::shared_ptr<FeatureStore> store_;
    QString storePath_;
    RunResult result_;
    std::shared_ptr<const PromptAnalysis> shown_;
    Selection selection_;
    int shownRun_ = 0;
    double stagesAbove_ = 0.05;
    AnalysisOptions analysisOptions_;
    double lastAnalysisSeconds_ = -1;  // the loaded model's last analysis; -1 before one
    bool midRun_ = false;         // shown_ is a stage of a run that has not finished
    int positionBeforeRun_ = -1;  // restored with the last complete analysis
    Selection pendingSelection_;
    bool hasPending_ = false;
    int newPromptRun_ = -1;  // the run whose prompt differs from the one shown: lands on its last prompt token
    bool busy_ = false;
    std::shared_ptr<std::atomic<int>> ticket_;  // request counter: stale jobs see a newer value
    std::shared_ptr<std::atomic<int>> steerTicket_;  // the same for steer(), which runs do not cancel
    int steersSuperseded_ = 0;
    int steersStarted_ = 0;
    struct CachedBaseline {
        RunSettings settings;
        int model = 0;  // the loadModel ticket it was made with
        SteeredText text;
    };
    std::optional<CachedBaseline> steerBaseline_;
    int modelTicket_ = 0;
    std::optional<SteeringPlan> runSteering_;
    QThreadPool worker_;                        // the one thread every model call runs on
};

}  // namespace cs::ui

Q_DECLARE_METATYPE(cs::ui::RunResult)
Q_DECLARE_METATYPE(cs::ui::Selection)
