#include "ui/IndexCorpusDialog.h"

#include <QDialogButtonBox>
#include <QFileDialog>
#include <QFileInfo>
#include <QFormLayout>
#include <QHBoxLayout>
#include <QLabel>
#include <QLineEdit>
#include <QPushButton>
#include <QSettings>
#include <QSpinBox>
#include <QVBoxLayout>

namespace cs::ui {

IndexCorpusDialog::IndexCorpusDialog(const QString& modelName, const QStringList& saes, QWidget* parent) : QDialog(parent) {
    setWindowTitle(tr("Index a corpus"));
    setObjectName("indexCorpusDialog");
    QSettings settings;
    auto* v = new QVBoxLayout(this);
    auto* intro = new QLabel(tr("Runs <b>%1</b> over a corpus once and records, for every feature of %2, its top "
                                "examples, activation intervals, histogram and density. It runs in the background; "
                                "cancel at any time and start it again with the same choices to resume.")
                                 .arg(modelName.toHtmlEscaped(), saes.isEmpty() ? tr("the attached SAEs") : saes.join(", ").toHtmlEscaped()),
                             this);
    intro->setWordWrap(true);
    v->addWidget(intro);
    auto* form = new QFormLayout;
    auto pathRow = [this](QLineEdit*& edit, const QString& button, std::function<void()> pick) {
        auto* w = new QWidget(this);
        auto* h = new QHBoxLayout(w);
        h->setContentsMargins(0, 0, 0, 0);
        edit = new QLineEdit(w);
        auto* b = new QPushButton(button, w);
        h->addWidget(edit, 1);
        h->addWidget(b);
        connect(b, &QPushButton::clicked, this, pick);
        connect(edit, &QLineEdit::textChanged, this, &IndexCorpusDialog::validate);
        return w;
    };
    form->addRow(tr("Corpus"), pathRow(corpus_, tr("Choose..."), [this] {
        const QString p = QFileDialog::getOpenFileName(this, tr("Corpus"), QFileInfo(corpus_->text()).path(),
                                                       tr("Text or JSON lines (*.txt *.jsonl);;All files (*)"));
        if (!p.isEmpty()) corpus_->setText(p);
    }));
    form->addRow(tr("Feature store"), pathRow(db_, tr("Save as..."), [this] {
        QString p = QFileDialog::getSaveFileName(this, tr("Feature store"), db_->text(), tr("Feature stores (*.db)"),
                                                 nullptr, QFileDialog::DontConfirmOverwrite);
        if (p.isEmpty()) return;
        if (QFileInfo(p).suffix().isEmpty()) p += ".db";
        db_->setText(p);
    }));
    tokens_ = new QSpinBox(this);
    tokens_->setRange(1000, 2000000000);
    tokens_->setSingleStep(100000);
    tokens_->setGroupSeparatorShown(true);
    tokens_->setSuffix(tr(" tokens"));
    form->addRow(tr("Token budget"), tokens_);
    v->addLayout(form);
    error_ = new QLabel(this);
    error_->setStyleSheet("color: #cf222e");
    v->addWidget(error_);
    buttons_ = new QDialogButtonBox(QDialogButtonBox::Ok | QDialogButtonBox::Cancel, this);
    buttons_->button(QDialogButtonBox::Ok)->setText(tr("Index"));
    connect(buttons_, &QDialogButtonBox::accepted, this, &QDialog::accept);
    connect(buttons_, &QDialogButtonBox::rejected, this, &QDialog::reject);
    v->addWidget(buttons_);
    corpus_->setText(settings.value("index/corpus").toString());
    db_->setText(settings.value("index/db").toString());
    tokens_->setValue(settings.value("index/tokens", 1000000).toInt());
    resize(620, sizeHint().height());
    validate();
}

QString IndexCorpusDialog::corpusPath() const { return corpus_->text().trimmed(); }
QString IndexCorpusDialog::dbPath() const { return db_->text().trimmed(); }
long IndexCorpusDialog::maxTokens() const { return tokens_->value(); }
void IndexCorpusDialog::setCorpusPath(const QString& p) { corpus_->setText(p); }
void IndexCorpusDialog::setDbPath(const QString& p) { db_->setText(p); }
void IndexCorpusDialog::setMaxTokens(long t) { tokens_->setValue(static_cast<int>(t)); }

void IndexCorpusDialog::validate() {
    QString why;
    const QFileInfo corpus(corpusPath());
    if (corpusPath().isEmpty()) why = tr("Choose a corpus (.txt or .jsonl).");
    else if (!corpus.isFile()) why = tr("%1: no such file").arg(corpusPath());
    else if (dbPath().isEmpty()) why = tr("Choose where the feature store goes (.db).");
    error_->setText(why);
    buttons_->button(QDialogButtonBox::Ok)->setEnabled(why.isEmpty());
}

void IndexCorpusDialog::accept() {
    QSettings settings;
    settings.setValue("index/corpus", corpusPath());
    settings.setValue("index/db", dbPath());
    settings.setValue("index/tokens", tokens_->value());
    QDialog::accept();
}

}  // namespace cs::ui
