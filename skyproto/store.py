"""Token and state files: the one core module that touches the file system.

It still never reads the clock: the caller passes ``now``.

Every write goes through :func:`write_atomic`: the bytes go to a new temporary file (mode 0600) in
the target's directory, are flushed and fsynced, and the temporary file is renamed over the target;
then the directory is fsynced so the rename itself survives a crash. A reader therefore sees the
old file or the new one, never a mix, and the target ends with mode 0600 whatever the umask, even
if it existed with wider permissions (the reference truncates in place and keeps the old mode;
docs/protocol.md §12.13). A failed write (a full disk, say) leaves the old file and no temporary
one; :func:`save_state` and :func:`write_skpy_token_file` then raise a
:class:`~skyproto.LocalProtocolError` naming the file and the reason, never its content.

Files next to the target
------------------------
* ``.NAME.<12 hex digits>.tmp``: a write in progress, created with ``O_EXCL`` and mode 0600. A
  writer killed between the write and the rename leaves one behind, holding tokens; the next
  holder of the lock removes every such file (they can only be left-overs, since writers hold the
  lock).
* ``.NAME.lock``: an empty lock file (mode 0600), kept after use. :func:`lock_state` holds an
  exclusive ``flock`` on it; :func:`save_state` and :func:`write_skpy_token_file` take it for the
  write, and the command line holds it for a whole verb, so two processes never interleave their
  read-modify-write of one session. A held lock makes a second holder wait up to ``wait``
  seconds, then fail with a :class:`~skyproto.LocalProtocolError` naming the file. The lock is
  re-entrant within a thread. Where ``fcntl`` is missing (Windows) there is no lock. The directory
  must therefore be writable for a save, which :func:`check_writable` proves before any work.

What is refused
---------------
Only regular files are read or replaced. A symbolic link at the target is neither followed nor
replaced: reading or saving through it is an error, so a link can never redirect tokens into
another file (resolve the link and give the real path). A FIFO, a directory or a device is an
error too, found without blocking (``O_NONBLOCK``, then ``fstat``), as is a file larger than
:data:`MAX_FILE_SIZE`. Reading takes no lock (the atomic rename already makes it safe), so a state
file in a read-only directory can still be read.

Two formats are handled; their bytes are made and checked by the pure ``skyproto._snapshot``
(:func:`~skyproto.session.dump_snapshot`, :func:`~skyproto.session.load_snapshot`,
:func:`parse_skpy_token_file`, :func:`format_skpy_token_file`), this module only reads and writes
the files:

* the versioned JSON snapshot of :class:`~skyproto.SessionState` (:func:`save_state`,
  :func:`load_state`);
* SkPy's six-line token file (§8), for moving a session between SkPy and skyproto
  (:func:`read_skpy_token_file`, :func:`write_skpy_token_file`).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import math
import os
import re
import secrets
import stat
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from ._snapshot import (
    SessionState,
    dump_snapshot,
    format_skpy_token_file,
    load_snapshot,
    parse_skpy_token_file,
)
from .errors import LocalProtocolError, SkypeTokenException
from .hosts import Hosts

if sys.platform != "win32":
    import fcntl

__all__ = [
    "format_skpy_token_file",
    "load_state",
    "lock_state",
    "parse_skpy_token_file",
    "read_file",
    "read_skpy_token_file",
    "save_state",
    "write_skpy_token_file",
]

#: Permission bits of every file this module writes, the lock file included.
FILE_MODE = 0o600
#: Files larger than this are refused when read (a state file is a few kilobytes).
MAX_FILE_SIZE = 16 * 1024 * 1024
#: Seconds :func:`save_state` and :func:`write_skpy_token_file` wait for another holder's lock.
LOCK_WAIT = 5.0

_TEMP_NAME_ATTEMPTS = 16
_TEMP_HEX_DIGITS = 12
_LOCK_POLL = 0.05
_READ_CHUNK = 64 * 1024

StrPath = str | os.PathLike[str]


# -- atomic writes ------------------------------------------------------------------------------


def _temp_name(name: str, suffix: str) -> str:
    return f".{name}.{suffix}.tmp"


def _create_temp(directory: Path, name: str) -> tuple[int, Path]:
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    flags |= getattr(os, "O_NOFOLLOW", 0)
    for _ in range(_TEMP_NAME_ATTEMPTS):
        temp = directory / _temp_name(name, secrets.token_hex(_TEMP_HEX_DIGITS // 2))
        try:
            return os.open(temp, flags, FILE_MODE), temp
        except FileExistsError:
            continue
    raise FileExistsError(f"could not create a temporary file next to {name!r}")


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        if written <= 0:
            raise OSError("write made no progress")
        view = view[written:]


def _fsync_directory(directory: Path) -> None:
    if not hasattr(os, "O_DIRECTORY"):
        return  # Windows: a directory cannot be opened or fsynced
    # Best effort: some file systems refuse, and the rename has happened either way.
    try:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        with contextlib.suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: StrPath, data: bytes) -> None:
    """Replace the file at ``path`` with ``data`` atomically, leaving it with mode 0600.

    On any failure the temporary file is removed, the old file (if any) is left as it was, and
    the ``OSError`` propagates. This is the bare primitive: it takes no lock and does not refuse
    a link at ``path`` (the rename replaces the link itself, never the file it points to); the
    state and token-file writers below add both.
    """
    if not isinstance(data, bytes):
        raise LocalProtocolError("write_atomic writes bytes")
    target = Path(os.path.abspath(path))
    fd, temp = _create_temp(target.parent, target.name)
    try:
        try:
            # The umask may have cleared bits of FILE_MODE; set it explicitly.
            if hasattr(os, "fchmod"):
                os.fchmod(fd, FILE_MODE)
            else:
                os.chmod(temp, FILE_MODE)
            _write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temp, target)
    except BaseException:
        with contextlib.suppress(OSError):  # never hide the original failure
            os.unlink(temp)
        raise
    _fsync_directory(target.parent)


def _reason(exc: OSError) -> str:
    return exc.strerror or str(exc) or type(exc).__name__


# -- the lock and the left-overs of killed writers ----------------------------------------------


def lock_path(path: StrPath) -> Path:
    """The lock file :func:`lock_state` uses for ``path``: ``.NAME.lock`` in the same directory."""
    target = Path(os.path.abspath(path))
    if not target.name:
        raise LocalProtocolError(f"{os.fspath(path)!r} names no file to lock")
    return target.with_name(f".{target.name}.lock")


def _remove_stale_temps(target: Path) -> None:
    """Remove the temporary files killed writers left next to ``target`` (best effort)."""
    head, tail = _temp_name(target.name, "\0").split("\0")
    pattern = re.compile(f"{re.escape(head)}[0-9a-f]{{{_TEMP_HEX_DIGITS}}}{re.escape(tail)}")
    with contextlib.suppress(OSError), os.scandir(target.parent) as entries:
        for entry in entries:
            if pattern.fullmatch(entry.name) and not entry.is_dir(follow_symlinks=False):
                with contextlib.suppress(OSError):
                    os.unlink(entry.path)


def _open_lock(lock: Path, display: str) -> int:
    flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0)
    flags |= getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(lock, flags, FILE_MODE)
    except OSError as exc:
        raise LocalProtocolError(
            f"cannot lock the state file {display!r}: {_reason(exc)} "
            f"(its lock file is {str(lock)!r})"
        ) from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise LocalProtocolError(
                f"cannot lock the state file {display!r}: its lock file {str(lock)!r} "
                "is not a regular file"
            )
        if stat.S_IMODE(info.st_mode) != FILE_MODE and hasattr(os, "fchmod"):
            with contextlib.suppress(OSError):  # someone else's file: the lock still works
                os.fchmod(fd, FILE_MODE)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _flock(fd: int, display: str, wait: float) -> None:
    if sys.platform == "win32":
        return
    attempts = 1 + max(0, math.ceil(wait / _LOCK_POLL))
    for attempt in range(attempts):
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if attempt + 1 < attempts:
                time.sleep(_LOCK_POLL)
        except OSError as exc:
            raise LocalProtocolError(
                f"cannot lock the state file {display!r}: {_reason(exc)}"
            ) from None
    raise LocalProtocolError(
        f"the state file {display!r} is in use by another skyproto process; "
        "try again when it has finished"
    )


_held_guard = threading.Lock()
_held: dict[tuple[str, int], int] = {}  # (lock file, thread) -> nesting depth


@contextlib.contextmanager
def lock_state(path: StrPath, *, wait: float = 0.0) -> Iterator[None]:
    """Hold the exclusive lock on the state file ``path`` for the ``with`` block.

    Waits up to ``wait`` seconds for another holder (``0``: fail at once), then raises a
    :class:`~skyproto.LocalProtocolError` naming the file; the same error if the lock file cannot
    be created (a missing or read-only directory). Re-entrant within a thread, so
    :func:`save_state` works inside the block. On taking the lock, the temporary files killed
    writers left next to ``path`` are removed. Needs no existing file at ``path``.
    """
    if not math.isfinite(wait) or wait < 0:
        raise LocalProtocolError(f"the lock wait must be a finite, non-negative number: {wait!r}")
    display = os.fspath(path)
    lock = lock_path(path)
    key = (str(lock), threading.get_ident())
    with _held_guard:
        nested = key in _held
        if nested:
            _held[key] += 1
    if nested:
        try:
            yield
        finally:
            with _held_guard:
                _held[key] -= 1
        return
    fd = _open_lock(lock, display)
    try:
        _flock(fd, display, wait)
        with _held_guard:
            _held[key] = 1
        try:
            _remove_stale_temps(Path(os.path.abspath(path)))
            yield
        finally:
            with _held_guard:
                del _held[key]
    finally:
        os.close(fd)  # releases the flock


def _check_target(path: StrPath, what: str) -> None:
    """Refuse a target that is a link or anything but a regular file (a missing one is fine)."""
    display = os.fspath(path)
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise LocalProtocolError(f"cannot write the {what} {display!r}: {_reason(exc)}") from None
    if stat.S_ISLNK(info.st_mode):
        raise LocalProtocolError(
            f"the {what} {display!r} is a symbolic link; skyproto does not write through links "
            "(give the real path)"
        )
    if not stat.S_ISREG(info.st_mode):
        raise LocalProtocolError(f"the {what} {display!r} is not a regular file")


def check_writable(path: StrPath, *, what: str = "state file") -> None:
    """Prove, before any work, that ``path`` can be saved: it is missing or a regular file (not
    a link), and its directory takes a new file. Raises a :class:`~skyproto.LocalProtocolError`
    naming the file. Call it holding :func:`lock_state`."""
    _check_target(path, what)
    target = Path(os.path.abspath(path))
    try:
        fd, temp = _create_temp(target.parent, target.name)
    except OSError as exc:
        raise LocalProtocolError(
            f"cannot write the {what} {os.fspath(path)!r}: {_reason(exc)}"
        ) from None
    os.close(fd)
    with contextlib.suppress(OSError):
        os.unlink(temp)


def _save(path: StrPath, data: bytes, what: str, wait: float) -> None:
    with lock_state(path, wait=wait):
        _check_target(path, what)
        try:
            write_atomic(path, data)
        except OSError as exc:
            raise LocalProtocolError(
                f"cannot write the {what} {os.fspath(path)!r}: {_reason(exc)}"
            ) from None


def read_file(path: StrPath, what: str) -> bytes:
    """The bytes of the regular file at ``path``, opened without blocking or following a link."""
    display = os.fspath(path)
    unreadable = SkypeTokenException(f"{what} {display!r} does not exist or is not readable")
    flags = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NONBLOCK", 0)
    flags |= getattr(os, "O_NOFOLLOW", 0)
    try:
        info = os.lstat(path)  # refuse a device before opening it: an open can have effects
        if stat.S_ISLNK(info.st_mode):
            raise SkypeTokenException(
                f"{what} {display!r} is a symbolic link; skyproto does not read through links "
                "(give the real path)"
            )
        if not stat.S_ISREG(info.st_mode):
            raise SkypeTokenException(f"{what} {display!r} is not a regular file")
        fd = os.open(path, flags)
    except OSError as exc:
        if exc.errno == errno.ELOOP:  # replaced by a link since the lstat
            raise SkypeTokenException(f"{what} {display!r} is a symbolic link") from None
        raise unreadable from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise SkypeTokenException(f"{what} {display!r} is not a regular file")
        if info.st_size > MAX_FILE_SIZE:
            raise SkypeTokenException(f"{what} {display!r} is too large")
        chunks: list[bytes] = []
        size = 0
        while size <= MAX_FILE_SIZE:
            chunk = os.read(fd, min(_READ_CHUNK, MAX_FILE_SIZE + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    except OSError:
        raise unreadable from None
    finally:
        os.close(fd)
    if size > MAX_FILE_SIZE:
        raise SkypeTokenException(f"{what} {display!r} is too large")
    return b"".join(chunks)


# -- the JSON snapshot --------------------------------------------------------------------------


def save_state(path: StrPath, state: SessionState, *, wait: float = LOCK_WAIT) -> None:
    """Write ``state`` to ``path`` as a versioned JSON snapshot (atomic, mode 0600), holding the
    lock (waiting up to ``wait`` seconds for it). Every failure is a
    :class:`~skyproto.LocalProtocolError` naming the file; the old file is then left as it was.
    """
    _save(path, dump_snapshot(state), "state file", wait)


def load_state(path: StrPath, *, now: dt.datetime, hosts: Hosts) -> SessionState:
    """Read a snapshot written by :func:`save_state` and check it can be used at ``now``.

    Every problem, from a missing file or a FIFO to an expired Skype token, is a
    :class:`~skyproto.SkypeTokenException` (see :func:`skyproto.session.load_snapshot`).
    """
    return load_snapshot(read_file(path, "saved state file"), now=now, hosts=hosts)


# -- SkPy's six-line token file -----------------------------------------------------------------


def read_skpy_token_file(path: StrPath, *, now: dt.datetime, hosts: Hosts) -> SessionState:
    """Read a SkPy token file from ``path``; see :func:`parse_skpy_token_file`."""
    return parse_skpy_token_file(read_file(path, "Token file"), now=now, hosts=hosts)


def write_skpy_token_file(path: StrPath, state: SessionState, *, wait: float = LOCK_WAIT) -> None:
    """Write ``state`` as a SkPy token file at ``path`` (atomic, mode 0600, under the lock, like
    :func:`save_state`)."""
    _save(path, format_skpy_token_file(state), "token file", wait)
