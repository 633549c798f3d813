#pragma once
// One feature's dashboard, read from the open feature store: header (SAE, index, density, max
// activation, firings), the label and notes (edited in place, saved at once), the top activating
// examples (click one to run its text), the activation histogram and logit-effect bars
// (QCustomPlot), the nearest features by decoder cosine (click to open theirs) and examples
// sampled from activation intervals. Without a store, or with one that has not indexed this SAE,
// it says what is missing and offers to index a corpus; the logit effects then come from the
// weights when the SAE is attached.
#include "store/FeatureRecord.h"
#include "ui/SessionController.h"
#include "ui/figures/FigureSource.h"

#include <QWidget>

#include <nlohmann/json_fwd.hpp>

class QLabel;
class QLineEdit;
class QPlainTextEdit;
class QPushButton;
class QTimer;
class QCustomPlot;
class QScrollArea;

namespace cs::ui {

class ExampleList;
struct ViewColors;

class DashboardView : public QWidget, public FigureSource {
    Q_OBJECT
public:
    DashboardView(SessionController* session, const QString& saeId, long index, QWidget* parent = nullptr);
    ~DashboardView() override;

    QString saeId() const { return saeId_; }
    long featureIndex() const { return index_; }
    QString title() const;               // "res-L0 #123", for the tab
    bool hasDetail() const { return hasDetail_; }
    const FeatureDetail& detail() const { return detail_; }
    QString missingText() const;         // what is missing; empty when the store has the feature
    QLineEdit* labelEdit() const { return label_; }
    QPlainTextEdit* notesEdit() const { return notes_; }
    QLabel* autoTag() const { return autoTag_; }
    ExampleList* topExamples() const { return top_; }
    ExampleList* intervalExamples() const { return intervals_; }
    QCustomPlot* histogramPlot() const { return histogram_; }
    QCustomPlot* logitPlot() const { return logits_; }
    QLabel* neighboursLabel() const { return neighbours_; }
    QPushButton* steerButton() const { return steerButton_; }
    void reload();                       // re-reads the store
    void saveNow();                      // writes label and notes if they changed
    // The feature's data: what `circuitscope feature --json` prints (needs a store with it).
    nlohmann::json toJson() const;

    QString figureName() const override;
    QSize figureSize() const override;
    void paintFigure(QCPPainter& painter, const QSize& size) override;
    void refreshColors();

Q_SIGNALS:
    void openFeature(const QString& saeId, long index);
    void promptRequested(const QString& text);
    void indexRequested();
    void titleChanged(const QString& title);
    void steerRequested(const QString& saeId, long index);  // the Steer button

private:
    void fill();
    void fillCharts(const ViewColors& c);
    void styleCharts(const ViewColors& c);
    void scheduleSave();
    QString headerHtml() const;
    QString exampleText(const FeatureExample& e) const;
    // Measures the figure at width `w`; paints it too when `painter` is given.
    int layoutFigure(int w, QCPPainter* painter);

    SessionController* session_;
    QString saeId_;
    long index_;
    bool hasDetail_ = false;
    FeatureDetail detail_;
    QString error_;       // why the store could not give the feature
    bool saving_ = false; // our own save's labelChanged is not a reason to reload
    std::vector<LogitEffect> livePositive_, liveNegative_;  // from the weights when the store has none
    QString lastLabel_, lastNotes_;  // as saved
    QScrollArea* scroll_;
    QLabel* header_;
    QLabel* missing_;
    QPushButton* indexButton_;
    QPushButton* steerButton_;
    QLineEdit* label_;
    QLabel* autoTag_;
    QPlainTextEdit* notes_;
    QLabel* topTitle_;
    ExampleList* top_;
    QCustomPlot* histogram_;
    QCustomPlot* logits_;
    QLabel* neighbours_;
    QLabel* intervalTitle_;
    ExampleList* intervals_;
    QTimer* saveTimer_;
};

}  // namespace cs::ui
