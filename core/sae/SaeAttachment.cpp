#include "sae/SaeAttachment.h"

#include "util/Error.h"

#include <ATen/ATen.h>

namespace cs {

namespace {

// Head-split hooks ([batch, pos, head, d_head]) are read as one [batch, pos, head * d_head] row,
// the layout SAELens' hook_z SAEs use.
at::Tensor asRows(const at::Tensor& t) { return t.dim() > 3 ? t.flatten(2) : t; }

size_t hookIndex(const Transformer& model, const std::string& hook) {
    const auto& points = model.hookPoints();
    for (size_t i = 0; i < points.size(); ++i)
        if (points[i].name == hook) return i;
    return points.size();
}

// The reconstruction where it is spliced, the original where opt.keep says so.
at::Tensor keepWhereAsked(const at::Tensor& out, const at::Tensor& original, const AttachOptions& opt,
                          const HookContext& ctx, const std::string& path) {
    if (!opt.keep.defined()) return out;
    const long B = original.size(0), T = original.size(1), off = ctx.positionOffset;
    if (opt.keep.dim() != 2 || opt.keep.size(0) != B || opt.keep.size(1) < off + T)
        failIn(path, "the mask of positions to keep has shape [" + std::to_string(opt.keep.size(0)) + ", " +
                         std::to_string(opt.keep.dim() > 1 ? opt.keep.size(1) : 0) + "], not [" + std::to_string(B) +
                         ", " + std::to_string(off + T) + "]");
    const at::Tensor k = opt.keep.narrow(1, off, T).to(at::kBool).unsqueeze(-1);
    return at::where(k, original.to(out.scalar_type()), out);
}

struct TranscoderState {
    at::Tensor features, input;  // from the input hook of the current forward call
};

}  // namespace

void FeatureSink::accept(const at::Tensor& f, long positionOffset) {
    if (positionOffset > 0 && features.defined() && features.dim() == f.dim() && f.dim() >= 2)
        features = at::cat({features, f}, 1);
    else
        features = f;
}

long hookWidth(const Transformer& model, const std::string& hook, const std::string& saePath) {
    const auto& points = model.hookPoints();
    const size_t i = hookIndex(model, hook);
    if (i == points.size())
        failIn(saePath, "hook '" + hook + "' is not a hook point of this model (" +
                            std::to_string(model.config().nLayers) + " layers; see `circuitscope hooks`)");
    // Shapes read "[batch, pos, 768]" or "[batch, pos, 4, 16]"; patterns "[batch, 4, query_pos, key_pos]".
    std::string s = points[i].shape;
    std::vector<std::string> axes;
    std::string cur;
    for (char ch : s) {
        if (ch == '[' || ch == ' ') continue;
        if (ch == ',' || ch == ']') {
            axes.push_back(cur);
            cur.clear();
        } else {
            cur += ch;
        }
    }
    long width = 1;
    bool ok = axes.size() >= 3 && axes[0] == "batch" && axes[1] == "pos";
    for (size_t a = 2; ok && a < axes.size(); ++a) {
        ok = !axes[a].empty() && axes[a].find_first_not_of("0123456789") == std::string::npos;
        if (ok) width *= std::stol(axes[a]);
    }
    if (!ok) failIn(saePath, "hook '" + hook + "' has shape " + s + ", which has no feature axis an SAE can read");
    return width;
}

void attachSae(Hooks& hooks, const Transformer& model, std::shared_ptr<Sae> sae, const AttachOptions& opt,
               FeatureSink* sink) {
    if (!sae) throw Error("attachSae: no SAE given");
    const SaeConfig& c = sae->config();
    const std::string& path = c.source;
    if (c.hookName.empty()) failIn(path, "the SAE names no hook; give one when loading it");
    const long inWidth = hookWidth(model, c.hookName, path);
    if (inWidth != c.dIn)
        failIn(path, "d_in = " + std::to_string(c.dIn) + " does not match hook '" + c.hookName + "' of width " +
                         std::to_string(inWidth));

    if (!isTranscoder(c.architecture)) {
        hooks.add(c.hookName, [sae, opt, sink, path](at::Tensor& t, const HookContext& ctx) {
            const at::Tensor x = asRows(t);
            const at::Tensor f = sae->encode(x);
            if (sink) sink->accept(f, ctx.positionOffset);
            if (!opt.splice) return;
            at::Tensor out = sae->decode(f);
            if (opt.keepError) out = out + (x.to(at::kFloat) - out).detach();
            out = keepWhereAsked(out, x, opt, ctx, path);
            t = out.to(t.scalar_type()).reshape(t.sizes());
        });
        return;
    }

    if (opt.splice) {
        if (c.hookNameOut.empty()) failIn(path, "the transcoder names no output hook (hook_name_out), so it cannot be spliced");
        const long outWidth = hookWidth(model, c.hookNameOut, path);
        if (outWidth != c.dOut)
            failIn(path, "d_out = " + std::to_string(c.dOut) + " does not match output hook '" + c.hookNameOut +
                             "' of width " + std::to_string(outWidth));
        if (hookIndex(model, c.hookNameOut) <= hookIndex(model, c.hookName))
            failIn(path, "output hook '" + c.hookNameOut + "' does not come after input hook '" + c.hookName +
                             "' in the forward pass");
    }
    auto state = std::make_shared<TranscoderState>();
    hooks.add(c.hookName, [sae, opt, sink, state](at::Tensor& t, const HookContext& ctx) {
        const at::Tensor x = asRows(t);
        const at::Tensor f = sae->encode(x);
        if (sink) sink->accept(f, ctx.positionOffset);
        if (opt.splice) {
            state->features = f;
            state->input = x;
        }
    });
    if (!opt.splice) return;
    hooks.add(c.hookNameOut, [sae, opt, state, path](at::Tensor& t, const HookContext& ctx) {
        if (!state->features.defined())
            failIn(path, "output hook fired without features from the input hook in the same run");
        const at::Tensor y = asRows(t);
        at::Tensor out = sae->decode(state->features);
        if (at::Tensor s = sae->skip(state->input); s.defined()) out = out + s;
        if (opt.keepError) out = out + (y.to(at::kFloat) - out).detach();
        out = keepWhereAsked(out, y, opt, ctx, path);
        state->features = state->input = at::Tensor();
        t = out.to(t.scalar_type()).reshape(t.sizes());
    });
}

}  // namespace cs
