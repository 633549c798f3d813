#pragma once
// File > Index a Corpus: which text to index (.txt, documents separated by blank lines, or .jsonl
// with {"text"} / {"tokens"} per line), how many tokens, and where the store goes. Indexing then
// runs in the background (IndexJob) with the loaded model and its attached SAEs; running the
// same choice again after a cancel resumes it.
#include <QDialog>

class QLineEdit;
class QSpinBox;
class QLabel;
class QDialogButtonBox;

namespace cs::ui {

class IndexCorpusDialog : public QDialog {
    Q_OBJECT
public:
    // `saes`: what will be indexed, shown to the user.
    IndexCorpusDialog(const QString& modelName, const QStringList& saes, QWidget* parent = nullptr);

    QString corpusPath() const;
    QString dbPath() const;
    long maxTokens() const;
    void setCorpusPath(const QString& path);
    void setDbPath(const QString& path);
    void setMaxTokens(long tokens);

    void accept() override;  // remembers the choices

private:
    void validate();

    QLineEdit* corpus_;
    QLineEdit* db_;
    QSpinBox* tokens_;
    QLabel* error_;
    QDialogButtonBox* buttons_;
};

}  // namespace cs::ui
