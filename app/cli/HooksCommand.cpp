#include "cli/CliCommon.h"

#include "model/ModelLoader.h"
#include "runtime/DemoBundle.h"

#include <iostream>

namespace cs::cli {

void addHooksCommand(CLI::App& app, CommandRunner& run) {
    auto* cmd = app.add_subcommand("hooks", "List every hook point of a model with its shape");
    auto dir = std::make_shared<std::string>();
    auto json = std::make_shared<bool>(false);
    cmd->add_option("--model", *dir, "Hugging Face model directory")->required();
    cmd->add_flag("--json", *json, "Print [{\"name\":..,\"shape\":..}]");
    cmd->callback([=, &run] {
        run = [=] {
            auto model = loadModel(resolveModelDir(*dir), commandLineLoadOptions());
            nlohmann::json arr = nlohmann::json::array();
            for (const auto& hp : model->hookPoints()) {
                if (*json) arr.push_back({{"name", hp.name}, {"shape", hp.shape}});
                else std::cout << hp.name << "\t" << hp.shape << "\n";
            }
            if (*json) printJson(arr);
            return 0;
        };
    });
}

}  // namespace cs::cli
