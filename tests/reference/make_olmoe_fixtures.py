#!/usr/bin/env python3
"""Reference fixtures for moegrad's OLMoE implementation, made with HuggingFace transformers.

NOT NEEDED BY CI: the outputs under tests/reference/olmoe/ are committed, and the C++ tests
only read those files. Run this script only to regenerate them (or to check an export):

    python3 -m venv /tmp/olmoe-venv
    /tmp/olmoe-venv/bin/pip install -r tests/reference/requirements.txt   # plain PyPI
    /tmp/olmoe-venv/bin/python tests/reference/make_olmoe_fixtures.py            # write fixtures
    /tmp/olmoe-venv/bin/python tests/reference/make_olmoe_fixtures.py --check-export DIR [--variant base]

Everything runs on the CPU in float32 with eager attention, deterministic seeds.
See tests/reference/README.md for what each file holds and the exact loss definitions.

Writes, for each variant V in {base, gqa_norm}, under tests/reference/olmoe/V/:
  config.json, model.safetensors        save_pretrained(safe_serialization=True) output, as written
                                        by the installed transformers (layout: see README)
  model_per_expert.safetensors          only when model.safetensors holds the fused v5 expert
                                        layout: the same weights with one tensor per expert
  model_fused.safetensors               base only, when model.safetensors holds the per-expert
                                        layout (transformers 5.23 does): the same weights in the
                                        fused v5 layout (gate_up_proj = cat(gate, up), gate first)
  expected.safetensors                  the fixture batch, outputs and gradients
"""
import argparse
import json
import os
import sys

import torch

import safetensors
import transformers
from safetensors.torch import load_file, save_file
from transformers import OlmoeConfig, OlmoeForCausalLM

HERE = os.path.dirname(os.path.abspath(__file__))
OUT_ROOT = os.path.join(HERE, "olmoe")

BATCH, SEQ = 2, 16
PAD_LEN = 4  # the last PAD_LEN positions of row 1 are padding (right padding)
DATA_SEED = 1234
# A fixture is rejected (and the next weight seed tried) when some token's k-th and (k+1)-th
# router probabilities are closer than this: a near tie could flip the expert choice under
# f32 rounding differences and make a correct implementation fail the 1e-4 comparison.
MIN_TOPK_MARGIN = 1e-3

COMMON = dict(
    vocab_size=512,
    hidden_size=64,
    intermediate_size=32,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_experts=8,
    num_experts_per_tok=2,
    max_position_embeddings=128,
    rms_norm_eps=1e-5,
    rope_theta=10000.0,
    router_aux_loss_coef=0.01,
    tie_word_embeddings=False,
    attention_bias=False,
    hidden_act="silu",
    pad_token_id=1,
    eos_token_id=None,
    bos_token_id=None,
)

VARIANTS = {
    "base": dict(num_key_value_heads=4, norm_topk_prob=False, clip_qkv=None, weight_seed=0),
    "gqa_norm": dict(num_key_value_heads=2, norm_topk_prob=True, clip_qkv=2.0, weight_seed=100),
}


def make_config(variant):
    v = dict(VARIANTS[variant])
    v.pop("weight_seed")
    cfg = OlmoeConfig(**COMMON, **v)
    cfg._attn_implementation = "eager"
    return cfg


def init_weights(model, seed):
    """Non-trivial init so logits and routing vary: matrices N(0, 0.2), norms 1 + 0.1 N(0, 1)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() == 1:  # RMSNorm weights
                p.copy_(1.0 + 0.1 * torch.randn(p.shape, generator=g))
            else:
                p.copy_(0.2 * torch.randn(p.shape, generator=g))


def fixture_batch():
    g = torch.Generator().manual_seed(DATA_SEED)
    input_ids = torch.randint(0, COMMON["vocab_size"], (BATCH, SEQ), generator=g, dtype=torch.int64)
    attention_mask = torch.ones(BATCH, SEQ, dtype=torch.int64)
    attention_mask[1, SEQ - PAD_LEN:] = 0
    input_ids[1, SEQ - PAD_LEN:] = COMMON["pad_token_id"]
    labels = input_ids.clone()
    labels[attention_mask == 0] = -100  # HF shifts labels internally; -100 is ignored by CE
    return input_ids, attention_mask, labels


def topk_margin(router_logits, k, mask=None):
    """Smallest gap between the k-th and (k+1)-th softmax prob over all (layer, token)."""
    m = float("inf")
    for rl in router_logits:
        p = torch.softmax(rl.float(), dim=-1)
        top = torch.topk(p, k + 1, dim=-1).values
        gap = top[:, k - 1] - top[:, k]
        m = min(m, gap.min().item())
    return m


def is_fused(sd):
    return any(k.endswith("mlp.experts.gate_up_proj") for k in sd)


def fused_to_per_expert(sd, inter):
    out = {}
    for k, v in sd.items():
        if k.endswith("mlp.experts.gate_up_proj"):
            pre = k[: -len("gate_up_proj")]
            for e in range(v.shape[0]):
                out[f"{pre}{e}.gate_proj.weight"] = v[e, :inter].contiguous()  # gate first
                out[f"{pre}{e}.up_proj.weight"] = v[e, inter:].contiguous()
        elif k.endswith("mlp.experts.down_proj"):
            pre = k[: -len("down_proj")]
            for e in range(v.shape[0]):
                out[f"{pre}{e}.down_proj.weight"] = v[e].contiguous()
        else:
            out[k] = v.contiguous()
    return out


def per_expert_to_fused(sd, num_experts):
    out, layers = {}, {}
    for k, v in sd.items():
        if ".mlp.experts." in k:
            pre, rest = k.split(".mlp.experts.")
            e, proj, _ = rest.split(".")
            layers.setdefault(pre, {})[(int(e), proj)] = v
        else:
            out[k] = v.contiguous()
    for pre, d in layers.items():
        out[f"{pre}.mlp.experts.gate_up_proj"] = torch.stack(
            [torch.cat([d[(e, "gate_proj")], d[(e, "up_proj")]], 0) for e in range(num_experts)]).contiguous()
        out[f"{pre}.mlp.experts.down_proj"] = torch.stack(
            [d[(e, "down_proj")] for e in range(num_experts)]).contiguous()
    return out


def run_model(model, input_ids, attention_mask, labels):
    model.zero_grad(set_to_none=True)
    out = model(input_ids=input_ids, attention_mask=attention_mask, labels=labels,
                output_router_logits=True, use_cache=False)
    out.loss.backward()
    return out


def versions():
    return {
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "safetensors": safetensors.__version__,
        "python": sys.version.split()[0],
    }


def make_variant(variant):
    cfg = make_config(variant)
    input_ids, attention_mask, labels = fixture_batch()
    seed = VARIANTS[variant]["weight_seed"]
    for attempt in range(50):
        torch.manual_seed(seed)
        model = OlmoeForCausalLM(cfg).float().eval()  # eval: no dropout (attention_dropout is 0 anyway)
        init_weights(model, seed)
        with torch.no_grad():
            out = model(input_ids=input_ids, attention_mask=attention_mask, output_router_logits=True)
        margin = topk_margin(out.router_logits, cfg.num_experts_per_tok)
        if margin >= MIN_TOPK_MARGIN:
            break
        print(f"[{variant}] seed {seed}: top-k margin {margin:.2e} too small, next seed")
        seed += 1
    else:
        raise SystemExit("no seed with a safe top-k margin")

    d = os.path.join(OUT_ROOT, variant)
    os.makedirs(d, exist_ok=True)
    for f in os.listdir(d):
        os.remove(os.path.join(d, f))
    model.save_pretrained(d, safe_serialization=True)
    saved = load_file(os.path.join(d, "model.safetensors"))
    fused = is_fused(saved)
    inter, E = cfg.intermediate_size, cfg.num_experts
    if fused:
        save_file(fused_to_per_expert(saved, inter), os.path.join(d, "model_per_expert.safetensors"),
                  metadata={"format": "pt", "layout": "per_expert"})
    elif variant == "base":  # one fused-layout copy is enough to test that loader (size)
        save_file(per_expert_to_fused(saved, E), os.path.join(d, "model_fused.safetensors"),
                  metadata={"format": "pt", "layout": "fused"})

    # Sanity: both files reload through from_pretrained and give identical logits.
    reloaded = OlmoeForCausalLM.from_pretrained(d, attn_implementation="eager").float().eval()

    # Full loss (CE + coef * aux), with grads.
    out = run_model(model, input_ids, attention_mask, labels)
    grads = {n: p.grad.detach().clone() for n, p in model.named_parameters()}
    with torch.no_grad():
        out_nomask = model(input_ids=input_ids, labels=input_ids, output_router_logits=True)
        out_re = reloaded(input_ids=input_ids, attention_mask=attention_mask, output_router_logits=True)
    assert torch.equal(out_re.logits, out.logits.detach()), "reloaded checkpoint gives different logits"

    # CE only (no aux): a separate forward/backward with output_router_logits=False.
    model.zero_grad(set_to_none=True)
    out_ce = model(input_ids=input_ids, attention_mask=attention_mask, labels=labels,
                   output_router_logits=False, use_cache=False)
    out_ce.loss.backward()
    grads_ce = {n: p.grad.detach().clone() for n, p in model.named_parameters()}

    # Independent re-derivations of HF's two loss terms (they document the exact definitions).
    with torch.no_grad():
        lg = out.logits.detach()
        tgt = labels[:, 1:].reshape(-1)
        ce_ref = torch.nn.functional.cross_entropy(lg[:, :-1].reshape(-1, lg.shape[-1]), tgt,
                                                   ignore_index=-100, reduction="sum") / (tgt != -100).sum()
        assert torch.allclose(ce_ref, out_ce.loss, rtol=1e-6), (ce_ref, out_ce.loss)
        w = attention_mask.reshape(-1).float()
        k, E_ = cfg.num_experts_per_tok, cfg.num_experts
        cnt, psum, rows = torch.zeros(E_), torch.zeros(E_), 0.0
        for rl in out.router_logits:  # pooled over all layers, pad rows weighted 0
            pr = torch.softmax(rl.detach().float(), -1)
            sel = torch.topk(pr, k, -1).indices
            cnt += (torch.nn.functional.one_hot(sel, E_).sum(1).float() * w[:, None]).sum(0)
            psum += (pr * w[:, None]).sum(0)
            rows += w.sum()
        aux_ref = E_ * torch.sum((cnt / rows) * (psum / rows))
        assert torch.allclose(aux_ref, out.aux_loss, rtol=1e-5), (aux_ref, out.aux_loss)

    # Grads are stored under the names used in model.safetensors. Model params are fused in v5.
    def by_saved_names(g):
        if fused == is_fused(g):
            return g
        return fused_to_per_expert(g, inter) if is_fused(g) else per_expert_to_fused(g, E)

    ce_loss = out_ce.loss.detach()
    aux = out.aux_loss.detach()
    loss = out.loss.detach()
    recomputed = ce_loss + cfg.router_aux_loss_coef * aux
    assert torch.allclose(recomputed, loss, rtol=1e-6, atol=0), (recomputed, loss)

    t = {
        "input_ids": input_ids,
        "attention_mask": attention_mask,
        "labels": labels,
        "logits": out.logits.detach(),
        "loss": loss,
        "ce_loss": ce_loss,
        "aux_loss": aux,
        "nomask.logits": out_nomask.logits.detach(),
        "nomask.loss": out_nomask.loss.detach(),
        "nomask.aux_loss": out_nomask.aux_loss.detach(),
    }
    for i, rl in enumerate(out.router_logits):
        t[f"router_logits.{i}"] = rl.detach().reshape(BATCH, SEQ, -1)
    for n, g in by_saved_names(grads).items():
        t[f"grad.{n}"] = g
    if variant == "base":  # CE-only grads, one variant only (size)
        for n, g in by_saved_names(grads_ce).items():
            t[f"grad_ce.{n}"] = g
    t = {k: v.contiguous() for k, v in t.items()}
    meta = {
        "variant": variant,
        "weight_seed": str(seed),
        "data_seed": str(DATA_SEED),
        "topk_margin": f"{margin:.6g}",
        "saved_expert_layout": "fused" if fused else "per_expert",
        "attn_implementation": "eager",
        "dtype": "float32",
        "padding": f"row 1: last {PAD_LEN} positions have attention_mask 0, labels -100",
        "loss": "ce_loss + router_aux_loss_coef * aux_loss (HF OlmoeForCausalLM.forward)",
        **{f"version.{k}": v for k, v in versions().items()},
    }
    save_file(t, os.path.join(d, "expected.safetensors"), metadata=meta)
    sizes = {f: os.path.getsize(os.path.join(d, f)) for f in sorted(os.listdir(d))}
    print(f"[{variant}] seed {seed} margin {margin:.4g} layout {'fused' if fused else 'per_expert'} "
          f"loss {loss.item():.6f} ce {ce_loss.item():.6f} aux {aux.item():.6f} "
          f"logits std {out.logits.std().item():.3f} sizes {sizes}")
    return sizes


def check_export(d, variant=None, rtol=1e-4):
    """Load a moegrad-exported checkpoint dir with transformers, compare logits on the fixture batch.

    The variant's expected.safetensors is picked by `variant`, or by matching config.json.
    Returns True when max |a-b| / max(|b|) <= rtol for logits (and loss, when present)."""
    if variant is None:
        with open(os.path.join(d, "config.json")) as f:
            c = json.load(f)
        variant = "gqa_norm" if c.get("num_key_value_heads") == 2 else "base"
    exp = load_file(os.path.join(OUT_ROOT, variant, "expected.safetensors"))
    model = OlmoeForCausalLM.from_pretrained(d, attn_implementation="eager", dtype=torch.float32).eval()
    with torch.no_grad():
        out = model(input_ids=exp["input_ids"], attention_mask=exp["attention_mask"], labels=exp["labels"],
                    output_router_logits=True)
    ok = True
    for name, got in (("logits", out.logits), ("loss", out.loss), ("aux_loss", out.aux_loss)):
        want = exp[name]
        err = (got - want).abs().max().item() / max(want.abs().max().item(), 1e-30)
        good = err <= rtol
        ok &= good
        print(f"{name}: rel err {err:.3e} {'OK' if good else 'FAIL'}")
    print("check_export:", "PASS" if ok else "FAIL", f"({d} vs {variant})")
    return ok


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--check-export", metavar="DIR")
    ap.add_argument("--variant", choices=sorted(VARIANTS))
    a = ap.parse_args()
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    if a.check_export:
        sys.exit(0 if check_export(a.check_export, a.variant) else 1)
    total = 0
    for v in VARIANTS:
        total += sum(make_variant(v).values())
    print(f"total bytes {total}; versions {versions()}")


if __name__ == "__main__":
    main()
