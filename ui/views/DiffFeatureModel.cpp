#include "ui/views/DiffFeatureModel.h"

#include <QColor>

#include <cmath>

namespace cs::ui {

void DiffFeatureModel::setFeatures(std::vector<FeatureShift> features, LabelFn label) {
    beginResetModel();
    features_ = std::move(features);
    label_ = std::move(label);
    labels_.assign(features_.size(), QString());
    if (label_)
        for (size_t i = 0; i < features_.size(); ++i) labels_[i] = label_(features_[i].saeId, features_[i].index);
    endResetModel();
}

void DiffFeatureModel::refreshLabels() {
    if (!label_ || features_.empty()) return;
    for (size_t i = 0; i < features_.size(); ++i) labels_[i] = label_(features_[i].saeId, features_[i].index);
    Q_EMIT dataChanged(index(0, LabelColumn), index(rowCount() - 1, LabelColumn));
}

int DiffFeatureModel::rowCount(const QModelIndex& parent) const {
    return parent.isValid() ? 0 : static_cast<int>(features_.size());
}

int DiffFeatureModel::columnCount(const QModelIndex& parent) const { return parent.isValid() ? 0 : ColumnCount; }

QVariant DiffFeatureModel::data(const QModelIndex& index, int role) const {
    if (!index.isValid() || index.row() >= rowCount()) return {};
    const FeatureShift& f = features_[static_cast<size_t>(index.row())];
    const double change = f.meanB - f.meanA;
    if (role == Qt::DisplayRole || role == SortRole) {
        const bool sort = role == SortRole;
        switch (index.column()) {
            case SaeColumn: return QString::fromStdString(f.saeId);
            case IndexColumn: return sort ? QVariant(qlonglong(f.index)) : QVariant(QString::number(f.index));
            case LabelColumn: return labels_[static_cast<size_t>(index.row())];
            case MeanAColumn: return sort ? QVariant(f.meanA) : QVariant(QString::number(f.meanA, 'f', 3));
            case MeanBColumn: return sort ? QVariant(f.meanB) : QVariant(QString::number(f.meanB, 'f', 3));
            case ChangeColumn:
                // Sorted by size, as the diff ranks: a feature that fell matters as much as one that rose.
                return sort ? QVariant(std::abs(change)) : QVariant(QString::asprintf("%+.3f", change));
            case FiringColumn:
                return sort ? QVariant(f.firingB - f.firingA)
                            : QVariant(QStringLiteral("%1% -> %2%").arg(100 * f.firingA, 0, 'f', 1).arg(100 * f.firingB, 0, 'f', 1));
        }
    }
    if (role == Qt::ForegroundRole && index.column() == ChangeColumn)
        return change >= 0 ? QColor(0x1a, 0x7f, 0x37) : QColor(0xb3, 0x26, 0x1e);  // rose / fell
    if (role == Qt::TextAlignmentRole && index.column() != LabelColumn && index.column() != SaeColumn)
        return int(Qt::AlignRight | Qt::AlignVCenter);
    if (role == Qt::ToolTipRole)
        return tr("%1 #%2: mean %3 in A, %4 in B; max %5 in A, %6 in B")
            .arg(QString::fromStdString(f.saeId))
            .arg(f.index)
            .arg(f.meanA, 0, 'g', 6)
            .arg(f.meanB, 0, 'g', 6)
            .arg(double(f.maxA), 0, 'g', 6)
            .arg(double(f.maxB), 0, 'g', 6);
    return {};
}

QVariant DiffFeatureModel::headerData(int section, Qt::Orientation o, int role) const {
    if (o != Qt::Horizontal || role != Qt::DisplayRole) return {};
    switch (section) {
        case SaeColumn: return tr("SAE");
        case IndexColumn: return tr("Feature");
        case LabelColumn: return tr("Label");
        case MeanAColumn: return tr("Mean in A");
        case MeanBColumn: return tr("Mean in B");
        case ChangeColumn: return tr("Change");
        case FiringColumn: return tr("Fires on");
    }
    return {};
}

}  // namespace cs::ui
