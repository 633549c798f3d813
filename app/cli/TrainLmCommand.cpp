#include "cli/CliCommon.h"

#include "train/LmTrainer.h"

#include <atomic>
#include <csignal>
#include <cstdio>

namespace cs::cli {

namespace {
std::atomic<bool> gStop{false};
extern "C" void onInterrupt(int) { gStop = true; }
}  // namespace

std::atomic<bool>& interruptFlag() {
    static bool installed = false;
    if (!installed) {
        std::signal(SIGINT, onInterrupt);
        installed = true;
    }
    return gStop;
}

void addTrainLmCommand(CLI::App& app, CommandRunner& run) {
    auto* cmd = app.add_subcommand("train-lm", "Train a small GPT-2-architecture model and its SentencePiece tokenizer");
    auto o = std::make_shared<LmTrainOptions>();
    cmd->add_option("--corpus", o->corpus, "Plain-text corpus (paragraphs on lines)")->required();
    cmd->add_option("--out", o->outDir, "Output Hugging Face model directory")->required();
    cmd->add_option("--layers", o->layers, "Transformer blocks")->check(greaterThan(0));
    cmd->add_option("--d-model", o->dModel, "Residual width")->check(greaterThan(0));
    cmd->add_option("--heads", o->heads, "Attention heads")->check(greaterThan(0));
    cmd->add_option("--ctx", o->ctx, "Context length")->check(greaterThan(0));
    cmd->add_option("--vocab", o->vocab, "SentencePiece BPE vocabulary size")->check(inRange(300, 1 << 20));
    cmd->add_option("--batch", o->batch, "Sequences per step")->check(greaterThan(0));
    cmd->add_option("--steps", o->steps, "Optimiser steps")->check(greaterThan(0));
    cmd->add_option("--lr", o->lr, "Peak learning rate (warm-up, then cosine decay to 10%)")->check(greaterThan(0));
    cmd->add_option("--weight-decay", o->weightDecay, "AdamW weight decay on matrices")->check(atLeast(0));
    cmd->add_option("--dropout", o->dropout, "Residual dropout while training (embeddings, attention and MLP outputs)")
        ->check(inRange(0.0, 0.9));
    cmd->add_option("--held-out", o->heldOutFraction, "Fraction of the corpus (its end) held out")->check(inRange(0.0, 0.9));
    cmd->add_option("--seed", o->seed, "Seed for initialisation, batches and tokenizer training");
    cmd->add_flag("--f16", o->storeF16, "Store the weights in F16");
    cmd->add_option("--init", o->initDir,
                    "Start from this train-lm model directory (fine-tuning): its weights, shape and tokenizer");
    cmd->add_option("--checkpoint-every", o->checkpointEvery, "Save every N steps (0: only at the end)")->check(atLeast(0));
    cmd->callback([o, &run] {
        run = [o] {
            o->stop = &interruptFlag();
            std::fprintf(stderr, "train-lm: %s -> %s (Ctrl-C stops and saves)\n", o->corpus.c_str(), o->outDir.c_str());
            LmTrainReport r = trainLm(*o, [](const LmTrainProgress& p) {
                std::fprintf(stderr, "\rstep %ld/%ld  loss %.3f  %.0f tok/s  ETA %.0f s   ", p.step, p.steps, p.loss,
                             p.tokensPerSecond, p.secondsLeft);
            });
            std::fprintf(stderr, "\n");
            nlohmann::json j = {{"steps", r.steps},
                                {"tokens", r.tokensSeen},
                                {"seconds", r.seconds},
                                {"tokens_per_second", r.tokensPerSecond},
                                {"train_loss", r.trainLoss},
                                {"held_out_bits_per_byte", r.heldOutBitsPerByte},
                                {"parameters", r.parameters},
                                {"stopped_early", r.stoppedEarly}};
            printJson(j);
            return 0;
        };
    });
}

}  // namespace cs::cli
