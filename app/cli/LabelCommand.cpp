// `circuitscope label`: write a feature's label and notes into a feature store.
#include "cli/CliCommon.h"

#include "store/FeatureStore.h"

#include <iostream>

namespace cs::cli {

void addLabelCommand(CLI::App& app, CommandRunner& run) {
    auto* cmd = app.add_subcommand("label", "Set a feature's label (and notes)");
    struct Args {
        std::string db, sae, text, notes;
        long index = 0;
        bool hasNotes = false;
    };
    auto a = std::make_shared<Args>();
    cmd->add_option("--db", a->db, "Feature store")->required();
    cmd->add_option("--sae", a->sae, "SAE id (optional when the store holds one)");
    cmd->add_option("--index", a->index, "Feature index")->required();
    cmd->add_option("--text", a->text, "The label (empty clears it)")->required();
    auto* notes = cmd->add_option("--notes", a->notes, "Notes (kept as they are when not given)");
    cmd->callback([a, notes, &run] {
        run = [a, given = notes->count() > 0] {
            FeatureStore store(a->db, FeatureStore::Mode::ReadWrite);
            std::string notesText = a->notes;
            if (!given) notesText = store.feature(a->sae, a->index).notes;
            store.setLabel(a->sae, a->index, a->text, notesText);
            return 0;
        };
    });
}

}  // namespace cs::cli
