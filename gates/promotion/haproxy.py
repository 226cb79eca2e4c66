"""HAProxy (Debian's 2.6 package) as the local canary proxy before Triton: process, config, admin socket.

The one Triton serves the stable and the canary model under two names; clients call a third, the
*served* name. HAProxy's backend ``split`` holds two servers, ``stable`` and ``canary``, which are
two internal listeners of the same process that rewrite the model name in the path and forward to
Triton (HAProxy cannot rewrite a path per server). So:

- **weights** are server weights of ``split``, set at run time over the admin socket
  (``set weight split/canary 20``) and read back from it (``get weight``): the split is what the
  proxy applies, not what gates believes it set;
- **sticky assignment**: ``balance hdr(<sticky header>)`` with ``hash-type consistent``; a request
  without the header gets the client address in it first, so a user (or else a client address)
  stays on one arm while the weight is unchanged, and consistent hashing moves only the users the
  weight change must move (raising the canary's weight moves users stable → canary only);
- **synthetic paired load** names its arm in ``X-Gates-Synthetic`` (``use-server``), honoured only
  from 127.0.0.1, and is logged as synthetic;
- **per-request timing** is HAProxy's own log, one line per request on its stdout (``-db``), which
  gates writes to a file: accept time, arm, status, ``%Tr`` (server response headers: Triton's
  streaming endpoint sends them with the first token, so this is the time to first token as the
  proxy sees it), ``%Ta`` (until the last byte of the body: end-to-end latency), bytes, user,
  synthetic label.

The process is started on 127.0.0.1 with free ports and stopped by PID on every exit path
(``stop``; the kernel signals it when gates dies, as Triton's).
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Self

from gates.errors import CapabilityError, InfraError, SubprocessError
from gates.ledger import CanaryState

ARMS = ("stable", "canary")
SYNTHETIC_HEADER = "X-Gates-Synthetic"
ARM_HEADER = "X-Gates-Arm"  # set on every response: the arm that served it
INSTALL_HINT = "install HAProxy (Debian: apt-get install haproxy)"
# one log line per request: gates <accept epoch.ms> <arm> <status> <Tr ms> <Ta ms> <bytes> <user> <synthetic>
LOG_FORMAT = "gates %Ts.%ms %s %ST %Tr %Ta %B %{+Q}[capture.req.hdr(0)] %{+Q}[capture.req.hdr(1)]"


def find_haproxy() -> str:
    binary = shutil.which("haproxy") or ("/usr/sbin/haproxy" if Path("/usr/sbin/haproxy").is_file() else None)
    if binary is None:
        raise CapabilityError(f"haproxy is not installed here; {INSTALL_HINT}")
    return binary


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclasses.dataclass(frozen=True)
class ProxySpec:
    """What the proxy routes: Triton's HTTP endpoint and the three model names."""

    triton: str  # host:port of Triton's HTTP endpoint
    served: str  # the name clients call
    stable: str
    canary: str
    sticky_header: str = "X-User-Id"


def render_config(spec: ProxySpec, port: int, arm_ports: dict[str, int], admin: Path) -> str:
    hdr = spec.sticky_header
    prefix = f"^/v2/models/{spec.served}/"
    lines = [
        "global",
        f"    stats socket {admin} mode 600 level admin",
        "    log stdout format raw local0",
        "    maxconn 4096",
        "defaults",
        "    mode http",
        "    log global",
        # token streams are interactive: without it HAProxy held a streamed response's headers
        # until more body came (200-300 ms on a 3-token stream), and %Tr was no time to first token
        "    option http-no-delay",
        "    timeout connect 5s",
        "    timeout client 600s",
        "    timeout server 600s",
        "frontend canary",
        f"    bind 127.0.0.1:{port}",
        f'    log-format "{LOG_FORMAT}"',
        # the client address stands in for a user who sends no id (before the capture: it is logged)
        f"    http-request set-header {hdr} %[src] unless {{ req.hdr({hdr}) -m found }}",
        f"    http-request del-header {SYNTHETIC_HEADER} unless {{ src 127.0.0.1 }}",
        f"    capture request header {hdr} len 128",
        f"    capture request header {SYNTHETIC_HEADER} len 16",
        f"    http-response set-header {ARM_HEADER} %[srv_name]",
        "    default_backend split",
        "backend split",
        f"    balance hdr({hdr})",
        "    hash-type consistent",
        *(f"    use-server {arm} if {{ req.hdr({SYNTHETIC_HEADER}) -m str {arm} }}" for arm in ARMS),
        # weights are set over the admin socket right after start; 100 here sizes the hash ring
        *(f"    server {arm} 127.0.0.1:{arm_ports[arm]} weight 100" for arm in ARMS),
    ]
    for arm in ARMS:
        model = spec.stable if arm == "stable" else spec.canary
        lines += [
            f"listen arm_{arm}",
            f"    bind 127.0.0.1:{arm_ports[arm]}",
            "    no log",
            f"    http-request set-path %[path,regsub({prefix},/v2/models/{model}/)]",
            f"    server triton {spec.triton}",
        ]
    return "\n".join(lines) + "\n"


def admin_command(admin: Path | str, command: str, timeout_s: float = 5.0) -> str:
    """One command on HAProxy's admin socket; its answer (HAProxy closes the socket after it)."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(timeout_s)
            s.connect(str(admin))
            s.sendall(command.encode() + b"\n")
            chunks = []
            while chunk := s.recv(65536):
                chunks.append(chunk)
    except OSError as exc:
        raise InfraError(f"HAProxy's admin socket {admin} did not answer {command!r}: {exc}") from exc
    return b"".join(chunks).decode(errors="replace").strip()


def set_split(admin: Path | str, weight: int) -> None:
    """``weight`` percent of new users to the canary: server weights canary=w, stable=100−w."""
    if not 0 <= weight <= 100:
        raise ValueError("weight must be between 0 and 100")
    for arm, w in (("canary", weight), ("stable", 100 - weight)):
        answer = admin_command(admin, f"set weight split/{arm} {w}")
        if answer:  # HAProxy answers nothing when it applied the weight
            raise InfraError(f"HAProxy refused 'set weight split/{arm} {w}': {answer}")


def read_split(admin: Path | str) -> int:
    """The canary's share of the weight as HAProxy applies it (percent, rounded)."""
    weights = {}
    for arm in ARMS:
        answer = admin_command(admin, f"get weight split/{arm}")
        try:  # "20 (initial 100)"
            weights[arm] = int(answer.split()[0])
        except (IndexError, ValueError) as exc:
            raise InfraError(f"HAProxy answered {answer!r} to 'get weight split/{arm}'") from exc
    total = weights["stable"] + weights["canary"]
    if total == 0:
        raise InfraError("HAProxy has weight 0 on both arms: it serves no request")
    return round(100 * weights["canary"] / total)


def die_with_parent() -> None:
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class ProxyProcess:
    """A proxy process on 127.0.0.1 (HAProxy here, nginx in nginx.py): ``with`` starts it and stops
    it by PID on every way out."""

    port: int
    proc: subprocess.Popen[bytes] | None

    def start(self, timeout_s: float = 10.0) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    @property
    def url(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()


def admin_socket_path(workdir: Path) -> Path:
    """The admin socket beside the config, unless that path is too long for a Unix socket (108
    bytes with its NUL; a runner's checkout can be that deep): then a short one in the temp
    directory, named by the workdir so each proxy keeps its own. The ledger records the path."""
    path = workdir / "haproxy.sock"
    if len(os.fsencode(path)) < 100:
        return path
    digest = hashlib.sha256(os.fsencode(workdir.resolve())).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"gates-haproxy-{digest}.sock"


class HAProxy(ProxyProcess):
    """``with HAProxy(spec, workdir, weight) as proxy:`` the proxy on free 127.0.0.1 ports."""

    def __init__(self, spec: ProxySpec, workdir: Path, weight: int = 0, port: int = 0):
        self.spec = spec
        self.workdir = workdir
        self.initial_weight = weight
        self.port = port or free_port()
        self.arm_ports = {arm: free_port() for arm in ARMS}
        self.admin = admin_socket_path(workdir)
        self.log_path = workdir / "haproxy.log"
        self.config_path = workdir / "haproxy.cfg"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout_s: float = 10.0) -> None:
        binary = find_haproxy()
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(render_config(self.spec, self.port, self.arm_ports, self.admin))
        cmd = [binary, "-c", "-f", str(self.config_path)]
        check = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
        if check.returncode != 0:
            raise SubprocessError("HAProxy refused gates' config", cmd, check.returncode, check.stdout, check.stderr)
        with contextlib.suppress(FileNotFoundError):
            self.admin.unlink()
        cmd = [binary, "-db", "-f", str(self.config_path)]
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, preexec_fn=die_with_parent
            )
        try:
            self._wait_ready(timeout_s)
            set_split(self.admin, self.initial_weight)
        except BaseException:
            self.stop()
            raise

    def _wait_ready(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc is None or self.proc.poll() is not None:
                text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
                raise SubprocessError("HAProxy exited during startup", [str(self.config_path)], None, text, "")
            if self.admin.exists():
                with contextlib.suppress(InfraError):
                    if "Name:" in admin_command(self.admin, "show info", 1.0):
                        return
            time.sleep(0.05)
        raise InfraError(f"HAProxy was not ready after {timeout_s:.0f}s; log: {self.log_path}")

    def stop(self) -> None:
        """Stop by PID (SIGTERM, then SIGKILL); safe to call twice."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            proc.wait(timeout=5)
        with contextlib.suppress(FileNotFoundError):
            self.admin.unlink()

    def set_weight(self, weight: int) -> None:
        set_split(self.admin, weight)

    def read_weight(self) -> int:
        return read_split(self.admin)


@dataclasses.dataclass(frozen=True)
class HAProxyEndpoint:
    url: str  # host:port clients call
    admin: str  # the admin socket's path
    log: str  # its per-request log
    pid: int
    served: str  # the model name clients call
    triton_grpc: str | None = None  # for drift (both models on one Triton)
    request_logs: dict[str, str] | None = None  # arm -> the served model's request log (model_log.py)

    def encode(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def of(cls, state: CanaryState) -> HAProxyEndpoint:
        try:
            return cls(**json.loads(state.endpoint or ""))
        except (TypeError, ValueError) as exc:
            raise InfraError(
                f"pipeline {state.pipeline!r}: unreadable HAProxy endpoint {state.endpoint!r}: {exc}"
            ) from exc

    def check_alive(self) -> None:
        """HAProxy answers on its admin socket (InfraError otherwise: no data, never a PASS)."""
        if "Name: HAProxy" not in admin_command(self.admin, "show info"):
            raise InfraError(f"the process on HAProxy's admin socket {self.admin} is not HAProxy")


def haproxy_available() -> str | None:
    """None when HAProxy can run here, else why not (tests skip with it)."""
    try:
        find_haproxy()
    except CapabilityError as exc:
        return str(exc)
    return None


__all__ = ["ARMS", "ARM_HEADER", "SYNTHETIC_HEADER", "HAProxy", "HAProxyEndpoint", "ProxySpec", "admin_command"]
