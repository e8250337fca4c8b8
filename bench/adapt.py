"""Figures of `raner-pool train` (README "Adapting a model"), from full runs; each part writes a Markdown table
(and the curve a PNG) under --out.

    python bench/adapt.py forgetting   # TIME/MONEY from rule-labelled MSRA train: the old types kept, or not
    python bench/adapt.py curve        # PRODUCT/BRAND from 25..300 e-commerce sentences, scored on 100 held out
    python bench/adapt.py active       # 50 more sentences chosen by `raner-pool rank` against 50 at random
    python bench/adapt.py recipe --sentences 4000   # the default's recipe: minutes per MSRA epoch, per shape/format
    python bench/adapt.py timing       # minutes for 400 sentences: the default base, the RaNER base shape, bf16

Nothing else should run meanwhile (2 cores): the timing part measures.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from raner_pool import RaNERModelPool, TrainConfig, train
from raner_pool.corpus import load_msra
from raner_pool.evaluation import MSRA_TYPES, score_spans
from raner_pool.precision import BF16_CPU_FLAGS, cpu_flags
from raner_pool.tagging import decode_spans
from raner_pool.training import read_examples

ROOT = Path(__file__).resolve().parents[1]
ECOMMERCE = ROOT / "tests" / "data" / "ecommerce"
NEW_TYPES = ("TIME", "MONEY")


def rule_labels(pool: RaNERModelPool, texts: list[str]) -> list[list[tuple[str, int, int]]]:
    """TIME and MONEY spans the rule recognisers find (the seed's 时间、金额), per text."""
    found = []
    for start in range(0, len(texts), 256):
        for entities in pool.predict_batch(texts[start : start + 256]):
            found.append([(e.type, e.start, e.end) for e in entities if e.type in NEW_TYPES])
    return found


def model_spans(model: str | Path, texts: list[str], types: set[str]) -> list[list[tuple[str, int, int]]]:
    with RaNERModelPool(model, pool_size=1, extra_types=()) as pool:
        found = []
        for start in range(0, len(texts), 256):
            found.extend([(e.type, e.start, e.end) for e in entities if e.type in types]
                         for entities in pool.predict_batch(texts[start : start + 256]))
    return found


def forgetting(out: Path, sentences: int, epochs: int, methods: list[str]) -> str:
    """Extend the default with TIME and MONEY learned from MSRA train labelled only by the rules; PER/LOC/ORG F1
    on all 5,000 MSRA test sentences before and after, and the new types against the rules on MSRA test."""
    train_sentences = load_msra("train")
    test = load_msra("test")
    with RaNERModelPool("default", pool_size=1, extra_types=NEW_TYPES) as rules:
        labelled = rule_labels(rules, [s.text for s in train_sentences[:20_000]])
        test_rules = rule_labels(rules, [s.text for s in test])
    chosen = [(s.text, spans) for s, spans in zip(train_sentences, labelled, strict=False) if spans][:sentences]
    data = out / "time-money.jsonl"
    data.write_text("".join(json.dumps({"text": text, "entities": [{"start": a, "end": b, "type": t}
                                                                   for t, a, b in spans]}, ensure_ascii=False) + "\n"
                            for text, spans in chosen), encoding="utf-8")
    gold_old = [[(s.type, s.start, s.end) for s in decode_spans(x.tags)] for x in test]
    texts = [s.text for s in test]
    rows = ["| model | PER F1 | LOC F1 | ORG F1 | PER/LOC/ORG F1 | TIME F1 (vs rules) | MONEY F1 (vs rules) | "
            "minutes |", "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    runs: dict[str, Path | str] = {"before (the default)": "default"}
    minutes: dict[str, float] = {}
    for keep in methods:
        began = time.monotonic()
        result = train([data], "default", out / f"model-{keep}", TrainConfig(epochs=epochs, keep_old=keep,
                                                                             overwrite=True, progress=False))
        minutes[keep] = (time.monotonic() - began) / 60
        runs[f"after, keep_old={keep}" if keep != "forget" else "after, --forget"] = result.output
    for name, model in runs.items():
        old = score_spans(gold_old, model_spans(model, texts, set(MSRA_TYPES)))
        new = score_spans(test_rules, model_spans(model, texts, set(NEW_TYPES))) if model != "default" else None
        keep = next((k for k in minutes if k in name), None)
        rows.append(f"| {name} | {old['PER'].f1:.4f} | {old['LOC'].f1:.4f} | {old['ORG'].f1:.4f} | "
                    f"{old['ALL'].f1:.4f} | {new['TIME'].f1 if new else 0:.4f} | {new['MONEY'].f1 if new else 0:.4f}"
                    f" | {minutes[keep] if keep else 0:.1f} |")
    note = (f"\n{len(chosen):,} MSRA train sentences with a TIME or MONEY by the rules (of the first 20,000), "
            f"labelled with those two types only, {epochs} epochs; scored on all {len(test):,} MSRA test sentences "
            "(PER/LOC/ORG against MSRA's gold, TIME/MONEY against the rules' spans). The model alone: "
            "extra_types=[].\n")
    return "\n".join(rows) + note


def curve(out: Path, sizes: list[int], replace_prob: float) -> str:
    """Train on the first N e-commerce sentences, score PRODUCT/BRAND on the 100 held-out ones."""
    heldout = read_examples(ECOMMERCE / "heldout.jsonl")
    lines = (ECOMMERCE / "train.jsonl").read_text(encoding="utf-8").splitlines(keepends=True)
    gold = [[(s.type, s.start, s.end) for s in e.spans] for e in heldout]
    rows = ["| training sentences | BRAND F1 | PRODUCT F1 | F1 | precision | recall | epochs | minutes |",
            "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    points = []
    for n in sizes:
        data = out / f"ecommerce-{n}.jsonl"
        data.write_text("".join(lines[:n]), encoding="utf-8")
        from raner_pool.training.augment import Augmentation

        result = train([data], "default", out / f"model-{n}", TrainConfig(
            overwrite=True, progress=False, augment=Augmentation(replace_prob=replace_prob)))
        scores = score_spans(gold, model_spans(result.output, [e.text for e in heldout], {"PRODUCT", "BRAND"}))
        points.append((n, scores["ALL"].f1))
        rows.append(f"| {n} | {scores['BRAND'].f1:.3f} | {scores['PRODUCT'].f1:.3f} | {scores['ALL'].f1:.3f} | "
                    f"{scores['ALL'].precision:.3f} | {scores['ALL'].recall:.3f} | {result.epochs} | "
                    f"{result.seconds / 60:.1f} |")
        print(rows[-1], flush=True)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(6, 3.6))
    axes.plot([n for n, _ in points], [f for _, f in points], marker="o")
    axes.axhline(0.8, color="grey", linestyle="--", linewidth=1, label="goal 0.80")
    axes.set(xlabel="training sentences", ylabel="held-out F1 (PRODUCT, BRAND)", ylim=(0, 1),
             title="Extending the default model: how much data")
    axes.legend()
    figure.tight_layout()
    figure.savefig(out / "learning-curve.png", dpi=120)
    return "\n".join(rows) + (f"\n\nThe default base, default options (epochs sized from the data, dev 10% of the "
                              f"training sentences), replace_prob={replace_prob}; held out: 100 sentences whose "
                              "brands and products never occur in training (tests/data/ecommerce).\n")


def active(out: Path, seeds: int = 3) -> str:
    """`raner-pool rank` against chance: from a model trained on 25 e-commerce sentences, 50 more chosen by its
    uncertainty from the rest of the training part, or 50 drawn at random; held-out F1 after training on 75."""
    import random

    from raner_pool.ranking import rank_texts

    heldout = read_examples(ECOMMERCE / "heldout.jsonl")
    gold = [[(s.type, s.start, s.end) for s in e.spans] for e in heldout]
    lines = (ECOMMERCE / "train.jsonl").read_text(encoding="utf-8").splitlines(keepends=True)
    first, rest = lines[:25], lines[25:]
    rows = ["| seed | 25 only | + 50 chosen by rank | + 50 at random |", "| ---: | ---: | ---: | ---: |"]
    totals = [0.0, 0.0, 0.0]

    def trained_f1(name: str, chosen: list[str], seed: int) -> tuple[Path, float]:
        data = out / f"{name}.jsonl"
        data.write_text("".join(chosen), encoding="utf-8")
        result = train([data], "default", out / name, TrainConfig(seed=seed, overwrite=True, progress=False))
        found = model_spans(result.output, [e.text for e in heldout], {"PRODUCT", "BRAND"})
        return result.output, score_spans(gold, found)["ALL"].f1

    for seed in range(1, seeds + 1):
        model, base_f1 = trained_f1(f"first-{seed}", first, seed)
        with RaNERModelPool(model, pool_size=1, extra_types=()) as pool:
            ranked = rank_texts(pool, [json.loads(line)["text"] for line in rest])
        chosen = [rest[r.line - 1] for r in ranked[:50]]
        _, ranked_f1 = trained_f1(f"ranked-{seed}", first + chosen, seed)
        _, random_f1 = trained_f1(f"random-{seed}", first + random.Random(seed).sample(rest, 50), seed)
        rows.append(f"| {seed} | {base_f1:.3f} | {ranked_f1:.3f} | {random_f1:.3f} |")
        print(rows[-1], flush=True)
        totals = [totals[0] + base_f1, totals[1] + ranked_f1, totals[2] + random_f1]
    rows.append(f"| mean | {totals[0] / seeds:.3f} | {totals[1] / seeds:.3f} | {totals[2] / seeds:.3f} |")
    return "\n".join(rows) + ("\n\nHeld-out F1 (PRODUCT, BRAND) on the 100 held-out e-commerce sentences; the "
                              "default base and options; the training seed differs per row.\n")


def timing(out: Path) -> str:
    """Minutes for 400 sentences: the default base and a RaNER-base-shape model (12 x 768, random weights),
    5 epochs each, float32 and (where the CPU has it) bfloat16."""
    from raner_pool.modeldir import RANER_BASE_SHAPE, build_random_model

    lines = [*(ECOMMERCE / "train.jsonl").read_text(encoding="utf-8").splitlines(keepends=True),
             *(ECOMMERCE / "heldout.jsonl").read_text(encoding="utf-8").splitlines(keepends=True)]
    data = out / "ecommerce-400.jsonl"
    data.write_text("".join(lines), encoding="utf-8")
    vocab = (ROOT / "raner_pool" / "models" / "default" / "vocab.txt").read_text(encoding="utf-8").splitlines()
    base_shape = build_random_model(out / "base-shape", vocab, RANER_BASE_SHAPE)
    dtypes = ["float32", *(["bfloat16"] if cpu_flags() & set(BF16_CPU_FLAGS) else [])]
    rows = ["| base | dtype | epochs | minutes | texts/s (training) |", "| --- | --- | ---: | ---: | ---: |"]
    for name, base in (("default (4 x 256)", "default"), ("RaNER base shape (12 x 768)", str(base_shape))):
        for dtype in dtypes:
            result = train([data], base, out / "timed", TrainConfig(epochs=5, patience=99, dtype=dtype,
                                                                    overwrite=True, progress=False))
            rate = sum(r["texts_per_s"] for r in result.history) / len(result.history)  # type: ignore[misc]
            rows.append(f"| {name} | {dtype} | {result.epochs} | {result.seconds / 60:.2f} | {rate:.1f} |")
            print(rows[-1], flush=True)
    flags = sorted(cpu_flags() & {"avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile"})
    return "\n".join(rows) + f"\n\n400 sentences (tests/data/ecommerce, both files), whole runs (teacher pass, " \
                             f"dev scoring and temperature fit included); CPU flags: {', '.join(flags)}.\n"


def recipe(out: Path, sentences: int) -> str:
    """Texts/s of the default's recipe (`make train`'s options, from scratch) on the first MSRA train sentences,
    one epoch, per encoder shape and number format; minutes an MSRA epoch would take at that rate."""
    from raner_pool.corpus import msra_path
    from raner_pool.training.augment import Augmentation

    data = out / "msra.txt"
    blocks = msra_path("train").read_text(encoding="utf-8").replace("\r\n", "\n").split("\n\n")
    data.write_text("\n\n".join(blocks[:sentences]) + "\n", encoding="utf-8")
    dtypes = ["float32", *(["bfloat16"] if cpu_flags() & set(BF16_CPU_FLAGS) else [])]
    rows = ["| shape | dtype | sentences/s | minutes per MSRA epoch (48,789 sentences) |",
            "| --- | --- | ---: | ---: |"]
    for shape in ("4x256x4x1024", "6x384x6x1536"):
        for dtype in dtypes:
            result = train([data], "scratch", out / "recipe", TrainConfig(
                shape=shape, window=100, epochs=1, batch_size=64, max_batch_tokens=1536, dtype=dtype,
                learning_rate=3e-4, dev_fraction=0.0298, overwrite=True, progress=False,
                augment=Augmentation(replace_prob=0.3, join_prob=0.5, decorate_prob=0.05)))
            minutes = float(result.history[0]["minutes"])  # type: ignore[arg-type]
            rate = result.train_texts / (minutes * 60)
            rows.append(f"| {shape} | {dtype} | {rate:.1f} | {minutes * 48789 / result.train_texts:.1f} |")
            print(rows[-1], flush=True)
    return "\n".join(rows) + f"\n\nOne epoch over the first {sentences:,} MSRA train sentences (97% trained on, 3% " \
                             "scored), the recipe's batch and augmentation, scaled to the full split; nothing else " \
                             "running.\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("part", choices=("forgetting", "curve", "active", "timing", "recipe"))
    parser.add_argument("--out", type=Path, default=ROOT / "artifacts" / "bench" / "adapt")
    parser.add_argument("--sentences", type=int, default=2000,
                        help="forgetting: rule-labelled sentences; recipe: MSRA sentences")
    parser.add_argument("--epochs", type=int, default=5, help="forgetting: epochs")
    parser.add_argument("--methods", default="pseudo,distill,forget", help="forgetting: the ways to keep old types")
    parser.add_argument("--sizes", default="25,50,100,200,300", help="curve: training set sizes")
    parser.add_argument("--replace-prob", type=float, default=0.5, help="curve: mention replacement")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=args.out) as scratch:
        work = Path(scratch)
        if args.part == "forgetting":
            table = forgetting(work, args.sentences, args.epochs, args.methods.split(","))
        elif args.part == "curve":
            table = curve(work, [int(n) for n in args.sizes.split(",")], args.replace_prob)
            (work / "learning-curve.png").replace(args.out / "learning-curve.png")
        elif args.part == "recipe":
            table = recipe(work, args.sentences)
        elif args.part == "active":
            table = active(work)
        else:
            table = timing(work)
    (args.out / f"{args.part}.md").write_text(table, encoding="utf-8")
    print(table)


if __name__ == "__main__":
    main()
