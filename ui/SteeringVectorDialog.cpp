#include "ui/SteeringVectorDialog.h"

#include "model/Transformer.h"
#include "sae/SaeAttachment.h"
#include "steer/SteeringVector.h"
#include "tokenize/TokenIdPrompt.h"
#include "tokenize/Tokenizer.h"
#include "ui/SessionController.h"

#include <QComboBox>
#include <QDialogButtonBox>
#include <QFileDialog>
#include <QFileInfo>
#include <QFormLayout>
#include <QHBoxLayout>
#include <QLabel>
#include <QLineEdit>
#include <QPushButton>
#include <QTabWidget>
#include <QVBoxLayout>

namespace cs::ui {

namespace {
QString firstLine(const std::exception& e) { return QString::fromUtf8(e.what()).section('\n', 0, 0); }
}  // namespace

SteeringVectorDialog::SteeringVectorDialog(SessionController* session, QWidget* parent)
    : QDialog(parent), session_(session) {
    setWindowTitle(tr("Add a steering vector"));
    setObjectName("steeringVectorDialog");
    auto* v = new QVBoxLayout(this);
    auto* top = new QFormLayout;
    name_ = new QLineEdit(this);
    name_->setObjectName("vectorName");
    name_->setPlaceholderText(tr("shown in the steering rows (default: the file or the two prompts)"));
    top->addRow(tr("Name"), name_);
    v->addLayout(top);

    source_ = new QTabWidget(this);
    source_->setObjectName("vectorSource");
    auto* fileTab = new QWidget(source_);
    auto* ff = new QFormLayout(fileTab);
    auto* pathRow = new QWidget(fileTab);
    auto* h = new QHBoxLayout(pathRow);
    h->setContentsMargins(0, 0, 0, 0);
    path_ = new QLineEdit(pathRow);
    path_->setObjectName("vectorFile");
    auto* browse = new QPushButton(tr("Choose..."), pathRow);
    h->addWidget(path_, 1);
    h->addWidget(browse);
    ff->addRow(tr("File"), pathRow);
    tensor_ = new QLineEdit(fileTab);
    tensor_->setObjectName("vectorTensor");
    tensor_->setPlaceholderText(tr("safetensors with several tensors: which one"));
    ff->addRow(tr("Tensor"), tensor_);
    auto* fileNote = new QLabel(tr("A .npy or .safetensors vector of shape [d] (or [1, d]), added at the hook below."), fileTab);
    fileNote->setWordWrap(true);
    ff->addRow(fileNote);
    source_->addTab(fileTab, tr("From file"));

    auto* promptTab = new QWidget(source_);
    auto* pf = new QFormLayout(promptTab);
    promptA_ = new QLineEdit(promptTab);
    promptA_->setObjectName("promptA");
    promptB_ = new QLineEdit(promptTab);
    promptB_->setObjectName("promptB");
    pf->addRow(tr("Prompt A"), promptA_);
    pf->addRow(tr("Prompt B"), promptB_);
    auto* promptNote = new QLabel(tr("The vector is mean(activation of A) - mean(activation of B) at the hook below, over "
                                     "each prompt's tokens (BOS left out): adding it pushes toward A."),
                                  promptTab);
    promptNote->setWordWrap(true);
    pf->addRow(promptNote);
    source_->addTab(promptTab, tr("From two prompts"));
    v->addWidget(source_);

    auto* bottom = new QFormLayout;
    hook_ = new QComboBox(this);
    hook_->setObjectName("vectorHook");
    bottom->addRow(tr("Hook"), hook_);
    v->addLayout(bottom);
    error_ = new QLabel(this);
    error_->setObjectName("vectorError");
    error_->setWordWrap(true);
    error_->setStyleSheet("color: #cf222e");
    v->addWidget(error_);
    buttons_ = new QDialogButtonBox(QDialogButtonBox::Ok | QDialogButtonBox::Cancel, this);
    buttons_->button(QDialogButtonBox::Ok)->setText(tr("Add"));
    connect(buttons_, &QDialogButtonBox::accepted, this, &SteeringVectorDialog::make);
    connect(buttons_, &QDialogButtonBox::rejected, this, &QDialog::reject);
    v->addWidget(buttons_);

    // Widths of every hook with a feature axis, read once: the chooser filters on them.
    if (auto model = session_ ? session_->model() : nullptr) {
        for (const HookPointInfo& p : model->hookPoints()) {
            try {
                hookWidths_.push_back({QString::fromStdString(p.name), hookWidth(*model, p.name, "steering vector")});
            } catch (const std::exception&) {
                // attention patterns and scores have no feature axis: nothing to steer there
            }
        }
        defaultHook_ = QStringLiteral("blocks.%1.hook_resid_post").arg(session_->layers() / 2);
    }

    connect(browse, &QPushButton::clicked, this, [this] {
        const QString p = QFileDialog::getOpenFileName(this, tr("Steering vector"), QFileInfo(path_->text()).path(),
                                                       tr("Vectors (*.npy *.safetensors);;All files (*)"));
        if (p.isEmpty()) return;
        path_->setText(p);
        readFile();
    });
    connect(path_, &QLineEdit::editingFinished, this, &SteeringVectorDialog::readFile);
    connect(tensor_, &QLineEdit::editingFinished, this, &SteeringVectorDialog::readFile);
    connect(source_, &QTabWidget::currentChanged, this, [this] {
        error_->clear();
        fillHooks();
    });
    fillHooks();
    if (hookWidths_.empty()) {
        error_->setText(tr("Open a model first (File > Open Model)."));
        buttons_->button(QDialogButtonBox::Ok)->setEnabled(false);
    }
    resize(560, sizeHint().height());
}

std::optional<SteeringRule> SteeringVectorDialog::ask(SessionController* session, QWidget* parent) {
    SteeringVectorDialog d(session, parent);
    if (d.exec() != QDialog::Accepted) return std::nullopt;
    return d.result();
}

bool SteeringVectorDialog::fromFile() const { return source_->currentIndex() == 0; }

void SteeringVectorDialog::fillHooks() {
    const QString keep = hook_->currentText();
    // A file's vector fits only hooks of its width; two prompts make a vector of the hook's own.
    const long want = fromFile() && fileVector_.defined() ? fileVector_.numel() : -1;
    hook_->clear();
    for (const auto& [name, width] : hookWidths_)
        if (want < 0 || width == want) hook_->addItem(QStringLiteral("%1   [%2]").arg(name).arg(width), name);
    int at = hook_->findData(keep.section(' ', 0, 0));
    if (at < 0) at = hook_->findData(defaultHook_);
    if (at >= 0) hook_->setCurrentIndex(at);
    if (want >= 0 && hook_->count() == 0)
        error_->setText(tr("%1: the vector has %2 values; no hook of this model is that wide")
                            .arg(path_->text().trimmed())
                            .arg(want));
}

void SteeringVectorDialog::readFile() {
    const QString path = path_->text().trimmed();
    if (path == readPath_ && tensor_->text().trimmed() == readTensor_) return;
    readPath_ = path;
    readTensor_ = tensor_->text().trimmed();
    fileVector_ = at::Tensor();
    error_->clear();
    if (!path.isEmpty()) {
        // A steering vector is d floats: reading it here costs less than a frame.
        try {
            fileVector_ = loadSteeringVector(path.toStdString(), readTensor_.toStdString());
        } catch (const std::exception& e) {
            error_->setText(firstLine(e));
        }
    }
    fillHooks();
}

QString SteeringVectorDialog::chosenHook() const { return hook_->currentData().toString(); }

void SteeringVectorDialog::finish(const at::Tensor& direction, const QString& defaultName) {
    SteeringRule r;
    r.vectorName = (name_->text().trimmed().isEmpty() ? defaultName : name_->text().trimmed()).toStdString();
    r.label = r.vectorName;
    r.hook = chosenHook().toStdString();
    r.direction = direction;
    r.mode = SteerMode::Add;
    r.value = 1;
    r.unit = 1;
    result_ = r;
    accept();
}

void SteeringVectorDialog::make() {
    error_->clear();
    auto widthOf = [this](const QString& hook) {
        for (const auto& [name, w] : hookWidths_)
            if (name == hook) return w;
        return -1L;
    };
    if (fromFile()) {
        readPath_.clear();  // read again: the file may have changed since
        readFile();         // names the file's error, or that no hook is as wide as its vector
        if (!fileVector_.defined()) {
            if (error_->text().isEmpty()) error_->setText(tr("Choose a .npy or .safetensors file."));
            return;
        }
        const QString hook = chosenHook();
        if (hook.isEmpty()) return;
        if (fileVector_.numel() != widthOf(hook)) {
            error_->setText(tr("%1: the vector has %2 values but hook %3 is %4 wide")
                                .arg(path_->text().trimmed())
                                .arg(fileVector_.numel())
                                .arg(hook)
                                .arg(widthOf(hook)));
            return;
        }
        QString name = QFileInfo(path_->text().trimmed()).completeBaseName();
        if (!readTensor_.isEmpty()) name += ":" + readTensor_;
        finish(fileVector_, name);
        return;
    }
    const QString hook = chosenHook();
    if (hook.isEmpty()) {
        error_->setText(tr("Choose a hook."));
        return;
    }
    const std::string a = promptA_->text().toStdString(), b = promptB_->text().toStdString();
    if (a.empty() || b.empty()) {
        error_->setText(tr("Give both prompts."));
        return;
    }
    if (!session_->model() || !session_->tokenizer()) {
        error_->setText(tr("The model has no tokenizer: a vector from prompts needs one."));
        return;
    }
    // One forward pass per prompt: on the session's worker, never here.
    buttons_->button(QDialogButtonBox::Ok)->setEnabled(false);
    error_->setStyleSheet("");
    error_->setText(tr("Computing the vector\u2026"));
    const std::string hookName = hook.toStdString();
    const QString defaultName = QStringLiteral("%1 - %2").arg(promptA_->text().left(16), promptB_->text().left(16));
    session_->runOnWorker(this, [this, a, b, hookName, defaultName](const Transformer& model, const Tokenizer& tok)
                                    -> std::function<void()> {
        auto ids = [&tok, &model](const std::string& text) {
            const std::vector<int> v = promptTokenIds(tok, text, static_cast<int>(model.config().vocabSize));
            return std::vector<long>(v.begin(), v.end());
        };
        const long skip = tok.prependBos() && tok.bosId() >= 0 ? 1 : 0;
        at::Tensor direction;
        QString error;
        try {
            direction = meanDifferenceVector(model, ids(a), ids(b), hookName, skip);
        } catch (const std::exception& e) {
            error = firstLine(e);
        }
        return [this, direction, error, defaultName] {
            buttons_->button(QDialogButtonBox::Ok)->setEnabled(true);
            error_->setStyleSheet("color: #cf222e");
            error_->setText(error);
            if (error.isEmpty()) finish(direction, defaultName);
        };
    });
}

}  // namespace cs::ui
