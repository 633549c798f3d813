#pragma once
// The interface between core/ and the libsentencepiece plug-in (spm/SentencePieceShim.cpp).
//
// Why a plug-in: Debian's libsentencepiece carries its own copy of protobuf-lite 3.14 and exports
// those symbols. In one symbol namespace with LibTorch's libprotobuf 3.21 one of them always loses:
// either LibTorch's ONNX protos call the lite copies and crash at start-up, or sentencepiece's
// version check aborts. Loading the plug-in with RTLD_LOCAL | RTLD_DEEPBIND lets sentencepiece
// bind to its own copy while the rest of the process keeps the real libprotobuf.
#include <string>
#include <vector>

namespace cs {

class SentencePieceBackend {
public:
    virtual ~SentencePieceBackend() = default;
    virtual bool encode(const std::string& text, std::vector<int>* ids, std::string* error) const = 0;
    virtual bool decode(const std::vector<int>& ids, std::string* text, std::string* error) const = 0;
    virtual std::string idToPiece(int id) const = 0;
    virtual int pieceToId(const std::string& piece) const = 0;
    virtual bool isControl(int id) const = 0;
    virtual int size() const = 0;
    virtual int bosId() const = 0;
    virtual int eosId() const = 0;
};

// Status codes of the factory.
enum SentencePieceLoadStatus { kSpmOk = 0, kSpmNotFound = 1, kSpmInvalid = 2 };

}  // namespace cs

extern "C" {
// Exported by the plug-in. Returns null and sets *status on failure.
typedef cs::SentencePieceBackend* (*CsCreateSentencePiece)(const char* path, int* status);
// Exported by the plug-in: SentencePieceTrainer::Train with its flag string. False + message on failure.
typedef bool (*CsTrainSentencePiece)(const char* args, std::string* error);
}
