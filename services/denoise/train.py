"""Train ZipEnhancer on cached TTS speech mixed on the fly with generated noise.

    python -m services.denoise.train --size small --run runs/denoise/small --minutes 60

Resumable: the run directory holds model/optimizer safetensors + state.json, written every
--save-every steps; running the same command again continues from there. Each save also
validates on a fixed seeded set, draws the loss curves (curves.png) and, when the
validation loss improved, exports the model to --export (the bundled weights).
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import time
from pathlib import Path

import numpy as np
import torch

from services.denoise.checkpoint import load_model, load_training_state, save_model, save_training_state
from services.denoise.data import DEFAULT_CACHE, MixtureConfig, SpeechCache, make_mixture
from services.denoise.losses import LossWeights, enhancement_loss
from services.denoise.noise import KINDS
from services.denoise.zipenhancer import (PAPER, SMALL, ZipEnhancer, ZipEnhancerConfig, count_parameters,
                                          fresh_parameters, grow)

SIZES = {"paper": PAPER, "small": SMALL}
WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
EXPORT_NAMES = {"paper": "zipenhancer", "small": "zipenhancer-small"}


def _batch(cache: SpeechCache, rng: np.random.Generator, n: int, cfg: MixtureConfig,
           device: torch.device = torch.device("cpu")) -> tuple[torch.Tensor, torch.Tensor]:
    pairs = [make_mixture(cache, rng, cfg) for _ in range(n)]
    noisy = torch.from_numpy(np.stack([p[0] for p in pairs])).to(device)
    clean = torch.from_numpy(np.stack([p[1] for p in pairs])).to(device)
    return noisy, clean


def _validation_set(cache: SpeechCache, n: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    return _batch(cache, np.random.default_rng(12345), n, MixtureConfig(seconds=2.0))


def _trainable(model: ZipEnhancer, cfg: ZipEnhancerConfig, args: argparse.Namespace) -> list[torch.nn.Parameter]:
    """All parameters, or with --only-new just those (stacks, refinement blocks) --init lacks."""
    if not args.only_new:
        return list(model.parameters())
    if not args.init:
        raise SystemExit("--only-new needs --init: it trains what those weights lack")
    old = load_model(Path(args.init)).cfg
    try:
        fresh = set(fresh_parameters(old, model))
    except ValueError as e:
        raise SystemExit(f"--init {args.init} does not fit: {e}") from None
    if not fresh:
        raise SystemExit(f"--only-new: stacks {cfg.stacks}, refine {cfg.refine} add nothing to "
                         f"{old.stacks}, refine {old.refine}")
    params = []
    for name, p in model.named_parameters():
        p.requires_grad_(name in fresh)
        if name in fresh:
            params.append(p)
    return params


def _device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: no CUDA device is visible to torch")
    return torch.device(name)


@torch.no_grad()
def _validate(model: ZipEnhancer, val: tuple[torch.Tensor, torch.Tensor],
              weights: LossWeights) -> dict[str, float]:
    model.eval()
    loss, parts = enhancement_loss(model, *val, weights)
    model.train()
    return {"loss": float(loss), "si_sdr": -parts["si_sdr"]}


def _plot(history: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
    steps, losses = history["train_step"], history["train_loss"]
    if losses:
        k = max(1, min(200, len(losses) // 8))  # the batches are noisy: smooth hard
        smooth = np.convolve(losses, np.ones(k) / k, mode="valid")
        a.plot(steps[k - 1:], smooth, label="train (smoothed)")
    a.plot(history["val_step"], history["val_loss"], "o-", label="validation")
    a.set_xlabel("step"), a.set_ylabel("loss"), a.legend(), a.set_yscale("log")
    b.plot(history["val_step"], history["val_si_sdr"], "o-")
    b.set_xlabel("step"), b.set_ylabel("validation SI-SDR (dB)")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def train(args: argparse.Namespace) -> None:
    from tqdm import tqdm

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    run = Path(args.run)
    run.mkdir(parents=True, exist_ok=True)
    cache = SpeechCache.load(Path(args.cache) / "train")
    device = _device(args.device)
    cfg = SIZES[args.size]
    if args.stacks:
        cfg = dataclasses.replace(cfg, stacks=args.stacks)
    if args.refine is not None:
        cfg = dataclasses.replace(cfg, refine=args.refine)
    model = ZipEnhancer(cfg).to(device).train()
    weights = LossWeights(si_sdr=args.si_sdr_weight)
    trained = _trainable(model, cfg, args)
    opt = torch.optim.AdamW(trained, lr=args.lr, betas=(0.8, 0.99), weight_decay=0.01)
    history = {"train_step": [], "train_loss": [], "val_step": [], "val_loss": [], "val_si_sdr": [],
               "seconds": 0.0, "best_val": math.inf}
    step = 0
    if (run / "state.json").exists():
        state = load_training_state(run, model, opt)
        step, history = state["step"], state["history"]
        print(f"resumed {run} at step {step}", flush=True)
    elif args.init:  # fine-tune: trained weights, fresh optimiser and schedule
        init = load_model(Path(args.init)).to(device)
        try:
            grow(model, init)
        except ValueError as e:
            raise SystemExit(f"--init {args.init} does not fit --size {args.size}: {e}") from None
        print(f"started from {args.init} (stacks {init.cfg.stacks} → {cfg.stacks}, "
              f"refine {init.cfg.refine} → {cfg.refine})", flush=True)
    print(f"{args.size}: {count_parameters(model)} parameters on {device}", flush=True)
    val = _validation_set(cache, args.val_mixtures)
    val_id = f"{','.join(KINDS)}:{float(val[0].double().square().sum()):.6g}"
    val = (val[0].to(device), val[1].to(device))
    if history.get("val_set") != val_id:  # the noise recipe changed: old best losses are not comparable
        if history.get("val_set") is not None or step:
            print("validation set changed: best validation loss reset", flush=True)
        history["val_set"], history["best_val"] = val_id, math.inf
    mix_cfg = MixtureConfig(seconds=args.seconds)
    rng = np.random.default_rng([args.seed, step])  # a fresh stream per resume point
    deadline = time.time() + args.minutes * 60
    bar = tqdm(total=args.steps, initial=step, desc=f"train {args.size}", mininterval=20)
    t_last = time.time()
    while step < args.steps and time.time() < deadline:
        lr = args.lr * min(1.0, (step + 1) / args.warmup) * 0.5 ** (step / args.halflife)
        for g in opt.param_groups:
            g["lr"] = lr
        noisy, clean = _batch(cache, rng, args.batch, mix_cfg, device)
        loss, parts = enhancement_loss(model, noisy, clean, weights, level_jitter=args.level_jitter)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trained, 5.0)
        opt.step()
        step += 1
        history["train_step"].append(step)
        history["train_loss"].append(loss.item())
        bar.update(1)
        bar.set_postfix(loss=f"{loss.item():.3f}", sisdr=f"{-parts['si_sdr']:.1f}", lr=f"{lr:.1e}")
        if step % args.save_every == 0 or step >= args.steps or time.time() >= deadline:
            now = time.time()
            history["seconds"] += now - t_last
            t_last = now
            v = _validate(model, val, weights)
            history["val_step"].append(step)
            history["val_loss"].append(v["loss"])
            history["val_si_sdr"].append(v["si_sdr"])
            print(f"\nstep {step} val loss {v['loss']:.4f} val SI-SDR {v['si_sdr']:.2f} dB "
                  f"({history['seconds'] / 60:.1f} min)", flush=True)
            save_training_state(run, model, opt, {"step": step, "history": history, "args": vars(args)})
            _plot(history, run / "curves.png")
            if v["loss"] < history["best_val"]:
                history["best_val"] = v["loss"]
                meta = {"step": step, "train_minutes": round(history["seconds"] / 60, 1),
                        "val_loss": v["loss"], "val_si_sdr": v["si_sdr"], "size": args.size}
                save_model(run / "best", model, meta)
                if args.export:
                    save_model(Path(args.export) / EXPORT_NAMES[args.size], model, meta)
    bar.close()


def _factors(text: str) -> tuple[int, ...]:
    try:
        factors = tuple(int(f) for f in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected factors like 2,4,2") from None
    if not factors or any(f < 1 for f in factors):
        raise argparse.ArgumentTypeError(f"{text!r}: factors must be positive integers")
    return factors


def _count(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r}: expected a count, 0 or more")
    return int(text)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size", choices=sorted(SIZES), default="small")
    p.add_argument("--run", default=None, help="run directory (default runs/denoise/<size>)")
    p.add_argument("--cache", default=str(DEFAULT_CACHE), help="clean speech cache (services.denoise.data)")
    p.add_argument("--export", default=str(WEIGHTS_DIR), help="where improved weights go ('' = nowhere)")
    p.add_argument("--steps", type=int, default=100_000)
    p.add_argument("--minutes", type=float, default=60.0, help="stop after this much wall time")
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--seconds", type=float, default=1.0, help="training segment length")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--warmup", type=int, default=100)
    p.add_argument("--halflife", type=float, default=4000, help="steps for the lr to halve")
    p.add_argument("--save-every", type=int, default=50)
    p.add_argument("--val-mixtures", type=int, default=8, help="size of the fixed validation set (2 s each)")
    p.add_argument("--level-jitter", type=float, default=1.5,
                   help="input level varies by 2^±this around unit RMS (robustness for chunks/streams)")
    p.add_argument("--si-sdr-weight", type=float, default=LossWeights.si_sdr,
                   help="weight of the negative SI-SDR term (dB) beside the MP-SENet losses")
    p.add_argument("--init", default=None,
                   help="new runs start from these weights (a model stem, e.g. "
                        "services/denoise/weights/zipenhancer-small) instead of random")
    p.add_argument("--stacks", type=_factors, default=None,
                   help="dual-path stack factors replacing the size's, e.g. 2,4,2; with --init, "
                        "stacks the weights lack start nearly closed (Bypass 0.1), so training "
                        "starts from what the weights do")
    p.add_argument("--refine", type=_count, default=None,
                   help="zero-initialised refinement blocks at full frequency resolution per decoder "
                        "(replacing the size's: small 1, paper 0); with --init, new ones start as the identity")
    p.add_argument("--only-new", action="store_true",
                   help="with --init and --stacks/--refine: train only what was added, the rest frozen")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto",
                   help="auto: CUDA when torch sees a GPU (the paper size needs one), else CPU")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    a.run = a.run or f"runs/denoise/{a.size}"
    os.environ.setdefault("OMP_NUM_THREADS", str(a.threads))
    if not (Path(a.cache) / "train" / "index.json").exists():
        raise SystemExit(f"no speech cache at {a.cache}: run python -m services.training.denoise_cache first")
    train(a)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
