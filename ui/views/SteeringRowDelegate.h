#pragma once
// The editors of a steering row, opened as persistent editors so every row shows them at once: a
// strength slider with its numeric box, a mode box, and positions (all, prompt, generated, or a
// token range from two spin boxes). Each commits on every change, which is what makes the
// continuation follow a dragged slider.
#include <QStyledItemDelegate>

#include <functional>

class QComboBox;
class QDoubleSpinBox;
class QSlider;
class QSpinBox;

namespace cs::ui {

class StrengthEditor : public QWidget {
    Q_OBJECT
public:
    explicit StrengthEditor(QWidget* parent = nullptr);
    double multiple() const;
    void setMultiple(double m);  // no signal
    QSlider* slider() const { return slider_; }
    QDoubleSpinBox* spinBox() const { return spin_; }

Q_SIGNALS:
    void multipleChanged(double multiple);

private:
    QSlider* slider_;
    QDoubleSpinBox* spin_;
};

class PositionsEditor : public QWidget {
    Q_OBJECT
public:
    // `selectedToken` gives the token a new range starts at (the session's selection), or -1.
    PositionsEditor(std::function<int()> selectedToken, QWidget* parent = nullptr);
    QString positions() const;             // PositionRange::toString() form
    void setPositions(const QString& s);   // no signal
    QComboBox* kindBox() const { return kind_; }

Q_SIGNALS:
    void positionsChanged(const QString& positions);

private:
    void syncRangeWidgets();
    std::function<int()> selectedToken_;
    QComboBox* kind_;
    QSpinBox* first_;
    QSpinBox* last_;
};

class SteeringRowDelegate : public QStyledItemDelegate {
    Q_OBJECT
public:
    explicit SteeringRowDelegate(std::function<int()> selectedToken, QObject* parent = nullptr);

    QWidget* createEditor(QWidget* parent, const QStyleOptionViewItem& option, const QModelIndex& index) const override;
    void setEditorData(QWidget* editor, const QModelIndex& index) const override;
    void setModelData(QWidget* editor, QAbstractItemModel* model, const QModelIndex& index) const override;
    void updateEditorGeometry(QWidget* editor, const QStyleOptionViewItem& option, const QModelIndex& index) const override;

private:
    std::function<int()> selectedToken_;
};

}  // namespace cs::ui
