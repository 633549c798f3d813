#pragma once
// Small helpers shared by the test executables: temp dirs, the reference Python, ../shared.
#include <functional>
#include <string>
#include <vector>

namespace cstest {

// Debian's interpreter, which has python3-torch and python3-regex (a pyenv python may not).
std::string python();
std::string sourceDir();
// ../shared, or "" when it is absent.
std::string sharedDir();
// A fresh directory under the system temp dir, removed by the OS / test harness.
std::string makeTempDir(const std::string& tag);
// Runs a command; returns its exit status and fills stdout (stderr goes to stderr).
int run(const std::string& command, std::string* out = nullptr);
// Runs `python3 tests/reference/<script> args...`; fails the test on a non-zero exit.
std::string runReference(const std::string& script, const std::string& args);
std::string readFile(const std::string& path);
void writeFile(const std::string& path, const std::string& content);
std::string shellQuote(const std::string& s);
// GPT-2's bytes_to_unicode for one byte, written again here so that synthetic tokenizer files do
// not depend on the code under test.
std::string byteChar(int b);
// Runs `fn`, which must throw cs::Error with a one-line message holding every string of
// `mustContain`; fails the current test otherwise.
void expectOneLineError(const std::function<void()>& fn, const std::vector<std::string>& mustContain);
// Writes vocab.json + merges.txt of a 256-piece byte-level BPE (no merges) into dir.
void writeByteLevelTokenizer(const std::string& dir);

}  // namespace cstest
