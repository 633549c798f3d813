// `circuitscope feature`: one feature's dashboard data from a feature store.
#include "cli/CliCommon.h"

#include "store/FeatureStore.h"
#include "store/StoreJson.h"

#include <iostream>

namespace cs::cli {

void addFeatureCommand(CLI::App& app, CommandRunner& run) {
    auto* cmd = app.add_subcommand("feature", "One feature's dashboard: examples, histogram, logits, neighbours");
    struct Args {
        std::string db, sae;
        long index = 0;
        bool json = false;
    };
    auto a = std::make_shared<Args>();
    cmd->add_option("--db", a->db, "Feature store")->required();
    cmd->add_option("--sae", a->sae, "SAE id (see `saes`; optional when the store holds one)");
    cmd->add_option("--index", a->index, "Feature index")->required();
    cmd->add_flag("--json", a->json, "Print the dashboard as JSON (docs/cli.md)");
    cmd->callback([a, &run] {
        run = [a] {
            FeatureStore store(a->db);
            const FeatureDetail d = store.feature(a->sae, a->index);
            if (a->json) {
                printJson(featureJson(d));
                return 0;
            }
            std::cout << d.sae << " #" << d.index << "  " << d.label << (d.labelIsAuto ? "  (automatic)" : "") << "\n"
                      << "max " << d.maxActivation << "  density " << d.density << "\n";
            for (const auto& e : d.topExamples) {
                std::cout << "  " << e.max << "\t";
                for (size_t i = 0; i < e.pieces.size(); ++i)
                    std::cout << (static_cast<int>(i) == e.maxOffset ? "[[" + e.pieces[i] + "]]" : e.pieces[i]);
                std::cout << "\n";
            }
            return 0;
        };
    });
}

}  // namespace cs::cli
