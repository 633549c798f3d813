#include "cli/CliCommon.h"
#include "cli/StoreCli.h"

#include "runtime/DemoBundle.h"
#include "sae/SaeAttachment.h"
#include "sae/SaeLoader.h"
#include "store/FeatureStore.h"
#include "util/Error.h"

#include <ATen/ATen.h>

#include <filesystem>
#include <iostream>
#include <set>

namespace cs::cli {

void addFeaturesCommand(CLI::App& app, CommandRunner& run) {
    auto* cmd = app.add_subcommand("features", "Top SAE / transcoder features at every token");
    struct Args {
        std::string model;
        std::vector<std::string> saes;
        PromptArgs prompt;
        int top = 10;
        bool json = false;
        std::string db;
    };
    auto a = std::make_shared<Args>();
    cmd->add_option("--model", a->model, "Hugging Face model directory, or 'demo'")->required();
    cmd->add_option("--sae", a->saes, "SAE / transcoder path (SAELens folder, params.npz, Llama Scope folder); repeatable. "
                                      "With --model demo and no --sae, the demo's SAEs");
    a->prompt.addTo(*cmd);
    cmd->add_option("--top", a->top, "Features per token")->check(atLeast(1));
    cmd->add_option("--db", a->db, "Feature store whose labels to show (each feature gets \"label\", \"label_is_auto\")");
    cmd->add_flag("--json", a->json, "Print {\"tokens\":[...],\"saes\":[{\"id\",\"hook\",\"positions\":[[{index,activation}]]}]}");
    cmd->callback([a, &run] {
        run = [a] {
            LoadedModel m = loadModelAndTokenizer(a->model);
            std::vector<std::string> paths = a->saes;
            if (paths.empty() && a->model == "demo") paths = demoSaeDirs();
            if (paths.empty()) throw Error("features: give at least one --sae PATH");
            std::vector<long> ids = promptIds(a->prompt, m);
            std::unique_ptr<FeatureStore> store;
            if (!a->db.empty()) store = std::make_unique<FeatureStore>(a->db);
            const auto saeIds = saeIdsFor(paths);
            std::set<std::string> stored;
            if (store)
                for (const auto& s : store->saes()) stored.insert(s.id);
            Hooks hooks;
            std::vector<std::shared_ptr<Sae>> saes;
            std::vector<std::unique_ptr<FeatureSink>> sinks;
            for (const auto& p : paths) {
                saes.push_back(loadSae(p));
                sinks.push_back(std::make_unique<FeatureSink>());
                attachSae(hooks, *m.model, saes.back(), AttachOptions{}, sinks.back().get());
            }
            RunOptions o;
            o.hooks = &hooks;
            m.model->forward(at::tensor(ids, at::kLong).unsqueeze(0), o);
            nlohmann::json out = {{"tokens", ids}, {"saes", nlohmann::json::array()}};
            nlohmann::json texts = nlohmann::json::array();
            for (long id : ids) texts.push_back(tokenLabel(m, id));
            out["token_texts"] = texts;
            for (size_t s = 0; s < saes.size(); ++s) {
                at::Tensor f = sinks[s]->features[0];  // [pos, d_sae]
                const long k = std::min<long>(a->top, f.size(1));
                auto top = f.topk(k, -1);
                nlohmann::json positions = nlohmann::json::array();
                for (long t = 0; t < f.size(0); ++t) {
                    nlohmann::json row = nlohmann::json::array();
                    for (long j = 0; j < k; ++j) {
                        const float v = std::get<0>(top)[t][j].item<float>();
                        if (v <= 0) break;
                        const long index = std::get<1>(top)[t][j].item<long>();
                        nlohmann::json e = {{"index", index}, {"activation", v}};
                        if (store && stored.count(saeIds[s])) {
                            bool isAuto = true;
                            e["label"] = store->label(saeIds[s], index, &isAuto);
                            e["label_is_auto"] = isAuto;
                        }
                        row.push_back(e);
                    }
                    positions.push_back(row);
                }
                const SaeConfig& c = saes[s]->config();
                out["saes"].push_back({{"id", saeIds[s]},
                                       {"path", paths[s]},
                                       {"hook", c.hookName},
                                       {"hook_out", c.hookNameOut},
                                       {"architecture", saeArchName(c.architecture)},
                                       {"positions", positions}});
            }
            if (a->json) {
                printJson(out);
            } else {
                for (const auto& s : out["saes"]) {
                    std::cout << s["id"].get<std::string>() << " @ " << s["hook"].get<std::string>() << "\n";
                    for (size_t t = 0; t < ids.size(); ++t) {
                        std::cout << "  " << t << "\t" << texts[t].get<std::string>() << "\t";
                        for (const auto& e : s["positions"][t])
                            std::cout << " #" << e["index"].get<long>() << "(" << e["activation"].get<double>() << ")"
                                      << (e.contains("label") ? " " + e["label"].get<std::string>() : "");
                        std::cout << "\n";
                    }
                }
            }
            return 0;
        };
    });
}

}  // namespace cs::cli
