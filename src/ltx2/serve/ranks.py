"""The ranks of a `--parallel` server: how rank 0 hands them jobs, and how a failure on one rank fails the job on
all of them, not the server.

Jobs and their outcomes go through the key-value store the ranks met at, not through collectives (which would wait
for a rank that failed): rank 0 posts job n's arguments (None: stop serving); every rank runs it and posts its
outcome; rank 0 collects the outcomes and posts the verdict.
- A rank that raises leaves the others waiting in the job's next collective until the process group's timeout
  (--rank-timeout) ends the wait (a killed rank's connections close, which ends it at once). Their errors come
  after the cause's, which was posted first.
- After a failed job every rank forms a new process group (the old one may hold half-done collectives) and shares
  the pipeline over it again; the next job runs as if nothing happened.
- A rank that has not posted its outcome twice the timeout after rank 0 did is lost: the job fails with that
  reason, the other ranks stop, and every later job fails the same way.
"""

from __future__ import annotations

import pickle
import time
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist

from ..cli import Launch
from ..pipelines.parallel import unparallelize_pipeline

POLL = 0.05  # seconds between two looks at the store for a key


class Ranks:
    """This rank's side of the protocol above; made on every rank once `pipe` is loaded and shared. Jobs run on a
    process group of its own, whose collectives wait `timeout` seconds at most (loading ran without that limit)."""

    def __init__(self, launch: Launch, pipe: Any, device: str, timeout: float):
        self.launch, self.timeout = launch, timeout
        self.device_id = torch.device(device) if dist.get_backend() == "nccl" else None
        # The first group's store outlives the groups formed here (without torchrun, rank 0's first group serves it).
        self.store = dist.distributed_c10d._get_default_store()
        self.job = 0
        self.lost: str | None = None  # rank 0: why no job can run any more
        self.reform(pipe)

    def post(self, arguments: dict[str, Any] | None) -> None:
        """Rank 0: hand the next job's arguments to the other ranks (None: stop serving)."""
        self.job += 1
        self.store.set(f"job/{self.job}", pickle.dumps(arguments))

    def next_job(self) -> dict[str, Any] | None:
        """The other ranks: the next job's arguments, once rank 0 has posted them (None: stop serving)."""
        self.job += 1
        return pickle.loads(self._wait(f"job/{self.job}"))

    def report(self, error: str | None) -> None:
        """Post this rank's outcome of the job: its error, or None (done, or stopped with every rank at a step)."""
        if error:
            number = self.store.add(f"job/{self.job}/failures", 1)
            self.store.set(f"job/{self.job}/failure/{number}", error)
        self.store.set(f"job/{self.job}/done/{self.launch.rank}", "")

    def settle(self, pipe: Any) -> str | None:
        """Rank 0, after its report: wait for the other ranks' outcomes and post the verdict; the job's errors, the
        cause first (None: it succeeded)."""
        deadline = time.monotonic() + 2 * self.timeout
        while missing := [rank for rank in range(1, self.launch.world)
                          if not self.store.check([f"job/{self.job}/done/{rank}"])]:
            if time.monotonic() > deadline:
                self.lost = (f"rank {', '.join(map(str, missing))} did not finish a job within {2 * self.timeout:g} s "
                             "of rank 0 (stopped or killed?): restart the server")
                break
            time.sleep(POLL)
        count = self.store.add(f"job/{self.job}/failures", 0)
        errors = [self.store.get(f"job/{self.job}/failure/{number}").decode() for number in range(1, count + 1)]
        verdict = "stop" if self.lost else "re-form" if errors else "go on"
        self.store.set(f"job/{self.job}/verdict", verdict)
        if verdict == "re-form":
            self.reform(pipe)
        return "; ".join(([self.lost] if self.lost else []) + errors) or None

    def follow_verdict(self, pipe: Any) -> bool:
        """The other ranks, after their report: wait for rank 0's verdict and follow it; False: stop serving."""
        verdict = self._wait(f"job/{self.job}/verdict").decode()
        if verdict == "re-form":
            self.reform(pipe)
        return verdict != "stop"

    def reform(self, pipe: Any) -> None:
        """Every rank, at start and after a failed job: a new process group, and the pipeline shared over it as
        before."""
        # Ranks come here at different times (loading, or a rank's wait cut short by the timeout): meet first, so
        # that forming the group is not cut short by that timeout.
        ready = f"ready/{self.job}"
        self.store.add(ready, 1)
        while self.store.add(ready, 0) < self.launch.world:
            time.sleep(POLL)
        degrees = unparallelize_pipeline(pipe)
        backend = dist.get_backend()
        dist.destroy_process_group()
        dist.init_process_group(backend, store=dist.PrefixStore(f"group/{self.job}", self.store),
                                rank=self.launch.rank, world_size=self.launch.world,
                                timeout=timedelta(seconds=self.timeout), device_id=self.device_id)
        pipe.enable_parallelism(*degrees)

    def close(self) -> None:
        """Leave the process group: the server stops."""
        dist.destroy_process_group()

    def _wait(self, key: str) -> bytes:
        """The value of `key`, once some rank has set it (as long as it takes: the store's own wait gives up)."""
        while not self.store.check([key]):
            time.sleep(POLL)
        return self.store.get(key)
