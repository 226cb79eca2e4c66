"""The checks every data file a pipeline reads gets: a regular file, at most a size limit.

A FIFO's ``open`` waits for a writer and ``/dev/zero`` never ends: both are refused by what
``fstat`` says before a byte is read (the FIFO is opened non-blocking), and the read itself is
bounded, so a file that grows while it is read cannot exhaust memory either.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from gates.errors import DataError

MAX_DATA_BYTES = 64_000_000  # data files are read whole; bigger ones are a mistake or an attack


def read_data_file(path: Path, limit: int = MAX_DATA_BYTES) -> bytes:
    """The bytes of ``path``, a regular file of at most ``limit`` bytes, else a DataError naming it."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except (OSError, ValueError) as exc:  # ValueError: a NUL in the path
        raise DataError(f"{path}: cannot read: {exc}") from None
    try:
        _check(path, os.fstat(fd), limit)
        with os.fdopen(fd, "rb", closefd=False) as f:
            blob = f.read(limit + 1)
    except OSError as exc:
        raise DataError(f"{path}: cannot read: {exc}") from None
    finally:
        os.close(fd)
    if len(blob) > limit:
        raise DataError(f"{path}: larger than {_mb(limit)}")
    return blob


def check_data_file(path: Path, limit: int = MAX_DATA_BYTES) -> None:
    """What ``read_data_file`` checks, for a file another library reads (lm-eval's data_files)."""
    try:
        st = os.stat(path)
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: cannot read: {exc}") from None
    _check(path, st, limit)


def _check(path: Path, st: os.stat_result, limit: int) -> None:
    if not stat.S_ISREG(st.st_mode):
        raise DataError(f"{path}: not a regular file (a data file is read whole; devices and FIFOs never end)")
    if st.st_size > limit:
        raise DataError(f"{path}: larger than {_mb(limit)}")


def _mb(limit: int) -> str:
    return f"{limit // 1_000_000} MB" if limit >= 1_000_000 else f"{limit} bytes"
