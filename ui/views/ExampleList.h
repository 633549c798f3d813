#pragma once
// A dashboard's examples: windows of text painted token by token, each token shaded by the
// feature's activation there (one scale for the whole list: the feature's max) and the example's
// max token outlined; headings between groups (activation intervals). Click an example to use its
// text. The same painting serves the screen and exported figures.
#include "store/FeatureRecord.h"

#include <QString>
#include <QWidget>

#include <vector>

class QPainter;

namespace cs::ui {

struct ViewColors;

class ExampleList : public QWidget {
    Q_OBJECT
public:
    struct Item {
        QString heading;          // a heading row when non-empty
        FeatureExample example;   // otherwise this
    };

    explicit ExampleList(QWidget* parent = nullptr);

    void setItems(std::vector<Item> items, float scaleMax);
    const std::vector<Item>& items() const { return items_; }
    int itemAt(const QPoint& p) const;  // an example's item index, -1 elsewhere
    QRect itemRect(int item) const;

    // Laid out at `width`: total height; paint draws the same layout (screen and figures).
    int heightAt(int width) const;
    void paintAt(QPainter& p, int width, const ViewColors& c) const;

    // A piece as shown in running text: the tokenizer's space markers (SentencePiece's U+2581,
    // byte-level BPE's U+0120) as spaces, a newline as a return arrow.
    static QString displayPiece(const std::string& piece);

    bool hasHeightForWidth() const override { return true; }
    int heightForWidth(int w) const override { return heightAt(w); }
    QSize sizeHint() const override { return {600, heightAt(600)}; }

Q_SIGNALS:
    void exampleClicked(int item);

protected:
    void paintEvent(QPaintEvent*) override;
    void mousePressEvent(QMouseEvent*) override;
    void mouseMoveEvent(QMouseEvent*) override;
    void leaveEvent(QEvent*) override;
    void resizeEvent(QResizeEvent*) override;
    bool event(QEvent*) override;

private:
    struct Placed {
        int item;
        QRectF rect;  // the whole item
        std::vector<QRectF> tokens;
    };
    std::vector<Placed> layout(int width) const;

    std::vector<Item> items_;
    std::vector<Placed> placed_;
    float scaleMax_ = 0;
    int hover_ = -1;
};

}  // namespace cs::ui
