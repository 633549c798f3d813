#include "cli/CliCommon.h"

#include "model/Generation.h"
#include "tokenize/ContinuationText.h"

#include <iostream>

namespace cs::cli {

void addGenerateCommand(CLI::App& app, CommandRunner& run) {
    auto* cmd = app.add_subcommand("generate", "Continue a prompt (greedy or sampled, KV cache)");
    struct Args {
        std::string model;
        PromptArgs prompt;
        SamplingOptions s;
        bool greedy = false;
        bool json = false;
        bool noCache = false;
        bool ignoreEos = false;
    };
    auto a = std::make_shared<Args>();
    cmd->add_option("--model", a->model, "Hugging Face model directory")->required();
    a->prompt.addTo(*cmd);
    cmd->add_option("--max-new", a->s.maxNewTokens, "Tokens to generate")->check(inRange(0, 100000));
    auto* g = cmd->add_flag("--greedy", a->greedy, "Always take the most likely token (default when no sampling option is given)");
    auto* temp = cmd->add_option("--temperature", a->s.temperature, "Sampling temperature")->check(greaterThan(0));
    cmd->add_option("--top-p", a->s.topP, "Nucleus sampling mass")->check(inRange(0.0, 1.0));
    cmd->add_option("--top-k", a->s.topK, "Sample among the K most likely tokens (default: all)")->default_str("")->check(atLeast(1));
    cmd->add_option("--seed", a->s.seed, "Sampling seed");
    cmd->add_flag("--no-kv-cache", a->noCache, "Recompute the whole sequence each step");
    cmd->add_flag("--ignore-eos", a->ignoreEos, "Keep going past the end-of-sequence token");
    cmd->add_flag("--json", a->json, "Print {\"prompt_tokens\":[...],\"new_tokens\":[...],\"text\":\"...\"}");
    g->excludes(temp);
    cmd->callback([a, temp, &run] {
        run = [a, temp] {
            LoadedModel m = loadModelAndTokenizer(a->model);
            std::vector<long> ids = promptIds(a->prompt, m);
            SamplingOptions s = a->s;
            s.greedy = a->greedy || temp->count() == 0;
            s.useKvCache = !a->noCache;
            s.stopAtEos = !a->ignoreEos;
            const bool stream = !a->json && m.tokenizer;
            std::vector<long> out = generate(*m.model, ids, s, nullptr, [&](long id) {
                if (stream) std::cout << m.tokenizer->tokenText(static_cast<int>(id)) << std::flush;
                return true;
            });
            std::string text;
            if (m.tokenizer) {
                text = continuationText(*m.tokenizer, ids, out);
            }
            if (a->json) {
                printJson({{"prompt_tokens", ids}, {"new_tokens", out}, {"text", text}});
            } else if (stream) {
                std::cout << "\n";
            } else {
                for (size_t i = 0; i < out.size(); ++i) std::cout << (i ? "," : "") << out[i];
                std::cout << "\n";
            }
            return 0;
        };
    });
}

}  // namespace cs::cli
