#include "tokenize/ContinuationText.h"

namespace cs {

std::string continuationText(const Tokenizer& tok, const std::vector<int>& prompt, const std::vector<int>& continuation) {
    std::vector<int> shown;
    for (int id : continuation)
        if (id != tok.bosId() && id != tok.eosId()) shown.push_back(id);
    if (shown.empty()) return {};
    const std::string before = tok.decode(prompt);
    std::vector<int> all = prompt;
    all.insert(all.end(), shown.begin(), shown.end());
    const std::string whole = tok.decode(all);
    if (whole.size() >= before.size() && whole.compare(0, before.size(), before) == 0) return whole.substr(before.size());
    return tok.decode(shown);  // a prompt ending mid-character: its last bytes merge with the next
}

std::string continuationText(const Tokenizer& tok, const std::vector<long>& prompt, const std::vector<long>& continuation) {
    return continuationText(tok, std::vector<int>(prompt.begin(), prompt.end()),
                            std::vector<int>(continuation.begin(), continuation.end()));
}

}  // namespace cs
