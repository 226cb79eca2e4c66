"""Every data file a pipeline reads gets the golden suites' checks: a regular file, a size limit.

Each read runs in a child with 1 GB of address space and a timeout, so the unchecked reads
(/dev/zero read to the end, a FIFO's open waiting for a writer) fail here instead of hanging.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

READERS = {
    "golden.suites": "from gates.quality.golden import read_jsonl as read",
    "golden.perplexity": "from gates.quality.scoring import load_documents\nread = lambda p: load_documents(p, 'x')",
    "golden.multiple_choice": "from gates.quality.scoring import load_multiple_choice\n"
    "read = lambda p: load_multiple_choice(p, 'x')",
    "golden.lm_eval": "from gates.quality.lm_eval_tasks import task_spec as read",
    "optimize.quantize.calibration": "from gates.quality.golden import load_calibration as read",
}


def read_in_child(reader: str, path: Path) -> subprocess.CompletedProcess[str]:
    code = (
        textwrap.dedent(
            """\
        import resource, sys
        from pathlib import Path
        from gates.errors import DataError
        resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))
        """
        )
        + READERS[reader]
        + textwrap.dedent(
            f"""
        try:
            read(Path({str(path)!r}))
        except DataError as exc:
            print("DataError:", exc)
            sys.exit(2)
        """
        )
    )
    try:
        return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired:
        pytest.fail(f"{reader}: reading {path} did not end")


@pytest.mark.parametrize("reader", sorted(READERS))
@pytest.mark.parametrize("kind", ["/dev/zero", "fifo", "directory"])
def test_a_data_file_that_is_not_a_regular_file_is_bad_input(tmp_path: Path, reader: str, kind: str) -> None:
    path = Path(kind)
    if kind == "fifo":
        path = tmp_path / "data.fifo"
        os.mkfifo(path)
    elif kind == "directory":
        path = tmp_path
    proc = read_in_child(reader, path)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert f"DataError: {path}: " in proc.stdout and "regular file" in proc.stdout


def test_an_lm_eval_task_reading_dev_zero_is_bad_input(tmp_path: Path) -> None:
    task = tmp_path / "t.yaml"
    task.write_text(
        "task: t\ndataset_path: json\ndataset_kwargs:\n  data_files:\n    test: /dev/zero\n"
        "test_split: test\noutput_type: multiple_choice\n"
    )
    proc = read_in_child("golden.lm_eval", task)
    assert proc.returncode == 2 and "/dev/zero" in proc.stdout and "regular file" in proc.stdout, proc.stdout


def test_an_oversized_data_file_is_refused_by_its_size(tmp_path: Path) -> None:
    from gates.errors import DataError
    from gates.quality.golden import MAX_JSONL_BYTES
    from gates.quality.lm_eval_tasks import task_spec
    from gates.quality.scoring import load_documents

    big = tmp_path / "big.txt"
    with big.open("wb") as f:  # sparse: no disk used
        f.truncate(MAX_JSONL_BYTES + 1)
    with pytest.raises(DataError, match="larger than"):
        load_documents(big, "x")
    task = tmp_path / "t.yaml"
    task.write_text(f"task: t\ndataset_kwargs:\n  data_files: [{big}]\noutput_type: multiple_choice\n")
    with pytest.raises(DataError, match="larger than"):
        task_spec(task)
