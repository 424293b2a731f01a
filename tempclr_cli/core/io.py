"""Atomic file writes: a killed run never leaves a half-written file behind."""

from __future__ import annotations

import json
import os
import socket
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it into place only on success."""
    path = Path(path)
    if path.is_symlink():  # write to what the link points at; the link stays a link
        path = path.resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{_OWNER}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; files get the usual permissions
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


_HOST = socket.gethostname().replace(".", "_")
_OWNER = f"{_HOST}-{os.getpid()}"  # in every temporary name: who may still be writing it


def remove_stale_temporaries(folder: str | os.PathLike) -> int:
    """Delete the temporary files that killed processes of this host left under `folder`.
    Temporaries of live processes, and of other hosts (a shared file system), stay."""
    removed = 0
    for tmp in Path(folder).rglob(".*.tmp"):
        owner = tmp.name[: -len(".tmp")].rsplit(".", 2)
        if len(owner) < 3 or "-" not in owner[1]:
            continue
        name, pid = owner[1].rsplit("-", 1)
        if name == _HOST and pid.isdigit() and not _alive(int(pid)):
            tmp.unlink(missing_ok=True)
            removed += 1
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def read_text(path: str | os.PathLike, what: str, expected: str, hint: str = "") -> str:
    """A user's UTF-8 text file, with errors that name it: `what` (not found), `expected`
    (given a folder), `hint` (how to fix an encoding)."""
    from tempclr_cli.core.errors import TempclrError

    try:
        return Path(path).read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise TempclrError(f"{path}: {what} not found") from None
    except IsADirectoryError:
        raise TempclrError(f"{path}: is a folder; expected {expected}") from None
    except UnicodeDecodeError as e:
        raise TempclrError(f"{path}: not UTF-8 text (byte {e.start}){hint}") from None


def write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(path: str | os.PathLike, obj) -> None:
    write_text(path, json.dumps(obj, indent=2) + "\n")


def save_npy(path: str | os.PathLike, array) -> None:
    import numpy as np

    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.save(f, array)


def append_jsonl(path: str | os.PathLike, row: dict) -> None:
    """Append one JSON line with a single write (O_APPEND keeps concurrent rows whole)."""
    data = (json.dumps(row) + "\n").encode("utf-8")
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)
