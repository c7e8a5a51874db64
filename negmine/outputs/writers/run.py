"""A resumable run of any command (the run key, the writer and the journal), and the checks on
--out made before one starts."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path

from negmine.errors import NegmineError
from negmine.outputs.writers.local import STATE, DatasetWriter
from negmine.outputs.writers.remote import RemoteWriter, is_url, remote_state
from negmine.outputs.writers.scratch import OutTakenOver


def refuse_out_inside(out: Path, inputs: Iterable[tuple[str, object]]) -> None:
    """Raise NegmineError (one line) when --out is an input folder or inside one, or an input is
    inside --out. `inputs`: (option name, path or None); paths that do not exist locally (Hub repo
    ids, hf:// URLs) are ignored. An output inside an input changes the input, and the next run reads
    the previous output's files as input (its negatives as a positive class); an input inside the
    output is deleted by --overwrite. The staging folder sits beside --out, so this covers it too.
    An fsspec URL --out (s3://...) holds no local input; it is checked with `check_url`."""
    if is_url(out):
        check_url(str(out))
        return
    o = Path(out).expanduser().absolute()
    o = o.parent.resolve() / o.name                  # --out may not exist yet; its parent may be a link
    for option, given in inputs:
        if given is None or not isinstance(given, (str, os.PathLike)):
            continue
        p = Path(given).expanduser()
        if not p.exists():
            continue
        q = p.resolve()
        if q.is_dir() and (o == q or q in o.parents):
            raise NegmineError(f"--out {out} is inside {option} {given}: the output would become part of the input "
                               "(the next run would read it as input); choose a folder outside it")
        if o in q.parents:
            raise NegmineError(f"{option} {given} is inside --out {out}: --overwrite would delete it; "
                               "choose an output folder that holds none of the inputs")


# Options that change how a run goes, not what it writes: a --resume may change them.
VOLATILE = ("workers", "overwrite", "resume", "progress", "dry_run", "report")


def plain_record(fields: dict) -> dict:
    """A run's options as JSON-ready values (paths as text)."""
    return {k: (str(v) if isinstance(v, Path) else v) for k, v in fields.items()}


def run_options(record: dict) -> dict:
    """The part of a run's options a --resume must match."""
    return {k: v for k, v in record.items() if k not in VOLATILE}


class Run:
    """A resumable run of any command: the staging writer, the journal, and the run key that a
    --resume must match. Used as a context manager: an interruption or crash keeps the staging
    folder for --resume; a deterministic error (bad input, too small a pool) removes it; the
    caller publishes when done."""

    def __init__(self, out: Path, key: dict, *, overwrite: bool = False, resume: bool = False):
        key = json.loads(json.dumps(key))        # compare as stored: tuples become lists
        self.writer = open_writer(out, overwrite=overwrite, resume=resume)
        if self.writer.resumed:
            text = self.writer.read_state("run.json")
            stored = json.loads(text) if text else None
            if stored != key:
                opts, old = key.get("options", {}), (stored or {}).get("options", {})
                diff = sorted(k for k in opts if stored and old.get(k) != opts[k])
                raise NegmineError("cannot resume: the interrupted run used other "
                                   + (f"options ({', '.join(diff)})" if diff else "inputs or version")
                                   + "; rerun it with the same options, or pass --overwrite to start over")
        else:
            self.writer.write_state("run.json", json.dumps(key, indent=2) + "\n")
        self.journal = self.writer.open_journal()

    def __enter__(self) -> "Run":
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        lost = isinstance(exc, OutTakenOver) or (exc is not None and hasattr(self.writer, "owns")
                                                  and not self.writer.owns())
        if lost:
            self.journal.discard()       # --out is the other run's now: leave its state and files alone
            if isinstance(exc, OutTakenOver) or not isinstance(exc, (NegmineError, OSError)):
                return False
            # an error the takeover caused (its scratch removed under this run): say what happened
            raise OutTakenOver.of(self.writer.out) from None
        self.journal.close()
        self.writer.close_scratch()      # a library caller's failed run must not keep the file open
        if isinstance(exc, NegmineError):
            if not exc.resumable:
                self.writer.abort()      # resuming would fail the same way
                return False
            raise type(exc)(f"{exc}; what was done is kept: rerun with --resume") from None
        return False                      # success, or interrupted/crashed: staging stays for --resume


def stored_seed(out: Path | str) -> int | None:
    """The seed of an interrupted run, so --resume needs no --seed when the first run drew one."""
    try:
        if is_url(out):
            text = remote_state(str(out), "run.json")
        else:
            out = Path(out).expanduser().absolute()
            text = (out.parent / f".{out.name}.negmine-partial" / STATE / "run.json").read_text()
        return int(json.loads(text or "")["seed"])
    except (OSError, ValueError, KeyError, TypeError, NegmineError):
        return None


def out_location(text: str | os.PathLike) -> Path | str:
    """--out as given: a local path, or an fsspec URL kept as text (a Path would fold 's3://b/x'
    into 's3:/b/x'), its scheme lower-cased (schemes are case-insensitive, RFC 3986) and trailing
    slashes dropped. file:// URLs are local paths. Checked later by `check_url` (one line, exit 1)."""
    text = os.fspath(text)
    if "://" not in text:
        return Path(text)
    protocol, rest = text.split("://", 1)
    protocol = protocol.lower()
    if protocol in ("file", "local"):
        return Path(rest)
    return f"{protocol}://{rest.rstrip('/')}"


def check_url(out: str) -> None:
    """Raise NegmineError (one line) for an --out URL negmine will not write to: a protocol fsspec
    does not know, no path, or a path with empty, '.' or '..' parts (object stores take those as
    literal key names, so 's3://b/a/../c' would not be 's3://b/c')."""
    import fsspec

    protocol, rest = out.split("://", 1)
    if protocol not in fsspec.available_protocols():
        raise NegmineError(f"--out {out}: fsspec knows no protocol {protocol!r} (known: s3, gs, az, hdfs, "
                           "sftp, memory, ...)")
    parts = rest.strip("/").split("/")
    if not rest.strip("/"):
        raise NegmineError(f"--out {out} names no bucket or folder")
    if any(p in ("", ".", "..") for p in parts):
        raise NegmineError(f"--out {out} has an empty, '.' or '..' part; write the path it means")


def check_workers(out: Path | str, workers: int | None, engine: str = "local") -> None:
    """Raise NegmineError when --out is a filesystem that lives in this process (memory://) and the
    work would run in other processes, which could not see it."""
    if not is_url(out) or not str(out).startswith("memory://"):
        return
    many = engine == "ray" or (workers is None and (os.cpu_count() or 1) > 1) or (workers or 1) > 1
    if many:
        raise NegmineError(f"--out {out} lives in this process only; the workers cannot write to it: "
                           "use --workers 1 (workers=1 from Python)")


def refuse_local_only(out: str, **options) -> None:
    """Raise NegmineError (one line) for an option that needs a local --out, given with an fsspec
    URL one: a --link other than copy (a link cannot point from an object store to a local file),
    --report (it reads the images back from a folder) and --push-to-hub (it uploads a local
    folder). `options`: name (underscores for dashes) -> value as the command got it."""
    bad = [name for name, value in options.items() if value and not (name == "link" and value == "copy")]
    if bad:
        flag = "--" + bad[0].replace("_", "-")
        raise NegmineError(f"{flag} needs a local --out (not {out}); write locally, or leave {flag} out "
                           "and run it on a local copy")


def open_writer(out: Path | str, *, overwrite: bool = False, resume: bool = False) -> DatasetWriter | RemoteWriter:
    """The writer for --out: `RemoteWriter` for an fsspec URL, `DatasetWriter` for a local path."""
    if is_url(out):
        return RemoteWriter(str(out), overwrite=overwrite, resume=resume)
    return DatasetWriter(Path(out), overwrite=overwrite, resume=resume)
