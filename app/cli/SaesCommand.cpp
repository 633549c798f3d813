// `circuitscope saes`: the SAEs a feature store holds.
#include "cli/CliCommon.h"

#include "store/FeatureStore.h"
#include "store/StoreJson.h"

#include <iostream>

namespace cs::cli {

void addSaesCommand(CLI::App& app, CommandRunner& run) {
    auto* cmd = app.add_subcommand("saes", "List the SAEs of a feature store");
    struct Args {
        std::string db;
        bool json = false;
    };
    auto a = std::make_shared<Args>();
    cmd->add_option("--db", a->db, "Feature store")->required();
    cmd->add_flag("--json", a->json, "Print [{\"id\",\"hook\",\"d_sae\",\"tokens\"}]");
    cmd->callback([a, &run] {
        run = [a] {
            FeatureStore store(a->db);
            const auto saes = store.saes();
            if (a->json) {
                printJson(saesJson(saes));
            } else {
                for (const auto& s : saes)
                    std::cout << s.id << "\t" << s.hook << "\t" << s.dSae << " features\t" << s.tokens << " tokens\n";
            }
            return 0;
        };
    });
}

}  // namespace cs::cli
