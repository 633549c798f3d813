// The only translation unit that sees libsentencepiece; built as a plug-in loaded with
// RTLD_DEEPBIND (see SentencePieceBackend.h for why).
#include "tokenize/SentencePieceBackend.h"

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
    auto b = new Backend();
    const auto st = b->sp.Load(path);
    if (!st.ok()) {
        *status = st.code() == sentencepiece::util::StatusCode::kNotFound ? cs::kSpmNotFound : cs::kSpmInvalid;
        delete b;
        return nullptr;
    }
    *status = cs::kSpmOk;
    return b;
}

extern "C" __attribute__((visibility("default"))) bool cs_train_sentencepiece(const char* args,
                                                                             std::string* error) {
    const auto st = sentencepiece::SentencePieceTrainer::Train(args);
    if (!st.ok() && error) *error = st.ToString();
    return st.ok();
}
