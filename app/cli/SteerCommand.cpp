#include "cli/CliCommon.h"
#include "cli/StoreCli.h"

#include "runtime/DemoBundle.h"
#include "sae/SaeLoader.h"
#include "steer/SteeringRun.h"
#include "util/Error.h"

#include <iostream>

namespace cs::cli {

std::vector<SteeringSae> loadSteeringSaes(const std::string& model, std::vector<std::string> paths) {
    if (paths.empty() && model == "demo") paths = demoSaeDirs();
    const auto ids = saeIdsFor(paths);
    std::vector<SteeringSae> saes;
    for (size_t i = 0; i < paths.size(); ++i) saes.push_back({ids[i], loadSae(paths[i])});
    return saes;
}

SteeringPlan steeringPlanFromArgs(const std::vector<std::string>& specs, const std::string& when,
                                  const std::string& preset) {
    SteeringPlan plan;
    if (!preset.empty()) plan = loadSteeringPreset(preset);
    for (const auto& s : specs) plan.rules.push_back(parseSteerSpec(s));
    if (plan.rules.empty()) throw Error("give at least one --steer SPEC (or a --preset)");
    if (!when.empty()) {
        plan.condition = parseSteerCondition(when);
        for (auto& r : plan.rules) r.conditional = true;
    }
    return plan;
}

void SamplingArgs::addTo(CLI::App& cmd) {
    greedyFlag = cmd.add_flag("--greedy", greedy, "Always take the most likely token (default when no sampling option is given)");
    temperatureOpt = cmd.add_option("--temperature", s.temperature, "Sampling temperature")->check(greaterThan(0));
    cmd.add_option("--top-p", s.topP, "Nucleus sampling mass")->check(inRange(0.0, 1.0));
    cmd.add_option("--top-k", s.topK, "Sample among the K most likely tokens (default: all)")->default_str("")->check(atLeast(1));
    cmd.add_option("--seed", s.seed, "Sampling seed (the baseline and every steered run share it)");
    cmd.add_option("--max-new", s.maxNewTokens, "Tokens to generate")->check(inRange(0, 100000));
    greedyFlag->excludes(temperatureOpt);
}

SamplingOptions SamplingArgs::options() const {
    SamplingOptions o = s;
    o.greedy = greedy || temperatureOpt->count() == 0;
    return o;
}

void addSteerCommand(CLI::App& app, CommandRunner& run) {
    auto* cmd = app.add_subcommand("steer", "Continue a prompt with and without steering features or vectors");
    struct Args {
        std::string model;
        std::vector<std::string> saes;
        PromptArgs prompt;
        SamplingArgs sampling;
        std::vector<std::string> specs;
        std::string when;
        std::string preset;
        bool json = false;
    };
    auto a = std::make_shared<Args>();
    cmd->add_option("--model", a->model, "Hugging Face model directory, or 'demo'")->required();
    cmd->add_option("--sae", a->saes, "SAE / transcoder path; repeatable. With --model demo and no --sae, the demo's SAEs");
    a->prompt.addTo(*cmd);
    a->sampling.addTo(*cmd);
    cmd->add_option("--steer", a->specs,
                    "[SAE_ID/]FEATURE:MODE[=VALUE][@POSITIONS]; MODE add|clamp|ablate|scale, POSITIONS all|prompt|generated|I-J. Repeatable");
    cmd->add_option("--when", a->when, "[SAE_ID/]FEATURE>THRESHOLD: steer only where that feature, unsteered, exceeds it");
    cmd->add_option("--preset", a->preset, "Steering preset (JSON, as the GUI saves it); --steer rows are added to it");
    cmd->add_flag("--json", a->json,
                  "Print {\"prompt_tokens\",\"baseline\":{\"new_tokens\",\"text\"},\"steered\":{\"new_tokens\",\"text\"}}");
    cmd->callback([a, &run] {
        run = [a] {
            SteeringPlan plan = steeringPlanFromArgs(a->specs, a->when, a->preset);
            LoadedModel m = loadModelAndTokenizer(a->model);
            SteeringRequest req;
            req.saes = loadSteeringSaes(a->model, a->saes);
            req.prompt = promptIds(a->prompt, m);
            req.promptText = a->prompt.prompt;
            req.sampling = a->sampling.options();
            req.settings = {plan};
            SteeringComparison c = runSteeringComparison(*m.model, m.tokenizer.get(), req);
            const SteeredText& steered = c.columns.at(0).output;
            if (a->json) {
                printJson({{"prompt_tokens", c.promptTokens},
                           {"baseline", {{"new_tokens", c.baseline.ids}, {"text", c.baseline.text}}},
                           {"steered", {{"new_tokens", steered.ids}, {"text", steered.text}}}});
            } else {
                std::cout << "steering: ";
                for (size_t i = 0; i < c.columns[0].rows.size(); ++i) std::cout << (i ? ", " : "") << c.columns[0].rows[i];
                if (!c.columns[0].condition.empty()) std::cout << " when " << c.columns[0].condition;
                std::cout << "\nbaseline: " << c.baseline.text << "\nsteered:  " << steered.text << "\n";
            }
            return 0;
        };
    });
}

}  // namespace cs::cli
