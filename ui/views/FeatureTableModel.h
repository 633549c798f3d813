#pragma once
// Every feature of one SAE as a table (index, label, density, max activation; a score column
// for search results), straight over FeatureStore::summaries(): one row of plain data per
// feature and no widget per row, so a 16k-feature SAE scrolls like a short list. Sort and filter
// through a QSortFilterProxyModel (Qt::UserRole holds each cell's sort key).
#include "store/FeatureRecord.h"

#include <QAbstractTableModel>

#include <vector>

namespace cs::ui {

class FeatureTableModel : public QAbstractTableModel {
    Q_OBJECT
public:
    enum Column { IndexColumn, LabelColumn, DensityColumn, MaxColumn, ScoreColumn, ColumnCount };
    static constexpr int SortRole = Qt::UserRole;
    static constexpr int FeatureIndexRole = Qt::UserRole + 1;

    using QAbstractTableModel::QAbstractTableModel;

    void setSummaries(std::vector<FeatureSummary> summaries);
    // Shows only these features, in this order, with their scores; clearHits shows all again.
    void setHits(const std::vector<FeatureHit>& hits, const QString& scoreName);
    void clearHits();
    bool showingHits() const { return hitMode_; }
    const std::vector<FeatureSummary>& summaries() const { return summaries_; }
    // The summary of feature `index`, or null.
    const FeatureSummary* summary(long index) const;
    void updateLabel(long index, const QString& label, bool isAuto);

    int rowCount(const QModelIndex& parent = {}) const override;
    int columnCount(const QModelIndex& parent = {}) const override;
    QVariant data(const QModelIndex& index, int role) const override;
    QVariant headerData(int section, Qt::Orientation o, int role) const override;

private:
    struct Row {
        long summary;  // index into summaries_
        double score;
    };
    std::vector<FeatureSummary> summaries_;
    std::vector<Row> rows_;
    bool hitMode_ = false;
    QString scoreName_;
};

}  // namespace cs::ui
