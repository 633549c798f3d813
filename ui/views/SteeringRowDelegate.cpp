#include "ui/views/SteeringRowDelegate.h"

#include "steer/SteeringRule.h"
#include "ui/views/SteeringRowModel.h"
#include "ui/views/SteeringScale.h"

#include <QComboBox>
#include <QDoubleSpinBox>
#include <QHBoxLayout>
#include <QSlider>
#include <QSpinBox>

namespace cs::ui {

namespace scale = steering_scale;

namespace {
constexpr int kMaxPosition = 1 << 20;
}

StrengthEditor::StrengthEditor(QWidget* parent) : QWidget(parent) {
    setAutoFillBackground(true);
    auto* l = new QHBoxLayout(this);
    l->setContentsMargins(2, 0, 2, 0);
    slider_ = new QSlider(Qt::Horizontal, this);
    slider_->setObjectName("strengthSlider");
    slider_->setRange(-scale::kSliderSteps, scale::kSliderSteps);
    slider_->setPageStep(scale::kSliderSteps / 10);
    slider_->setMinimumWidth(60);
    slider_->setToolTip(tr("Strength: multiples of the row's unit (the feature's max activation), -10 to +10; "
                           "finer near 0"));
    spin_ = new QDoubleSpinBox(this);
    spin_->setObjectName("strengthBox");
    spin_->setRange(-scale::kMaxMultiple, scale::kMaxMultiple);
    spin_->setDecimals(2);
    spin_->setSingleStep(0.1);
    spin_->setSuffix(QStringLiteral("x"));
    spin_->setKeyboardTracking(false);  // typing "2.5" is one value, not "2" then "2.5"
    spin_->setButtonSymbols(QAbstractSpinBox::NoButtons);  // the slider is the coarse control
    spin_->setFixedWidth(spin_->fontMetrics().horizontalAdvance(QStringLiteral("-10.00x")) + 12);
    l->addWidget(slider_, 1);
    l->addWidget(spin_);
    connect(slider_, &QSlider::valueChanged, this, [this](int s) {
        const double m = scale::multipleForSlider(s);
        QSignalBlocker block(spin_);
        spin_->setValue(m);
        Q_EMIT multipleChanged(m);
    });
    connect(spin_, &QDoubleSpinBox::valueChanged, this, [this](double m) {
        QSignalBlocker block(slider_);
        slider_->setValue(scale::sliderForMultiple(m));
        Q_EMIT multipleChanged(m);
    });
}

double StrengthEditor::multiple() const { return spin_->value(); }

void StrengthEditor::setMultiple(double m) {
    // The model echoing this editor's own change: leave a dragged slider where the mouse put it
    // (near 0 the rounded multiple maps back to a neighbouring step).
    if (spin_->value() == m) return;
    QSignalBlocker a(slider_), b(spin_);
    spin_->setValue(m);
    slider_->setValue(scale::sliderForMultiple(m));
}

PositionsEditor::PositionsEditor(std::function<int()> selectedToken, QWidget* parent)
    : QWidget(parent), selectedToken_(std::move(selectedToken)) {
    setAutoFillBackground(true);
    auto* l = new QHBoxLayout(this);
    l->setContentsMargins(2, 0, 2, 0);
    kind_ = new QComboBox(this);
    kind_->setObjectName("positionsKind");
    kind_->addItem(tr("all"), QStringLiteral("all"));
    kind_->addItem(tr("prompt"), QStringLiteral("prompt"));
    kind_->addItem(tr("generated"), QStringLiteral("generated"));
    kind_->addItem(tr("range"), QStringLiteral("range"));
    kind_->setToolTip(tr("Where to steer: every position, the prompt's, the generated tokens', or a token range "
                         "(starting at the selected token; positions count from 0, BOS included)"));
    first_ = new QSpinBox(this);
    last_ = new QSpinBox(this);
    for (QSpinBox* s : {first_, last_}) {
        s->setRange(0, kMaxPosition);
        s->setKeyboardTracking(false);
        s->setButtonSymbols(QAbstractSpinBox::NoButtons);  // narrow: the wheel and arrow keys still step
        s->setFixedWidth(s->fontMetrics().horizontalAdvance(QStringLiteral("000")) + 10);
    }
    first_->setToolTip(tr("First token of the range"));
    last_->setToolTip(tr("Last token of the range (inclusive)"));
    l->addWidget(kind_);
    l->addWidget(first_);
    l->addWidget(last_);
    connect(kind_, &QComboBox::currentIndexChanged, this, [this] {
        if (kind_->currentData().toString() == "range") {
            const int t = selectedToken_ ? selectedToken_() : -1;
            QSignalBlocker a(first_), b(last_);
            first_->setValue(std::max(0, t));
            last_->setValue(std::max(0, t));
        }
        syncRangeWidgets();
        Q_EMIT positionsChanged(positions());
    });
    auto rangeEdited = [this] {
        if (last_->value() < first_->value()) {
            QSignalBlocker b(last_);
            last_->setValue(first_->value());
        }
        Q_EMIT positionsChanged(positions());
    };
    connect(first_, &QSpinBox::valueChanged, this, rangeEdited);
    connect(last_, &QSpinBox::valueChanged, this, rangeEdited);
    syncRangeWidgets();
}

void PositionsEditor::syncRangeWidgets() {
    const bool range = kind_->currentData().toString() == "range";
    first_->setVisible(range);
    last_->setVisible(range);
}

QString PositionsEditor::positions() const {
    const QString kind = kind_->currentData().toString();
    if (kind != "range") return kind;
    return QStringLiteral("%1-%2").arg(first_->value()).arg(std::max(first_->value(), last_->value()));
}

void PositionsEditor::setPositions(const QString& s) {
    QSignalBlocker a(kind_), b(first_), c(last_);
    PositionRange p;
    try {
        p = parsePositions(s.toStdString(), "positions");
    } catch (const std::exception&) {
    }
    switch (p.kind) {
    case PositionRange::All: kind_->setCurrentIndex(0); break;
    case PositionRange::Prompt: kind_->setCurrentIndex(1); break;
    case PositionRange::Generated: kind_->setCurrentIndex(2); break;
    case PositionRange::Span:
        kind_->setCurrentIndex(3);
        first_->setValue(static_cast<int>(p.first));
        last_->setValue(static_cast<int>(p.last));
        break;
    }
    syncRangeWidgets();
}

SteeringRowDelegate::SteeringRowDelegate(std::function<int()> selectedToken, QObject* parent)
    : QStyledItemDelegate(parent), selectedToken_(std::move(selectedToken)) {}

QWidget* SteeringRowDelegate::createEditor(QWidget* parent, const QStyleOptionViewItem& option, const QModelIndex& index) const {
    auto* self = const_cast<SteeringRowDelegate*>(this);
    switch (index.column()) {
    case SteeringRowModel::StrengthColumn: {
        auto* e = new StrengthEditor(parent);
        connect(e, &StrengthEditor::multipleChanged, self, [self, e] { Q_EMIT self->commitData(e); });
        return e;
    }
    case SteeringRowModel::ModeColumn: {
        auto* e = new QComboBox(parent);
        e->setObjectName("modeBox");
        for (SteerMode m : {SteerMode::Add, SteerMode::Clamp, SteerMode::Ablate})
            e->addItem(QString::fromLatin1(steerModeName(m)), static_cast<int>(m));
        e->setToolTip(tr("add: push along the direction by the strength; clamp: set the feature to the strength; "
                         "ablate: set it to 0"));
        connect(e, &QComboBox::currentIndexChanged, self, [self, e] { Q_EMIT self->commitData(e); });
        return e;
    }
    case SteeringRowModel::PositionsColumn: {
        auto* e = new PositionsEditor(selectedToken_, parent);
        connect(e, &PositionsEditor::positionsChanged, self, [self, e] { Q_EMIT self->commitData(e); });
        return e;
    }
    default: return QStyledItemDelegate::createEditor(parent, option, index);
    }
}

void SteeringRowDelegate::setEditorData(QWidget* editor, const QModelIndex& index) const {
    if (auto* e = qobject_cast<StrengthEditor*>(editor)) {
        e->setMultiple(index.data(Qt::EditRole).toDouble());
        // Ablate ignores the strength.
        e->setEnabled(index.siblingAtColumn(SteeringRowModel::ModeColumn).data(Qt::EditRole).toInt() !=
                      static_cast<int>(SteerMode::Ablate));
    } else if (auto* e = qobject_cast<QComboBox*>(editor)) {
        QSignalBlocker block(e);
        e->setCurrentIndex(std::max(0, e->findData(index.data(Qt::EditRole).toInt())));
    } else if (auto* e = qobject_cast<PositionsEditor*>(editor)) {
        e->setPositions(index.data(Qt::EditRole).toString());
    } else {
        QStyledItemDelegate::setEditorData(editor, index);
    }
}

void SteeringRowDelegate::setModelData(QWidget* editor, QAbstractItemModel* model, const QModelIndex& index) const {
    if (auto* e = qobject_cast<StrengthEditor*>(editor)) model->setData(index, e->multiple(), Qt::EditRole);
    else if (auto* e = qobject_cast<QComboBox*>(editor)) model->setData(index, e->currentData(), Qt::EditRole);
    else if (auto* e = qobject_cast<PositionsEditor*>(editor)) model->setData(index, e->positions(), Qt::EditRole);
    else QStyledItemDelegate::setModelData(editor, model, index);
}

void SteeringRowDelegate::updateEditorGeometry(QWidget* editor, const QStyleOptionViewItem& option, const QModelIndex&) const {
    editor->setGeometry(option.rect);
}

}  // namespace cs::ui
