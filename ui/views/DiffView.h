#pragma once
// The Diff dock: the loaded model (A) against a second checkpoint of the same architecture (B,
// "compare with"), on the current run's tokens. After every run it computes, on the worker, the
// KL between their next-token distributions at each token (optionally shading the token stream),
// how far each layer's residual stream moved, and the attached SAEs' features whose activations
// changed most (double-click one to open its dashboard).
#include "diff/ModelDiff.h"

#include <QWidget>

#include <memory>

class QCheckBox;
class QLabel;
class QPushButton;
class QTableView;
class QTableWidget;
class QSortFilterProxyModel;

namespace cs::ui {

class SessionController;
class DiffFeatureModel;

class DiffView : public QWidget {
    Q_OBJECT
public:
    explicit DiffView(SessionController* session, QWidget* parent = nullptr);

    // The latest diff (of the shown run against the compare model), or null.
    std::shared_ptr<const ModelDiff> diff() const { return diff_; }
    DiffFeatureModel* featureModel() const { return features_; }
    QTableView* featureTable() const { return table_; }
    QTableWidget* layerTable() const { return layers_; }
    QCheckBox* shadeCheck() const { return shadeKl_; }
    QString summaryText() const;
    // KL(A || B) per position of the shown run, as the token stream is shaded with.
    std::vector<float> tokenKl() const;
    // The diff as `diff --json` writes it; empty error or one line naming the file.
    QString exportJson(const QString& path) const;

Q_SIGNALS:
    void diffReady();
    void compareRequested();  // the "Compare With..." button: the window asks for a folder
    void openFeature(const QString& saeId, long index);
    // Shade the token stream by these values (empty: clear the KL shading).
    void shadingRequested(const std::vector<float>& values, float max, const QString& caption);

private:
    void recompute();
    void show(std::shared_ptr<const ModelDiff> diff);
    void clear(const QString& why);
    void applyShading();

    SessionController* session_;
    QLabel* compared_;
    QPushButton* compareButton_;
    QPushButton* stopButton_;
    QCheckBox* shadeKl_;
    QLabel* summary_;
    QTableWidget* layers_;
    DiffFeatureModel* features_;
    QSortFilterProxyModel* sorted_;
    QTableView* table_;
    std::shared_ptr<const ModelDiff> diff_;
    int ticket_ = 0;
    bool shading_ = false;  // the token stream shows our KL shading now
};

}  // namespace cs::ui
