#include "tokenize/SentencePieceTokenizer.h"

#include "tokenize/SentencePieceBackend.h"
#include "util/Error.h"

#include <dlfcn.h>
#include <mutex>
#include <unistd.h>

namespace cs {

namespace {

std::string exeDir() {
    char buf[4096];
    ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
    if (n <= 0) return ".";
    std::string p(buf, static_cast<size_t>(n));
    return p.substr(0, p.rfind('/'));
}

// ASan's dlopen interceptor aborts on RTLD_DEEPBIND (google/sanitizers#611): a deep-bound library
// would find libc's malloc before ASan's. Our plug-in is built with ASan too, so libasan comes first
// in its own lookup scope and it and libsentencepiece still get ASan's allocator; libc's dlopen,
// reached past the interceptor, keeps the protobuf isolation the plug-in exists for.
void* openDeepBound(const char* path) {
#ifdef CS_SPM_NO_DEEPBIND
    // The fuzz build (tests/fuzz) links no LibTorch, so there is no second protobuf to keep apart.
    return ::dlopen(path, RTLD_NOW | RTLD_LOCAL);
#else
    const int flags = RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND;
#ifdef __SANITIZE_ADDRESS__
    using Dlopen = void* (*)(const char*, int);
    static const Dlopen libcDlopen = [] {
        void* libc = ::dlopen("libc.so.6", RTLD_NOW | RTLD_NOLOAD);
        return libc ? reinterpret_cast<Dlopen>(::dlsym(libc, "dlopen")) : nullptr;
    }();
    if (libcDlopen) return libcDlopen(path, flags);
#endif
    return ::dlopen(path, flags);
#endif
}

// Finds and opens the plug-in once: beside the executable, in the install's lib directory, or
// where the build put it.
void* pluginHandle(std::string* tried) {
    static std::once_flag once;
    static void* handle = nullptr;
    static std::string searched;
    std::call_once(once, [] {
        const std::string name = "libcircuitscope_spm.so";
        std::vector<std::string> candidates;
        if (const char* env = std::getenv("CIRCUITSCOPE_SPM_PLUGIN")) candidates.push_back(env);
        const std::string dir = exeDir();
        candidates.push_back(dir + "/" + name);
        candidates.push_back(dir + "/../lib/circuitscope/" + name);
#ifdef CS_SPM_PLUGIN_BUILD_PATH
        candidates.push_back(CS_SPM_PLUGIN_BUILD_PATH);
#endif
        for (const auto& c : candidates) {
            searched += (searched.empty() ? "" : ", ") + c;
            if (::access(c.c_str(), R_OK) != 0) continue;
            void* h = openDeepBound(c.c_str());
            if (!h) {
                searched += std::string(" (") + ::dlerror() + ")";
                continue;
            }
            handle = h;
            break;
        }
    });
    *tried = searched;
    return handle;
}

CsCreateSentencePiece pluginFactory(std::string* tried) {
    void* h = pluginHandle(tried);
    return h ? reinterpret_cast<CsCreateSentencePiece>(::dlsym(h, "cs_create_sentencepiece")) : nullptr;
}

}  // namespace

SentencePieceTokenizer::SentencePieceTokenizer(const std::string& modelPath) : path_(modelPath) {
    std::string tried;
    CsCreateSentencePiece create = pluginFactory(&tried);
    if (!create) failIn(modelPath, "cannot read SentencePiece models: plug-in libcircuitscope_spm.so not found (looked in " + tried + ")");
    int status = kSpmOk;
    sp_.reset(create(modelPath.c_str(), &status));
    if (!sp_) {
        // libsentencepiece's own messages point into its sources; say what the user can act on.
        if (status == kSpmNotFound) failIn(modelPath, "cannot open (missing file?)");
        failIn(modelPath, "not a valid SentencePiece model file");
    }
    if (sp_->size() <= 0) failIn(modelPath, "SentencePiece model has no pieces");
    bosId_ = sp_->bosId();
    eosId_ = sp_->eosId();
    prependBos_ = bosId_ >= 0;
}

SentencePieceTokenizer::~SentencePieceTokenizer() = default;

std::vector<int> SentencePieceTokenizer::encode(const std::string& text) const {
    std::vector<int> ids;
    std::string error;
    if (!sp_->encode(text, &ids, &error)) failIn(path_, "encoding failed: " + error);
    return ids;
}

std::string SentencePieceTokenizer::decode(const std::vector<int>& ids) const {
    std::vector<int> known;
    known.reserve(ids.size());
    for (int id : ids)
        if (id >= 0 && id < vocabSize()) known.push_back(id);  // libsentencepiece rejects the rest
    std::string text, error;
    if (!sp_->decode(known, &text, &error)) failIn(path_, "decoding failed: " + error);
    return text;
}

std::string SentencePieceTokenizer::piece(int id) const {
    return id >= 0 && id < vocabSize() ? sp_->idToPiece(id) : std::string();
}

std::string SentencePieceTokenizer::tokenText(int id) const {
    if (id < 0 || id >= vocabSize()) return {};
    const std::string p = sp_->idToPiece(id);
    if (sp_->isControl(id)) return p;
    std::string text = decode({id});
    // Decoding strips the word-initial space of the first piece; a chip label should show it.
    static const std::string kSpaceMark = "\xE2\x96\x81";  // U+2581
    if (p.compare(0, kSpaceMark.size(), kSpaceMark) == 0 && (text.empty() || text[0] != ' '))
        text.insert(0, " ");
    return text;
}

int SentencePieceTokenizer::vocabSize() const { return sp_->size(); }

int SentencePieceTokenizer::idOf(const std::string& piece) const {
    const int id = sp_->pieceToId(piece);
    // Unknown pieces come back as the unk id; only an exact round trip counts.
    return id >= 0 && id < vocabSize() && sp_->idToPiece(id) == piece ? id : -1;
}

void trainSentencePiece(const std::string& args) {
    std::string tried, error;
    void* h = pluginHandle(&tried);
    auto train = h ? reinterpret_cast<CsTrainSentencePiece>(::dlsym(h, "cs_train_sentencepiece")) : nullptr;
    if (!train) throw Error("cannot train SentencePiece: plug-in libcircuitscope_spm.so not found (looked in " + tried + ")");
    if (!train(args.c_str(), &error)) throw Error("SentencePiece training failed: " + error);
}

}  // namespace cs
