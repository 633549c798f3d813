#pragma once
// The session every view observes, and the thin async layer between views and core/: it owns the
// loaded model, runs loads and prompt runs on a worker thread, holds the latest analysis and the
// selection (position, layer, head) that all views share, and reports with signals on the GUI
// thread. A newer request supersedes an older one; a cancelled or failed run leaves the previous
// analysis in place.
#include "analysis/PromptAnalysis.h"

#include <QMetaType>
#include <QObject>
#include <QString>

#include <atomic>
#include <memory>

namespace cs {
class Transformer;
class Tokenizer;
}

namespace cs::ui {

struct RunSettings {
    QString prompt;
    int maxNewTokens = 32;
    bool greedy = true;
    double temperature = 1.0;
    quint64 seed = 0;
};

struct RunResult {
    std::shared_ptr<const PromptAnalysis> analysis;
    RunSettings settings;
    QString continuation;      // the generated text
    double generateSeconds = 0;
    double analysisSeconds = 0;
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

    bool hasModel() const { return model_ != nullptr; }
    bool isBusy() const { return busy_; }
    QString modelDir() const { return modelDir_; }
    QString modelName() const;
    QString modelSummary() const;
    long parameterCount() const;
    int layers() const;
    int heads() const;

    const RunResult& result() const { return result_; }
    const PromptAnalysis* analysis() const { return result_.analysis.get(); }

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
    // P(tokenId) at every lens row and position of the current analysis ([row][t]); empty
    // without an analysis.
    std::vector<std::vector<float>> lensProbabilities(int tokenId) const;
    // The selection the next finished run lands on (a restored session), instead of keeping the current one.
    void restoreSelectionAfterNextRun(const Selection& s) { pendingSelection_ = s; hasPending_ = true; }

Q_SIGNALS:
    void modelLoaded(const QString& summary);
    // A new result; the selection has already been updated for it (no selectionChanged follows).
    void runFinished(const cs::ui::RunResult& result);
    void progress(int done, int total);
    void selectionChanged(const cs::ui::Selection& selection);
    void failed(const QString& message);
    void busyChanged(bool busy);

private:
    void setBusy(bool busy);
    Selection clamped(Selection s) const;
    void applySelection(const Selection& want);  // clamps; emits selectionChanged on a change

    std::shared_ptr<Transformer> model_;
    std::shared_ptr<Tokenizer> tokenizer_;
    QString modelDir_;
    RunResult result_;
    Selection selection_;
    Selection pendingSelection_;
    bool hasPending_ = false;
    bool busy_ = false;
    std::shared_ptr<std::atomic<int>> ticket_;  // request counter: stale jobs see a newer value
};

}  // namespace cs::ui

Q_DECLARE_METATYPE(cs::ui::RunResult)
Q_DECLARE_METATYPE(cs::ui::Selection)
