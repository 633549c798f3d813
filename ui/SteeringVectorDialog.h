#pragma once
// "Add Vector...": a steering direction that is not an SAE feature, read from a file (.npy or
// .safetensors, [d]) or made from two prompts (mean activation difference at a hook, ActAdd/CAA).
// The dialog computes nothing on the GUI thread that takes long: the two-prompt vector is one
// forward pass per prompt, run through the session's worker.
#include "steer/SteeringRule.h"

#include <QDialog>

#include <optional>
#include <utility>
#include <vector>

class QComboBox;
class QDialogButtonBox;
class QLabel;
class QLineEdit;
class QTabWidget;

namespace cs::ui {

class SessionController;

class SteeringVectorDialog : public QDialog {
    Q_OBJECT
public:
    SteeringVectorDialog(SessionController* session, QWidget* parent = nullptr);
    // Shows the dialog; the vector row (mode add, value 1, unit 1) when the user accepts and the
    // vector could be made, nullopt on cancel. Errors are shown in the dialog, which stays open.
    static std::optional<SteeringRule> ask(SessionController* session, QWidget* parent);

    std::optional<SteeringRule> result() const { return result_; }

private:
    bool fromFile() const;
    void fillHooks();  // the hooks the current source can write to, the choice kept when it still fits
    void readFile();   // reads the chosen file's vector (small) when the path or tensor changed
    QString chosenHook() const;
    void make();       // OK: the file's vector at once, or the two prompts' on the worker
    void finish(const at::Tensor& direction, const QString& defaultName);

    SessionController* session_;
    std::optional<SteeringRule> result_;
    QLineEdit* name_ = nullptr;
    QTabWidget* source_ = nullptr;
    QLineEdit* path_ = nullptr;
    QLineEdit* tensor_ = nullptr;
    QLineEdit* promptA_ = nullptr;
    QLineEdit* promptB_ = nullptr;
    QComboBox* hook_ = nullptr;
    QLabel* error_ = nullptr;
    QDialogButtonBox* buttons_ = nullptr;
    std::vector<std::pair<QString, long>> hookWidths_;  // every hook with a feature axis, in forward order
    QString defaultHook_;
    at::Tensor fileVector_;
    QString readPath_, readTensor_;  // what fileVector_ was read from
};

}  // namespace cs::ui
