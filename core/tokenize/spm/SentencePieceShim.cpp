// The only translation unit that sees libsentencepiece; built as a plug-in loaded with
// RTLD_DEEPBIND (see SentencePieceBackend.h for why).
#include "tokenize/SentencePieceBackend.h"

#include <memory>

#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>

namespace {

class Backend final : public cs::SentencePieceBackend {
public:
    sentencepiece::SentencePieceProcessor sp;

    bool encode(const std::string& text, std::vector<int>* ids, std::string* error) const override {
        const auto st = sp.Encode(text, ids);
        if (!st.ok() && error) *error = st.ToString();
        return st.ok();
    }
    bool decode(const std::vector<int>& ids, std::string* text, std::string* error) const override {
        const auto st = sp.Decode(ids, text);
        if (!st.ok() && error) *error = st.ToString();
        return st.ok();
    }
    std::string idToPiece(int id) const override { return sp.IdToPiece(id); }
    int pieceToId(const std::string& piece) const override { return sp.PieceToId(piece); }
    bool isControl(int id) const override { return sp.IsControl(id); }
    int size() const override { return sp.GetPieceSize(); }
    int bosId() const override { return sp.bos_id(); }
    int eosId() const override { return sp.eos_id(); }
};

}  // namespace

extern "C" __attribute__((visibility("default"))) cs::SentencePieceBackend* cs_create_sentencepiece(
    const char* path, int* status) {
    try {
        auto b = std::make_unique<Backend>();
        const auto st = b->sp.Load(path);
        if (!st.ok()) {
            *status = st.code() == sentencepiece::util::StatusCode::kNotFound ? cs::kSpmNotFound : cs::kSpmInvalid;
            return nullptr;
        }
        *status = cs::kSpmOk;
        return b.release();
    } catch (...) {
        // libsentencepiece throws on some corrupt models (darts_clone: "zero-length key", found by
        // fuzzing); an exception must not cross this C boundary, nor leak the backend.
        *status = cs::kSpmInvalid;
        return nullptr;
    }
}

extern "C" __attribute__((visibility("default"))) bool cs_train_sentencepiece(const char* args,
                                                                             std::string* error) {
    const auto st = sentencepiece::SentencePieceTrainer::Train(args);
    if (!st.ok() && error) *error = st.ToString();
    return st.ok();
}
