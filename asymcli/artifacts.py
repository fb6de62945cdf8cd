"""Parquet artifacts: declared schemas, atomic writes, checked reads, footer metadata.

Every stage reads and writes through this module so that
- a write never leaves a partial file under the final name (temp file + fsync + rename;
  folders the same way: :func:`atomic_folder`),
- a read checks the file is a complete Parquet file with the declared columns and types
  and names the file and the problem when it is not,
- the footer carries the run config, its hash, the package version and the git commit.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from . import __version__
from .errors import ArtifactError

META_KEY = b"asym"

# ---------------------------------------------------------------------------
# Declared schemas; later versions add columns at the end (``_added``). A reader checks types.
# ---------------------------------------------------------------------------

ADDED_KEY = b"asym_added"


def _added(field: pa.Field) -> pa.Field:
    """A column added after files were written: a file without it reads back with it all null."""
    return field.with_metadata({ADDED_KEY: b"1"})


PROMPTS = pa.schema(
    [
        ("problem_id", pa.string()),
        ("split", pa.string()),  # train | heldout | test
        ("source", pa.string()),  # e.g. arith, math500, aime24
        ("difficulty", pa.string()),  # tier name or level; "" when unknown
        ("prompt", pa.string()),  # the user message (template already applied)
        ("answer", pa.string()),  # gold final answer (no \boxed)
        ("solution", pa.string()),  # worked solution for supervised warm-up; "" when none
        _added(pa.field("metadata", pa.string())),  # reasoning-gym rows: the entry's metadata, JSON
    ]
)


METRICS = pa.schema(
    [
        ("step", pa.int64()),
        ("reward_mean", pa.float64()),
        ("entropy", pa.float64()),
        ("kappa", pa.float64()),  # NaN when the batch has no mixed group
        ("none_solved_frac", pa.float64()),
        ("all_solved_frac", pa.float64()),
        ("mixed_frac", pa.float64()),
        ("logprob_gain_correct", pa.float64()),  # per-sequence sum, mean over correct rollouts
        ("logprob_gain_correct_tok", pa.float64()),  # per-token mean
        ("clipfrac_low", pa.float64()),
        ("clipfrac_high", pa.float64()),
        ("approx_kl", pa.float64()),
        ("loss", pa.float64()),
        ("adv_pos_mass", pa.float64()),
        ("adv_neg_mass", pa.float64()),
        ("response_len_mean", pa.float64()),
        ("grad_norm", pa.float64()),
        ("lr", pa.float64()),
        ("rollout_s", pa.float64()),
        ("update_s", pa.float64()),
        ("tokens_per_s", pa.float64()),
        ("eval_greedy_acc", pa.float64()),  # greedy test accuracy, mean over eval_bench; NaN on steps without evaluation
        ("p_hist", pa.list_(pa.int64())),  # groups per k correct, k = 0..G
        ("w_pos_hist", pa.list_(pa.float64())),  # positive advantage mass per k
        ("w_neg_hist", pa.list_(pa.float64())),  # |negative| advantage mass per k
        # Greedy accuracy per benchmark of the curve ([] on steps without evaluation), and the
        # evaluation's wall seconds. Added later: older files read back with nulls.
        _added(pa.field("eval_bench", pa.list_(pa.struct([("benchmark", pa.string()), ("n", pa.int64()),
                                                           ("acc", pa.float64())])))),
        _added(pa.field("eval_s", pa.float64())),
        # The advantage mass per k with each rollout x its length / the batch's mean length (its
        # weight in the token-mean loss; claim 6). Added later: older files read back with nulls.
        _added(pa.field("w_pos_tok_hist", pa.list_(pa.float64()))),
        _added(pa.field("w_neg_tok_hist", pa.list_(pa.float64()))),
        # The betas the step's advantages used (NaN without betas; a schedule moves them), the
        # schedule's entropy target (NaN without one). Added later: older files read back with nulls.
        _added(pa.field("beta_pos", pa.float64())),
        _added(pa.field("beta_neg", pa.float64())),
        _added(pa.field("entropy_target", pa.float64())),
        _added(pa.field("schedule_saturated", pa.float64())),  # 1.0: the schedule's betas sat at their bounds
    ]
)

SAMPLES = pa.schema(
    [
        ("run_id", pa.string()),
        ("method", pa.string()),
        ("beta_pos", pa.float64()),
        ("beta_neg", pa.float64()),
        ("seed", pa.int64()),
        ("step", pa.int64()),
        ("benchmark", pa.string()),
        ("problem_id", pa.string()),
        ("difficulty", pa.string()),
        ("sample_idx", pa.int64()),
        ("temperature", pa.float64()),
        ("response", pa.string()),
        ("extracted", pa.string()),
        ("verdict", pa.string()),  # correct | wrong | no_answer | unparsable | timeout
        ("correct", pa.bool_()),
        ("n_tokens", pa.int64()),
        ("finish_reason", pa.string()),  # stop | length
    ]
)

BASE_STATS = pa.schema(  # footer adds base_accuracy, constant_answer per family (stages/base.py)
    [
        ("k_correct", pa.int64()),  # number of correct rollouts in a group of size G
        ("groups", pa.int64()),
        ("group_size", pa.int64()),
    ]
)

SCHEMAS: dict[str, pa.Schema] = {
    "prompts": PROMPTS,
    "metrics": METRICS,
    "samples": SAMPLES,
    "base_stats": BASE_STATS,
}


# ---------------------------------------------------------------------------
# Provenance
# ---------------------------------------------------------------------------


def config_hash(config: Mapping[str, Any]) -> str:
    """Stable short hash of a JSON-able config (key order does not matter)."""
    blob = json.dumps(config, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def git_commit() -> str:
    """The commit of the asym checkout, or "" outside a git checkout."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=5,
        )
        return out.stdout.strip() if out.returncode == 0 else ""
    except (OSError, subprocess.SubprocessError):
        return ""


def provenance(config: Mapping[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    """Footer metadata: config, its hash, package version, git commit, the platform (CPU,
    torch's kernels, versions, threads: asymcli.platform.platform_info), plus extras."""
    from .platform import platform_info

    meta: dict[str, Any] = {"asym_version": __version__, "git_commit": git_commit(), "platform": platform_info()}
    if config is not None:
        meta["config"] = dict(config)
        meta["config_hash"] = config_hash(config)
    meta.update(extra)
    return meta


def recorded_platform(*paths: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The platform (asymcli.platform.platform_info) recorded in the first of ``paths`` that
    has one: a run.json (or any JSON object with a "platform" key) or a Parquet artifact's
    footer; None when none does (made before asym recorded platforms, or missing)."""
    for path in paths:
        p = Path(path)
        try:
            if p.suffix == ".json":
                found = json.loads(p.read_text(encoding="utf-8")).get("platform")
            elif p.suffix == ".parquet":
                found = read_metadata(p).get("platform")
            else:
                continue
        except (OSError, ValueError, AttributeError, ArtifactError):
            continue
        if isinstance(found, dict):
            return found
    return None


# ---------------------------------------------------------------------------
# Atomic file writes
# ---------------------------------------------------------------------------


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path in the same folder; rename it onto ``path`` on success.

    On any exception the temporary file is removed and ``path`` is untouched, so a
    reader never sees a partial artifact under its final name.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise _write_error(path, exc) from None
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        with open(tmp_path, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp_path, path)
        _fsync_dir(path.parent)
    except BaseException as exc:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        if isinstance(exc, OSError) and exc.errno in _ENV_ERRNOS:
            raise _write_error(path, exc) from None
        raise


#: Write failures caused by the machine, not by asym: a one-line error instead of a traceback.
_ENV_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EROFS, errno.EPERM}


def _write_error(path: Path, exc: OSError) -> ArtifactError:
    return ArtifactError(f"{path}: cannot write ({exc.strerror or exc}); nothing was written under this name")


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def fsync_tree(folder: str | os.PathLike[str]) -> None:
    """fsync every file and folder under ``folder``: call before renaming a folder into place,
    so that after a power loss the renamed folder cannot hold empty or half-written files."""
    folder = Path(folder)
    for root, _dirs, files in os.walk(folder):
        for name in files:
            with open(os.path.join(root, name), "rb") as fh:
                os.fsync(fh.fileno())
        _fsync_dir(Path(root))


@contextlib.contextmanager
def atomic_folder(folder: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a new temporary sibling folder; on success it replaces ``folder`` whole.

    The folder version of :func:`atomic_path` (a model folder, the shipped base): written
    beside ``folder`` (same file system, so the rename is atomic), fsynced (:func:`fsync_tree`),
    then renamed in; an existing ``folder`` is first renamed aside and deleted only after. On
    any exception the temporary folder is removed and the old ``folder`` stays (or is put
    back), so a reader never sees a half-written folder under the final name.
    """
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".tmp", dir=folder.parent))
    old: Path | None = None
    try:
        yield tmp
        fsync_tree(tmp)  # after a power loss the renamed folder must not hold half-written files
        if folder.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".old", dir=folder.parent))
            os.rmdir(old)
            os.replace(folder, old)
        os.replace(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        if old is not None and old.exists() and not folder.exists():
            os.replace(old, folder)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


#: Files up to this size get a sha256 in a folder digest; larger ones (the weights and the
#: optimizer state of billion-parameter models) only their size, since hashing tens of GB
#: at every checkpoint save and resume would take minutes. A truncated file is caught
#: either way; a same-size corruption of a large file is not.
HASH_MAX_BYTES = 256 * 2**20


def folder_digest(folder: str | os.PathLike[str], hash_max_bytes: int = HASH_MAX_BYTES) -> dict[str, dict[str, Any]]:
    """{relative path: {"size": bytes, "sha256": hex (files <= hash_max_bytes only)}} of
    every file under ``folder`` (a checkpoint records it in its COMPLETE marker)."""
    folder = Path(folder)
    out: dict[str, dict[str, Any]] = {}
    for p in sorted(folder.rglob("*")):
        if p.is_file():
            size = p.stat().st_size
            entry: dict[str, Any] = {"size": size}
            if size <= hash_max_bytes:
                entry["sha256"] = _sha256(p)
            out[p.relative_to(folder).as_posix()] = entry
    return out


def verify_digest(folder: str | os.PathLike[str], digest: Mapping[str, Mapping[str, Any]]) -> None:
    """Check ``folder``'s files against a :func:`folder_digest`; raise ArtifactError naming the
    first file that is missing, of the wrong size, or whose sha256 differs."""
    folder = Path(folder)
    for rel, want in sorted(digest.items()):
        p = folder / rel
        if not p.is_file():
            raise ArtifactError(f"{p}: file is missing")
        size = p.stat().st_size
        if size != want["size"]:
            raise ArtifactError(f"{p}: truncated or overwritten ({size} bytes, expected {want['size']})")
        if "sha256" in want and _sha256(p) != want["sha256"]:
            raise ArtifactError(f"{p}: corrupted (its sha256 differs from the one recorded when it was written)")


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def write_text(path: str | os.PathLike[str], text: str) -> None:
    """Atomically write a text file."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(path: str | os.PathLike[str], obj: Any) -> None:
    """Atomically write a JSON file."""
    write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


# ---------------------------------------------------------------------------
# Parquet
# ---------------------------------------------------------------------------


def to_table(rows: Sequence[Mapping[str, Any]] | pa.Table, schema: pa.Schema) -> pa.Table:
    """Build a table with exactly ``schema``'s columns (extra keys are an error)."""
    if isinstance(rows, pa.Table):
        missing = [n for n in schema.names if n not in rows.column_names]
        if missing:
            raise ArtifactError(f"table is missing declared columns {missing}")
        return rows.select(schema.names).cast(schema)
    cols: dict[str, list[Any]] = {name: [] for name in schema.names}
    for i, row in enumerate(rows):
        extra = set(row) - set(cols)
        if extra:
            raise ArtifactError(f"row {i} has undeclared columns {sorted(extra)}")
        for name in schema.names:
            cols[name].append(row.get(name))
    return pa.table(cols, schema=schema)


def write_parquet(
    path: str | os.PathLike[str],
    rows: Sequence[Mapping[str, Any]] | pa.Table,
    schema: pa.Schema,
    metadata: Mapping[str, Any] | None = None,
) -> Path:
    """Atomically write ``rows`` as Parquet with ``schema`` and JSON footer metadata."""
    table = to_table(rows, schema)
    meta = dict(table.schema.metadata or {})
    meta[META_KEY] = json.dumps(dict(metadata or {}), sort_keys=True, default=str).encode()
    table = table.replace_schema_metadata(meta)
    path = Path(path)
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)
    return path


def read_metadata(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The asym footer metadata of a Parquet artifact ({} if none)."""
    path = Path(path)
    try:
        md = pq.read_schema(path).metadata or {}
    except FileNotFoundError:
        raise ArtifactError(f"{path}: artifact does not exist") from None
    except (pa.ArrowInvalid, OSError) as exc:
        raise ArtifactError(f"{path}: not a readable Parquet file ({_short(exc)})") from None
    raw = md.get(META_KEY)
    return json.loads(raw) if raw else {}


def read_parquet(path: str | os.PathLike[str], schema: pa.Schema | None = None) -> pa.Table:
    """Read a Parquet artifact, checking it is complete and has ``schema``'s columns.

    Raises :class:`ArtifactError` naming the file and what is wrong (missing,
    truncated/corrupt, missing column, wrong type).
    """
    path = Path(path)
    if not path.exists():
        raise ArtifactError(f"{path}: artifact does not exist")
    try:
        table = pq.read_table(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise ArtifactError(f"{path}: truncated or corrupted Parquet file ({_short(exc)})") from None
    if schema is not None:
        check_schema(table, schema, str(path))
        for field in schema:
            if field.name not in table.column_names:  # an added column (check_schema allowed it)
                table = table.append_column(field, pa.nulls(table.num_rows, field.type))
        table = table.select(schema.names)
    if schema is PROMPTS:
        check_unique(table, "problem_id", str(path))
    return table


def parquet_damage(path: str | os.PathLike[str], schema: pa.Schema | None = None) -> str | None:
    """Why an existing Parquet artifact is unusable, in one line naming the file; None when
    it is absent or its footer reads and holds ``schema``'s columns.

    Cheap (reads the footer only, whatever the file's size): catches a truncated or
    overwritten file and a wrong schema, not a bit flip inside a data page (a full
    :func:`read_parquet` does)."""
    path = Path(path)
    if not path.is_file():
        return None
    try:
        got = pq.read_schema(path)
    except (pa.ArrowInvalid, OSError) as exc:
        return (f"{path}: truncated or corrupted Parquet file ({path.stat().st_size} bytes; "
                f"{_short(exc)})")
    if schema is not None:
        try:
            check_schema(got, schema, str(path))
        except ArtifactError as exc:
            return str(exc)
    return None


def check_unique(table: pa.Table, column: str, where: str) -> None:
    """Raise ArtifactError naming the first value of ``column`` that occurs twice, with its
    1-based rows (a duplicated problem would be sampled, graded and averaged twice)."""
    values = table.column(column).to_pylist()
    first: dict[Any, int] = {}
    for row, value in enumerate(values, 1):
        if value in first:
            raise ArtifactError(f"{where}: row {row}, column '{column}': duplicate {column} '{value}' "
                                f"(first at row {first[value]})")
        first[value] = row


def check_schema(table: pa.Table | pa.Schema, schema: pa.Schema, where: str) -> None:
    """Raise ArtifactError naming the first declared column that ``table`` (a table, or a
    file's schema) lacks or holds with an incompatible type."""
    have = table if isinstance(table, pa.Schema) else table.schema
    for field in schema:
        if field.name not in have.names and is_added(field):
            continue
        if field.name not in have.names:
            raise ArtifactError(f"{where}: missing column '{field.name}' (expected {field.type})")
        got = have.field(field.name).type
        if got != field.type and not _compatible(got, field.type):
            raise ArtifactError(f"{where}: column '{field.name}' has type {got}, expected {field.type}")


def is_added(field: pa.Field) -> bool:
    """True for a column that files written before it may lack (see ``_added``)."""
    return bool(field.metadata) and field.metadata.get(ADDED_KEY) == b"1"


def _compatible(got: pa.DataType, want: pa.DataType) -> bool:
    if pa.types.is_null(got):
        return True
    if pa.types.is_integer(want) and pa.types.is_integer(got):
        return True
    if pa.types.is_floating(want) and (pa.types.is_floating(got) or pa.types.is_integer(got)):
        return True
    if pa.types.is_string(want) and (pa.types.is_large_string(got) or pa.types.is_string(got)):
        return True
    return False


def _short(exc: BaseException) -> str:
    return str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__


# ---------------------------------------------------------------------------
# Checkpoint folders (written by the trainer; read by status, reruns and eval)
# ---------------------------------------------------------------------------

#: The names inside a run folder (runs/{run_id}/) and an eval folder (evals/{run_id}/): Layout
#: builds its paths from these, and the trainer (which must not import the pipeline) and code
#: handed a run folder name its files with them.
RUN_JSON = "run.json"  # the resolved run config, written when training starts
METRICS_FILE = "metrics.parquet"  # one row per step, written last
CHECKPOINTS_DIR = "checkpoints"  # step_{N:06d}/ folders
SAMPLES_FILE = "samples.parquet"  # an evaluation's samples, the concatenation of its parts
EVAL_PARTS_DIR = "parts"  # one Parquet per finished (step, benchmark)

CKPT_PREFIX = "step_"  # runs/{run_id}/checkpoints/step_000060/
COMPLETE_MARKER = "COMPLETE"  # written last, before the atomic rename
STATE_FILE = "trainer_state.pt"  # optimizer, RNG and metrics so far, beside the weights


def checkpoint_damage(folder: str | Path, hashes: bool = True) -> str | None:
    """Why a complete checkpoint folder is unusable, in one line naming the bad file; None
    when its files match the sizes and sha256 its COMPLETE marker records (the check
    ``verify_checkpoint`` makes before loading it), or when it has no digest to
    check (a plain model folder, a marker from before digests existed). ``hashes`` False:
    sizes and presence only (no file is read)."""
    folder = Path(folder)
    marker = folder / COMPLETE_MARKER
    if not marker.exists():
        return None
    try:
        files = json.loads(marker.read_text(encoding="utf-8")).get("files")
    except (OSError, ValueError, AttributeError):
        return f"{marker}: unreadable checkpoint marker"
    if not isinstance(files, dict):
        return None
    if not hashes:
        files = {rel: {"size": want["size"]} for rel, want in files.items()}
    try:
        verify_digest(folder, files)
    except ArtifactError as exc:
        return str(exc)
    return None


def list_checkpoints(ckpt_dir: str | Path) -> list[tuple[int, Path]]:
    """Complete checkpoints in ``ckpt_dir`` as (step, path), oldest first.

    A folder counts only with its COMPLETE marker (written last, before the atomic rename);
    a half-written ``.tmp_*`` folder from a killed run is ignored.
    """
    d = Path(ckpt_dir)
    if not d.is_dir():
        return []
    out = []
    for p in d.iterdir():
        if p.is_dir() and p.name.startswith(CKPT_PREFIX) and (p / COMPLETE_MARKER).exists():
            try:
                out.append((int(p.name[len(CKPT_PREFIX):]), p))
            except ValueError:
                continue
    return sorted(out)


def checkpoint_delete_hint(ckpt: Path) -> str:
    earlier = [s for s, p in list_checkpoints(ckpt.parent) if p != ckpt]
    if earlier:
        return f"delete the folder {ckpt} to resume from the previous checkpoint (step {earlier[-1]})"
    return f"delete the folder {ckpt} to start the run over"


def verify_checkpoint(folder: str | Path) -> None:
    """Check a checkpoint's files against the sizes and sha256 its COMPLETE marker records
    (:func:`folder_digest`); raise ArtifactError naming the bad file and
    saying which folder to delete. A folder without a marker (a plain model folder such as
    the base model) or with a marker from before digests existed has nothing to check.
    """
    folder = Path(folder)
    marker = folder / COMPLETE_MARKER
    if not marker.exists():
        return
    try:
        files = json.loads(marker.read_text(encoding="utf-8")).get("files")
    except (OSError, ValueError, AttributeError):
        raise ArtifactError(f"{marker}: unreadable checkpoint marker; {checkpoint_delete_hint(folder)}") from None
    if files is None:
        return
    try:
        verify_digest(folder, files)
    except ArtifactError as exc:
        raise ArtifactError(f"{exc}; {checkpoint_delete_hint(folder)}") from None


def checkpoint_fingerprint(folder: str | Path) -> str:
    """A short id of a model folder's contents, cheap to compute: the hash of a checkpoint's
    COMPLETE marker (file digests + creation time), or for a plain model folder the names,
    sizes and modification times of its files. Evaluation parts record it, so a retrained
    checkpoint (or base model) is evaluated again instead of reusing the old samples."""
    folder = Path(folder)
    marker = folder / COMPLETE_MARKER
    if marker.exists():
        return hashlib.sha256(marker.read_bytes()).hexdigest()[:16]
    if not folder.is_dir():
        return ""
    files = sorted((p.relative_to(folder).as_posix(), p.stat().st_size, p.stat().st_mtime_ns)
                   for p in folder.rglob("*") if p.is_file())
    return config_hash({"files": files})
