#include "cli/CliCommon.h"

#include "runtime/DemoBundle.h"

#include <iostream>

namespace cs::cli {

void addTokenizeCommand(CLI::App& app, CommandRunner& run) {
    auto* cmd = app.add_subcommand("tokenize", "Split text into token ids and pieces");
    auto path = std::make_shared<std::string>();
    auto text = std::make_shared<std::string>();
    auto json = std::make_shared<bool>(false);
    auto bos = std::make_shared<bool>(false);
    cmd->add_option("--tokenizer", *path, "Model directory, tokenizer file, or 'demo'")->required();
    cmd->add_option("--text", *text, "Text to tokenize")->required();
    cmd->add_flag("--json", *json, "Print {\"ids\":[...],\"pieces\":[...]}");
    cmd->add_flag("--bos", *bos, "Prepend BOS as the tokenizer's settings say");
    cmd->callback([=, &run] {
        run = [=] {
            auto tok = loadTokenizer(resolveModelDir(*path));
            std::vector<int> ids = *bos ? tok->encodePrompt(*text) : tok->encode(*text);
            nlohmann::json pieces = nlohmann::json::array(), texts = nlohmann::json::array();
            for (int id : ids) {
                pieces.push_back(tok->piece(id));
                texts.push_back(tok->tokenText(id));
            }
            if (*json) {
                printJson({{"ids", ids}, {"pieces", pieces}, {"texts", texts}});
            } else {
                for (size_t i = 0; i < ids.size(); ++i)
                    std::cout << ids[i] << "\t" << pieces[i].get<std::string>() << "\n";
            }
            return 0;
        };
    });
}

}  // namespace cs::cli
