#include "train/KlFineTune.h"

#include "model/Transformer.h"
#include "train/ActivationSource.h"
#include "train/SaeStepper.h"
#include "util/Error.h"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include <chrono>

namespace cs {

KlFineTuneStats klFineTune(SaeStepper& stepper, ActivationSource& src, double sIn, double sOut,
                           const SaeTrainOptions& o, const std::function<void(const SaeTrainProgress&)>& onProgress) {
    if (o.klAuxK && o.arch != "topk" && o.arch != "batchtopk")
        throw Error("train-sae: --kl-auxk is for TopK and BatchTopK SAEs (--arch " + o.arch + " has no AuxK term)");
    const bool transcoder = !o.hookOut.empty();
    // Gradients must flow back through the layers after the hook: that needs weights autograd can save.
    std::unique_ptr<Transformer> trainable = autogradCopy(src.model);
    const long windows = std::max<long>(1, o.batch / src.ctx);
    const long steps = std::max<long>(1, o.klTokens / (windows * src.ctx));
    const long warmup = std::min<long>(50, steps / 10 + 1);
    const double peak = o.klLr > 0 ? o.klLr : o.lr / 3.0;
    // Thresholds start where training left them, so they fine-tune at the base rate, not at
    // training's 10x. (Neither rate, nor frozen thresholds, kept a demo transcoder's features
    // alive: 3% dead before, 23-26% after; ROADMAP.)
    stepper.setThresholdLrScale(1.0);
    const auto t0 = std::chrono::steady_clock::now();
    KlFineTuneStats st;
    for (long step = 0; step < steps; ++step) {
        if (o.stop && o.stop->load()) break;
        const at::Tensor ids = src.idsAt(src.randomStarts(windows * src.ctx));
        at::Tensor logpClean;
        {
            c10::InferenceMode guard;
            logpClean = at::log_softmax(src.model.forward(ids), -1);
        }
        logpClean = logpClean.clone();  // out of inference mode, so the loss's backward can save it
        const at::Tensor keep = ids.reshape({-1}).ne(src.bosId);
        at::Tensor nmse, aux, penalty, variance;
        // A transcoder's input is read as the run passes its hook (the layer's MLP input, before
        // the spliced MLP output), and its prediction replaces the output hook; an SAE reads and
        // replaces one hook. Normalised MSE against the run's own activation at the output hook,
        // which upstream of the splice is the clean one.
        at::Tensor xRun;
        Hooks splice;
        if (transcoder)
            splice.add(src.in, [&](at::Tensor& t, const HookContext&) { xRun = t.detach().reshape({-1, t.size(-1)}); });
        splice.add(src.out, [&](at::Tensor& t, const HookContext&) {
            const long d = t.size(-1);
            at::Tensor flat = t.detach().reshape({-1, d});
            const at::Tensor y = flat.index({keep}) * sOut;
            const at::Tensor x = transcoder ? xRun.index({keep}) * sIn : y;
            at::Tensor recon = stepper.reconstruct(x, &penalty);
            const at::Tensor centred = y - y.mean(0);
            variance = centred.pow(2).sum(-1).mean().clamp_min(1e-12).detach();
            nmse = (recon - y).pow(2).sum(-1).mean() / variance;
            if (o.klAuxK) aux = stepper.auxKLoss(x, y, recon);
            t = flat.index_put({keep}, recon / sOut).view(t.sizes());
        });
        RunOptions ro;
        ro.hooks = &splice;
        ro.withGrad = true;
        const at::Tensor logpSpliced = at::log_softmax(trainable->forward(ids, ro), -1);
        const at::Tensor kl = (logpClean.exp() * (logpClean - logpSpliced)).sum(-1).mean();
        at::Tensor loss = kl + o.klMseWeight * nmse;
        if (aux.defined()) loss = loss + aux;
        // The sparsity penalty was weighed against the summed squared error in training; the
        // normalised error here is that divided by the activations' variance, so the penalty is
        // too: beside a reconstruction weight of 1 it pulls exactly as hard as it did then.
        // (Unscaled, a JumpReLU transcoder's 0.3 x L0 outweighed the rest 30-fold and the KL rose.)
        if (penalty.defined()) loss = loss + penalty / variance;
        const double lr = step < warmup ? peak * (step + 1) / warmup
                                        : peak * static_cast<double>(steps - step) / static_cast<double>(steps - warmup);
        stepper.update(loss, lr, keep.sum().item<long>());
        st.tokens += ids.numel();
        const double klv = kl.item<double>(), nm = nmse.item<double>();
        st.kl = step == 0 ? klv : 0.95 * st.kl + 0.05 * klv;
        st.nmse = step == 0 ? nm : 0.95 * st.nmse + 0.05 * nm;
        if (onProgress && (step % 10 == 0 || step + 1 == steps)) {
            const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
            SaeTrainProgress p;
            p.klPhase = true;
            p.tokens = st.tokens;
            p.totalTokens = steps * windows * src.ctx;
            p.kl = st.kl;
            p.mse = st.nmse;
            p.deadFraction = stepper.deadFraction();
            p.tokensPerSecond = st.tokens / std::max(secs, 1e-9);
            p.secondsLeft = secs / st.tokens * (p.totalTokens - st.tokens);
            onProgress(p);
        }
    }
    return st;
}

}  // namespace cs
