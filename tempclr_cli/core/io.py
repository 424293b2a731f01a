"""Atomic file writes: a killed run never leaves a half-written file behind."""

from __future__ import annotations

import json
import os
import socket
import tempfile
import time
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
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{OWNER}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; files get the usual permissions
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


_HOST = socket.gethostname().replace(".", "_")
OWNER = f"{_HOST}-{os.getpid()}"  # in every temporary name and claim: who may still be writing it


def remove_stale_temporaries(folder: str | os.PathLike) -> int:
    """Delete the temporary files and claims that killed processes of this host left under
    `folder`. Those of live processes, and of other hosts (a shared file system), stay."""
    removed = 0
    for tmp in Path(folder).rglob(".*.tmp"):
        owner = tmp.name[: -len(".tmp")].rsplit(".", 2)
        if len(owner) == 3 and _dead(owner[1]):
            tmp.unlink(missing_ok=True)
            removed += 1
    for claim in Path(folder).rglob(".*.claim"):
        if _stale(claim):
            claim.unlink(missing_ok=True)
            removed += 1
    return removed


def claim(path: str | os.PathLike, owner: str = OWNER) -> bool:
    """Take `path` (a claim file) for `owner` unless a live process holds it: concurrent runs
    into one folder each do a share of the work, never the same piece twice. A claim that a
    dead process of this host left is taken over. The claim appears with its owner already
    written (a hard link to a finished temporary), so a run killed while claiming never
    leaves an empty claim that no one could tell from a live one."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{OWNER}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o644)
        with os.fdopen(fd, "w") as f:
            f.write(owner)
        for _ in range(3):
            try:
                _link_or_create(tmp, path, owner)
                return True
            except FileExistsError:
                if not _remove_if_stale(path):
                    return False
        return False
    finally:
        os.unlink(tmp)


def _link_or_create(tmp: str, path: Path, owner: str) -> None:
    """Hard-link `tmp` as `path`; where the file system has no hard links (some network and
    FAT-style mounts), create `path` exclusively and write `owner` into it."""
    try:
        os.link(tmp, path)
    except FileExistsError:
        raise
    except OSError:
        with open(path, "x") as f:
            f.write(owner)


def _remove_if_stale(path: Path) -> bool:
    """Remove a stale claim, checked again under a lock on it: of two runs that both found it
    stale, only one removes it; the other sees the new claim (another file) and backs off.
    True when the name is free to try again."""
    import fcntl

    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            if os.stat(path).st_ino != os.fstat(fd).st_ino:
                return True  # replaced meanwhile: try to link again, and meet the new owner
        except FileNotFoundError:
            return True
        if not _stale(path):
            return False
        path.unlink()
        return True
    finally:
        os.close(fd)


def _stale(claim_file: Path) -> bool:
    """A claim left by a dead process of this host, or an empty one (a writer killed mid-claim,
    where claims cannot be hard links) that has not been filled within a few seconds."""
    try:
        owner = claim_file.read_text()
        return _dead(owner) if owner else time.time() - claim_file.stat().st_mtime > EMPTY_CLAIM_SECONDS
    except FileNotFoundError:  # released meanwhile: free to take
        return True
    except OSError:
        return False


EMPTY_CLAIM_SECONDS = 10.0


def _dead(owner: str) -> bool:
    """`owner` is `host-pid`: true when that is a process of this host that no longer runs."""
    name, _, pid = owner.rpartition("-")
    return name == _HOST and pid.isdigit() and not _alive(int(pid))


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


def sha256_file(path: str | os.PathLike) -> str:
    """The SHA-256 of a file's bytes, read a MiB at a time (checkpoints of hundreds of MB)."""
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def distinct_stems(paths: list[Path]) -> list[Path]:
    """The name of what tempclr makes from each input file (features, alignments): its path without
    the extension, so `cooking.mp4` gives `cooking.npy`, `cooking.json`; files that would share one
    (`clip.mp4`, `clip.mkv` in one folder) keep their extensions (`clip.mp4.npy`, `clip.mkv.npy`) and the
    others are untouched. paths: relative to the folder the outputs mirror."""
    stems = [p.with_suffix("") for p in paths]
    count: dict[Path, int] = {}
    for stem in stems:
        count[stem] = count.get(stem, 0) + 1
    return [p if count[stem] > 1 else stem for p, stem in zip(paths, stems)]


def read_text(path: str | os.PathLike, what: str, expected: str, hint: str = "") -> str:
    """A user's UTF-8 text file, with errors that name it: `what` (not found), `expected`
    (given a folder), `hint` (how to fix an encoding)."""
    from tempclr_cli.core.errors import TempclrError

    try:
        return Path(path).read_bytes().decode("utf-8-sig")  # a byte-order mark (Windows editors) is not text
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
    """Append one JSON line (see `append_line`)."""
    append_line(path, json.dumps(row))


def append_line(path: str | os.PathLike, line: str) -> None:
    """Append one line with a single write under an exclusive lock: lines of concurrent
    writers stay whole (O_APPEND alone does not promise that on network file systems)."""
    import fcntl

    data = (line + "\n").encode("utf-8")
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.write(fd, data)
    finally:
        os.close(fd)
