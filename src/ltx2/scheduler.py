"""Flow-matching Euler sampling: the sigma schedules LTX-2 uses and the Euler step.

A flow-matching model predicts the velocity v = noise - x0 of x_sigma = sigma * noise + (1 - sigma) * x0, so
one Euler step from sigma to sigma_next is x + (sigma_next - sigma) * v. The schedule starts from
linspace(1, 1/N, N); the dev checkpoint shifts it towards high noise by an amount that grows with the
number of video tokens (mu) and then stretches it to end at `shift_terminal`; distilled checkpoints use
fixed sigmas as given.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .files import write_text_atomic
from .loading.config import Configurable, naming_config_errors, read_config
from .loading.hub import resolve_folder

# The scheduler configs of Lightricks/LTX-2 (dev) and of the distilled checkpoint, for single-file loading.
LTX2_SCHEDULER_CONFIG = dict(use_dynamic_shifting=True, base_shift=0.95, max_shift=2.05, base_image_seq_len=1024,
                             max_image_seq_len=4096, shift_terminal=0.1)
LTX2_DISTILLED_SCHEDULER_CONFIG = {**LTX2_SCHEDULER_CONFIG, "use_dynamic_shifting": False, "shift_terminal": None}


def calculate_shift(
    image_seq_len: int,
    base_seq_len: int = 256,
    max_seq_len: int = 4096,
    base_shift: float = 0.5,
    max_shift: float = 1.15,
) -> float:
    """mu for a sequence length: linear from base_shift at base_seq_len to max_shift at max_seq_len."""
    slope = (max_shift - base_shift) / (max_seq_len - base_seq_len)
    return image_seq_len * slope + (base_shift - slope * base_seq_len)


@dataclass
class SchedulerOutput:
    prev_sample: torch.Tensor


class FlowMatchEulerDiscreteScheduler(Configurable):
    """Euler sampler over a flow-matching sigma schedule, with diffusers' configuration keys and call API.

    The LTX-2 dev checkpoint's configuration is use_dynamic_shifting=True, base_shift=0.95, max_shift=2.05,
    base_image_seq_len=1024, max_image_seq_len=4096, shift_terminal=0.1; the distilled checkpoint turns
    dynamic shifting and the terminal stretch off and passes DISTILLED_SIGMA_VALUES.
    """

    config_name = "scheduler_config.json"
    neutral_config = {
        "invert_sigmas": False,
        "use_karras_sigmas": False,
        "use_exponential_sigmas": False,
        "use_beta_sigmas": False,
        "stochastic_sampling": False,
    }
    order = 1

    def __init__(
        self,
        num_train_timesteps: int = 1000,
        shift: float = 1.0,
        use_dynamic_shifting: bool = False,
        base_shift: float | None = 0.5,
        max_shift: float | None = 1.15,
        base_image_seq_len: int = 256,
        max_image_seq_len: int = 4096,
        shift_terminal: float | None = None,
        time_shift_type: str = "exponential",
    ):
        if time_shift_type not in ("exponential", "linear"):
            raise ValueError(f"time_shift_type must be 'exponential' or 'linear', got {time_shift_type!r}")
        if shift_terminal is not None and not 0 <= shift_terminal < 1:
            raise ValueError(f"shift_terminal must be in [0, 1), got {shift_terminal}")
        # The training schedule: sigma = t / T for t = T..1, statically shifted unless shifting is dynamic.
        training = np.linspace(1, num_train_timesteps, num_train_timesteps, dtype=np.float32)[::-1] / num_train_timesteps
        if not use_dynamic_shifting:
            training = shift * training / (1 + (shift - 1) * training)
        self.sigmas = torch.from_numpy(training.copy())
        self.timesteps = self.sigmas * num_train_timesteps
        self.sigma_min, self.sigma_max = float(self.sigmas[-1]), float(self.sigmas[0])
        self.num_inference_steps: int | None = None
        self._step_index: int | None = None
        self._begin_index: int | None = None

    @classmethod
    def from_pretrained(cls, path_or_repo_id: str | Path, subfolder: str | None = None, **overrides: Any):
        """Read scheduler_config.json from a folder (or a Hub repo) and build from it."""
        path = resolve_folder(path_or_repo_id, subfolder) / cls.config_name
        with naming_config_errors(str(path)):
            return cls.from_config(read_config(path), **overrides)

    def save_pretrained(self, save_directory: str | Path) -> None:
        folder = Path(save_directory)
        folder.mkdir(parents=True, exist_ok=True)
        write_text_atomic(folder / self.config_name, self.config_json())

    @property
    def step_index(self) -> int | None:
        return self._step_index

    @property
    def begin_index(self) -> int | None:
        return self._begin_index

    def set_begin_index(self, begin_index: int = 0) -> None:
        self._begin_index = begin_index

    def set_timesteps(
        self,
        num_inference_steps: int | None = None,
        device: torch.device | str | None = None,
        sigmas: list[float] | np.ndarray | None = None,
        mu: float | None = None,
        timesteps: list[float] | np.ndarray | None = None,
    ) -> None:
        """Build `sigmas` (N + 1 values, ending in 0) and `timesteps` (N values, sigma * num_train_timesteps).

        Without `sigmas` or `timesteps`, N evenly spaced sigmas over the training range. The arithmetic follows
        diffusers' numpy dtypes (float32 for given sigmas), so both produce the same schedule bit for bit.
        """
        config = self.config
        steps = len(sigmas) if sigmas is not None else len(timesteps) if timesteps is not None else num_inference_steps
        if steps is None or steps < 1:
            raise ValueError(f"num_inference_steps must be >= 1 (or sigmas/timesteps non-empty), got {steps}")
        if num_inference_steps is not None and num_inference_steps != steps:
            raise ValueError(f"num_inference_steps={num_inference_steps} but {steps} sigmas/timesteps were given")
        if config.use_dynamic_shifting and mu is None:
            raise ValueError("mu is required when use_dynamic_shifting is on")
        given_timesteps = None if timesteps is None else np.asarray(timesteps, dtype=np.float32)
        if sigmas is not None:
            values = np.asarray(sigmas, dtype=np.float32)
            if values.ndim != 1 or np.any(values < 0) or np.any(values > 1) or np.any(np.diff(values) > 0):
                raise ValueError(f"sigmas must be non-increasing values in [0, 1], got {list(sigmas)}")
        elif given_timesteps is not None:
            values = given_timesteps / config.num_train_timesteps
        else:
            total = config.num_train_timesteps
            values = np.linspace(self.sigma_max * total, self.sigma_min * total, steps) / total
        values = self._shifted(values, mu)
        sigmas_tensor = torch.from_numpy(np.ascontiguousarray(values)).to(device=device, dtype=torch.float32)
        if given_timesteps is not None:
            self.timesteps = torch.from_numpy(given_timesteps).to(device=device)
        else:
            self.timesteps = sigmas_tensor * config.num_train_timesteps
        self.sigmas = torch.cat([sigmas_tensor, torch.zeros(1, device=sigmas_tensor.device)])
        self.num_inference_steps = steps
        self._step_index: int | None = None
        self._begin_index = None

    def _shifted(self, sigmas: np.ndarray, mu: float | None) -> np.ndarray:
        """Apply the configured shift (dynamic from mu, or the static `shift`) and the terminal stretch."""
        config = self.config
        if config.use_dynamic_shifting:
            # sigma' = e^mu / (e^mu + (1/sigma - 1)); linear: mu / (mu + (1/sigma - 1)).
            weight = math.exp(mu) if config.time_shift_type == "exponential" else mu
            sigmas = weight / (weight + (1 / sigmas - 1))
        else:
            sigmas = config.shift * sigmas / (1 + (config.shift - 1) * sigmas)
        if config.shift_terminal and sigmas[-1] != 1:
            # Rescale 1 - sigma so that the last sigma lands exactly on shift_terminal. (A schedule that never
            # leaves sigma = 1, e.g. a single step, has nothing to stretch; diffusers returns NaN there.)
            distance = 1 - sigmas
            sigmas = 1 - distance / (distance[-1] / (1 - config.shift_terminal))
        return sigmas

    def step(
        self,
        model_output: torch.Tensor,
        timestep: float | torch.Tensor,
        sample: torch.Tensor,
        return_dict: bool = True,
        **_: Any,
    ) -> tuple[torch.Tensor] | SchedulerOutput:
        """One Euler step from the current sigma to the next; the sample is updated in float32."""
        if self._step_index is None:
            self._step_index = self._begin_index if self._begin_index is not None else self.index_for_timestep(timestep)
        if self._step_index >= len(self.timesteps):
            raise ValueError(f"step called {self._step_index + 1} times on a {len(self.timesteps)}-step schedule")
        sigma, sigma_next = self.sigmas[self._step_index], self.sigmas[self._step_index + 1]
        prev_sample = (sample.to(torch.float32) + (sigma_next - sigma) * model_output).to(model_output.dtype)
        self._step_index += 1
        return SchedulerOutput(prev_sample) if return_dict else (prev_sample,)

    def index_for_timestep(self, timestep: float | torch.Tensor) -> int:
        matches = (self.timesteps == torch.as_tensor(timestep, device=self.timesteps.device)).nonzero()
        if len(matches) == 0:
            raise ValueError(f"timestep {float(timestep)} is not in this schedule")
        # A repeated timestep (a schedule that restarts) is taken at its second occurrence, as diffusers does.
        return int(matches[1 if len(matches) > 1 else 0])

    def __len__(self) -> int:
        return self.config.num_train_timesteps

    def __repr__(self) -> str:
        return f"{type(self).__name__}({json.dumps(dict(self.config))})"
