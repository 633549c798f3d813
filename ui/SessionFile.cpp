#include "ui/SessionFile.h"

#include "steer/SteeringJson.h"

#include <QFile>
#include <QJsonDocument>
#include <QJsonObject>
#include <QSaveFile>

namespace cs::ui {

namespace {
constexpr const char* kFormat = "circuitscope-session";
constexpr int kVersion = 1;
}  // namespace

QString saveSessionFile(const SessionState& s, const QString& path) {
    QJsonObject sel{{"position", s.selection.position}, {"layer", s.selection.layer}, {"head", s.selection.head},
                    {"lens_token", s.selection.lensToken}};
    QJsonObject o{{"format", kFormat},
                  {"version", kVersion},
                  {"model", s.modelDir},
                  {"prompt", s.settings.prompt},
                  {"max_new_tokens", s.settings.maxNewTokens},
                  {"greedy", s.settings.greedy},
                  {"temperature", s.settings.temperature},
                  {"seed", QString::number(s.settings.seed)},  // 64-bit: a JSON double would round it
                  {"selection", sel},
                  {"theme", s.theme},
                  {"window_state", QString::fromLatin1(s.windowState.toBase64())}};
    if (!s.steering.rules.empty() || s.steering.condition) {
        try {
            // The preset format, inside the session: one parser reads both.
            const std::string j = steeringPlanToJson(s.steering).dump();
            o.insert("steering", QJsonDocument::fromJson(QByteArray::fromStdString(j)).object());
        } catch (const std::exception& e) {
            return QObject::tr("%1: cannot save the steering rows (%2)").arg(path, QString::fromUtf8(e.what()));
        }
    }
    QSaveFile f(path);  // atomic: an interrupted save never truncates an existing session
    if (!f.open(QIODevice::WriteOnly)) return QObject::tr("%1: cannot write (%2)").arg(path, f.errorString());
    f.write(QJsonDocument(o).toJson());
    if (!f.commit()) return QObject::tr("%1: cannot write (%2)").arg(path, f.errorString());
    return {};
}

QString loadSessionFile(const QString& path, SessionState& s) {
    QFile f(path);
    if (!f.open(QIODevice::ReadOnly)) return QObject::tr("%1: cannot open (%2)").arg(path, f.errorString());
    QJsonParseError err;
    const QJsonDocument doc = QJsonDocument::fromJson(f.readAll(), &err);
    if (doc.isNull() || !doc.isObject())
        return QObject::tr("%1: not a session file (JSON error: %2)").arg(path, err.errorString());
    const QJsonObject o = doc.object();
    if (o.value("format").toString() != kFormat) return QObject::tr("%1: not a Circuitscope session (field 'format')").arg(path);
    if (o.value("version").toInt() > kVersion)
        return QObject::tr("%1: session version %2 is newer than this Circuitscope reads (%3)").arg(path).arg(o.value("version").toInt()).arg(kVersion);
    auto need = [&](const char* key) { return o.contains(key); };
    for (const char* key : {"model", "prompt"})
        if (!need(key) || !o.value(key).isString()) return QObject::tr("%1: missing or invalid field '%2'").arg(path, key);
    s.modelDir = o.value("model").toString();
    s.settings.prompt = o.value("prompt").toString();
    s.settings.maxNewTokens = o.value("max_new_tokens").toInt(32);
    s.settings.greedy = o.value("greedy").toBool(true);
    s.settings.temperature = o.value("temperature").toDouble(1.0);
    bool ok = true;
    s.settings.seed = o.value("seed").toString("0").toULongLong(&ok);
    if (!ok) return QObject::tr("%1: invalid field 'seed'").arg(path);
    const QJsonObject sel = o.value("selection").toObject();
    s.selection.position = sel.value("position").toInt(-1);
    s.selection.layer = sel.value("layer").toInt(0);
    s.selection.head = sel.value("head").toInt(0);
    s.selection.lensToken = sel.value("lens_token").toInt(-1);
    s.theme = o.value("theme").toString("light");
    s.windowState = QByteArray::fromBase64(o.value("window_state").toString().toLatin1());
    s.steering = SteeringPlan();
    if (o.contains("steering")) {
        if (!o.value("steering").isObject()) return QObject::tr("%1: invalid field 'steering'").arg(path);
        try {
            const QByteArray j = QJsonDocument(o.value("steering").toObject()).toJson(QJsonDocument::Compact);
            s.steering = steeringPlanFromJson(nlohmann::json::parse(j.toStdString()), path.toStdString() + ": steering");
        } catch (const std::exception& e) {
            return QString::fromUtf8(e.what()).section('\n', 0, 0);
        }
    }
    return {};
}

}  // namespace cs::ui
