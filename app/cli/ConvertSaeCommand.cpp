#include "cli/CliCommon.h"

#include "sae/Sae.h"
#include "sae/SaeLoader.h"

#include <filesystem>

namespace cs::cli {

void addConvertSaeCommand(CLI::App& app, CommandRunner& run) {
    auto* cmd = app.add_subcommand("convert-sae",
                                   "Read any supported SAE (SAELens, Gemma Scope .npz, Llama Scope) and write it as a SAELens folder");
    struct Args {
        std::string sae, out;
        bool f16 = false, force = false;
    };
    auto a = std::make_shared<Args>();
    cmd->add_option("--sae", a->sae, "SAE folder or file")->required();
    cmd->add_option("--out", a->out, "Output SAELens folder")->required();
    cmd->add_flag("--f16", a->f16, "Store the weights in float16");
    cmd->add_flag("--force", a->force, "Write into --out even when it exists and is not empty");
    cmd->callback([a, &run] {
        run = [a] {
            // Writing over someone's folder silently is worse than asking for --force.
            std::error_code ec;
            if (!a->force && std::filesystem::is_directory(a->out, ec) && !std::filesystem::is_empty(a->out, ec))
                throw UsageError("--out " + a->out + ": the folder exists and is not empty (add --force to write into it)");
            auto sae = loadSae(a->sae);
            saveSaeLens(*sae, a->out, a->f16);
            printJson({{"out", a->out}, {"architecture", saeArchName(sae->config().architecture)},
                       {"d_in", sae->config().dIn}, {"d_sae", sae->dSae()}, {"dtype", a->f16 ? "float16" : "float32"}});
            return 0;
        };
    });
}

}  // namespace cs::cli
