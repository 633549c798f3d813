#pragma once
// Token texts by id, asked of the tokenizer once each: the same few hundred ids recur across
// layers and positions, and a SentencePiece piece costs a decode call. Shared by an analysis and
// its logit lens, whose cells are filled on whichever thread asks for them, hence the lock.
#include "tokenize/Tokenizer.h"

#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

namespace cs {

class TokenTexts {
public:
    explicit TokenTexts(std::shared_ptr<const Tokenizer> tok) : tok_(std::move(tok)) {}
    // A copy: the map may grow (and rehash) on another thread while the caller reads it.
    std::string operator()(int id) {
        std::lock_guard<std::mutex> lock(mutex_);
        auto it = texts_.find(id);
        if (it == texts_.end()) it = texts_.emplace(id, tok_->tokenText(id)).first;
        return it->second;
    }

private:
    std::shared_ptr<const Tokenizer> tok_;
    std::mutex mutex_;
    std::unordered_map<int, std::string> texts_;
};

}  // namespace cs
