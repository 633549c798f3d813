#pragma once
// Every feature of one indexed SAE in a sortable, filterable table (FeatureTableModel over the
// open store), and four searches: by label text (FTS5), by token (features whose top examples
// peak on it), by text (which features fire most on a passage, run live on the session's model
// thread) and by contrast (two prompt files: features that fire more on the first). Double-click
// a row to open its dashboard; S or its context menu adds it to the Steering dock.
#include "store/FeatureRecord.h"
#include "ui/SessionController.h"

#include <QWidget>

class QComboBox;
class QLabel;
class QLineEdit;
class QPushButton;
class QSortFilterProxyModel;
class QTableView;

namespace cs::ui {

class FeatureTableModel;

class FeatureBrowser : public QWidget {
    Q_OBJECT
public:
    enum class Mode { Label, Token, Text, Contrast };

    explicit FeatureBrowser(SessionController* session, QWidget* parent = nullptr);

    QComboBox* saePicker() const { return sae_; }
    QLineEdit* filterEdit() const { return filter_; }
    QComboBox* modePicker() const { return mode_; }
    QLineEdit* queryEdit() const { return query_; }
    QTableView* table() const { return table_; }
    FeatureTableModel* model() const { return model_; }
    QSortFilterProxyModel* proxy() const { return proxy_; }
    QLabel* statusLabel() const { return status_; }
    QString currentSae() const;
    void setContrastFiles(const QString& a, const QString& b);
    void search();       // runs the current mode's search (live ones on the model thread)
    void clearSearch();

Q_SIGNALS:
    void openFeature(const QString& saeId, long index);
    void steerFeature(const QString& saeId, long index);  // S or the context menu on a row
    void searchFinished();  // results (or an error) are in the table and status line

private:
    void reloadSaes();
    void reloadFeatures();
    void showHits(const std::vector<FeatureHit>& hits, const QString& scoreName);
    void updateModeWidgets();
    void updateStatus();

    SessionController* session_;
    QComboBox* sae_;
    QLineEdit* filter_;
    QComboBox* mode_;
    QLineEdit* query_;
    QPushButton* fileA_;
    QPushButton* fileB_;
    QPushButton* searchButton_;
    QPushButton* clearButton_;
    QTableView* table_;
    FeatureTableModel* model_;
    QSortFilterProxyModel* proxy_;
    QLabel* status_;
    QString contrastA_, contrastB_;
    QString message_;
    int searchTicket_ = 0;
};

}  // namespace cs::ui
