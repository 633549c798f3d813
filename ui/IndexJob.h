#pragma once
// Indexing a corpus into a feature store in the background (core/store/FeatureIndexer.h), on a
// thread of its own with its own copy of the model and SAEs: prompt runs on the session's worker
// stay responsive meanwhile. Progress and the end are reported as signals on the GUI thread;
// cancel() stops after the batch in flight, and running the same request again resumes.
#include <QObject>
#include <QString>
#include <QStringList>

#include <atomic>
#include <memory>
#include <thread>

namespace cs::ui {

struct IndexRequest {
    QString dbPath;
    QString modelDir;      // a directory; "demo" is resolved (and recorded as "demo")
    QStringList saeIds;    // as the session names them (folder names)
    QStringList saePaths;  // saePaths[i] is saeIds[i]
    QString corpusPath;    // .txt / .jsonl; empty with generateDocuments > 0
    long generateDocuments = 0;
    long maxTokens = 1000000;
};

class IndexJob : public QObject {
    Q_OBJECT
public:
    explicit IndexJob(QObject* parent = nullptr);
    ~IndexJob() override;  // cancels and waits

    // False (and nothing started) while another indexing runs.
    bool start(const IndexRequest& request);
    void cancel();
    bool isRunning() const { return running_; }
    const IndexRequest& request() const { return request_; }

Q_SIGNALS:
    void progress(const QString& phase, qint64 done, qint64 total);
    // error empty on success; cancelled: stopped early by cancel() (the store resumes next time).
    void finished(const QString& dbPath, const QString& error, bool cancelled, bool resumed);

private:
    IndexRequest request_;
    bool running_ = false;
    std::shared_ptr<std::atomic<bool>> cancel_;
    std::thread thread_;
};

}  // namespace cs::ui
