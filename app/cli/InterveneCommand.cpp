// `circuitscope intervene`: interventions on attribution-graph nodes from the command line (what
// the graph panel's Run does): set, scale or ablate features named by their graph node ids, and
// print each target logit and the greedy continuation before and after.
#include "cli/CliCommon.h"
#include "cli/StoreCli.h"

#include "attribution/Attribution.h"
#include "attribution/GraphIntervention.h"
#include "sae/SaeLoader.h"
#include "tokenize/ContinuationText.h"
#include "util/Error.h"

#include <cstdio>
#include <iostream>

namespace cs::cli {

namespace {

bool parseInt(const std::string& s, long& out) {
    if (s.empty() || s.size() > 12) return false;
    const size_t start = s[0] == '-' ? 1 : 0;
    if (start == s.size() || s.find_first_not_of("0123456789", start) != std::string::npos) return false;
    out = std::stol(s);
    return true;
}

// A node id as circuit-tracer spells it, back to the node it names: "E_{token}_{pos}" an
// embedding, "{layer}_-1_{pos}" an error, "{n_layers+1}_{token}_{pos}" a logit, else a feature.
GraphNode nodeFromId(const std::string& id, int nLayers, const std::string& where) {
    GraphNode n;
    n.id = id;
    const size_t a = id.find('_'), b = id.rfind('_');
    long layer = 0, middle = 0, pos = 0;
    const bool embedding = id.rfind("E_", 0) == 0;
    if (a == std::string::npos || a == b || (!embedding && !parseInt(id.substr(0, a), layer)) ||
        !parseInt(id.substr(a + 1, b - a - 1), middle) || !parseInt(id.substr(b + 1), pos))
        throw Error(where + ": node id '" + id + "' is not {layer}_{feature}_{position}");
    n.position = static_cast<int>(pos);
    n.layer = static_cast<int>(layer);
    n.feature = middle;
    if (embedding) n.kind = NodeKind::Embedding;
    else if (layer == nLayers + 1) n.kind = NodeKind::Logit;
    else if (middle == -1 || middle == -2) {
        n.kind = NodeKind::Error;  // -1: an MLP's error; -2: a residual SAE's
        n.residual = middle == -2;
    } else if (middle < 0) throw Error(where + ": node id '" + id + "' names no feature (" + std::to_string(middle) + ")");
    else n.kind = NodeKind::Feature;
    return n;
}

// NODE_ID:MODE[=VALUE]; set and scale need the value, ablate takes none.
NodeIntervention parseNodeSpec(const std::string& spec, int nLayers) {
    const std::string where = "--node '" + spec + "'";
    const size_t colon = spec.rfind(':');
    if (colon == std::string::npos) throw Error(where + ": expected NODE_ID:MODE[=VALUE], e.g. 1_140_11:ablate or 0_714_11:set=5");
    std::string mode = spec.substr(colon + 1), value;
    const size_t eq = mode.find('=');
    if (eq != std::string::npos) {
        value = mode.substr(eq + 1);
        mode = mode.substr(0, eq);
    }
    const NodeIntervention::Kind kind = parseInterventionKind(mode, where);
    double v = 0;
    if (kind != NodeIntervention::Kind::Ablate) {
        if (value.empty()) throw Error(where + ": " + mode + " needs a value, e.g. " + spec.substr(0, colon) + ":" + mode + "=2");
        char* end = nullptr;
        v = std::strtod(value.c_str(), &end);
        if (end != value.c_str() + value.size()) throw Error(where + ": value '" + value + "' is not a number");
    } else if (!value.empty()) {
        throw Error(where + ": ablate takes no value");
    }
    try {
        return interventionForNode(nodeFromId(spec.substr(0, colon), nLayers, where), kind, v);
    } catch (const Error& e) {
        throw Error(where + ": " + e.what());
    }
}

std::string fixed(double v, int digits = 3) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.*f", digits, v);
    return buf;
}

}  // namespace

void addInterveneCommand(CLI::App& app, CommandRunner& run) {
    auto* cmd = app.add_subcommand("intervene", "Set, scale or ablate attribution-graph feature nodes and compare logits and continuations");
    struct Args {
        std::string model;
        std::vector<std::string> transcoders;
        PromptArgs prompt;
        std::vector<std::string> nodes;
        std::vector<std::string> targets;
        bool freeAttention = false;
        int maxNew = 16;
        bool json = false;
    };
    auto a = std::make_shared<Args>();
    cmd->add_option("--model", a->model, "Hugging Face model directory, or 'demo'")->required();
    cmd->add_option("--transcoders", a->transcoders, "Transcoder folders (ln2.hook_normalized -> hook_mlp_out), one per layer; "
                                                     "with --model demo and none given, the demo's tc-L0..L3");
    a->prompt.addTo(*cmd);
    cmd->add_option("--node", a->nodes, "NODE_ID:MODE[=VALUE]: NODE_ID a graph feature node {layer}_{feature}_{position}, "
                                        "MODE set=V | scale=K | ablate. Repeatable: all apply together")
        ->required();
    cmd->add_option("--target", a->targets, "Token whose logit to report (id, #id or one-token text); repeatable. "
                                            "Default: the unchanged run's most likely token");
    cmd->add_flag("--free-attention", a->freeAttention, "Recompute attention patterns (default: frozen at the unchanged run's)");
    cmd->add_option("--max-new", a->maxNew, "Greedy continuation length (0: none)")->check(inRange(0, 100000));
    cmd->add_flag("--json", a->json, "Print JSON");
    cmd->callback([a, &run] {
        run = [a] {
            LoadedModel m = loadModelAndTokenizer(a->model);
            const std::vector<std::string> paths = saePaths(a->transcoders, a->model, "intervene");
            const auto ids = saeIdsFor(paths);
            std::vector<AttributionTranscoder> tcs;
            for (size_t i = 0; i < paths.size(); ++i) tcs.push_back({ids[i], loadSae(paths[i])});
            std::vector<NodeIntervention> ivs;
            for (const auto& s : a->nodes) ivs.push_back(parseNodeSpec(s, m.model->config().nLayers));
            InterventionOptions o;
            for (const auto& t : a->targets) o.targets.push_back(targetId(t, m));
            o.freezeAttention = !a->freeAttention;
            o.maxNewTokens = a->maxNew;
            const std::vector<long> tokens = promptIds(a->prompt, m);
            const InterventionResult r = interveneOnGraph(*m.model, tcs, tokens, ivs, o);
            auto text = [&](const std::vector<long>& ids) {
                if (!m.tokenizer) {
                    std::string s;
                    for (long t : ids) s += tokenLabel(m, t);
                    return s;
                }
                return continuationText(*m.tokenizer, tokens, ids);
            };
            if (a->json) {
                nlohmann::json nodes = nlohmann::json::array(), targets = nlohmann::json::array(), top = nlohmann::json::array();
                for (size_t i = 0; i < ivs.size(); ++i)
                    nodes.push_back({{"node", a->nodes[i].substr(0, a->nodes[i].rfind(':'))},
                                     {"mode", interventionKindName(ivs[i].kind)},
                                     {"value", ivs[i].value},
                                     {"activation_before", r.activationsBefore[i]},
                                     {"activation_after", r.activationsAfter[i]}});
                for (const auto& t : r.targets)
                    targets.push_back({{"token", t.token}, {"text", tokenLabel(m, t.token)}, {"logit_before", t.logitBefore},
                                       {"logit_after", t.logitAfter}, {"prob_before", t.probBefore}, {"prob_after", t.probAfter}});
                for (const auto& t : r.topAfter)
                    top.push_back({{"token", t.token}, {"text", tokenLabel(m, t.token)}, {"logit", t.logit}, {"prob", t.prob}});
                printJson({{"prompt_tokens", tokens},
                           {"attention", r.attentionFrozen ? "frozen" : "free"},
                           {"interventions", nodes},
                           {"targets", targets},
                           {"top_after", top},
                           {"continuation_before", {{"new_tokens", r.continuationBefore}, {"text", text(r.continuationBefore)}}},
                           {"continuation_after", {{"new_tokens", r.continuationAfter}, {"text", text(r.continuationAfter)}}}});
                return 0;
            }
            for (size_t i = 0; i < ivs.size(); ++i)
                std::cout << "node " << a->nodes[i] << ": activation " << fixed(r.activationsBefore[i]) << " -> "
                          << fixed(r.activationsAfter[i]) << "\n";
            std::cout << "attention: " << (r.attentionFrozen ? "frozen at the prompt's positions" : "free")
                      << " (generated positions attend freely)\n";
            for (const auto& t : r.targets)
                std::cout << "target '" << tokenLabel(m, t.token) << "' (" << t.token << "): logit " << fixed(t.logitBefore) << " -> "
                          << fixed(t.logitAfter) << " (" << (t.logitAfter >= t.logitBefore ? "+" : "")
                          << fixed(t.logitAfter - t.logitBefore) << "), p " << fixed(100 * t.probBefore, 2) << "% -> "
                          << fixed(100 * t.probAfter, 2) << "%\n";
            std::cout << "top after:";
            for (const auto& t : r.topAfter) std::cout << " '" << tokenLabel(m, t.token) << "' " << fixed(100 * t.prob, 1) << "%";
            std::cout << "\nbefore: " << text(r.continuationBefore) << "\nafter:  " << text(r.continuationAfter) << "\n";
            return 0;
        };
    });
}

}  // namespace cs::cli
