#include "cli/CliCommon.h"

#include <ATen/ATen.h>

#include <cstdio>
#include <iostream>

namespace cs::cli {

void addForwardCommand(CLI::App& app, CommandRunner& run) {
    auto* cmd = app.add_subcommand("forward", "Run the model once and print logits");
    struct Args {
        std::string model;
        PromptArgs prompt;
        bool json = false;
        int top = 0;
    };
    auto a = std::make_shared<Args>();
    cmd->add_option("--model", a->model, "Hugging Face model directory")->required();
    a->prompt.addTo(*cmd);
    cmd->add_flag("--json", a->json, "Print {\"tokens\":[...],\"logits\":[[...],...]}");
    cmd->add_option("--top", a->top, "Only the top K logits per position (as {id, logit, prob, text}); default: all with --json, else 5")
        ->default_str("")
        ->check(atLeast(1));
    cmd->callback([a, &run] {
        run = [a] {
            LoadedModel m = loadModelAndTokenizer(a->model);
            std::vector<long> ids = promptIds(a->prompt, m);
            at::Tensor logits = m.model->forward(at::tensor(ids, at::kLong).unsqueeze(0))[0];
            const long T = logits.size(0), V = logits.size(1);
            nlohmann::json rows = nlohmann::json::array();
            if (a->top > 0) {
                at::Tensor probs = at::softmax(logits, -1);
                auto top = logits.topk(std::min<long>(a->top, V), -1);
                at::Tensor vals = std::get<0>(top), idx = std::get<1>(top);
                for (long t = 0; t < T; ++t) {
                    nlohmann::json row = nlohmann::json::array();
                    for (long k = 0; k < idx.size(1); ++k) {
                        long id = idx[t][k].item<long>();
                        row.push_back({{"id", id},
                                       {"logit", vals[t][k].item<float>()},
                                       {"prob", probs[t][id].item<float>()},
                                       {"text", tokenLabel(m, id)}});
                    }
                    rows.push_back(row);
                }
            } else {
                at::Tensor c = logits.contiguous();
                const float* p = c.data_ptr<float>();
                for (long t = 0; t < T; ++t) rows.push_back(std::vector<float>(p + t * V, p + (t + 1) * V));
            }
            if (a->json) {
                printJson({{"tokens", ids}, {"logits", rows}});
            } else {
                // A readable summary: each position's token and its best next-token guesses.
                at::Tensor probs = at::softmax(logits, -1);
                auto top = probs.topk(std::min<long>(a->top > 0 ? a->top : 5, V), -1);
                for (long t = 0; t < T; ++t) {
                    std::cout << t << "\t" << tokenLabel(m, ids[t]) << "\t->";
                    for (long k = 0; k < std::get<1>(top).size(1); ++k) {
                        long id = std::get<1>(top)[t][k].item<long>();
                        char buf[32];
                        std::snprintf(buf, sizeof buf, "%.3f", std::get<0>(top)[t][k].item<float>());
                        std::cout << "  " << tokenLabel(m, id) << " (" << buf << ")";
                    }
                    std::cout << "\n";
                }
            }
            return 0;
        };
    });
}

}  // namespace cs::cli
