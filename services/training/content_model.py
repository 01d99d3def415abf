"""Train the bundled content model: a tiny Wav2Vec2ForCTC on TTS speech with phone labels.

    python -m services.training.content_model [--minutes 75] [--threads 1]   # data (if missing) + training
    python -m services.training.content_model prepare --n-train 1500          # only make data
    python -m services.training.content_model export                   # checkpoint → weights dir
    python -m services.training.content_model export --units-of services/encoder/weights/content_ctc

Data: training sentences of a text source (services.common.corpus: natural sentences by
default, `--texts templates` for the old grammar) in English and Mandarin, spoken by the
training voice mix (services.training.speech: the Piper voice, pitch/formant-shifted copies
of it and espeak-ng voices; `--voices bundled` for the Piper voice alone) with randomised
speaking rate and prosody noise, resampled to 16 kHz; labels are the timings' IPA phonemes
(en) and pinyin initials/finals (zh; see services/encoder/units.py for why no tones).
Held-out shards are always the bundled voice at its defaults (what `say` speaks, and what
the bench measures). Cached under cache/encoder/data (git-ignored). Training adds speed perturbation, gain and noise. Each language's CTC
loss is computed over blank + that language's units only, plus a frame-level
cross-entropy on the TTS-timed units (a dense signal that gets a from-scratch CTC model
off its all-blank plateau in a CPU budget). Resumable: the run directory holds
safetensors checkpoints (model and optimiser) plus JSON state; rerunning the command
continues. Held-out PER is measured on the source's held-out sentences at the voice's
default settings. A cache holds one text source (data/texts.txt) and one voice set
(data/voices.txt); mixing them is refused.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from tqdm import tqdm

from services.common.audio import resample
from services.common.corpus import TEXT_SOURCES
from services.common.errors import TalkingHeadError
from services.common.types import ANALYSIS_SAMPLE_RATE, SynthesisOptions
from services.encoder.content import DEFAULT_CONTENT_MODEL, receptive_field, tiny_ctc_config
from services.encoder.units import (BLANK, UNK, ctc_greedy, language_units, phone_error_rate,
                                    pinyin_units, speech_spans)
from services.training.speech import VOICE_SETS, check_voices, speech_source

ROOT = Path(__file__).resolve().parents[2]
CACHE = ROOT / "cache" / "encoder"
SHARD = 100
LANGS = ("en", "zh")


# --- data -----------------------------------------------------------------------------

def shard_path(cache: Path, split: str, lang: str, k: int) -> Path:
    return cache / "data" / split / f"{lang}_{k:04d}.npz"


def cache_marker(cache: Path, name: str, value: str, before_markers: str, what: str) -> None:
    """Record one property of the cache (data/<name>.txt) on first use; refuse a different
    value later. Caches made before the marker existed hold `before_markers`."""
    marker = cache / "data" / f"{name}.txt"
    if marker.exists():
        held = marker.read_text().strip()
    elif any((cache / "data").glob("*/*.npz")):
        held = before_markers
    else:
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.write_text(value + "\n")
        return
    if held != value:
        raise SystemExit(f"{cache / 'data'} holds {held} {what}, not {value}: use another --cache")


def cache_texts(cache: Path, texts: str) -> None:
    cache_marker(cache, "texts", texts, "templates", "sentences")


def cache_voices(cache: Path, voices: str) -> None:
    cache_marker(cache, "voices", voices, "bundled", "voices")


def make_shard(path: Path, split: str, lang: str, k: int, n: int, vary: bool, texts: str = "natural",
               voices: str = "mix") -> None:
    """Synthesise n sentences into one npz (int16 audio at 16 kHz + labels JSON); held-out
    shards are the bundled voice whatever `voices` says."""
    from services.common.corpus import sentences

    speak = speech_source(voices if split == "train" else "bundled", seed=f"{split}-{lang}-{k}")
    rng = random.Random(f"{split}-{lang}-{k}")
    audio, offsets, meta = [], [0], []
    for text in sentences(n, lang, seed=10_000 * (split == "heldout") + k, split=split, source=texts):
        opts = SynthesisOptions(rng.uniform(0.8, 1.25), rng.uniform(0.3, 0.9), rng.uniform(0.4, 1.0)) \
            if vary else SynthesisOptions()
        speech = speak(text, lang, options=opts)
        wav = resample(speech.audio.samples, speech.audio.sample_rate, ANALYSIS_SAMPLE_RATE)
        audio.append(np.round(np.clip(wav, -1, 1) * 32767).astype(np.int16))
        offsets.append(offsets[-1] + len(wav))
        spans = speech_spans(speech)
        meta.append({"text": text, "voice": speech.voice, "labels": [u for u, _, _ in spans],
                     "spans": [[u, round(a, 4), round(b, 4)] for u, a, b in spans]})
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, audio=np.concatenate(audio), offsets=np.array(offsets, dtype=np.int64),
             meta=np.array(json.dumps({"lang": lang, "items": meta})))
    tmp.rename(path)


def prepare(cache: Path, n_train: int, n_heldout: int, texts: str = "natural", voices: str = "mix") -> None:
    cache_texts(cache, texts)
    cache_voices(cache, voices)
    jobs = [("heldout", lang, k, False) for k in range(math.ceil(n_heldout / SHARD)) for lang in LANGS]
    jobs += [("train", lang, k, True) for k in range(math.ceil(n_train / SHARD)) for lang in LANGS]
    for split, lang, k, vary in tqdm(jobs, desc="TTS shards"):
        path = shard_path(cache, split, lang, k)
        if not path.exists():
            make_shard(path, split, lang, k, SHARD, vary, texts, voices)


def load_split(cache: Path, split: str) -> list[dict]:
    items = []
    for path in sorted((cache / "data" / split).glob("*_[0-9][0-9][0-9][0-9].npz")):
        with np.load(path) as z:
            meta = json.loads(str(z["meta"]))
            audio, off = z["audio"], z["offsets"]
            for i, m in enumerate(meta["items"]):
                items.append({"audio": audio[off[i]:off[i + 1]], "lang": meta["lang"], **m})
    return items


def build_vocab(items: list[dict]) -> list[str]:
    """Blank, unk, the English phones seen in the data (sorted), then all pinyin initials/finals."""
    phones = sorted({p for it in items if it["lang"] == "en" for p in it["labels"]})
    return [BLANK, UNK] + phones + pinyin_units(tones=False)


# --- model and batches ----------------------------------------------------------------

def new_model(vocab_size: int):
    from transformers import Wav2Vec2ForCTC

    config = tiny_ctc_config(vocab_size)
    config.architectures = ["Wav2Vec2ForCTC"]
    return Wav2Vec2ForCTC(config)


def augment(wav: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Speed perturbation (also shifts pitch: a cheap stand-in for other speakers), gain, noise."""
    factor = rng.choice([0.9, 1.0, 1.1])
    if factor != 1.0:
        wav = resample(wav, int(ANALYSIS_SAMPLE_RATE * factor), ANALYSIS_SAMPLE_RATE)
    wav = wav * rng.uniform(0.25, 1.0)
    if rng.random() < 0.5:
        snr = rng.uniform(10, 40)
        power = float(np.mean(wav ** 2)) + 1e-9
        wav = wav + rng.normal(0, math.sqrt(power / 10 ** (snr / 10)), len(wav)).astype(np.float32)
    return wav.astype(np.float32)


def prepare_wave(wav: np.ndarray, rf: int) -> np.ndarray:
    """Zero-mean unit-variance, padded half a receptive field each side (as ContentModel does)."""
    x = (wav - wav.mean()) / math.sqrt(wav.var() + 1e-7)
    return np.pad(x, (rf // 2, rf - rf // 2)).astype(np.float32)


def frame_targets(spans: list, n_frames: int, stretch: float, vocab_index: dict[str, int]) -> np.ndarray:
    """Unit id of every 20 ms frame (frame t centred on t·20 ms), blank in silences."""
    target = np.zeros(n_frames, dtype=np.int64)
    for unit, start, end in spans:
        a, b = int(round(start * stretch * 50)), int(round(end * stretch * 50))
        target[a:max(b, a + 1)] = vocab_index.get(unit, vocab_index[UNK])
    return target


def collate(batch: list[dict], vocab_index: dict[str, int], rf: int, rng: np.random.Generator | None):
    waves, frames = [], []
    for it in batch:
        wav = it["audio"].astype(np.float32) / 32767
        aug = augment(wav, rng) if rng is not None else wav
        waves.append(prepare_wave(aug, rf))
        n_out = len(aug) // 320 + 1
        # -100 = ignored by cross-entropy: utterances cached without timings, and padding
        frames.append(frame_targets(it["spans"], n_out, len(aug) / len(wav), vocab_index)
                      if "spans" in it else np.full(n_out, -100))
    n = max(len(w) for w in waves)
    x = torch.zeros(len(waves), n)
    mask = torch.zeros(len(waves), n, dtype=torch.long)
    for i, w in enumerate(waves):
        x[i, :len(w)] = torch.from_numpy(w)
        mask[i, :len(w)] = 1
    labels = [[vocab_index.get(u, vocab_index[UNK]) for u in it["labels"]] for it in batch]
    n_out = max(len(f) for f in frames)
    targets = torch.full((len(batch), n_out), -100, dtype=torch.long)
    for i, f in enumerate(frames):
        targets[i, :len(f)] = torch.from_numpy(f)
    return x, mask, labels, targets


def ctc_loss(model, logits: torch.Tensor, mask: torch.Tensor, labels: list[list[int]], langs: list[str],
             lang_masks: dict[str, torch.Tensor]) -> torch.Tensor:
    """CTC over blank + the utterance's language units only."""
    out_len = model._get_feat_extract_output_lengths(mask.sum(-1))
    allowed = torch.stack([lang_masks[lang] for lang in langs])  # [B, V] bool
    logits = logits.masked_fill(~allowed[:, None, :], -1e4)
    logp = F.log_softmax(logits.float(), dim=-1).transpose(0, 1)
    targets = torch.tensor([t for seq in labels for t in seq], dtype=torch.long)
    tgt_len = torch.tensor([len(seq) for seq in labels], dtype=torch.long)
    return F.ctc_loss(logp, targets, out_len, tgt_len, blank=0, zero_infinity=True)


@torch.no_grad()
def evaluate(model, items: list[dict], vocab: list[str], rf: int, lang_masks) -> dict[str, float]:
    model.eval()
    pairs: dict[str, list] = {lang: [] for lang in LANGS}
    for it in items:
        x = torch.from_numpy(prepare_wave(it["audio"].astype(np.float32) / 32767, rf))[None]
        logits = model(x).logits[0]
        logits = logits.masked_fill(~lang_masks[it["lang"]][None], -1e4)
        pairs[it["lang"]].append((it["labels"], ctc_greedy(logits.argmax(-1).tolist(), vocab)))
    model.train()
    out = {f"per_{lang}": phone_error_rate(p) for lang, p in pairs.items() if p}
    out["per"] = phone_error_rate([pr for p in pairs.values() for pr in p])
    return out


# --- checkpoints (safetensors + JSON, never pickle) -----------------------------------

def save_checkpoint(run: Path, model, opt: torch.optim.Optimizer, state: dict) -> None:
    run.mkdir(parents=True, exist_ok=True)
    tensors = {f"model.{k}": v.contiguous() for k, v in model.state_dict().items()}
    opt_state = opt.state_dict()
    for pid, s in opt_state["state"].items():
        for key, val in s.items():
            tensors[f"opt.{pid}.{key}"] = torch.as_tensor(val).contiguous()
    save_file(tensors, str(run / "ckpt.tmp.safetensors"))
    (run / "ckpt.tmp.safetensors").replace(run / "ckpt.safetensors")
    state = {**state, "param_groups": opt_state["param_groups"]}
    (run / "state.tmp.json").write_text(json.dumps(state))
    (run / "state.tmp.json").replace(run / "state.json")


def load_checkpoint(run: Path, model, opt: torch.optim.Optimizer) -> dict:
    tensors = load_file(str(run / "ckpt.safetensors"))
    state = json.loads((run / "state.json").read_text())
    model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    opt_state: dict = {"state": {}, "param_groups": state.pop("param_groups")}
    for k, v in tensors.items():
        if k.startswith("opt."):
            _, pid, key = k.split(".", 2)
            opt_state["state"].setdefault(int(pid), {})[key] = v
    opt.load_state_dict(opt_state)
    return state


def plot_curve(log: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(1, 2, figsize=(10, 3.5))
    tr = [r for r in log if "loss" in r]
    ax[0].plot([r["step"] for r in tr], [r["loss"] for r in tr], lw=0.8)
    ax[0].set(xlabel="step", ylabel="CTC (+ frame CE) loss", yscale="log", title="training loss")
    ev = [r for r in log if "per" in r]
    for key in ("per", "per_en", "per_zh"):
        ax[1].plot([r["step"] for r in ev], [r.get(key, np.nan) for r in ev], marker=".", label=key)
    ax[1].set(xlabel="step", ylabel="PER", title="held-out phone error rate")
    ax[1].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


# --- training ---------------------------------------------------------------------------

def lr_at(step: int, total: int, peak: float, warmup: int = 300) -> float:
    if step < warmup:
        return peak * (step + 1) / warmup
    return peak * 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warmup) / max(1, total - warmup))))


def train(args: argparse.Namespace) -> int:
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    cache, run = Path(args.cache), Path(args.cache) / "run"
    if args.prepare:
        prepare(cache, args.n_train, args.n_heldout, args.texts, args.voices)
    heldout = load_split(cache, "heldout")
    if not heldout or not list((cache / "data" / "train").glob("*.npz")):
        raise SystemExit("no data yet: run `python -m services.training.content_model prepare` first")
    vocab_path = run / "vocab.json"
    if vocab_path.exists():
        vocab = json.loads(vocab_path.read_text())
    else:
        vocab = build_vocab(load_split(cache, "train") + heldout)
        run.mkdir(parents=True, exist_ok=True)
        vocab_path.write_text(json.dumps(vocab, ensure_ascii=False))
    index = {u: i for i, u in enumerate(vocab)}
    lang_masks = {lang: torch.zeros(len(vocab), dtype=torch.bool).index_fill_(
        0, torch.tensor(language_units(vocab, lang)), True) for lang in LANGS}
    model = new_model(len(vocab))
    rf, _ = receptive_field(model.config)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.01, betas=(0.9, 0.98))
    state = {"step": 0, "epoch": 0, "seconds": 0.0, "log": []}
    if (run / "ckpt.safetensors").exists():
        state = load_checkpoint(run, model, opt)
        print(f"resumed at step {state['step']}", file=sys.stderr)
    model.train()
    rng = np.random.default_rng(state["step"])
    per_lang = args.eval_items // len(LANGS)
    eval_items = [it for lang in LANGS for it in [h for h in heldout if h["lang"] == lang][:per_lang]] \
        if args.eval_items else heldout
    t_start, t_ckpt = time.time(), time.time()
    budget = args.minutes * 60
    bar = tqdm(total=args.steps, initial=state["step"], desc="content CTC")
    while state["step"] < args.steps and time.time() - t_start < budget:
        items = load_split(cache, "train")  # picks up shards still being generated
        order = rng.permutation(len(items))
        # sort within buckets to limit padding, then shuffle the batches
        buckets = [sorted(order[i:i + 64], key=lambda j: len(items[j]["audio"])) for i in range(0, len(order), 64)]
        batches = [b[i:i + args.batch] for b in buckets for i in range(0, len(b), args.batch)]
        rng.shuffle(batches)
        for batch_idx in batches:
            if state["step"] >= args.steps or time.time() - t_start >= budget:
                break
            batch = [items[j] for j in batch_idx]
            x, mask, labels, targets = collate(batch, index, rf, rng)
            for g in opt.param_groups:
                g["lr"] = lr_at(state["step"], args.steps, args.lr)
            logits = model(x, attention_mask=mask).logits
            loss = ctc_loss(model, logits, mask, labels, [b["lang"] for b in batch], lang_masks)
            if args.frame_loss > 0 and (targets >= 0).any():
                # dense per-frame targets from the TTS timings: a fast start for the CTC
                t = min(targets.shape[1], logits.shape[1])
                loss = loss + args.frame_loss * F.cross_entropy(
                    logits[:, :t].reshape(-1, logits.shape[-1]).float(), targets[:, :t].reshape(-1))
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            opt.step()
            state["step"] += 1
            bar.update(1)
            bar.set_postfix(loss=f"{loss.item():.3f}")
            if state["step"] % 10 == 0:
                state["log"].append({"step": state["step"], "loss": round(loss.item(), 4)})
            if state["step"] % args.eval_every == 0:
                metrics = evaluate(model, eval_items, vocab, rf, lang_masks)
                state["log"].append({"step": state["step"], **{k: round(v, 4) for k, v in metrics.items()}})
                print(f"step {state['step']}: {metrics}", file=sys.stderr, flush=True)
                plot_curve(state["log"], run / "training_curve.png")
            if time.time() - t_ckpt > args.ckpt_minutes * 60:
                state["seconds"] += time.time() - t_ckpt
                t_ckpt = time.time()
                save_checkpoint(run, model, opt, state)
        state["epoch"] += 1
    state["seconds"] += time.time() - t_ckpt
    save_checkpoint(run, model, opt, state)
    bar.close()
    metrics = evaluate(model, heldout, vocab, rf, lang_masks)
    state["log"].append({"step": state["step"], **{k: round(v, 4) for k, v in metrics.items()}})
    save_checkpoint(run, model, opt, state)
    plot_curve(state["log"], run / "training_curve.png")
    print(f"done at step {state['step']}: held-out {metrics}", file=sys.stderr)
    if args.export:
        export(cache, Path(args.out), model, vocab, state, metrics, len(heldout))
    return 0


def export(cache: Path, out: Path, model, vocab: list[str], state: dict, metrics: dict, n_heldout: int) -> None:
    """Write a from_pretrained-loadable directory: config, safetensors, vocab, preprocessor, metrics."""
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out, safe_serialization=True)
    (out / "vocab.json").write_text(json.dumps({u: i for i, u in enumerate(vocab)}, ensure_ascii=False, indent=0))
    (out / "preprocessor_config.json").write_text(json.dumps({
        "feature_extractor_type": "Wav2Vec2FeatureExtractor", "feature_size": 1, "padding_side": "right",
        "padding_value": 0.0, "do_normalize": True, "return_attention_mask": True,
        "sampling_rate": ANALYSIS_SAMPLE_RATE}, indent=2))
    (out / "metrics.json").write_text(json.dumps({
        "heldout_sentences": n_heldout, **{k: round(v, 4) for k, v in metrics.items()},
        "train_steps": state["step"], "train_seconds": round(state["seconds"]),
        "train_utterances": len(load_split(cache, "train"))}, indent=2))
    if (cache / "run" / "training_curve.png").exists():
        shutil.copy(cache / "run" / "training_curve.png", out / "training_curve.png")
    print(f"exported to {out}", file=sys.stderr)


def keep_units(model, vocab: list[str], keep: list[str]) -> list[str]:
    """Cut the CTC head down to the units `keep`, in that order; returns the new vocabulary.

    Every trained subject's audio encoder takes the content model's posteriors at the width
    of the model it was trained with, so a retrained model whose labels happened to hold a
    few more units (a glottal stop, a syllabic mark) would make every subject unusable. The
    kept units' logits are unchanged; a dropped unit's probability mass goes to the kept
    ones through the softmax."""
    if not keep or keep[0] != vocab[0]:
        raise SystemExit(f"the kept vocabulary must start with the blank {vocab[0]!r}")
    missing = [u for u in keep if u not in vocab]
    if missing:
        raise SystemExit(f"the checkpoint has no unit {', '.join(missing)}: it cannot keep that vocabulary")
    rows = torch.tensor([vocab.index(u) for u in keep])
    head = model.lm_head
    cut = torch.nn.Linear(head.in_features, len(keep))
    with torch.no_grad():
        cut.weight.copy_(head.weight[rows])
        cut.bias.copy_(head.bias[rows])
    model.lm_head = cut
    model.config.vocab_size = len(keep)
    return list(keep)


def export_checkpoint(args: argparse.Namespace) -> int:
    from services.encoder.content import load_vocab

    torch.set_num_threads(args.threads)
    cache, run = Path(args.cache), Path(args.cache) / "run"
    vocab = json.loads((run / "vocab.json").read_text())
    model = new_model(len(vocab))
    opt = torch.optim.AdamW(model.parameters())
    state = load_checkpoint(run, model, opt)
    if args.units_of:
        kept = keep_units(model, vocab, load_vocab(Path(args.units_of)))
        print(f"kept the {len(kept)} units of {args.units_of}; dropped {', '.join(sorted(set(vocab) - set(kept)))}",
              file=sys.stderr)
        vocab = kept
    heldout = load_split(cache, "heldout")
    lang_masks = {lang: torch.zeros(len(vocab), dtype=torch.bool).index_fill_(
        0, torch.tensor(language_units(vocab, lang)), True) for lang in LANGS}
    metrics = evaluate(model, heldout, vocab, receptive_field(model.config)[0], lang_masks)
    print(f"held-out {metrics}", file=sys.stderr)
    export(cache, Path(args.out), model, vocab, state, metrics, len(heldout))
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m services.training.content_model", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("action", nargs="?", default="train", choices=["train", "prepare", "export"])
    p.add_argument("--cache", default=str(CACHE), help="data + run directory (default: cache/encoder)")
    p.add_argument("--out", default=str(DEFAULT_CONTENT_MODEL), help="where `export` writes the model")
    p.add_argument("--units-of", metavar="DIR",
                   help="export: keep exactly the units of the content model in DIR (e.g. the bundled one, "
                        "whose width every trained subject's audio encoder expects); other units are dropped")
    p.add_argument("--n-train", type=int, default=1500, help="training sentences per language")
    p.add_argument("--n-heldout", type=int, default=100, help="held-out sentences per language")
    p.add_argument("--steps", type=int, default=6000)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--minutes", type=float, default=75.0, help="wall-clock budget of this invocation")
    p.add_argument("--eval-every", type=int, default=500)
    p.add_argument("--eval-items", type=int, default=60, help="held-out items for periodic evals (0 = all)")
    p.add_argument("--ckpt-minutes", type=float, default=3.0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--texts", choices=TEXT_SOURCES, default="natural",
                   help="text source of the sentences: natural (default) or the old templates")
    p.add_argument("--voices", choices=VOICE_SETS, default="mix",
                   help="training speakers: the voice mix (default) or the bundled voice alone")
    p.add_argument("--frame-loss", type=float, default=0.5,
                   help="weight of the frame-level cross-entropy on TTS-timed units (0 = CTC only)")
    p.add_argument("--no-export", dest="export", action="store_false", help="do not write the weights dir")
    p.add_argument("--no-prepare", dest="prepare", action="store_false",
                   help="train on the cached shards as they are (another process may be adding more)")
    args = p.parse_args(argv)
    if args.action == "prepare" or (args.action == "train" and args.prepare):
        try:
            check_voices(args.voices)
        except TalkingHeadError as exc:
            p.error(str(exc))
    if args.action == "prepare":
        torch.set_num_threads(args.threads)
        prepare(Path(args.cache), args.n_train, args.n_heldout, args.texts, args.voices)
        return 0
    if args.action == "export":
        return export_checkpoint(args)
    return train(args)


if __name__ == "__main__":
    raise SystemExit(main())
