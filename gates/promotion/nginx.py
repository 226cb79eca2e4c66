"""nginx (Debian's 1.22 package) as the local canary proxy before Triton, with mirror mode.

The same contract as the HAProxy proxy (gates/promotion/haproxy.py): one Triton serves the stable
and the canary model under two names, clients call a third, the *served* name; the proxy picks the
arm per user and rewrites the model name. What nginx adds is **mirroring** (its ``mirror`` module,
Flagger's and Seldon's shadow traffic): before the first weight every request goes to stable and a
copy goes to the canary, whose answer nginx reads and drops, so the canary is judged on live
traffic with no user at risk.

- **weights**: ``split_clients`` on the user (MurmurHash2 of the sticky header, else the client
  address) into the canary's percentage. nginx has no run-time API for it, so a weight change
  rewrites the config and reloads it (SIGHUP to the master: old workers finish their requests,
  new connections get the new split). ``split_clients`` keeps the canary's bucket at the start of
  the hash range, so raising the weight moves users stable → canary only, as consistent hashing;
- **read back**: ``GET /_gates/split`` answers ``<weight> <mirror>`` from the running workers'
  config, so the split read back is what nginx applies, not what gates wrote;
- **synthetic paired load** names its arm in ``X-Gates-Synthetic``, honoured only from 127.0.0.1;
- **per-request timing**: each arm has its own internal server in the same nginx, which logs every
  request it serves when that request ends, in the HAProxy log's shape: log time and time since
  accept, arm, status, time to Triton's response headers (it streams them with the first token)
  and to its last byte, bytes, user, synthetic label, ``mirror`` for a copy, and an id shared by a
  request and its copy. (The front server cannot log them: nginx logs a mirrored request only
  once its copy has ended, so a slow canary would hide stable's requests too.)

A copy is not a user's request: a failed copy is the canary's error, never the user's, and nginx
does not wait for the copy before answering. It does hold the client connection's *next* request
until the copy finishes (nginx's mirror semantics), so a canary far slower than stable slows a
keep-alive client's following requests while mirroring: the analysis exists to find that canary,
and a copy that has not ended a while after its window counts as the canary's error.

Started on 127.0.0.1 with free ports, stopped by PID (master and workers are one process group).
"""

from __future__ import annotations

import contextlib
import dataclasses
import http.client
import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

from gates.errors import CapabilityError, InfraError, SubprocessError
from gates.ledger import CanaryState
from gates.promotion.haproxy import ARM_HEADER, SYNTHETIC_HEADER, ProxyProcess, ProxySpec, die_with_parent, free_port

INSTALL_HINT = "install nginx (Debian: apt-get install nginx-light)"
SPLIT_PATH = "/_gates/split"
WORKERS = 1  # worker_processes: one event loop is plenty for a local canary's traffic


@dataclasses.dataclass(frozen=True)
class Ports:
    front: int  # what clients call
    stable: int  # each arm's own server: it logs its requests
    canary: int

    @classmethod
    def free(cls, front: int = 0) -> Ports:
        return cls(front or free_port(), free_port(), free_port())


def find_nginx() -> str:
    binary = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").is_file() else None)
    if binary is None:
        raise CapabilityError(f"nginx is not installed here; {INSTALL_HINT}")
    return binary


def _var(header: str) -> str:
    return "$http_" + header.lower().replace("-", "_")


def _whoami() -> str:
    import pwd

    return pwd.getpwuid(os.geteuid()).pw_name


def render_config(spec: ProxySpec, ports: Ports, workdir: Path, weight: int, mirror: bool) -> str:
    """The whole nginx.conf for ``weight`` percent to the canary, with or without the mirror."""
    if not 0 <= weight <= 100:
        raise ValueError("weight must be between 0 and 100")
    if mirror and weight != 0:
        raise ValueError("mirror mode copies stable's traffic: the canary's weight must be 0")
    user_var, synth = _var(spec.sticky_header), _var(SYNTHETIC_HEADER)
    hdr, served = spec.sticky_header, spec.served
    split = f"        {weight}% canary;\n" if weight else ""
    mirror_lines = "            mirror /_gates_mirror;\n            mirror_request_body on;\n" if mirror else ""
    # as root, nginx's workers would run as "nobody" and could not write gates' workdir
    run_as = f"user {_whoami()};\n" if os.geteuid() == 0 else ""
    arms = ""
    for arm, arm_port in (("stable", ports.stable), ("canary", ports.canary)):
        model = spec.stable if arm == "stable" else spec.canary
        arms += f"""    server {{
        listen 127.0.0.1:{arm_port};
        access_log {workdir / "access.log"} gates;
        location /v2/models/{served}/ {{
            rewrite ^/v2/models/{served}/(.*)$ /v2/models/{model}/$1 break;
            proxy_pass http://triton;
        }}
    }}
    upstream arm_{arm} {{ server 127.0.0.1:{arm_port}; }}
"""
    return f"""daemon off;
{run_as}master_process on;
worker_processes {WORKERS};
pid {workdir / "nginx.pid"};
error_log {workdir / "error.log"} warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {workdir / "tmp"};
    proxy_temp_path {workdir / "tmp"};
    proxy_http_version 1.1;
    # token streams are interactive: pass every chunk on as it comes
    proxy_buffering off;
    proxy_read_timeout 600s;
    proxy_next_upstream off;
    client_max_body_size 16m;
    # one line per request, written by the arm's own server when it ends (a request and its copy
    # are logged apart, each at its own end); "id" pairs a copy with the request it copies
    map $server_port $gates_arm {{ {ports.stable} stable; {ports.canary} canary; default "-"; }}
    log_format gates 'gates $msec $request_time $gates_arm $status $upstream_header_time $upstream_response_time '
                     '$bytes_sent "{user_var}" "{synth}" $http_x_gates_copy $http_x_gates_id';
    # no upstream keep-alive: a connection the upstream closes as nginx reuses it fails a POST
    # (never retried), and a localhost connect costs microseconds
    upstream triton {{ server {spec.triton}; }}
    map {user_var} $gates_user {{ "" $remote_addr; default {user_var}; }}
    split_clients "$gates_user" $gates_split {{
{split}        * stable;
    }}
    # a synthetic request names its arm; honoured only from this machine
    map "$remote_addr:{synth}" $gates_forced {{ "127.0.0.1:stable" stable; "127.0.0.1:canary" canary; default ""; }}
    map $gates_forced $gates_route {{ "" $gates_split; default $gates_forced; }}
    map $gates_forced $gates_synthetic {{ "" "-"; default $gates_forced; }}
    server {{
        listen 127.0.0.1:{ports.front};
        location = {SPLIT_PATH} {{
            allow 127.0.0.1;
            deny all;
            return 200 "{weight} {int(mirror)}\\n";
        }}
        location /v2/models/{served}/ {{
{mirror_lines}            proxy_set_header {hdr} $gates_user;
            proxy_set_header {SYNTHETIC_HEADER} $gates_synthetic;
            proxy_set_header X-Gates-Copy "-";
            proxy_set_header X-Gates-Id $request_id;
            add_header {ARM_HEADER} $gates_route always;
            proxy_pass http://arm_$gates_route;
        }}
        location = /_gates_mirror {{
            internal;
            if ($gates_route = canary) {{ return 204; }}  # the canary serves it: no copy
            proxy_set_header {hdr} $gates_user;
            proxy_set_header {SYNTHETIC_HEADER} $gates_synthetic;
            proxy_set_header X-Gates-Copy mirror;
            proxy_set_header X-Gates-Id $request_id;
            # nginx asks a copy for its headers only and would hang up on the canary after them
            # (Triton then cancels the generation): storing the body makes nginx read the whole
            # stream, so the copy is timed to its last token. One file, overwritten per copy.
            proxy_buffering on;
            proxy_store {workdir / "mirror.body"};
            proxy_pass http://arm_canary$request_uri;
        }}
        location / {{
            proxy_pass http://triton;
        }}
    }}
{arms}}}
"""


def read_split(url: str, timeout_s: float = 5.0) -> tuple[int, bool]:
    """(canary weight, mirror on) as the running nginx applies them."""
    host, port = url.rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=timeout_s)
    try:
        conn.request("GET", SPLIT_PATH)
        resp = conn.getresponse()
        text = resp.read().decode(errors="replace").strip()
    except OSError as exc:
        raise InfraError(f"nginx at {url} did not answer {SPLIT_PATH}: {exc}") from exc
    finally:
        conn.close()
    try:
        weight, mirror = text.split()
        return int(weight), mirror == "1"
    except ValueError as exc:
        raise InfraError(f"nginx at {url} answered {text!r} to {SPLIT_PATH} (HTTP {resp.status})") from exc


@dataclasses.dataclass(frozen=True)
class NginxEndpoint:
    """What the ledger records of a running nginx canary proxy (``CanaryState.endpoint``, JSON)."""

    url: str  # host:port clients call
    workdir: str  # its config, access log and PID file
    pid: int  # the master's
    served: str
    stable: str
    canary: str
    triton: str
    stable_port: int  # the arms' own servers (they log the requests)
    canary_port: int
    sticky_header: str = "X-User-Id"
    triton_grpc: str | None = None
    request_logs: dict[str, str] | None = None  # arm -> the served model's request log (model_log.py)

    @property
    def ports(self) -> Ports:
        return Ports(int(self.url.rsplit(":", 1)[1]), self.stable_port, self.canary_port)

    @property
    def log(self) -> str:
        return str(Path(self.workdir) / "access.log")

    @property
    def spec(self) -> ProxySpec:
        return ProxySpec(self.triton, self.served, self.stable, self.canary, self.sticky_header)

    def encode(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def of(cls, state: CanaryState) -> NginxEndpoint:
        try:
            return cls(**json.loads(state.endpoint or ""))
        except (TypeError, ValueError) as exc:
            raise InfraError(
                f"pipeline {state.pipeline!r}: unreadable nginx endpoint {state.endpoint!r}: {exc}"
            ) from exc

    def check_alive(self) -> None:
        read_split(self.url)

    def apply(self, weight: int, mirror: bool, timeout_s: float = 10.0) -> None:
        """Rewrite the config for ``weight``/``mirror``, check it, reload, and wait until the
        workers serve it (read back from nginx)."""
        work = Path(self.workdir)
        config = work / "nginx.conf"
        new = work / "nginx.conf.new"
        new.write_text(render_config(self.spec, self.ports, work, weight, mirror))
        check_config(new, work)
        os.replace(new, config)
        try:
            os.kill(self.pid, signal.SIGHUP)
        except OSError as exc:
            raise InfraError(f"nginx (pid {self.pid}) could not be told to reload: {exc}") from exc
        deadline = time.monotonic() + timeout_s
        while True:
            # an old worker accepts connections until the master tells it to shut down (and may
            # take one already queued as it does): the split is applied once only new workers
            # accept and they answer the new split several times in a row
            with contextlib.suppress(InfraError):
                if len(accepting_workers(self.pid)) == WORKERS and self._answers(weight, mirror, times=3):
                    return
            if time.monotonic() > deadline:
                raise InfraError(
                    f"nginx (pid {self.pid}) did not apply {weight}% (mirror {mirror}) in {timeout_s:.0f}s"
                )
            time.sleep(0.05)

    def _answers(self, weight: int, mirror: bool, times: int) -> bool:
        for _ in range(times):
            if read_split(self.url) != (weight, mirror):
                return False
            time.sleep(0.02)
        return True


def accepting_workers(master: int) -> list[int]:
    """The master's workers that still accept connections (an old one, told to stop, retitles
    itself "worker process is shutting down" and closes its listening socket)."""
    workers = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            title = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
        except (OSError, IndexError, ValueError):
            continue
        if ppid == master and title == "nginx: worker process":
            workers.append(int(entry.name))
    return workers


def check_config(path: Path, workdir: Path) -> None:
    cmd = [find_nginx(), "-t", "-q", "-p", str(workdir), "-c", str(path)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    if done.returncode != 0:
        raise SubprocessError("nginx refused gates' config", cmd, done.returncode, done.stdout, done.stderr)


class Nginx(ProxyProcess):
    """``with Nginx(spec, workdir, weight) as proxy:`` nginx on a free 127.0.0.1 port."""

    def __init__(self, spec: ProxySpec, workdir: Path, weight: int = 0, port: int = 0, mirror: bool = False):
        self.spec = spec
        self.workdir = workdir
        self.weight, self.mirror = weight, mirror
        self.ports = Ports.free(port)
        self.port = self.ports.front
        self.config_path = workdir / "nginx.conf"
        self.log_path = workdir / "access.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def endpoint(self, triton_grpc: str | None = None, request_logs: dict[str, str] | None = None) -> NginxEndpoint:
        s = self.spec
        return NginxEndpoint(
            self.url, str(self.workdir), self.pid or 0, s.served, s.stable, s.canary, s.triton, self.ports.stable,
            self.ports.canary, s.sticky_header, triton_grpc, request_logs,
        )  # fmt: skip

    def start(self, timeout_s: float = 10.0) -> None:
        binary = find_nginx()
        (self.workdir / "tmp").mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(render_config(self.spec, self.ports, self.workdir, self.weight, self.mirror))
        check_config(self.config_path, self.workdir)
        cmd = [binary, "-p", str(self.workdir), "-c", str(self.config_path)]
        with (self.workdir / "stderr.log").open("ab") as err:
            self.proc = subprocess.Popen(
                cmd, stdout=err, stderr=subprocess.STDOUT, start_new_session=True, preexec_fn=die_with_parent
            )
        try:
            self._wait_ready(timeout_s)
        except BaseException:
            self.stop()
            raise

    def _wait_ready(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc is None or self.proc.poll() is not None:
                text = (self.workdir / "error.log").read_text(errors="replace") if self.workdir.exists() else ""
                raise SubprocessError("nginx exited during startup", [str(self.config_path)], None, text, "")
            with contextlib.suppress(InfraError):
                if read_split(self.url, 1.0) == (self.weight, self.mirror):
                    return
            time.sleep(0.05)
        raise InfraError(f"nginx was not ready after {timeout_s:.0f}s; log: {self.workdir / 'error.log'}")

    def stop(self) -> None:
        """Stop master and workers by the process group (SIGQUIT, then SIGKILL); safe to call twice."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)

    def set_weight(self, weight: int, mirror: bool = False) -> None:
        self.endpoint().apply(weight, mirror)
        self.weight, self.mirror = weight, mirror

    def read_weight(self) -> int:
        return read_split(self.url)[0]


def nginx_available() -> str | None:
    """None when nginx can run here, else why not (tests skip with it)."""
    try:
        find_nginx()
    except CapabilityError as exc:
        return str(exc)
    return None


__all__ = ["Nginx", "NginxEndpoint", "Ports", "nginx_available", "read_split", "render_config"]
