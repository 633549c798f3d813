#include "TestSupport.h"

#include "util/Error.h"

#include <QDir>
#include <QTemporaryDir>
#include <QtTest>

#include <cstdio>
#include <fstream>
#include <sstream>
#include <sys/stat.h>
#include <sys/wait.h>

namespace cstest {

std::string python() {
    struct stat st {};
    if (::stat("/usr/bin/python3", &st) == 0) return "/usr/bin/python3";
    return "python3";
}

std::string sourceDir() { return CS_SOURCE_DIR; }

std::string sharedDir() {
    std::string d = CS_SHARED_DIR;
    struct stat st {};
    if (::stat((d + "/README.md").c_str(), &st) != 0) return "";
    return d;
}

std::string makeTempDir(const std::string& tag) {
    // Kept for the life of the process: tests write models into them and read them back.
    static std::vector<std::unique_ptr<QTemporaryDir>> dirs;
    dirs.push_back(std::make_unique<QTemporaryDir>(QDir::tempPath() + "/cs-" +
                                                   QString::fromStdString(tag) + "-XXXXXX"));
    return dirs.back()->path().toStdString();
}

int run(const std::string& command, std::string* out) {
    FILE* p = ::popen(command.c_str(), "r");
    if (!p) return -1;
    std::string buf;
    char chunk[65536];
    size_t n;
    while ((n = std::fread(chunk, 1, sizeof chunk, p)) > 0) buf.append(chunk, n);
    int status = ::pclose(p);
    if (out) *out = buf;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

std::string shellQuote(const std::string& s) {
    std::string q = "'";
    for (char c : s) {
        if (c == '\'') q += "'\\''";
        else q += c;
    }
    return q + "'";
}

std::string runReference(const std::string& script, const std::string& args) {
    std::string out;
    const std::string cmd = python() + " " + shellQuote(sourceDir() + "/tests/reference/" + script) +
                            " " + args;
    int rc = run(cmd, &out);
    if (rc != 0) {
        QTest::qFail(("reference program failed (" + std::to_string(rc) + "): " + cmd).c_str(),
                     __FILE__, __LINE__);
        throw std::runtime_error("reference failed");
    }
    return out;
}

std::string readFile(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

void writeFile(const std::string& path, const std::string& content) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << content;
}

std::string byteChar(int b) {
    int moved = 0;
    for (int x = 0; x < b; ++x)
        if (!((x >= 0x21 && x <= 0x7E) || (x >= 0xA1 && x <= 0xAC) || x >= 0xAE)) ++moved;
    const bool keep = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
    const unsigned cp = keep ? b : 256 + moved;
    std::string s;
    if (cp < 0x80) s += static_cast<char>(cp);
    else s += static_cast<char>(0xC0 | (cp >> 6)), s += static_cast<char>(0x80 | (cp & 0x3F));
    return s;
}

void writeByteLevelTokenizer(const std::string& dir) {
    std::string vocab = "{";
    for (int b = 0; b < 256; ++b) {
        std::string piece;
        for (char c : byteChar(b)) {
            if (c == '"' || c == '\\') piece += '\\';
            piece += c;
        }
        vocab += (b ? "," : "") + std::string("\"") + piece + "\":" + std::to_string(b);
    }
    writeFile(dir + "/vocab.json", vocab + "}");
    writeFile(dir + "/merges.txt", "#version: 0.2\n");
}

void expectOneLineError(const std::function<void()>& fn, const std::vector<std::string>& mustContain) {
    try {
        fn();
    } catch (const cs::Error& e) {
        const std::string msg = e.what();
        QVERIFY2(msg.find('\n') == std::string::npos, ("error is not one line: " + msg).c_str());
        for (const auto& s : mustContain)
            QVERIFY2(msg.find(s) != std::string::npos, ("error '" + msg + "' does not mention '" + s + "'").c_str());
        return;
    }
    std::string all;
    for (const auto& s : mustContain) all += " '" + s + "'";
    QFAIL(("no cs::Error thrown; expected one mentioning" + all).c_str());
}

}  // namespace cstest
