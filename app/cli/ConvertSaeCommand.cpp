#include "cli/CliCommon.h"

#include "sae/Sae.h"
#include "sae/SaeLoader.h"

namespace cs::cli {

void addConvertSaeCommand(CLI::App& app, CommandRunner& run) {
    auto* cmd = app.add_subcommand("convert-sae",
                                   "Read any supported SAE (SAELens, Gemma Scope .npz, Llama Scope) and write it as a SAELens folder");
    struct Args {
        std::string sae, out;
        bool f16 = false;
    };
    auto a = std::make_shared<Args>();
    cmd->add_option("--sae", a->sae, "SAE folder or file")->required();
    cmd->add_option("--out", a->out, "Output SAELens folder")->required();
    cmd->add_flag("--f16", a->f16, "Store the weights in float16");
    cmd->callback([a, &run] {
        run = [a] {
            auto sae = loadSae(a->sae);
            saveSaeLens(*sae, a->out, a->f16);
            printJson({{"out", a->out}, {"architecture", saeArchName(sae->config().architecture)},
                       {"d_in", sae->config().dIn}, {"d_sae", sae->dSae()}, {"dtype", a->f16 ? "float16" : "float32"}});
            return 0;
        };
    });
}

}  // namespace cs::cli
