"""`lasso serve --ray`: the HTTP app of `lasso serve` as a Ray Serve deployment.

    run(settings, host="0.0.0.0", port=7860, replicas=4)     # returns once the app answers

Each replica is the same FastAPI app (create_app) with its own editor, on its own GPU (a fraction
for the fast preset), serving one edit at a time behind its own bounded queue: the same routes,
limits and errors as one `lasso serve`. Ray Serve's proxy spreads requests across replicas and
autoscales between `min_replicas` and `replicas` on the requests in flight per replica (its
queue length). Sessions and background jobs live in `data_dir`, which every replica must reach
(one machine: any folder; a cluster: a shared file system mounted at the same path on every
node), so a session started on one replica is continued on any other, and a job polled anywhere.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from ..core.errors import InvalidInputError
from .ray_batch import connect, gpus_each

if TYPE_CHECKING:
    from fastapi import FastAPI
    from ray.serve import Application

    from ..server.settings import ServerSettings

APP_NAME = "lasso"
TARGET_ONGOING = 2  # requests in flight per replica (one painting, one waiting) before another is started


def replica_shape(
    preset: str, gpus: float | None, cpus: float, replicas: int | None, min_replicas: int | None
) -> tuple[float, float, int, int]:
    """(GPUs, CPUs per replica, min replicas, max replicas): by default one replica per GPU of the
    cluster (two per GPU for the fast preset), or one replica on a cluster without GPUs."""
    gpus, have = gpus_each(preset, gpus, "replica")
    if replicas is None:
        replicas = max(1, int(have // gpus)) if gpus else 1
    low = 1 if min_replicas is None else min_replicas
    if not 1 <= low <= replicas:
        raise InvalidInputError(f"--min-replicas must be between 1 and --replicas ({replicas}), got {low}")
    return gpus, cpus, low, replicas


def build(settings: ServerSettings, gpus: float, cpus: float, low: int, high: int) -> Application:
    """The bound deployment: `high` replicas at most, `low` at least, each a whole app."""
    from ray import serve

    from ..server.app import create_app

    def app() -> FastAPI:  # run by each replica as it starts (Ray Serve's ASGI builder function, Ray >= 2.49)
        replica = serve.get_replica_context().replica_id.unique_id
        return create_app(dataclasses.replace(settings, shared=True, instance=replica))

    @serve.ingress(app)
    class Lasso:
        pass

    scaling = (
        {"num_replicas": high}
        if low == high
        else {
            "autoscaling_config": {
                "min_replicas": low,
                "max_replicas": high,
                "target_ongoing_requests": TARGET_ONGOING,
                "upscale_delay_s": 10,
                "downscale_delay_s": 300,
            }
        }
    )
    deployment = serve.deployment(
        Lasso,
        name="Lasso",
        ray_actor_options={"num_gpus": gpus, "num_cpus": cpus},
        # Past the app's own queue, a replica answers 429 at once, as one `lasso serve` does; a few
        # more places let /healthz, session reads and job polls through while it paints.
        max_ongoing_requests=settings.queue + 1 + 4,
        graceful_shutdown_timeout_s=settings.timeout_s,
        **scaling,
    )
    return deployment.bind()  # type: ignore[attr-defined]  # serve.deployment's stub types the decorator form


def run(
    settings: ServerSettings,
    host: str,
    port: int,
    address: str | None = None,
    replicas: int | None = None,
    min_replicas: int | None = None,
    gpus: float | None = None,
    cpus: float = 1.0,
) -> tuple[int, int]:
    """Deploy on the cluster at `address` and return (min, max) replicas once every replica answers."""
    connect(address)
    from ray import serve

    gpus, cpus, low, high = replica_shape(settings.preset, gpus, cpus, replicas, min_replicas)
    serve.start(proxy_location="EveryNode", http_options={"host": host, "port": port})  # a proxy on each replica's node
    serve.run(build(settings, gpus, cpus, low, high), name=APP_NAME, route_prefix="/", blocking=False)
    return low, high


def stop() -> None:
    """Remove the app: each replica finishes its running edit (refusing the waiting ones) and exits."""
    from ray import serve

    serve.delete(APP_NAME)
    if not serve.status().applications:  # Serve itself goes too, unless it serves other apps of the cluster
        serve.shutdown()
