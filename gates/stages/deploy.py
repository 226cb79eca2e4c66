"""Deploy: baseline and candidate as two models on a real Triton server."""

from __future__ import annotations

import json

from gates.context import RunContext
from gates.engines import ENGINES
from gates.errors import InfraError
from gates.record import BuildResult, DeployResult
from gates.triton.client import TextModelClient
from gates.triton.repository import serving, set_parameters
from gates.triton.warm import load_concurrently, local_server, remember


class DeployStage:
    name = "deploy"

    def run(self, ctx: RunContext) -> None:
        build = ctx.need(BuildResult)
        serve = ctx.config.serve
        models = {"baseline": serve.baseline_model, "candidate": serve.candidate_model}
        builds = {"baseline": build.baseline, "candidate": build.candidate}
        warm = ctx.warm
        started = "local"
        if serve.triton == "local" and warm is not None and warm.matches(builds):
            server = warm.ready()  # started while the earlier stages ran; its failure is ours
            (ctx.run_dir / "triton.json").write_text(json.dumps({"pid": server.pid, "url": server.url}))
            url, grpc_url = server.url, server.grpc_url
            started = "warm-started local"
        elif serve.triton == "local":
            if warm is not None:  # it loaded other builds than these: never serve those
                ctx.progress("the warm-started server loaded other builds; starting another")
                warm.close()
            workdir = ctx.run_dir / "triton"
            repo = workdir / "models"
            threads = ctx.config.engine.threads_per_model()
            engine = ENGINES[ctx.config.engine.backend]  # the engine that built them serves them
            for arm in ("baseline", "candidate"):
                set_parameters(engine.write_serving(repo, models[arm], builds[arm], threads), serving(serve))
            server = ctx.resources.enter_context(local_server(repo, workdir, serve.startup_timeout_s, builds))
            (ctx.run_dir / "triton.json").write_text(json.dumps({"pid": server.pid, "url": server.url}))
            load_concurrently(server, tuple(models.values()))
            url, grpc_url = server.url, server.grpc_url
        else:
            server = None
            url = serve.triton.split("://", 1)[1].rstrip("/")
            grpc_url = serve.triton_grpc or f"{url.rsplit(':', 1)[0]}:8001"
        client = TextModelClient(grpc_url)
        try:
            for arm, name in models.items():  # one request each: a model that cannot answer is not deployed
                try:
                    client.generate(name, "Hello", 2)
                except InfraError as exc:
                    raise InfraError(f"{arm} model {name!r} does not answer after deployment: {exc}") from exc
        finally:
            client.close()
        if server is not None:
            remember(ctx.store, ctx.config, builds)  # the next run with this config starts warm
        where = f"{started} tritonserver pid {server.pid} at {url}" if server else f"existing Triton at {url}"
        ctx.put(DeployResult(url, grpc_url, models, server, where))
