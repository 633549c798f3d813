#pragma once
// The Diff dock's table: the features whose activations changed most between model A and model
// B (ModelDiff::features, already ranked), with their labels from the session's feature store.
#include "diff/ModelDiff.h"

#include <QAbstractTableModel>

#include <functional>
#include <vector>

namespace cs::ui {

class DiffFeatureModel : public QAbstractTableModel {
    Q_OBJECT
public:
    enum Column { SaeColumn, IndexColumn, LabelColumn, MeanAColumn, MeanBColumn, ChangeColumn, FiringColumn, ColumnCount };
    static constexpr int SortRole = Qt::UserRole;

    using LabelFn = std::function<QString(const std::string& saeId, long index)>;
    using QAbstractTableModel::QAbstractTableModel;

    void setFeatures(std::vector<FeatureShift> features, LabelFn label);
    const std::vector<FeatureShift>& features() const { return features_; }
    void refreshLabels();

    int rowCount(const QModelIndex& parent = {}) const override;
    int columnCount(const QModelIndex& parent = {}) const override;
    QVariant data(const QModelIndex& index, int role) const override;
    QVariant headerData(int section, Qt::Orientation o, int role) const override;

private:
    std::vector<FeatureShift> features_;
    std::vector<QString> labels_;
    LabelFn label_;
};

}  // namespace cs::ui
