"""`raner-pool`: predict, annotate files, score on MSRA, and run a demo from the shell."""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from raner_pool.errors import RaNERError
from raner_pool.loading import BACKENDS
from raner_pool.pool import RaNERModelPool
from raner_pool.precision import DTYPES
from raner_pool.recognizers import EXTRA_TYPES, check_extra_types
from raner_pool.timezones import DEFAULT_TIMEZONE, TIMEZONE_ENV, default_timezone, zone

DEMO_TEXTS = [
    "阿里巴巴集团创始人马云在杭州出席了技术峰会。",
    "据说，刘德华平时生活在香港，但是他喜欢去北京钓鱼。",
    "国务院总理李克强在中南海会见了联合国秘书长古特雷斯。",
]


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    try:
        result: int = args.run(args)
        return result
    except RaNERError as error:
        print(f"raner-pool: {error}", file=sys.stderr)
        return 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="raner-pool", description="Chinese NER (PER/LOC/ORG/TIME/MONEY/PERCENT/TITLE) with RaNER models.")
    commands = parser.add_subparsers(dest="command", required=True)

    def add(name: str, help_text: str) -> argparse.ArgumentParser:
        command = commands.add_parser(name, help=help_text, description=help_text)
        command.add_argument("--model", default="default", help="'default', a local model dir or a ModelScope id")
        command.add_argument("--backend", choices=BACKENDS,
                             help="default: auto (the fastest that keeps the answers) for serve, else modelscope")
        command.add_argument("--dtype", default="float32", choices=DTYPES,
                             help="bfloat16: faster on CPUs with AVX512-BF16 or AMX (refused elsewhere)")
        command.add_argument("--extra-types", type=_types, default=EXTRA_TYPES, metavar="TYPES",
                             help=f"comma-separated types found by rules after the model (default: "
                                  f"{','.join(EXTRA_TYPES)}; '' for none)")
        command.add_argument("--timezone", type=_timezone, default=None, metavar="ZONE",
                             help=f"IANA zone the texts' clock and relative times are read in (default: "
                                  f"${TIMEZONE_ENV}, else {DEFAULT_TIMEZONE}; serve: for the models whose registry "
                                  f"entry names none)")
        command.add_argument("--retune", action="store_true",
                             help="time backend=auto and the batch budget anew instead of reusing the timings kept "
                                  "for this model and machine (in $RANER_POOL_CACHE/choices)")
        return command

    predict = add("predict", "Print the entities of TEXT as JSON.")
    predict.add_argument("text", help="the text; '-' reads standard input")
    predict.set_defaults(run=_predict)

    annotate = add("annotate", "Write one JSON line of entities per line of each FILE.")
    annotate.add_argument("files", type=Path, nargs="+", metavar="FILE",
                          help="text (one text a line); with --ray also .jsonl and .parquet (a 'text' field)")
    annotate.add_argument("-o", "--output", type=Path, required=True,
                          help="one FILE: the .jsonl file to write; several: a directory, one <stem>.jsonl each")
    annotate.add_argument("--skip-existing", action="store_true",
                          help="resume: keep lines already in OUTPUT (with --ray: skip inputs whose output exists)")
    annotate.add_argument("--batch-size", type=int, default=64, help="lines per call (with --ray: per actor call)")
    annotate.add_argument("--ray", nargs="?", const="local", default=None, metavar="ADDRESS",
                          help="run on a Ray cluster: 'auto' or host:port joins one, no ADDRESS starts a local one "
                               "(put it after the FILEs)")
    annotate.add_argument("--actors", type=int, default=2, help="with --ray: actors, each with its own model")
    annotate.add_argument("--threads-per-actor", type=int, default=1, help="with --ray: torch threads per actor")
    annotate.add_argument("--output-format", choices=("jsonl", "parquet", "doccano"), default=None,
                          help="default: from OUTPUT's suffix, else jsonl (parquet needs --ray); doccano: its import "
                               "JSONL (text, label), to load pre-annotations into a doccano project")
    annotate.set_defaults(run=_annotate)

    rank = add("rank", "Order a corpus by the model's uncertainty and write the top N to annotate next, "
                       "pre-annotated.")
    rank.add_argument("file", type=Path, metavar="FILE", help="one text a line, or JSONL with a 'text' field")
    rank.add_argument("--top", type=int, default=100, help="texts to write (default 100)")
    rank.add_argument("-o", "--output", type=Path, required=True, help="the JSONL file to write")
    rank.add_argument("--output-format", choices=("jsonl", "doccano"), default="jsonl",
                      help="jsonl: text, entities, uncertainty; doccano: its import format (text, label)")
    rank.set_defaults(run=_rank)

    evaluate = add("eval", "Score the model on MSRA test: entity-level precision, recall, F1.")
    evaluate.add_argument("--limit", type=int, default=None, help="only the first N of the 5,000 sentences")
    evaluate.set_defaults(run=_eval)

    demo = add("demo", "Run the model on a few example sentences.")
    demo.set_defaults(run=_demo)

    serve = add("serve", "Serve the registry's models over HTTP (/ner, OpenAI, vLLM /pooling, the WebUI).")
    serve.add_argument("--config", type=Path, default=os.environ.get("RANER_POOL_CONFIG") or None,
                       help="registry TOML (default: $RANER_POOL_CONFIG); without it, --model alone")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=int(os.environ.get("RANER_POOL_PORT", "8000")),
                       help="default: $RANER_POOL_PORT or 8000")
    serve.add_argument("--pool-size", type=int, default=2, help="instances of --model (without --config)")
    serve.add_argument("--workers", type=int, default=int(os.environ.get("RANER_POOL_WORKERS", "1")),
                       help="server processes sharing the port and the weights (default: $RANER_POOL_WORKERS or 1)")
    serve.add_argument("--access-log", choices=("on", "off"), default=None,
                       help="one JSON line per request on stderr (default: on, or the registry's server.access_log)")
    serve.set_defaults(run=_serve)
    _add_train(commands)
    return parser


def _add_train(commands: argparse._SubParsersAction) -> None:
    text = ("Fine-tune BASE on annotated FILEs into a new model dir, learning the data's new types and keeping "
            "the base's other types.")
    train = commands.add_parser("train", help=text, description=text)
    train.add_argument("data", type=Path, nargs="+", metavar="FILE",
                       help="CoNLL (BIO/BIOES/BMES), /ner JSONL, doccano JSONL or Label Studio JSON export")
    train.add_argument("--base", default="default",
                       help="'default', a model dir (RaNER or an earlier output), or 'scratch' (a new --shape)")
    train.add_argument("-o", "--output", type=Path, required=True, help="the model dir to write")
    train.add_argument("--format", help="conll, jsonl, doccano or label-studio (default: found from each file's "
                                        "content)")
    train.add_argument("--dev", type=Path, action="append", default=[], metavar="FILE",
                       help="score epochs on FILE (repeatable); default: a seeded 10%% of the data")
    train.add_argument("--types", default="", help="comma-separated types the data labels beyond those it has")
    train.add_argument("--forget", action="store_true",
                       help="the data's types are all the types wanted: do not keep the base's other types")
    train.add_argument("--keep-old", choices=("pseudo", "distill"), default="pseudo",
                       help="how the base's other types are kept (default: pseudo, the base's own predictions)")
    train.add_argument("--epochs", type=int, help="default: sized from the data (5-40)")
    train.add_argument("--max-minutes", type=float, help="time budget; the best epoch so far is written")
    train.add_argument("--learning-rate", type=float, help="the encoder's (default: by its size)")
    train.add_argument("--batch-size", type=int, default=16)
    train.add_argument("--device", default="cpu", help="cpu or cuda")
    train.add_argument("--dtype", default="float32", choices=DTYPES,
                       help="bfloat16: autocast on CPUs with AVX512-BF16 or AMX, or a GPU")
    train.add_argument("--threads", type=int, help="torch threads (default: the cores this process may use)")
    train.add_argument("--seed", type=int, default=20261206)
    train.add_argument("--resume", action="store_true", help="continue a stopped run from its checkpoint")
    train.add_argument("--overwrite", action="store_true", help="replace OUTPUT if it exists")
    train.add_argument("--deploy", metavar="URL",
                       help="then switch a running server's --deploy-model to the new dir (admin token from "
                            "$RANER_POOL_ADMIN_TOKEN; the server must be able to read the dir)")
    train.add_argument("--deploy-model", default="default", metavar="NAME", help="the served model to switch")
    train.add_argument("--dev-fraction", type=float, default=0.1, help="held out for dev without --dev")
    train.add_argument("--max-batch-tokens", type=int, default=4096, help="padded tokens per step at most")
    augment = train.add_argument_group("augmentation (drawn afresh each epoch)")
    augment.add_argument("--replace-prob", type=float, default=0.5,
                         help="per name: swapped for another of its type from the data (default 0.5: +8 points "
                              "held-out F1 on unseen names from 200 sentences, measured)")
    augment.add_argument("--jieba-names", action="store_true",
                         help="also swap in jieba's dictionary names (PER/LOC/ORG)")
    augment.add_argument("--join-prob", type=float, default=0.0, help="per text: the next one joined to it")
    augment.add_argument("--decorate-prob", type=float, default=0.0, help="per text: a symbol next to a name")
    scratch = train.add_argument_group("with --base scratch (the embedded default's recipe)")
    scratch.add_argument("--shape", default="4x256", help="LAYERSxHIDDEN[xHEADSxFEEDFORWARD]")
    scratch.add_argument("--min-char-count", type=int, default=2, help="rarer characters are [UNK]")
    scratch.add_argument("--window", type=int, help="longest training text; the engine windows served texts to it")
    scratch.add_argument("--init-from", default="", help="a model dir of the same shape whose weights start it")
    train.add_argument("--quiet", action="store_true", help="no progress bar")
    train.set_defaults(run=_train)


def _pool(args: argparse.Namespace) -> RaNERModelPool:
    return RaNERModelPool(args.model, pool_size=1, backend=args.backend or "modelscope", dtype=args.dtype,
                          retune=args.retune, extra_types=args.extra_types, timezone=args.timezone)


def _types(value: str) -> tuple[str, ...]:
    """--extra-types: "TIME,MONEY" -> ("TIME", "MONEY"); an unknown type is a usage error naming it."""
    try:
        return check_extra_types([t.strip() for t in value.split(",") if t.strip()])
    except RaNERError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _timezone(value: str) -> str:
    """--timezone: an IANA name as zoneinfo spells it; an unknown one is a usage error naming it."""
    try:
        return zone(value).key
    except RaNERError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _predict(args: argparse.Namespace) -> int:
    text = sys.stdin.read() if args.text == "-" else args.text
    entities = _pool(args).predict(text)
    print(json.dumps([e.to_dict() for e in entities], ensure_ascii=False))
    return 0


def _annotate(args: argparse.Namespace) -> int:
    from raner_pool.distributed import plan_jobs

    if args.ray is not None:
        return _annotate_on_ray(args)
    jobs = plan_jobs(args.files, args.output, args.output_format)
    for job in jobs:
        if job.input_format != "text" or job.output_format not in ("jsonl", "doccano"):
            raise RaNERError(f"{job.source} -> {job.output}: JSONL/Parquet files are annotated with --ray only")
    pool = _pool(args)
    for job in jobs:
        job.output.parent.mkdir(parents=True, exist_ok=True)
        _annotate_file(args, pool, job.source, job.output, doccano=job.output_format == "doccano")
    return 0


def _annotate_on_ray(args: argparse.Namespace) -> int:
    from raner_pool.distributed import AnnotateConfig, annotate_files, describe

    if args.output_format == "doccano":
        raise RaNERError("--output-format doccano is written without --ray (one machine)")

    config = AnnotateConfig(args.model, args.backend or "modelscope", args.dtype, concurrency=args.actors,
                            torch_threads=args.threads_per_actor, num_cpus=args.threads_per_actor,
                            batch_rows=args.batch_size, timezone=args.timezone or default_timezone())
    summary = annotate_files(args.files, args.output, config, address=None if args.ray == "local" else args.ray,
                             output_format=args.output_format, skip_existing=args.skip_existing,
                             progress=sys.stderr.isatty())
    print(describe(summary), file=sys.stderr)
    return 0


def _annotate_file(args: argparse.Namespace, pool: RaNERModelPool, source: Path, output: Path,
                   doccano: bool = False) -> None:
    from tqdm import tqdm

    lines = source.read_text(encoding="utf-8").splitlines()
    done = _completed_lines(output) if args.skip_existing else 0
    if done > len(lines):
        raise RaNERError(f"{output} has {done} lines but {source} only {len(lines)}: wrong output file?")
    mode = "a" if done else "w"
    with open(output, mode, encoding="utf-8") as out, tqdm(
        total=len(lines), initial=done, unit="line", disable=None
    ) as progress:
        for start in range(done, len(lines), args.batch_size):
            chunk = lines[start : start + args.batch_size]
            for offset, (text, entities) in enumerate(zip(chunk, pool.predict_batch(chunk), strict=True)):
                record = ({"text": text, "label": [[e.start, e.end, e.type] for e in entities]} if doccano else
                          {"line": start + offset + 1, "text": text, "entities": [e.to_dict() for e in entities]})
                out.write(json.dumps(record, ensure_ascii=False) + "\n")
            out.flush()
            progress.update(len(chunk))


def _completed_lines(output: Path) -> int:
    """Complete JSON lines already in `output`; a torn last line (from a crash) is cut off."""
    if not output.exists():
        return 0
    data = output.read_bytes()
    keep = data[: data.rfind(b"\n") + 1]
    if len(keep) != len(data):
        output.write_bytes(keep)
    return keep.count(b"\n")


def _rank(args: argparse.Namespace) -> int:
    from raner_pool.ranking import rank_texts, read_texts, write_ranked

    if args.top < 1:
        raise RaNERError(f"--top must be at least 1, got {args.top}")
    ranked = rank_texts(_pool(args), read_texts(args.file))
    write_ranked(ranked[: args.top], args.output, args.output_format)
    print(f"{min(args.top, len(ranked))} of {len(ranked)} texts, most uncertain first, written to {args.output}",
          file=sys.stderr)
    return 0


def _eval(args: argparse.Namespace) -> int:
    from raner_pool.evaluation import evaluate_on_msra, format_scores

    pool = _pool(args)
    scores = evaluate_on_msra(pool.predict_batch, args.limit)
    print(format_scores(scores))
    return 0


def _demo(args: argparse.Namespace) -> int:
    pool = _pool(args)
    for text, entities in zip(DEMO_TEXTS, pool.predict_batch(DEMO_TEXTS), strict=True):
        print(text)
        for e in entities:
            print(f"  {e.type:<4} [{e.start:>3}, {e.end:>3})  {e.span}  p={e.prob:.3f}")
    return 0


def _train(args: argparse.Namespace) -> int:
    from raner_pool.training import TrainConfig, train
    from raner_pool.training.augment import Augmentation

    if args.deploy:  # before hours of training: a wrong URL or token is found now
        from raner_pool.training.deploy import check_deploy_target

        check_deploy_target(args.deploy, args.deploy_model)
    config = TrainConfig(
        format=args.format, dev=tuple(map(str, args.dev)), keep_old="forget" if args.forget else args.keep_old,
        types=tuple(t.strip() for t in args.types.split(",") if t.strip()), epochs=args.epochs,
        max_minutes=args.max_minutes, learning_rate=args.learning_rate, batch_size=args.batch_size,
        device=args.device, dtype=args.dtype, threads=args.threads, seed=args.seed, resume=args.resume,
        overwrite=args.overwrite, progress=not args.quiet, dev_fraction=args.dev_fraction,
        max_batch_tokens=args.max_batch_tokens, shape=args.shape, min_char_count=args.min_char_count,
        window=args.window, init_from=args.init_from,
        augment=Augmentation(args.replace_prob, args.join_prob, args.decorate_prob, args.jieba_names),
    )
    command = shlex.join(["raner-pool", *args.argv])
    try:
        result = train(args.data, args.base, args.output, config, command=command)
    except KeyboardInterrupt as stopped:
        print(f"raner-pool: {stopped or 'stopped'}", file=sys.stderr)
        return 130
    summary = {"output": str(result.output), "labels": list(result.labels), "added_types": list(result.added_types),
               "kept_types": list(result.kept_types), "dev": result.dev, "kept_vs_base": result.kept,
               "epochs": result.epochs, "best_epoch": result.best_epoch, "seconds": result.seconds}
    print(json.dumps(summary, ensure_ascii=False))
    if args.deploy:
        from raner_pool.training.deploy import deploy

        print(json.dumps(deploy(args.deploy, args.deploy_model, result.output), ensure_ascii=False))
    return 0


def _serve(args: argparse.Namespace) -> int:
    if args.workers < 1:
        raise RaNERError(f"--workers must be at least 1, got {args.workers}")
    if args.workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        # before prometheus_client is first imported: it picks its storage then (workers sum their metrics)
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="raner-pool-metrics-")
    if args.timezone:  # the process's zone: models without one of their own, in every worker process
        os.environ[TIMEZONE_ENV] = args.timezone
    default_timezone()  # a bad $RANER_POOL_TIMEZONE is one clear line now, not a model that fails to load
    from raner_pool.model_specs import DEFAULT_SPEC
    from raner_pool.server import serve

    backend = args.backend or "auto"
    spec = replace(DEFAULT_SPEC, backend=backend, dtype=args.dtype, pool_size=args.pool_size,
                   extra_types=args.extra_types)
    if args.model != "default":
        spec = replace(spec, name=Path(args.model).name or args.model, model=args.model, aliases=())
    access_log = None if args.access_log is None else args.access_log == "on"
    serve(args.config, args.host, args.port, single_model=spec, workers=args.workers, retune=args.retune,
          access_log=access_log)
    return 0


if __name__ == "__main__":
    sys.exit(main())
