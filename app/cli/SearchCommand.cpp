// `circuitscope search`: find features by label, by peak token, by a passage, or by contrast.
#include "cli/CliCommon.h"
#include "cli/StoreCli.h"

#include "store/FeatureSearch.h"
#include "store/FeatureStore.h"
#include "store/StoreJson.h"
#include "util/Error.h"

#include <iostream>

namespace cs::cli {

namespace {

// The model and SAEs a store was indexed with, for the searches that run the model live.
struct LiveModel {
    LoadedModel model;
    std::vector<LiveSae> saes;
};

LiveModel liveFor(const FeatureStore& store, const std::string& saeId) {
    const std::string modelDir = store.meta("model");
    if (modelDir.empty()) failIn(store.path(), "records no model (it was not made by `circuitscope index`)");
    LiveModel live;
    live.model = loadModelAndTokenizer(modelDir);
    if (!live.model.tokenizer) failIn(modelDir, "has no tokenizer, so text cannot be searched");
    std::vector<StoredSae> which = saeId.empty() ? store.saes() : std::vector<StoredSae>{store.sae(saeId)};
    std::vector<std::string> paths;
    for (const auto& s : which) paths.push_back(s.path);
    auto loaded = loadIndexSaes(modelDir, paths, "search");
    for (size_t i = 0; i < which.size(); ++i) live.saes.push_back({which[i].id, loaded[i].sae});
    return live;
}

}  // namespace

void addSearchCommand(CLI::App& app, CommandRunner& run) {
    auto* cmd = app.add_subcommand("search", "Search features by label, peak token, passage or contrast");
    struct Args {
        std::string db, sae, label, token, prompt;
        std::vector<std::string> contrast;
        int top = 20;
        bool json = false;
    };
    auto a = std::make_shared<Args>();
    cmd->add_option("--db", a->db, "Feature store")->required();
    cmd->add_option("--sae", a->sae, "Only this SAE (default: all)");
    auto* l = cmd->add_option("--label", a->label, "Full-text search over labels and notes");
    auto* t = cmd->add_option("--token", a->token, "Features whose top examples peak on this token");
    auto* p = cmd->add_option("--prompt", a->prompt, "Features that fire most on this passage (runs the model)")->check(nonEmpty());
    auto* c = cmd->add_option("--contrast", a->contrast, "FILE_A FILE_B: features firing more on A's prompts than B's")
                  ->expected(2);
    l->excludes(t, p, c);
    t->excludes(p, c);
    p->excludes(c);
    cmd->add_option("--top", a->top, "Hits to print (default 20)")->check(atLeast(1));
    cmd->add_flag("--json", a->json, "Print [{\"sae\",\"index\",\"label\",\"score\",...}]");
    cmd->callback([a, &run] {
        run = [a] {
            FeatureStore store(a->db);
            if (!a->sae.empty()) store.sae(a->sae);  // unknown ids fail here, naming the ones there are
            std::vector<FeatureHit> hits;
            const char* kind = "label";
            if (!a->label.empty()) {
                hits = store.searchLabels(a->sae, a->label, a->top);
            } else if (!a->token.empty()) {
                kind = "token";
                const int id = store.tokenIdFor(a->token);
                if (id < 0) failIn(a->db, "no token '" + a->token + "' in the store's vocabulary (try #ID)");
                hits = store.searchToken(a->sae, id, a->top);
            } else if (!a->prompt.empty()) {
                kind = "prompt";
                LiveModel live = liveFor(store, a->sae);
                hits = searchPassage(*live.model.model, *live.model.tokenizer, live.saes, a->prompt, a->top, &store);
            } else if (a->contrast.size() == 2) {
                kind = "contrast";
                const auto A = readPromptFile(a->contrast[0]);
                const auto B = readPromptFile(a->contrast[1]);
                LiveModel live = liveFor(store, a->sae);
                hits = searchContrast(*live.model.model, *live.model.tokenizer, live.saes, A, B, a->top, &store);
            } else {
                throw Error("search: give one of --label, --token, --prompt, --contrast");
            }
            if (a->json) {
                printJson(hitsJson(hits, kind));
            } else {
                for (const auto& h : hits)
                    std::cout << h.sae << "\t#" << h.index << "\t" << h.score << "\t" << h.label << "\n";
            }
            return 0;
        };
    });
}

}  // namespace cs::cli
