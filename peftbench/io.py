"""Atomic writes: every output appears complete or not at all (temp file in the same folder + rename).

tempfile makes its files 0600 and its folders 0700 whatever the umask (they are private by design); a result
renamed into place would keep that, and nobody else in a shared group could read a report or a run. So each one
gets, before its rename, the mode a plain `open`/`mkdir` would have given it: 0666 / 0777 less the umask. A
folder's contents get it too: some writers make their files private themselves (safetensors' save_file writes
0600 through a temporary file of its own), so a peft adapter/ or a checkpoint would otherwise hold unreadable
weights inside a readable folder."""

import json
import os
import shutil
import stat
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from peftbench import warm_worker  # imports nothing heavy: its check before each rename


def umask() -> int:
    """The process umask, read without changing it where Linux says it (/proc/self/status, no race with other
    threads creating files); elsewhere set and restored at once."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def as_created(path: Path | str, folder: bool = False) -> None:
    """Give `path` the mode `open` (0666) or `mkdir` (0777) would have given it under the process umask."""
    os.chmod(path, (0o777 if folder else 0o666) & ~umask())


def tree_as_created(root: Path) -> None:
    """`as_created` for a folder and everything in it (an executable file keeps its x bits, as 0777 less the
    umask); symbolic links are left alone."""
    mask = umask()
    for folder, dirs, files in os.walk(root):
        os.chmod(folder, 0o777 & ~mask)
        for name in files:
            path = os.path.join(folder, name)
            st = os.lstat(path)
            if stat.S_ISREG(st.st_mode):
                os.chmod(path, (0o777 if st.st_mode & stat.S_IXUSR else 0o666) & ~mask)


@contextmanager
def atomic_path(path: Path | str) -> Iterator[Path]:
    """Yield a temporary path next to `path`; rename it onto `path` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        warm_worker.check_job_alive(path)
        as_created(tmp)  # mkstemp's 0600 otherwise
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


@contextmanager
def atomic_dir(path: Path | str) -> Iterator[Path]:
    """Yield a temporary folder next to `path`; rename it to `path` only if the block succeeds. The rename
    fails (OSError) where `path` already exists as a non-empty folder; the temporary folder never stays."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=path.parent))
    try:
        yield tmp
        warm_worker.check_job_alive(path)
        tree_as_created(tmp)  # mkdtemp's 0700 otherwise, and whatever private files a writer made inside
        os.rename(tmp, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def write_text(path: Path | str, text: str) -> None:
    with atomic_path(path) as tmp:
        Path(tmp).write_text(text)


def write_json(path: Path | str, obj: object) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n")


def read_json(path: Path | str) -> Any:
    """A JSON file; a truncated or garbled one is an error naming it (not a bare JSONDecodeError)."""
    try:
        return json.loads(Path(path).read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not valid JSON ({e.msg}, line {e.lineno}): truncated or garbled") from None


def write_jsonl(path: Path | str, rows: Iterable[dict]) -> None:
    write_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))


def read_jsonl(path: Path | str, required: Iterable[str] = ()) -> list[dict]:
    """Read a JSON-lines file; a bad line or a missing field is an error naming file, line and field."""
    rows = []
    with open(path, "rb") as f:
        for n, line in _lines(f, path):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise ValueError(f"{path}:{n}: not valid JSON ({e.msg})") from None
            if not isinstance(row, dict):
                raise ValueError(
                    f'{path}:{n}: expected a JSON object ({{"id": ..., ...}}), got a JSON {type(row).__name__}'
                )
            missing = [k for k in required if k not in row]
            if missing:
                raise ValueError(f"{path}:{n}: missing field(s) {', '.join(missing)}")
            rows.append(row)
    if not rows:
        raise ValueError(f"{path}: no records")
    return rows


def _lines(f, path):
    """(line number, text) of a binary file; a line that is not UTF-8 is an error naming file and line (Latin-1
    data gave a bare "'utf-8' codec can't decode byte 0xe9")."""
    for n, raw in enumerate(f, 1):
        try:
            yield n, raw.decode("utf-8")
        except UnicodeDecodeError as e:
            raise ValueError(
                f"{path}:{n}: not UTF-8 (byte {raw[e.start : e.start + 1]!r} at column {e.start + 1}); JSON lines "
                f"must be UTF-8 (convert it, e.g. iconv -f latin1 -t utf-8)"
            ) from None
