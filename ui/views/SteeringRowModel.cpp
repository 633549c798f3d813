#include "ui/views/SteeringRowModel.h"

#include "steer/SteeringJson.h"

#include <cmath>

namespace cs::ui {

QString steeringRowTitle(const SteeringRule& r) {
    if (r.isVector()) return QObject::tr("vector %1 @%2").arg(QString::fromStdString(r.vectorName), QString::fromStdString(r.hook));
    const QString sae = r.saeId.empty() ? QString() : QString::fromStdString(r.saeId) + " ";
    return QStringLiteral("%1#%2").arg(sae).arg(r.feature);
}

void SteeringRowModel::setRules(std::vector<SteeringRule> rules) {
    beginResetModel();
    rules_ = std::move(rules);
    endResetModel();
}

int SteeringRowModel::addRule(SteeringRule rule) {
    const int row = static_cast<int>(rules_.size());
    beginInsertRows({}, row, row);
    rules_.push_back(std::move(rule));
    endInsertRows();
    return row;
}

void SteeringRowModel::removeRule(int row) {
    if (row < 0 || row >= rowCount()) return;
    beginRemoveRows({}, row, row);
    rules_.erase(rules_.begin() + row);
    endRemoveRows();
}

void SteeringRowModel::setMultiple(int row, double multiple) { setData(index(row, StrengthColumn), multiple, Qt::EditRole); }

int SteeringRowModel::rowCount(const QModelIndex& parent) const { return parent.isValid() ? 0 : static_cast<int>(rules_.size()); }
int SteeringRowModel::columnCount(const QModelIndex& parent) const { return parent.isValid() ? 0 : ColumnCount; }

QVariant SteeringRowModel::data(const QModelIndex& index, int role) const {
    if (!index.isValid() || index.row() >= rowCount()) return {};
    const SteeringRule& r = rules_[static_cast<size_t>(index.row())];
    switch (index.column()) {
    case EnabledColumn:
        if (role == Qt::CheckStateRole) return r.enabled ? Qt::Checked : Qt::Unchecked;
        if (role == Qt::ToolTipRole) return tr("Apply this row");
        break;
    case RowColumn:
        if (role == Qt::DisplayRole) {
            const QString title = steeringRowTitle(r);
            return r.label.empty() ? title : title + "  " + QString::fromStdString(r.label);
        }
        if (role == Qt::ToolTipRole)
            return tr("%1\nslider unit: %2 (%3)")
                .arg(QString::fromStdString(describeRow(r)))
                .arg(unitOf(r), 0, 'g', 4)
                .arg(r.isVector() ? tr("the vector as given")
                     : r.unit > 0 ? tr("the feature's max activation")
                                  : tr("unknown: open a feature store or run a prompt where it fires"));
        break;
    case StrengthColumn:
        if (role == Qt::EditRole) return multipleOf(r);
        if (role == ValueRole) return r.value;
        if (role == Qt::DisplayRole) return QStringLiteral("%1x").arg(multipleOf(r), 0, 'f', 2);
        break;
    case ModeColumn:
        if (role == Qt::EditRole) return static_cast<int>(r.mode);
        if (role == Qt::DisplayRole) return QString::fromLatin1(steerModeName(r.mode));
        break;
    case PositionsColumn:
        if (role == Qt::EditRole || role == Qt::DisplayRole) return QString::fromStdString(r.positions.toString());
        break;
    case ConditionalColumn:
        if (role == Qt::CheckStateRole) return r.conditional ? Qt::Checked : Qt::Unchecked;
        if (role == Qt::ToolTipRole) return tr("Apply only where the condition above holds");
        break;
    case RemoveColumn:
        if (role == Qt::DisplayRole) return QStringLiteral("\u2715");
        if (role == Qt::ToolTipRole) return tr("Remove this row");
        if (role == Qt::TextAlignmentRole) return Qt::AlignCenter;
        break;
    default: break;
    }
    return {};
}

bool SteeringRowModel::setData(const QModelIndex& index, const QVariant& value, int role) {
    if (!index.isValid() || index.row() >= rowCount()) return false;
    SteeringRule& r = rules_[static_cast<size_t>(index.row())];
    bool changed = false;
    switch (index.column()) {
    case EnabledColumn:
    case ConditionalColumn: {
        if (role != Qt::CheckStateRole) return false;
        bool& flag = index.column() == EnabledColumn ? r.enabled : r.conditional;
        const bool on = value.toInt() == Qt::Checked;
        changed = flag != on;
        flag = on;
        break;
    }
    case StrengthColumn: {
        if (role != Qt::EditRole) return false;
        bool ok = false;
        const double m = value.toDouble(&ok);
        if (!ok || !std::isfinite(m)) return false;
        const double v = m * unitOf(r);
        changed = v != r.value;
        r.value = v;
        break;
    }
    case ModeColumn: {
        if (role != Qt::EditRole) return false;
        const int m = value.toInt();
        if (m < static_cast<int>(SteerMode::Add) || m > static_cast<int>(SteerMode::Ablate)) return false;
        changed = static_cast<int>(r.mode) != m;
        r.mode = static_cast<SteerMode>(m);
        break;
    }
    case PositionsColumn: {
        if (role != Qt::EditRole) return false;
        try {
            const PositionRange p = parsePositions(value.toString().toStdString(), "positions");
            changed = p.toString() != r.positions.toString();
            r.positions = p;
        } catch (const std::exception&) {
            return false;
        }
        break;
    }
    default: return false;
    }
    if (!changed) return true;
    if (index.column() == ModeColumn)  // the strength editor greys out for ablate
        Q_EMIT dataChanged(this->index(index.row(), StrengthColumn), index, {role});
    else
        Q_EMIT dataChanged(index, index, {role});
    return true;
}

Qt::ItemFlags SteeringRowModel::flags(const QModelIndex& index) const {
    if (!index.isValid()) return Qt::NoItemFlags;
    Qt::ItemFlags f = Qt::ItemIsEnabled | Qt::ItemIsSelectable;
    switch (index.column()) {
    case EnabledColumn:
    case ConditionalColumn: return f | Qt::ItemIsUserCheckable;
    case StrengthColumn:
    case ModeColumn:
    case PositionsColumn: return f | Qt::ItemIsEditable;
    default: return f;
    }
}

QVariant SteeringRowModel::headerData(int section, Qt::Orientation o, int role) const {
    if (o == Qt::Horizontal && role == Qt::ToolTipRole && section == StrengthColumn)
        return tr("Multiples of the row's unit: the feature's max activation from the feature store, else its highest "
                  "activation on the current run; for a vector, the vector itself");
    if (o != Qt::Horizontal || role != Qt::DisplayRole) return {};
    switch (section) {
    case EnabledColumn: return tr("On");
    case RowColumn: return tr("Feature / vector");
    case StrengthColumn: return tr("Strength");
    case ModeColumn: return tr("Mode");
    case PositionsColumn: return tr("Positions");
    case ConditionalColumn: return tr("Cond");
    case RemoveColumn: return QString();
    default: return {};
    }
}

}  // namespace cs::ui
