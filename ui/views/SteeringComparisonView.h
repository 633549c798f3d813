#pragma once
// The unsteered baseline and up to four steered continuations side by side (the live setting and
// the pinned ones), each token that steering changed marked. One painting function draws the
// screen and the exported figure (PNG, SVG, PDF): prompt, each setting's rows, continuations.
#include "steer/SteeringJson.h"
#include "ui/figures/FigureSource.h"

#include <memory>
#include <vector>

#include <QWidget>

#include <nlohmann/json_fwd.hpp>

class QPainter;

namespace cs::ui {

struct ViewColors;

class SteeringComparisonView : public QWidget, public FigureSource {
    Q_OBJECT
public:
    static constexpr int kMaxColumns = 4;  // steered columns beside the baseline

    explicit SteeringComparisonView(QWidget* parent = nullptr);

    // columns[0] is the live setting, the rest pinned ones; more than kMaxColumns are cut.
    void setComparison(const SteeringComparison& c);
    const SteeringComparison& comparison() const { return comparison_; }
    // Marks a column (0-based among the steered ones) as regenerating; its old text stays, dimmed.
    void setColumnBusy(int column, bool busy);
    // An error in place of a column's text (a bad row), or "" to clear it.
    void setColumnError(int column, const QString& message);
    // steeringComparisonToJson of what is shown.
    nlohmann::json toJson() const;

    QString figureName() const override;  // "steering"
    QSize figureSize() const override;
    void paintFigure(QCPPainter& painter, const QSize& size) override;

    // Tall enough for the wrapped text at that width (put the view in a scroll area).
    QSize sizeHint() const override;
    int heightForWidth(int width) const override;

Q_SIGNALS:
    void unpinRequested(int column);  // a pinned column's close button (column >= 1)

protected:
    void paintEvent(QPaintEvent* e) override;
    void mousePressEvent(QMouseEvent* e) override;
    void resizeEvent(QResizeEvent* e) override;

private:
    struct Layout;
    bool isEmpty() const;
    int figureWidth() const;  // the natural width for the baseline and the columns shown
    void relayout();
    // The layout at `width`, kept for the last width asked: a repaint only draws.
    std::shared_ptr<const Layout> layoutFor(int width) const;
    void paintComparison(QPainter& p, const Layout& layout, const ViewColors& c, bool figure) const;

    SteeringComparison comparison_;
    QVector<bool> busy_;
    QStringList errors_;
    std::vector<std::vector<bool>> differs_;  // per column: tokensDiffering against the baseline
    mutable std::shared_ptr<const Layout> cached_;
    mutable QFont cachedFont_;
};

}  // namespace cs::ui
