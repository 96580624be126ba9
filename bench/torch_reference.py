#!/usr/bin/env python3
"""PyTorch eager reference for `moegrad bench --config FILE`.

Times the same training step as train/benchmark.cpp on HF transformers' OlmoeForCausalLM of the
config's shape: zero_grad, forward with labels (CE + lb_coef * HF load-balancing loss pooled over
layers), backward, global-norm clipping, torch.optim.AdamW; fp32 (no TF32) on the CPU or a CUDA
GPU, eager or torch.compile'd, random tokens, the median of the timed steps after the warmup.
Prints the same summary lines as moegrad, the last one `tokens_per_s=<number>`.

    .venv-bench/bin/python bench/torch_reference.py --config experiments/bench/tiny.cfg --steps 5
    python3 bench/torch_reference.py --config experiments/bench/medium.cfg --device cuda --compile
"""
import argparse
import configparser
import os
import sys
import time

# The keys of train/config.cpp with their defaults (OlmoeConfig's for [model]); every key is
# accepted so that any moegrad config reads, but only the model shape and the step's settings
# are used. An unknown key is an error, as in moegrad.
DEFAULTS = {
    "model": {
        "from": "", "seed": 0, "vocab_size": 50304, "hidden_size": 2048,
        "intermediate_size": 2048, "num_hidden_layers": 16, "num_attention_heads": 16,
        "num_key_value_heads": 16, "num_experts": 64, "num_experts_per_tok": 8,
        "norm_topk_prob": False, "rope_theta": 10000.0, "max_position_embeddings": 4096,
        "rms_norm_eps": 1e-5, "initializer_range": 0.02,
    },
    "data": {
        "train": "", "heldout": "", "languages": "", "weights": "", "tokenizer": "",
        "eos_id": -1, "seq_len": 256,
    },
    "train": {
        "steps": 100, "batch_size": 8, "grad_accum": 1, "lr": 4e-4, "schedule": "cosine",
        "warmup_steps": 0, "warmup_start": 0.1, "alpha_f": 0.1, "decay_fraction": 0.2,
        "beta1": 0.9, "beta2": 0.95, "eps": 1e-8, "weight_decay": 0.1, "clip": 1.0,
        "lb_coef": 0.01, "lb_kind": "hf", "z_coef": 0.0, "seed": 0, "device": "cpu",
        "precision": "f32",
    },
    # Freeze rules (train, freeze, experts, rows) may repeat, which configparser cannot read:
    # the benchmark trains everything, so any [freeze] content is refused below.
    "freeze": {"restrict_router": False},
    "eval": {"interval": 0, "batches": 4},
    "run": {
        "name": "run", "dir": "runs", "checkpoint_interval": 0, "keep": 3, "log_interval": 1,
    },
}

BOOLEANS = {"true": True, "yes": True, "on": True, "1": True,
            "false": False, "no": False, "off": False, "0": False}


def fail(message):
    sys.exit(f"torch_reference: {message}")


def load_config(path):
    if not os.path.isfile(path):
        fail(f"config file '{path}' does not exist")
    parser = configparser.ConfigParser(inline_comment_prefixes=("#",), interpolation=None,
                                       strict=False)
    try:
        parser.read(path)
    except configparser.Error as e:
        fail(f"{path}: {e}")
    config = {s: dict(keys) for s, keys in DEFAULTS.items()}
    for section in parser.sections():
        if section not in DEFAULTS:
            fail(f"{path}: unknown section [{section}]")
        if section == "freeze" and dict(parser[section]):
            fail(f"{path}: [freeze]: the reference trains every parameter; remove the section")
        for key, text in parser[section].items():
            if key not in DEFAULTS[section]:
                fail(f"{path}: unknown key '{section}.{key}'")
            default = DEFAULTS[section][key]
            try:
                value = BOOLEANS[text.lower()] if isinstance(default, bool) else type(default)(text)
            except (KeyError, ValueError):
                fail(f"{path}: {section}.{key}: bad value '{text}'")
            config[section][key] = value
    if config["model"]["from"]:
        fail(f"{path}: model.from: the benchmark builds a new model from the [model] keys")
    if config["train"]["lb_kind"] != "hf":
        fail(f"{path}: train.lb_kind: HF's OlmoeForCausalLM only has the hf load-balancing loss "
             "(pooled over layers)")
    return config


# The formulas of train/benchmark.cpp, so that both programs report the same GFLOP/s.
def active_parameters(m):
    h = m["hidden_size"]
    kv = m["num_key_value_heads"] * (h // m["num_attention_heads"])
    attention = h * h * 2 + h * kv * 2 + h + kv
    moe = m["num_experts"] * h + m["num_experts_per_tok"] * 3 * m["intermediate_size"] * h
    layer = attention + moe + 2 * h
    return m["num_hidden_layers"] * layer + h + m["vocab_size"] * h


def training_flops_per_token(m, seq_len):
    return 6.0 * active_parameters(m) + 12.0 * m["num_hidden_layers"] * seq_len * m["hidden_size"]


def measure_gemm_gflops(torch, device, sync, dtype, n=1024, repeats=5):
    gen = torch.Generator().manual_seed(7)
    a, b = (torch.randn(n, n, generator=gen).to(device=device, dtype=dtype) for _ in range(2))
    torch.mm(a, b)
    sync()
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        torch.mm(a, b)
        sync()
        best = min(best, time.perf_counter() - t0)
    return 2.0 * n ** 3 / best / 1e9


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", required=True, help="moegrad experiment config (INI)")
    ap.add_argument("--steps", type=int, default=5, help="timed steps")
    ap.add_argument("--warmup", type=int, default=2, help="untimed steps first")
    ap.add_argument("--threads", type=int, default=None,
                    help="intra-op threads (default: $OMP_NUM_THREADS, else os.cpu_count())")
    ap.add_argument("--attn", choices=["eager", "sdpa"], default="eager",
                    help="HF attention implementation")
    ap.add_argument("--experts", choices=["default", "eager", "grouped_mm"],
                    default="default",
                    help="HF experts implementation; default: what transformers picks")
    ap.add_argument("--adamw", choices=["default", "foreach", "fused"], default="default",
                    help="torch.optim.AdamW implementation; default: torch's choice (on the CPU "
                         "a loop over the parameters)")
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cpu",
                    help="where the step runs (cuda: the first GPU)")
    ap.add_argument("--compile", action="store_true",
                    help="torch.compile the model (the warmup steps include the compilation)")
    ap.add_argument("--precision", choices=["f32", "bf16"], default=None,
                    help="f32, or bf16: torch.autocast to bfloat16 around forward and loss with "
                         "f32 parameters and AdamW (PyTorch's mixed precision); default: the "
                         "config's train.precision")
    args = ap.parse_args()
    if args.steps <= 0 or args.warmup < 0:
        fail("--steps must be positive and --warmup >= 0")
    threads = args.threads or int(os.environ.get("OMP_NUM_THREADS") or 0) or os.cpu_count()

    c = load_config(args.config)
    m, t, seq_len = c["model"], c["train"], c["data"]["seq_len"]
    precision = args.precision or t["precision"]
    if precision not in ("f32", "bf16"):
        fail(f"{args.config}: train.precision: expected f32 or bf16, got '{precision}'")

    import torch
    import transformers
    from transformers import OlmoeConfig, OlmoeForCausalLM

    torch.set_num_threads(threads)
    torch.manual_seed(m["seed"])
    if args.device == "cuda" and not torch.cuda.is_available():
        fail("--device cuda: torch sees no CUDA GPU")
    device = torch.device(args.device)
    # moegrad's f32 is IEEE f32; TF32 matmuls would be another precision.
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    sync = torch.cuda.synchronize if args.device == "cuda" else (lambda: None)
    hf_config = OlmoeConfig(
        vocab_size=m["vocab_size"], hidden_size=m["hidden_size"],
        intermediate_size=m["intermediate_size"], num_hidden_layers=m["num_hidden_layers"],
        num_attention_heads=m["num_attention_heads"],
        num_key_value_heads=m["num_key_value_heads"], num_experts=m["num_experts"],
        num_experts_per_tok=m["num_experts_per_tok"], norm_topk_prob=m["norm_topk_prob"],
        rope_parameters={"rope_type": "default", "rope_theta": m["rope_theta"]},
        max_position_embeddings=m["max_position_embeddings"], rms_norm_eps=m["rms_norm_eps"],
        initializer_range=m["initializer_range"], router_aux_loss_coef=t["lb_coef"],
        output_router_logits=t["lb_coef"] != 0 or t["z_coef"] != 0, use_cache=False,
        # No special tokens: a padding_idx would zero one embedding row's gradient, which
        # moegrad's embedding does not do.
        pad_token_id=None, bos_token_id=None, eos_token_id=None)
    kwargs = {"attn_implementation": args.attn, "dtype": torch.float32}
    if args.experts != "default":
        kwargs["experts_implementation"] = args.experts
    model = OlmoeForCausalLM._from_config(hf_config, **kwargs).to(device)
    model.train()
    impl = {"default": {}, "foreach": {"foreach": True}, "fused": {"fused": True}}[args.adamw]
    optimizer = torch.optim.AdamW(model.parameters(), lr=t["lr"], betas=(t["beta1"], t["beta2"]),
                                  eps=t["eps"], weight_decay=t["weight_decay"], **impl)
    forward = torch.compile(model) if args.compile else model
    data_gen = torch.Generator().manual_seed(t["seed"])

    def micro_batches():
        return [torch.randint(0, m["vocab_size"], (t["batch_size"], seq_len),
                              generator=data_gen).to(device)
                for _ in range(t["grad_accum"])]

    autocast = torch.autocast(args.device, dtype=torch.bfloat16, enabled=precision == "bf16")

    def step(batches):
        optimizer.zero_grad(set_to_none=True)
        for ids in batches:
            with autocast:
                out = forward(input_ids=ids, labels=ids)
                loss = out.loss
                if t["z_coef"] != 0:  # ST-MoE router z-loss, as moe/losses.h: mean over layers
                    z = torch.stack([torch.logsumexp(g.float(), dim=-1).square().mean()
                                     for g in out.router_logits]).mean()
                    loss = loss + t["z_coef"] * z
            (loss / len(batches)).backward()
        if t["clip"] > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), t["clip"])
        optimizer.step()

    tokens_per_step = t["grad_accum"] * t["batch_size"] * seq_len
    print(f"config: {args.config} (hidden {m['hidden_size']}, {m['num_hidden_layers']} layers, "
          f"{m['num_experts']} experts top-{m['num_experts_per_tok']}, expert width "
          f"{m['intermediate_size']}, vocab {m['vocab_size']}, "
          f"{t['grad_accum'] * t['batch_size']} x {seq_len} tokens per step)")
    print(f"torch {torch.__version__}, transformers {transformers.__version__}, "
          f"{torch.get_num_threads()} threads, attention {model.config._attn_implementation}, "
          f"experts {model.config._experts_implementation}, AdamW {args.adamw}, "
          f"device {args.device}{', torch.compile' if args.compile else ', eager'}, "
          f"precision {precision}{' (autocast)' if precision == 'bf16' else ''}")
    print(f"active parameters per token: {active_parameters(m)}")
    sys.stdout.flush()

    for _ in range(args.warmup):
        step(micro_batches())
    sync()
    times = []
    for _ in range(args.steps):
        batches = micro_batches()
        sync()
        t0 = time.perf_counter()
        step(batches)
        sync()
        times.append(time.perf_counter() - t0)
    times.sort()
    seconds = times[len(times) // 2]
    tokens_per_s = tokens_per_step / seconds
    gflops = tokens_per_s * training_flops_per_token(m, seq_len) / 1e9
    # The same reference sizes as train/benchmark.cpp: 4096^3 fills a GPU, 1024^3 does not.
    gemm = measure_gemm_gflops(torch, device, sync,
                               torch.bfloat16 if precision == "bf16" else torch.float32,
                               n=4096 if args.device == "cuda" else 1024)
    print(f"seconds per step (median of {args.steps}): {seconds:.6g}")
    print(f"achieved: {gflops:.6g} GFLOP/s (6 x active params x tokens + attention)")
    print(f"{precision} GEMM rate of {args.device}, same run: {gemm:.6g} GFLOP/s")
    if args.device == "cuda":
        print(f"peak GPU memory: {torch.cuda.max_memory_allocated() / 2**30:.3f} GiB")
    print(f"ratio to GEMM: {gflops / gemm:.6g}")
    print(f"tokens_per_s={tokens_per_s:.6g}")


if __name__ == "__main__":
    main()
