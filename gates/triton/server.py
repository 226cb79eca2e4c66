"""A real ``tritonserver`` process on 127.0.0.1, started and stopped by us.

The binary comes from the ``nvidia-pytriton`` wheel. Two environment fixes are needed on these
machines (see ``shared/machine-facts.md``): the Python stub links ``libpython3.x`` by soname and
would pick the system one, so the running interpreter's LIBDIR goes first on LD_LIBRARY_PATH; and
the stub takes its packages from the ``python3`` first on PATH, so our interpreter's bin goes first.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from types import TracebackType

from gates.errors import CapabilityError, InfraError, SubprocessError

INSTALL_HINT = "pip install 'nvidia-pytriton==0.7.0' (a project dependency: run `make demo`)"


def find_tritonserver() -> tuple[Path, Path, Path]:
    """(binary, python backend dir, stub) from the installed nvidia-pytriton wheel."""
    try:
        import pytriton
    except ImportError as exc:
        raise CapabilityError(f"tritonserver not found: {exc}; {INSTALL_HINT}") from exc
    root = Path(pytriton.__file__).parent / "tritonserver"
    binary = root / "bin" / "tritonserver"
    backend = root / "backends" / "python"
    stub = (
        root
        / "python_backend_stubs"
        / f"{sys.version_info.major}.{sys.version_info.minor}"
        / "triton_python_backend_stub"
    )
    for p in (binary, backend / "libtriton_python.so", stub):
        if not p.exists():
            raise CapabilityError(f"tritonserver installation incomplete: {p} is missing; {INSTALL_HINT}")
    return binary, backend, stub


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _die_with_parent() -> None:
    # If gates is killed with SIGKILL, the kernel sends SIGTERM to the server: nothing is left running.
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class TritonServer:
    """Context manager: ``with TritonServer(repo, workdir) as server: server.load_model(...)``."""

    def __init__(
        self,
        repository: Path,
        workdir: Path,
        startup_timeout_s: float = 120.0,
        log_verbose: int = 0,
        gpu_metrics: bool = False,
    ):
        self.repository = repository
        # GPU gauges (nv_gpu_memory_used_bytes …) only when a model runs on the GPU: on a CPU
        # machine the metrics thread would poll a DCGM that is not there.
        self.gpu_metrics = gpu_metrics
        self.workdir = workdir
        self.startup_timeout_s = startup_timeout_s
        self.log_verbose = log_verbose
        self.proc: subprocess.Popen[bytes] | None = None
        self.cmd: list[str] = []
        self.http_port = self.grpc_port = self.metrics_port = 0
        self.log_path = workdir / "tritonserver.log"
        # The Python backend's shared-memory regions are named with this prefix, so that stop()
        # can remove exactly this server's regions: /dev/shm outlives a killed server otherwise.
        self.shm_prefix = f"gates_{uuid.uuid4().hex[:12]}_"

    # -- lifecycle -------------------------------------------------------------------------
    def __enter__(self) -> TritonServer:
        self.start()
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return f"127.0.0.1:{self.http_port}"

    @property
    def grpc_url(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def command(self, binary: Path, backend_root: Path) -> list[str]:
        return [
            str(binary),
            f"--model-repository={self.repository}",
            "--model-control-mode=explicit",
            f"--backend-directory={backend_root}",
            "--http-address=127.0.0.1",
            f"--http-port={self.http_port}",
            "--grpc-address=127.0.0.1",
            f"--grpc-port={self.grpc_port}",
            "--metrics-address=127.0.0.1",
            f"--metrics-port={self.metrics_port}",
            f"--allow-gpu-metrics={'true' if self.gpu_metrics else 'false'}",
            "--exit-timeout-secs=5",
            f"--backend-config=python,shm-region-prefix-name={self.shm_prefix}",
            "--strict-readiness=true",
            f"--log-verbose={self.log_verbose}",
        ]

    def environment(self, binary: Path) -> dict[str, str]:
        env = dict(os.environ)
        libdirs = [sysconfig.get_config_var("LIBDIR") or "", str(binary.parents[3] / "nvidia_pytriton.libs")]
        env["LD_LIBRARY_PATH"] = os.pathsep.join([d for d in libdirs if d] + [env.get("LD_LIBRARY_PATH", "")]).rstrip(
            os.pathsep
        )
        env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
        env["HF_HUB_OFFLINE"] = "1"
        # The stub starts without a locale: Python would default to ASCII and torch fails to
        # read its own UTF-8 templates on import.
        env["PYTHONUTF8"] = "1"
        env.setdefault("LC_ALL", "C.UTF-8")
        env["PYTHONUNBUFFERED"] = "1"
        for var in ("GITHUB_TOKEN", "GATES_GITHUB_TOKEN", "GATES_WEBHOOK_SECRET"):
            env.pop(var, None)  # the model code never needs our secrets
        return env

    def start(self) -> None:
        self.launch()
        self.wait_live()

    def launch(self) -> None:
        """Start the process without waiting for it. Call it from a thread that outlives the server
        (the main thread): the kernel signals the server when the thread that started it ends."""
        binary, backend, stub = find_tritonserver()
        backend_root = self.workdir / "backends"
        target = backend_root / "python"
        target.mkdir(parents=True, exist_ok=True)
        for src in (backend / "libtriton_python.so", backend / "triton_python_backend_utils.py", stub):
            # replaced, never written in place: a stub of an earlier server in this folder (the warm
            # start's, SIGKILLed a moment ago) may still be executing it ("Text file busy")
            tmp = target / f".{src.name}.{os.getpid()}.tmp"
            shutil.copy2(src, tmp)
            os.replace(tmp, target / src.name)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.repository.mkdir(parents=True, exist_ok=True)
        self.http_port, self.grpc_port, self.metrics_port = free_port(), free_port(), free_port()
        cmd = self.cmd = self.command(binary, backend_root)
        log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            cmd,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=self.environment(binary),
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
        log.close()

    def wait_live(self) -> None:
        """Wait until the launched server answers; stop it and raise when it dies or times out."""
        deadline = time.monotonic() + self.startup_timeout_s
        while time.monotonic() < deadline:
            proc = self.proc
            if proc is None:
                raise InfraError("tritonserver was stopped during startup")
            if proc.poll() is not None:
                raise self._died("tritonserver exited during startup")
            if self._get("/v2/health/live") == 200:
                return
            time.sleep(0.1)
        self.stop()
        raise InfraError(f"tritonserver was not live after {self.startup_timeout_s:.0f}s; log: {self.log_path}")

    def stop(self) -> None:
        """Stop by PID: SIGKILL to the whole process group, then remove its shared memory. Safe to
        call twice.

        The group is the server and its Python-backend stubs (also orphaned ones, when the server
        itself died). Not a graceful SIGTERM: gates stops a server only when nothing it serves is
        still wanted (measurement over, or a failure), the models are read-only artifacts, and a
        graceful stop took ~3 s (the stubs unload, the server polls once a second) on every run."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=10)
        for region in Path("/dev/shm").glob(f"{self.shm_prefix}*"):
            with contextlib.suppress(OSError):
                region.unlink()

    def check_alive(self) -> None:
        if self.proc is None:
            raise InfraError("tritonserver is not running")
        if self.proc.poll() is not None:
            raise self._died("tritonserver died")

    def _died(self, what: str) -> SubprocessError:
        code = self.proc.returncode if self.proc is not None else None
        log = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return SubprocessError(what, self.cmd, code, log, "(merged into stdout)")

    # -- repository API ----------------------------------------------------------------------
    def load_model(self, name: str, timeout_s: float = 300.0) -> None:
        self.check_alive()
        status, body = self._post(f"/v2/repository/models/{name}/load", b"{}", timeout_s)
        if status != 200:
            self.check_alive()
            raise InfraError(
                f"tritonserver failed to load model {name!r}: HTTP {status}: {_short_error(body)}\n"
                f"full error:\n{body}\nserver log: {self.log_path}"
            )

    def unload_model(self, name: str) -> None:
        self.check_alive()
        status, body = self._post(f"/v2/repository/models/{name}/unload", b"{}", 60)
        if status != 200:
            raise InfraError(f"tritonserver failed to unload model {name!r}: HTTP {status}: {body}")

    def metrics(self) -> str:
        self.check_alive()
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=10) as r:
            return str(r.read().decode())

    def _get(self, path: str) -> int | None:
        try:
            with urllib.request.urlopen(f"http://{self.url}{path}", timeout=2) as r:
                return int(r.status)
        except urllib.error.HTTPError as exc:
            return int(exc.code)
        except OSError:
            return None

    def _post(self, path: str, body: bytes, timeout_s: float) -> tuple[int, str]:
        req = urllib.request.Request(f"http://{self.url}{path}", data=body, method="POST")
        req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=timeout_s) as r:
                return int(r.status), str(r.read().decode(errors="replace"))
        except urllib.error.HTTPError as exc:
            return int(exc.code), exc.read().decode(errors="replace")
        except OSError as exc:
            return 0, str(exc)


def _short_error(body: str) -> str:
    """The first line of Triton's error message (the rest is a Python traceback)."""
    import json

    try:
        text = str(json.loads(body).get("error", body))
    except (ValueError, AttributeError):
        text = body
    return text.strip().splitlines()[0][:300] if text.strip() else "(empty response)"
