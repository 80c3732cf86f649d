"""`ltx2 serve`: load the model once, then serve the Videos API, the queue and the web page.

Under torchrun with --parallel, rank 0 serves HTTP and keeps the store; each job is sent to every rank and runs
on all of them, shared as `ltx2 generate` shares a generation (ranks.py: how jobs and failures travel between
ranks). Rank 0 decides at each step whether the job goes on (a delete stops every rank at the same step).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import signal
import socket
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..cli import Launch, Loaded, Timings, UsageError, build_parser, check_generate_arguments, load
from .jobs import Cancelled, Render, Served, Worker, render_here
from .store import Store

if TYPE_CHECKING:
    from .ranks import Ranks

LOOPBACK = "127.0.0.1"
MAX_BODY = 64 * 2**20  # bytes of a request (an uploaded image is the big part)


def default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "ltx2" / "serve"


def server_flags(args: argparse.Namespace) -> list[str]:
    """The `ltx2 generate` options every job shares, from the serve command line."""
    flags = ["--offload", args.offload, "--upscale", repr(args.upscale)]
    for option, value in (("--dtype", args.dtype), ("--device", args.device), ("--image-crf", args.image_crf),
                          ("--stg", args.stg)):
        if value is not None:
            flags += [option, str(value)]
    for lora in args.lora:
        flags += ["--lora", f"{lora.path}:{lora.scale!r}"]
    if args.parallel not in (None, "auto"):
        flags += ["--parallel", args.parallel]
    return flags


def run_serve(args: argparse.Namespace, launch: Launch) -> None:
    """Check the serve options (as `ltx2 generate` checks its own), take the address, load the model, then serve
    (rank 0) or follow rank 0's jobs (the other ranks)."""
    missing = [name for name in ("fastapi", "uvicorn", "multipart") if importlib.util.find_spec(name) is None]
    if missing:
        raise UsageError(f"ltx2 serve needs {', '.join(missing)}: pip install 'ltx2[serve]'")
    api_key = args.api_key or os.environ.get("LTX2_API_KEY") or None
    host = args.host or LOOPBACK
    if launch.world > 1 and args.parallel is None:
        raise UsageError("ltx2 serve under torchrun: pass --parallel (every job then runs on all ranks)")
    if args.max_queue < 1:
        raise UsageError(f"--max-queue {args.max_queue}: must be at least 1")
    if not args.rank_timeout > 0:
        raise UsageError(f"--rank-timeout {args.rank_timeout:g}: must be positive")
    flags = server_flags(args)
    settings = build_parser().parse_args(["generate", "--model", args.model, "--prompt", "ltx2 serve", "--preset",
                                          args.preset, "--num-frames", "9", "--output", "serve.mp4", *flags])
    check_generate_arguments(settings, launch)
    listener = None
    if launch.rank == 0:  # the address is taken before minutes of loading, not after
        try:
            family = socket.AF_INET6 if ":" in host else socket.AF_INET
            listener = socket.create_server((host, args.port), family=family)
        except OSError as error:
            raise UsageError(f"--host {host} --port {args.port}: cannot listen there ({error.strerror})") from None
    if launch.world > 1:
        from ..cli import _join

        _join(settings, launch)
    loaded = load(settings, launch, Timings(verbose=launch.rank == 0))
    loaded.pipeline.set_progress_bar_config(disable=True)
    ranks = None
    if launch.world > 1:
        from .ranks import Ranks

        ranks = Ranks(launch, loaded.pipeline, settings.device, args.rank_timeout)
    served = Served(model=args.model, model_id=f"ltx-{settings.version}", version=settings.version,
                    preset=args.preset, dtype=settings.dtype, device=settings.device, flags=flags,
                    max_queue=args.max_queue, max_frames=args.max_frames, loaded=loaded)
    if launch.rank != 0:
        follow(loaded, launch, settings.device, ranks)
        return
    render = render_here(loaded) if ranks is None else render_shared(loaded, ranks)
    serve_http(args, served, launch, render, listener, api_key, ranks)


def serve_http(args: argparse.Namespace, served: Served, launch: Launch, render: Render, listener: socket.socket,
               api_key: str | None, ranks: Ranks | None) -> None:
    """Recover the store, start the worker, print the start-up line and serve until SIGINT or SIGTERM."""
    import uvicorn

    from .app import create_app

    data_dir = Path(args.data_dir) if args.data_dir else default_data_dir()
    data_dir.mkdir(parents=True, exist_ok=True)
    store = Store(data_dir)
    requeued = store.recover()
    worker = Worker(store, served, render, launch)
    if ranks is not None:
        worker.unavailable = lambda: ranks.lost
    app = create_app(store, worker, served, launch, api_key, MAX_BODY)
    host, port = listener.getsockname()[:2]
    thread = worker.start()
    if api_key:
        access = "bearer-token auth on (--api-key)"
    elif args.host is None:
        access = "no --api-key: listening on loopback only (give --host and --api-key to serve others)"
    else:
        access = f"no --api-key: anyone who can reach {host} can use it"
    url = f"http://{f'[{host}]' if ':' in host else host}:{port}/"
    print(f"ltx2 serve: {served.model_id} ({served.model}; preset {served.preset}, {served.dtype}, "
          f"{served.device}{f', {launch.world} ranks' if launch.world > 1 else ''}) at {url}; {access}; "
          f"data in {data_dir}{f'; {len(requeued)} interrupted job(s) queued again' if requeued else ''}",
          flush=True)
    # Uvicorn stops on SIGINT and SIGTERM, then raises them again for the handlers it found: a stop is not an error.
    for number in (signal.SIGINT, signal.SIGTERM):
        signal.signal(number, lambda *_: None)
    try:
        uvicorn.Server(uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=5)).run(sockets=[listener])
        print("ltx2 serve: stopped", flush=True)
    finally:
        worker.stopping = True
        worker.wake.set()
        thread.join(timeout=60)
        if ranks is not None:
            ranks.post(None)
            ranks.close()
        store.close()


def render_shared(loaded: Loaded, ranks: Ranks) -> Render:
    """Rank 0's render: the job goes to every rank (see ranks.py), and a failure on any rank fails it."""
    import torch.distributed as dist

    from ..cli import render

    def run(args: argparse.Namespace, callback: Callable[..., dict[str, Any]]) -> tuple[Any, Any]:
        if ranks.lost:
            raise RuntimeError(ranks.lost)
        ranks.post(vars(args))

        def step(*arguments: Any) -> dict[str, Any]:
            try:
                callback(*arguments)
                go_on = True
            except Cancelled:
                go_on = False
            dist.broadcast_object_list([go_on], src=0)
            if not go_on:
                raise Cancelled()
            return {}

        result = cancelled = failure = None
        try:
            result = render(loaded, args, Timings(verbose=False), step)
        except Cancelled as stop:
            cancelled = stop
        except Exception as error:
            failure = f"rank 0: {type(error).__name__}: {error}"
        ranks.report(failure)
        errors = ranks.settle(loaded.pipeline)
        if errors:
            raise RuntimeError(errors)
        if cancelled:
            raise cancelled
        return result

    return run


def follow(loaded: Loaded, launch: Launch, device: str, ranks: Ranks) -> None:
    """A rank other than 0: run every job rank 0 sends (on this rank's device), until it says stop."""
    import torch.distributed as dist

    from ..cli import render

    def step(*arguments: Any) -> dict[str, Any]:
        box = [None]
        dist.broadcast_object_list(box, src=0)
        if not box[0]:
            raise Cancelled()
        return {}

    while (job := ranks.next_job()) is not None:
        args = argparse.Namespace(**{**job, "device": device})
        failure = None
        try:
            render(loaded, args, Timings(verbose=False), step)
        except Cancelled:
            pass
        except Exception as error:
            failure = f"rank {launch.rank}: {type(error).__name__}: {error}"
            print(f"ltx2 serve: {failure}", file=sys.stderr, flush=True)
        ranks.report(failure)
        if not ranks.follow_verdict(loaded.pipeline):
            break
    ranks.close()
