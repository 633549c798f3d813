#include "ui/views/FeatureTableModel.h"

#include "ui/Theme.h"

#include <QFont>

namespace cs::ui {

void FeatureTableModel::setSummaries(std::vector<FeatureSummary> summaries) {
    beginResetModel();
    summaries_ = std::move(summaries);
    hitMode_ = false;
    rows_.clear();
    rows_.reserve(summaries_.size());
    for (long i = 0; i < static_cast<long>(summaries_.size()); ++i) rows_.push_back({i, 0});
    endResetModel();
}

const FeatureSummary* FeatureTableModel::summary(long index) const {
    // summaries() comes in index order, usually dense from 0.
    if (index >= 0 && index < static_cast<long>(summaries_.size()) && summaries_[index].index == index) return &summaries_[index];
    for (const FeatureSummary& s : summaries_)
        if (s.index == index) return &s;
    return nullptr;
}

void FeatureTableModel::setHits(const std::vector<FeatureHit>& hits, const QString& scoreName) {
    beginResetModel();
    hitMode_ = true;
    scoreName_ = scoreName;
    rows_.clear();
    for (const FeatureHit& h : hits)
        if (const FeatureSummary* s = summary(h.index)) rows_.push_back({static_cast<long>(s - summaries_.data()), h.score});
    endResetModel();
}

void FeatureTableModel::clearHits() {
    if (!hitMode_) return;
    setSummaries(std::move(summaries_));
}

void FeatureTableModel::updateLabel(long index, const QString& label, bool isAuto) {
    const FeatureSummary* s = summary(index);
    if (!s) return;
    const long si = static_cast<long>(s - summaries_.data());
    summaries_[si].label = label.toStdString();
    summaries_[si].labelIsAuto = isAuto;
    for (int r = 0; r < static_cast<int>(rows_.size()); ++r)
        if (rows_[r].summary == si) Q_EMIT dataChanged(this->index(r, LabelColumn), this->index(r, LabelColumn));
}

int FeatureTableModel::rowCount(const QModelIndex& parent) const { return parent.isValid() ? 0 : static_cast<int>(rows_.size()); }
int FeatureTableModel::columnCount(const QModelIndex& parent) const { return parent.isValid() ? 0 : ColumnCount; }

QVariant FeatureTableModel::data(const QModelIndex& index, int role) const {
    if (!index.isValid() || index.row() >= static_cast<int>(rows_.size())) return {};
    const Row& row = rows_[index.row()];
    const FeatureSummary& s = summaries_[row.summary];
    if (role == FeatureIndexRole) return static_cast<qlonglong>(s.index);
    switch (role) {
    case Qt::DisplayRole:
        switch (index.column()) {
        case IndexColumn: return static_cast<qlonglong>(s.index);
        case LabelColumn: return QString::fromStdString(s.label);
        case DensityColumn: return s.density > 0 ? QString::number(100 * s.density, 'g', 3) + "%" : QStringLiteral("0");
        case MaxColumn: return QString::number(s.maxActivation, 'f', 3);
        case ScoreColumn: return hitMode_ ? QString::number(row.score, 'g', 4) : QString();
        }
        break;
    case SortRole:
        switch (index.column()) {
        case IndexColumn: return static_cast<qlonglong>(s.index);
        case LabelColumn: return QString::fromStdString(s.label);
        case DensityColumn: return s.density;
        case MaxColumn: return static_cast<double>(s.maxActivation);
        case ScoreColumn: return row.score;
        }
        break;
    case Qt::TextAlignmentRole:
        return index.column() == LabelColumn ? QVariant(Qt::AlignLeft | Qt::AlignVCenter) : QVariant(Qt::AlignRight | Qt::AlignVCenter);
    case Qt::ForegroundRole:
        if (index.column() == LabelColumn && s.labelIsAuto) return viewColors().muted;
        break;
    case Qt::FontRole:
        if (index.column() == LabelColumn && s.labelIsAuto) {
            QFont f;
            f.setItalic(true);
            return f;
        }
        break;
    case Qt::ToolTipRole:
        if (index.column() == LabelColumn)
            return s.labelIsAuto ? tr("%1 (automatic)").arg(QString::fromStdString(s.label)) : QString::fromStdString(s.label);
        break;
    default: break;
    }
    return {};
}

QVariant FeatureTableModel::headerData(int section, Qt::Orientation o, int role) const {
    if (o != Qt::Horizontal || role != Qt::DisplayRole) return {};
    switch (section) {
    case IndexColumn: return tr("Index");
    case LabelColumn: return tr("Label");
    case DensityColumn: return tr("Density");
    case MaxColumn: return tr("Max act.");
    case ScoreColumn: return scoreName_.isEmpty() ? tr("Score") : scoreName_;
    }
    return {};
}

}  // namespace cs::ui
