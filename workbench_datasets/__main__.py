"""`python -m workbench_datasets <builder> --name NAME ...`: build a manifest under the data folder.

    python -m workbench_datasets pocketsphinx --name pocketsphinx
    python -m workbench_datasets folder ~/LibriSpeech/test-clean --name ls-test-clean --licence CC-BY-4.0
    python -m workbench_datasets synthetic sentences.txt --name synth --tts configs/models/piper-joe-medium.yaml \\
        --tts configs/models/espeak-ng-en-us.yaml --speed 0.9 --speed 1.1 --snr-db 20 --no-speech 4
    python -m workbench_datasets untuned --name untuned
    python -m workbench_datasets paused --name paused --tts configs/models/piper-joe-medium.yaml \
        --tts configs/models/flite-slt.yaml
    python -m workbench_datasets conversations --name recorded --as researcher@workbench.local

Each writes `<data dir>/datasets/<name>/manifest.jsonl` (conversations also
`dialogues.jsonl`) and prints the dataset id and any rejected rows.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

from workbench.config import get_settings
from workbench_datasets.dialogues import dialogue_set_id, write_dialogues
from workbench_datasets.manifest import ManifestRow, read_manifest, write_manifest


def dataset_dir(name: str) -> Path:
    """Where a built dataset lives."""
    return get_settings().data_dir / "datasets" / name


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m workbench_datasets", description=__doc__.split("\n")[0]
    )
    builders = parser.add_subparsers(dest="builder", required=True)
    ps = builders.add_parser("pocketsphinx", help="Debian pocketsphinx-testdata recordings")
    folder = builders.add_parser("folder", help="LibriSpeech layout, transcripts.tsv or wav+txt")
    folder.add_argument("source", type=Path)
    folder.add_argument("--licence", required=True)
    folder.add_argument("--layout", choices=["librispeech", "tsv", "pairs"])
    folder.add_argument("--split", choices=["train", "dev", "test"], default="test")
    synth = builders.add_parser("synthetic", help="a sentence list spoken by TTS specs")
    synth.add_argument("sentences", type=Path)
    synth.add_argument("--tts", action="append", required=True, help="TTS spec (repeatable)")
    synth.add_argument("--speed", action="append", type=float, help="speed factor (repeatable)")
    synth.add_argument("--snr-db", type=float)
    synth.add_argument("--no-speech", type=int, default=0, help="silence/noise clips to add")
    synth.add_argument("--seed", type=int, default=0)
    untuned = builders.add_parser(
        "untuned", help="held-out sentences in voices, speeds and noise no setting was tuned on"
    )
    untuned.add_argument("--seed", type=int, default=0)
    paused = builders.add_parser(
        "paused", help="utterances with pauses inside them (turn-taking lab)"
    )
    paused.add_argument("--utterances", type=Path, help="lines with | at the pauses")
    paused.add_argument("--tts", action="append", required=True, help="TTS spec (repeatable)")
    paused.add_argument("--pause", action="append", type=float, help="pause, s (repeatable)")
    paused.add_argument("--seed", type=int, default=0)
    conv = builders.add_parser("conversations", help="recorded conversations from Supabase")
    conv.add_argument("--as", dest="email", required=True, help="act as this user under RLS")
    conv.add_argument("--limit", type=int, default=100)
    conv.add_argument(
        "--human-only", action="store_true", help="only turns with a human correction"
    )
    for sub in (ps, folder, synth, untuned, paused, conv):
        sub.add_argument("--name", required=True, help="dataset name (folder under data/datasets)")
    args = parser.parse_args(argv)

    out_dir = dataset_dir(args.name)
    out_dir.mkdir(parents=True, exist_ok=True)
    if args.builder == "pocketsphinx":
        from workbench_datasets.pocketsphinx import pocketsphinx_rows

        rows = list(pocketsphinx_rows())
    elif args.builder == "folder":
        from workbench_datasets.folder import folder_rows

        rows = list(
            folder_rows(args.source, licence=args.licence, split=args.split, layout=args.layout)
        )
    elif args.builder == "synthetic":
        rows = asyncio.run(_synthetic(args, out_dir))
    elif args.builder == "untuned":
        from workbench_datasets.untuned import untuned_rows

        rows = asyncio.run(untuned_rows(out_dir, seed=args.seed))
    elif args.builder == "paused":
        rows = asyncio.run(_paused(args, out_dir))
    else:
        rows = asyncio.run(_conversations(args, out_dir))
    manifest = read_manifest(write_manifest(out_dir / "manifest.jsonl", rows), name=args.name)
    print(f"{manifest.dataset_id}: {len(manifest.rows)} rows in {manifest.path}")
    for problem in manifest.problems:
        print(f"  rejected {problem}", file=sys.stderr)
    return 0 if manifest.rows else 1


def _voices(specs: list[Path], seed: int) -> list[Any]:
    from workbench.models import TextToSpeech, load_model
    from workbench.models.seeding import seed_generators

    voices = []
    for spec in specs:
        seed_generators(seed)  # the same audio in every process (VITS voices sample noise)
        voices.append(load_model(spec))
    if not all(isinstance(v, TextToSpeech) for v in voices):
        raise SystemExit("every --tts must be a text-to-speech spec")
    return voices


async def _paused(args: argparse.Namespace, out_dir: Path) -> list[ManifestRow]:
    from workbench_datasets.paused import UTTERANCES, paused_rows
    from workbench_datasets.synthetic import read_sentences

    return await paused_rows(
        read_sentences(args.utterances or UTTERANCES),
        _voices(args.tts, args.seed),
        out_dir,
        pauses_s=args.pause or (0.4, 0.7, 1.0),
        seed=args.seed,
    )


async def _synthetic(args: argparse.Namespace, out_dir: Path) -> list[ManifestRow]:
    from workbench_datasets.synthetic import read_sentences, synthetic_rows

    return await synthetic_rows(
        read_sentences(args.sentences),
        _voices(args.tts, args.seed),
        out_dir,
        speeds=args.speed or (1.0,),
        snr_db=args.snr_db,
        no_speech_clips=args.no_speech,
        seed=args.seed,
    )


async def _conversations(args: argparse.Namespace, out_dir: Path) -> list[ManifestRow]:
    import psycopg

    from workbench.db.connection import claims_for_user, database_url, rls_session
    from workbench.storage import open_store
    from workbench_datasets.conversations import export_conversations

    settings = get_settings()
    async with await psycopg.AsyncConnection.connect(
        database_url(settings), autocommit=True
    ) as conn:
        claims = await claims_for_user(conn, args.email)
        async with rls_session(conn, claims):
            export = await export_conversations(
                conn,
                open_store(settings),
                out_dir,
                limit=args.limit,
                human_references_only=args.human_only,
            )
    path = write_dialogues(out_dir / "dialogues.jsonl", export.dialogues)
    print(
        f"{dialogue_set_id(args.name, export.dialogues)}: {len(export.dialogues)} dialogues in {path}"
    )
    if export.missing_audio:
        print(f"  {len(export.missing_audio)} turns had no readable audio", file=sys.stderr)
    return export.rows


if __name__ == "__main__":
    raise SystemExit(main())
