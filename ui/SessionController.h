#pragma once
// The thin async layer between views and core/: it owns the loaded model, runs loads and
// generations on a worker thread, and reports results with signals on the GUI thread. A newer
// request supersedes an older one (the stale result is dropped).
#include <QObject>
#include <QString>
#include <QStringList>

#include <atomic>
#include <memory>
#include <vector>

namespace cs {
class Transformer;
class Tokenizer;
}

namespace cs::ui {

struct GenerationResult {
    QStringList promptTokens;
    QStringList newTokens;
    QString text;
    double seconds = 0;
};

class SessionController : public QObject {
    Q_OBJECT
public:
    explicit SessionController(QObject* parent = nullptr);
    ~SessionController() override;

    void loadModel(const QString& dir);
    void generate(const QString& prompt, int maxNew, bool greedy, double temperature, quint64 seed);
    void cancel();
    bool hasModel() const { return model_ != nullptr; }
    QString modelSummary() const;

Q_SIGNALS:
    void modelLoaded(const QString& summary);
    void generated(const cs::ui::GenerationResult& result);
    void failed(const QString& message);
    void busyChanged(bool busy);

private:
    std::shared_ptr<Transformer> model_;
    std::shared_ptr<Tokenizer> tokenizer_;
    QString modelDir_;
    std::shared_ptr<std::atomic<int>> generation_;  // request counter: stale jobs see a newer value
};

}  // namespace cs::ui
