#pragma once
// The Steering dock's rows as a table model over plain SteeringRules: on/off, what is steered
// (feature or vector), the strength as a multiple of the row's unit, mode, positions, whether the
// condition gates it, and a remove cell. The strength, mode and positions cells are edited through
// SteeringRowDelegate's persistent editors; the two check cells are ordinary checkable items.
#include "steer/SteeringRule.h"

#include <QAbstractTableModel>

#include <vector>

namespace cs::ui {

class SteeringRowModel : public QAbstractTableModel {
    Q_OBJECT
public:
    enum Column { EnabledColumn, RowColumn, StrengthColumn, ModeColumn, PositionsColumn, ConditionalColumn,
                  RemoveColumn, ColumnCount };
    // Strength cells: Qt::EditRole is the multiple of the unit; ValueRole the absolute value.
    static constexpr int ValueRole = Qt::UserRole;
    // Mode cells: Qt::EditRole is the SteerMode as an int. Positions cells: PositionRange::toString().

    using QAbstractTableModel::QAbstractTableModel;

    // The unit a row's multiple is counted in: its feature's max activation, 1 when unknown.
    static double unitOf(const SteeringRule& r) { return r.unit > 0 ? r.unit : 1.0; }
    static double multipleOf(const SteeringRule& r) { return r.value / unitOf(r); }

    const std::vector<SteeringRule>& rules() const { return rules_; }
    const SteeringRule& rule(int row) const { return rules_.at(static_cast<size_t>(row)); }
    void setRules(std::vector<SteeringRule> rules);
    int addRule(SteeringRule rule);  // returns its row
    void removeRule(int row);
    void setMultiple(int row, double multiple);

    int rowCount(const QModelIndex& parent = {}) const override;
    int columnCount(const QModelIndex& parent = {}) const override;
    QVariant data(const QModelIndex& index, int role) const override;
    bool setData(const QModelIndex& index, const QVariant& value, int role) override;
    Qt::ItemFlags flags(const QModelIndex& index) const override;
    QVariant headerData(int section, Qt::Orientation o, int role) const override;

private:
    std::vector<SteeringRule> rules_;
};

// "res-L2 #123" or "vector NAME @hook": how a row is named on screen.
QString steeringRowTitle(const SteeringRule& r);

}  // namespace cs::ui
