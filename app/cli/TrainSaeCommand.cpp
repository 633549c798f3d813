#include "cli/CliCommon.h"

#include "runtime/DemoBundle.h"
#include "train/SaeTrainer.h"

#include <cstdio>

namespace cs::cli {

void addTrainSaeCommand(CLI::App& app, CommandRunner& run) {
    auto* cmd = app.add_subcommand("train-sae", "Train an SAE (or, with --hook-out, a transcoder) and write a SAELens folder");
    auto o = std::make_shared<SaeTrainOptions>();
    cmd->add_option("--model", o->modelDir, "Hugging Face model directory, or 'demo'")->required();
    cmd->add_option("--hook", o->hook, "Hook point the SAE reads (e.g. blocks.2.hook_resid_post)")->required();
    cmd->add_option("--hook-out", o->hookOut, "Transcoder: hook point whose activation it predicts");
    cmd->add_option("--corpus", o->corpus, "Plain-text corpus (its last 10% is held out for metrics)")->required();
    cmd->add_option("--out", o->outDir, "Output SAELens folder")->required();
    cmd->add_option("--d-sae", o->dSae, "Number of features")->check(greaterThan(0));
    cmd->add_option("--arch", o->arch, "topk, batchtopk (saved as jumprelu), relu or jumprelu")
        ->check(CLI::IsMember({"topk", "batchtopk", "relu", "jumprelu"}));
    cmd->add_option("--k", o->k, "Active features per token (topk; batchtopk: on average)")->check(greaterThan(0));
    cmd->add_option("--l1", o->l1, "Sparsity coefficient: L1 on f*|W_dec| (relu), L0 (jumprelu)")->check(atLeast(0));
    cmd->add_option("--tokens", o->tokens, "Training activations (0 with --init: only fine-tune)")->check(atLeast(0));
    cmd->add_option("--init", o->initFrom, "Start from this saved SAE or transcoder (same --arch, hooks, --d-sae and --k)");
    cmd->add_option("--batch", o->batch, "Activations per step")->check(greaterThan(0));
    cmd->add_option("--pool", o->poolTokens,
                    "Run the model once for this many activations and train over them in passes (default: stream)")
        ->check(greaterThan(0));
    cmd->add_option("--lr", o->lr, "Adam learning rate")->check(greaterThan(0));
    cmd->add_option("--kl-tokens", o->klTokens,
                    "Then fine-tune this many tokens on the KL divergence of the spliced model's predictions (SAEs and transcoders)")
        ->check(atLeast(0));
    cmd->add_option("--kl-lr", o->klLr, "Peak learning rate of the KL fine-tuning (default: a third of --lr)")
        ->check(greaterThan(0));
    cmd->add_option("--kl-mse-weight", o->klMseWeight,
                    "Weight of the normalised reconstruction error beside the KL divergence while fine-tuning")
        ->check(atLeast(0));
    cmd->add_flag("--kl-auxk", o->klAuxK, "Keep the AuxK term for dead features while KL fine-tuning");
    cmd->add_option("--restart", o->restart,
                    "How dead topk/batchtopk features restart: bricken (encoder at 0.2x the live norm) or topk "
                    "(scaled into the top k of the input they restart from)")
        ->check(CLI::IsMember({"bricken", "topk"}));
    cmd->add_option("--eval-tokens", o->evalTokens, "Held-out tokens for the metrics")->check(greaterThan(0));
    cmd->add_option("--seed", o->seed, "Seed");
    cmd->add_flag("--f16", o->storeF16, "Store the SAE in float16 (half the size)");
    cmd->callback([o, &run] {
        // Checked here, before LibTorch's topk would reject it with a message about tensor sizes.
        if ((o->arch == "topk" || o->arch == "batchtopk") && o->k > o->dSae)
            throw CLI::ValidationError("--k " + std::to_string(o->k) + " is larger than --d-sae " + std::to_string(o->dSae) +
                                       " (allowed: --k 1..--d-sae)");
        run = [o] {
            o->stop = &interruptFlag();
            o->modelDir = resolveModelDir(o->modelDir);
            std::fprintf(stderr, "train-sae: %s @ %s -> %s (Ctrl-C stops and saves)\n", o->modelDir.c_str(),
                         o->hook.c_str(), o->outDir.c_str());
            SaeTrainReport r = trainSae(*o, [](const SaeTrainProgress& p) {
                if (p.klPhase) {
                    static bool first = true;
                    if (first) std::fprintf(stderr, "\n");
                    first = false;
                    std::fprintf(stderr, "\rKL fine-tuning %ld/%ld tokens  KL %.4f  nmse %.4f  dead %.1f%%  %.0f tok/s  ETA %.0f s   ",
                                 p.tokens, p.totalTokens, p.kl, p.mse, 100 * p.deadFraction, p.tokensPerSecond, p.secondsLeft);
                    return;
                }
                if (p.tokens == 0 && p.poolTokens > 0) {
                    std::fprintf(stderr, "\rfilling the activation pool: %ld/%ld   ", p.pooled, p.poolTokens);
                    return;
                }
                std::fprintf(stderr, "\r%ld/%ld tokens  mse %.4f  L0 %.1f  dead %.1f%%  %.0f tok/s  ETA %.0f s   ",
                             p.tokens, p.totalTokens, p.mse, p.l0, 100 * p.deadFraction, p.tokensPerSecond,
                             p.secondsLeft);
            });
            std::fprintf(stderr, "\n");
            nlohmann::json j = metricsJson(r.metrics);
            j.update({{"tokens", r.tokens}, {"seconds", r.seconds}, {"tokens_per_second", r.tokensPerSecond},
                      {"stopped_early", r.stoppedEarly}, {"resampled_features", r.resampledFeatures},
                      {"kl_tokens", r.klTokens}});
            printJson(j);
            return 0;
        };
    });
}

}  // namespace cs::cli
