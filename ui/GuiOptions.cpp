#include "ui/GuiOptions.h"

namespace cs::ui {

const std::vector<GuiOption>& guiOptions() {
    static const std::vector<GuiOption> options = {
        {"model", "DIR|demo", "Hugging Face model directory to open, or 'demo'"},
        {"session", "FILE", "Open a saved session (.csession) instead of a model"},
        {"dtype", "auto|f32|bf16", "Hold weight matrices as auto (stored), f32 or bf16 (this run only)"},
        {"threads", "N", "Compute threads"},
        {"theme", "light|dark", "Colour theme"},
        {"size", "WxH", "Window size"},
        {"position", "N", "After the first run, select token N"},
        {"open-feature", "SAE:INDEX", "After the first run, open the dashboard of SAE:INDEX (and select that feature)"},
        {"steer-preset", "FILE", "After the first run, load this steering preset into the Steering dock"},
        {"open-graph", "FILE", "After the first run, open this attribution graph file in the graph dock"},
        {"patch", "CLEAN|CORRUPTED|ANSWER|WRONG", "After the first run, run the Patching dock on these prompts"},
        {"compare", "DIR|demo-dog", "After the first run, compare the model with this checkpoint in the Model diff dock"},
        // For the README's screenshots and for checking a real window by eye: grab the window (or
        // one view) once the first run has finished, save it, and quit.
        {"screenshot", "FILE", "Save the window to FILE after the first run, then quit"},
        {"screenshot-view", "VIEW",
         "With --screenshot: grab only tokens, attention, logit-lens, features, dashboard, steering, graph, patching or diff"},
        {"screenshot-delay", "MS", "With --screenshot: wait MS after the first run (default 500)"},
        // For the start-up benchmark.
        {"quit-after-first-run", nullptr, "Quit once the first run has been shown"},
    };
    return options;
}

}  // namespace cs::ui
