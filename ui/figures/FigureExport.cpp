#include "ui/figures/FigureExport.h"

#include "ui/figures/FigureSource.h"

#include <QFile>
#include <QFileInfo>
#include <QImage>
#include <QPageSize>
#include <QPdfWriter>
#include <QSaveFile>
#include <QSvgGenerator>
#include "ui/Qcp.h"

namespace cs::ui {

namespace {
// Raster figures at 3x the on-screen size: about 300 dpi for a figure sized for a 100 dpi screen.
constexpr int kPngScale = 3;
}  // namespace

QString figureFormat(const QString& path) {
    const QString ext = QFileInfo(path).suffix().toLower();
    return ext == "png" || ext == "svg" || ext == "pdf" ? ext : QString();
}

QString exportFigure(FigureSource& source, const QString& path) {
    const QString format = figureFormat(path);
    if (format.isEmpty()) return QObject::tr("%1: unknown figure format (use .png, .svg or .pdf)").arg(path);
    const QSize size = source.figureSize();
    if (size.isEmpty()) return QObject::tr("%1: nothing to export yet (run a prompt first)").arg(path);
    // Written to a temporary file and renamed on success: a failed export never leaves half a file
    // over an existing figure.
    const QString tmp = path + ".part";
    {  // The usual reasons (no such folder, no permission) said before any painting.
        QFile probe(tmp);
        if (!probe.open(QIODevice::WriteOnly))
            return QObject::tr("%1: could not write the figure: %2").arg(path, probe.errorString());
    }
    bool ok = false;
    // Vector devices: QCustomPlot must not cache text or plots as pixmaps there.
    auto paintVector = [&](QPaintDevice* device) {
        QCPPainter painter;
        if (!painter.begin(device)) return false;
        painter.setMode(QCPPainter::pmVectorized);
        painter.setMode(QCPPainter::pmNoCaching);
        source.paintFigure(painter, size);
        return painter.end();
    };
    if (format == "png") {
        QImage image(size * kPngScale, QImage::Format_ARGB32_Premultiplied);
        image.setDevicePixelRatio(kPngScale);
        image.fill(Qt::white);
        {
            QCPPainter painter(&image);
            painter.setRenderHint(QPainter::Antialiasing);
            painter.setRenderHint(QPainter::TextAntialiasing);
            source.paintFigure(painter, size);
        }
        ok = image.save(tmp, "PNG");
    } else if (format == "svg") {
        QSvgGenerator svg;
        svg.setFileName(tmp);
        svg.setSize(size);
        svg.setViewBox(QRect(QPoint(0, 0), size));
        svg.setResolution(96);
        svg.setTitle(source.figureName());
        svg.setDescription(QStringLiteral("Circuitscope figure"));
        ok = paintVector(&svg);
    } else {
        QPdfWriter pdf(tmp);
        pdf.setResolution(96);
        pdf.setPageSize(QPageSize(QSizeF(size) * 72.0 / 96.0, QPageSize::Point, QString(), QPageSize::ExactMatch));
        pdf.setPageMargins(QMarginsF(0, 0, 0, 0));
        pdf.setTitle(source.figureName());
        pdf.setCreator(QStringLiteral("Circuitscope"));
        ok = paintVector(&pdf);
    }
    if (!ok || !QFileInfo(tmp).exists() || QFileInfo(tmp).size() == 0) {
        QFile::remove(tmp);
        return QObject::tr("%1: could not write the figure: the %2 writer failed on %3 (is the disk full?)")
            .arg(path, format.toUpper(), tmp);
    }
    QFile::remove(path);
    QFile written(tmp);
    if (!written.rename(path)) {
        const QString why = written.errorString();
        QFile::remove(tmp);
        return QObject::tr("%1: could not write the figure: %2").arg(path, why);
    }
    return {};
}

}  // namespace cs::ui
