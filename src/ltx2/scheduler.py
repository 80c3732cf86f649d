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
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .files import write_text_atomic
from .loading.config import Configurable, naming_config_errors, read_config, require_neutral
from .loading.hub import resolve_folder
from .models.layers import randn

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


@dataclass(frozen=True)
class Schedule:
    """One sampling run's schedule: `timesteps` (N) the model sees and `sigmas` (N + 1, ending in 0)."""

    timesteps: torch.Tensor
    sigmas: torch.Tensor

    def step(self, index: int, velocity: torch.Tensor, sample: torch.Tensor) -> torch.Tensor:
        """The Euler step `index`, from sigma[index] to sigma[index + 1]; the sample is updated in float32."""
        sigma, sigma_next = self.sigmas[index], self.sigmas[index + 1]
        return (sample.to(torch.float32) + (sigma_next - sigma) * velocity).to(velocity.dtype)


class _SigmaScheduler(Configurable):
    """What both samplers share: config files, the step counter and the timestep lookup."""

    config_name = "scheduler_config.json"
    order = 1

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



class FlowMatchEulerDiscreteScheduler(_SigmaScheduler):
    """Euler sampler over a flow-matching sigma schedule, with diffusers' configuration keys and call API.

    The LTX-2 dev checkpoint's configuration is use_dynamic_shifting=True, base_shift=0.95, max_shift=2.05,
    base_image_seq_len=1024, max_image_seq_len=4096, shift_terminal=0.1; the distilled checkpoint turns
    dynamic shifting and the terminal stretch off and passes DISTILLED_SIGMA_VALUES.
    """

    def __init__(
        self,
        num_train_timesteps: int = 1000,
        shift: float = 1.0,
        use_dynamic_shifting: bool = False,
        base_shift: float | None = 0.5,
        max_shift: float | None = 1.15,
        base_image_seq_len: int = 256,
        max_image_seq_len: int = 4096,
        invert_sigmas: bool = False,
        shift_terminal: float | None = None,
        use_karras_sigmas: bool = False,
        use_exponential_sigmas: bool = False,
        use_beta_sigmas: bool = False,
        time_shift_type: str = "exponential",
        stochastic_sampling: bool = False,
    ):
        require_neutral(
            type(self).__name__, invert_sigmas=(invert_sigmas, False), use_karras_sigmas=(use_karras_sigmas, False),
            use_exponential_sigmas=(use_exponential_sigmas, False), use_beta_sigmas=(use_beta_sigmas, False),
            stochastic_sampling=(stochastic_sampling, False),
        )
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

    def set_timesteps(self, *args: Any, **kwargs: Any) -> None:
        """Build `sigmas` (N + 1 values, ending in 0) and `timesteps` (N values) from `schedule`'s arguments
        (num_inference_steps, device, sigmas, mu, timesteps) and keep them for `step`: diffusers' stateful API; the
        pipelines call `schedule` and keep the result in a local."""
        made = self.schedule(*args, **kwargs)
        self.timesteps, self.sigmas = made.timesteps, made.sigmas
        self.num_inference_steps = len(made.timesteps)
        self._step_index: int | None = None
        self._begin_index = None

    def schedule(
        self,
        num_inference_steps: int | None = None,
        device: torch.device | str | None = None,
        sigmas: list[float] | np.ndarray | None = None,
        mu: float | None = None,
        timesteps: list[float] | np.ndarray | None = None,
        **overrides: Any,
    ) -> Schedule:
        """The schedule for these arguments, without changing the scheduler; `overrides` replace config values for
        this schedule only (e.g. use_dynamic_shifting=False, shift_terminal=None to take distilled sigmas as given).

        Without `sigmas` or `timesteps`, N evenly spaced sigmas over the training range. The arithmetic follows
        diffusers' numpy dtypes (float32 for given sigmas), so both produce the same schedule bit for bit.
        """
        config = {**self.config, **overrides}
        steps = len(sigmas) if sigmas is not None else len(timesteps) if timesteps is not None else num_inference_steps
        if steps is None or steps < 1:
            raise ValueError(f"num_inference_steps must be >= 1 (or sigmas/timesteps non-empty), got {steps}")
        if num_inference_steps is not None and num_inference_steps != steps:
            raise ValueError(f"num_inference_steps={num_inference_steps} but {steps} sigmas/timesteps were given")
        if config["use_dynamic_shifting"] and mu is None:
            raise ValueError("mu is required when use_dynamic_shifting is on")
        given_timesteps = None if timesteps is None else np.asarray(timesteps, dtype=np.float32)
        if sigmas is not None:
            values = np.asarray(sigmas, dtype=np.float32)
            if values.ndim != 1 or np.any(values < 0) or np.any(values > 1) or np.any(np.diff(values) > 0):
                raise ValueError(f"sigmas must be non-increasing values in [0, 1], got {list(sigmas)}")
        elif given_timesteps is not None:
            values = given_timesteps / config["num_train_timesteps"]
        else:
            total = config["num_train_timesteps"]
            values = np.linspace(self.sigma_max * total, self.sigma_min * total, steps) / total
        values = _shifted(values, mu, config)
        sigmas_tensor = torch.from_numpy(np.ascontiguousarray(values)).to(device=device, dtype=torch.float32)
        if given_timesteps is not None:
            made_timesteps = torch.from_numpy(given_timesteps).to(device=device)
        else:
            made_timesteps = sigmas_tensor * config["num_train_timesteps"]
        return Schedule(made_timesteps, torch.cat([sigmas_tensor, torch.zeros(1, device=sigmas_tensor.device)]))

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
        prev_sample = Schedule(self.timesteps, self.sigmas).step(self._step_index, model_output, sample)
        self._step_index += 1
        return SchedulerOutput(prev_sample) if return_dict else (prev_sample,)


# The ancestral eta DFR's temporal refine rounds use; each window draws its noise from its own seed.
TEMPORAL_ANCESTRAL_ETA = 0.5


def ancestral_tile_seed(generator: torch.Generator | list[torch.Generator] | None, round_index: int, tile_index: int) -> int:
    """The seed of a temporal-refine window's ancestral noise: the pipeline generator's initial seed (the first
    generator's for a list, 0 without one) + 1000 * round (1-based) + tile, so a window's noise does not depend on
    how many draws the windows before it made."""
    source = generator[0] if isinstance(generator, list) else generator
    return (source.initial_seed() if source is not None else 0) + 1000 * round_index + tile_index


class LTXEulerAncestralRFScheduler(_SigmaScheduler):
    """Euler-ancestral sampling in the rectified-flow parametrization (ComfyUI's `sample_euler_ancestral_RF`).

    From x at sigma with velocity v, x0 = x - sigma * v. The step goes deterministically to the lower
    sigma_down = sigma_next * (1 + (sigma_next / sigma - 1) * eta), then scales back to sigma_next's signal level and
    adds just enough fresh noise to land at sigma_next. eta = 0 is a plain Euler step; the last step (sigma_next = 0)
    returns x0. DFR's temporal refine uses eta = TEMPORAL_ANCESTRAL_ETA (0.5); the constructor default is diffusers'
    1.0. Without explicit sigmas, `set_timesteps(n)` is FlowMatchEulerDiscreteScheduler's unshifted linear schedule.
    """

    def __init__(self, num_train_timesteps: int = 1000, eta: float = 1.0, s_noise: float = 1.0):
        if eta < 0 or s_noise < 0:
            raise ValueError(f"eta and s_noise must be >= 0, got eta={eta}, s_noise={s_noise}")
        self.sigmas: torch.Tensor | None = None  # set by set_timesteps
        self.timesteps: torch.Tensor | None = None
        self.num_inference_steps = self._step_index = self._begin_index = None

    def set_timesteps(
        self,
        num_inference_steps: int | None = None,
        device: torch.device | str | None = None,
        sigmas: list[float] | torch.Tensor | None = None,
        timesteps: list[float] | torch.Tensor | None = None,
        mu: float | None = None,
        **_: Any,
    ) -> None:
        """Explicit `sigmas` (or `timesteps`, read as sigmas) are the whole schedule, terminal 0 included, and
        timesteps = sigmas * num_train_timesteps; otherwise the flow-match schedule of `num_inference_steps`."""
        self._step_index = self._begin_index = None
        if sigmas is None and timesteps is None:
            if num_inference_steps is None:
                raise ValueError("set_timesteps needs sigmas, timesteps or num_inference_steps")
            schedule = FlowMatchEulerDiscreteScheduler(num_train_timesteps=self.config.num_train_timesteps)
            schedule.set_timesteps(num_inference_steps, device=device, mu=mu)
            self.sigmas, self.timesteps = schedule.sigmas, schedule.timesteps
            self.num_inference_steps = num_inference_steps
            return
        values = sigmas if sigmas is not None else timesteps
        if not isinstance(values, (list, torch.Tensor)):
            raise TypeError(f"sigmas must be a list or a torch.Tensor, got {type(values).__name__}")
        values = torch.as_tensor(values).to(device=device, dtype=torch.float32)
        if values.ndim != 1:
            raise ValueError(f"sigmas must be 1-D, got shape {tuple(values.shape)}")
        if abs(float(values[-1])) > 1e-6:
            warnings.warn(f"the last sigma is {float(values[-1]):.6f}, not 0: the schedule does not end clean", stacklevel=2)
        self.sigmas = values
        self.timesteps = values * float(self.config.num_train_timesteps)
        self.num_inference_steps = len(values) - 1

    def step(
        self,
        model_output: torch.Tensor,
        timestep: float | torch.Tensor,
        sample: torch.Tensor,
        generator: torch.Generator | None = None,
        return_dict: bool = True,
    ) -> tuple[torch.Tensor] | SchedulerOutput:
        """One ancestral step; `generator` draws the fresh noise (float32, the sample's shape)."""
        if isinstance(timestep, int) or (isinstance(timestep, torch.Tensor) and not timestep.is_floating_point()):
            raise ValueError(f"timestep must be a value of scheduler.timesteps, not an integer index ({timestep})")
        if self.sigmas is None:
            raise ValueError("call set_timesteps before step")
        if self._step_index is None:
            self._step_index = self._begin_index if self._begin_index is not None else self.index_for_timestep(timestep)
        index = self._step_index
        prev_sample = sample
        if index < len(self.sigmas) - 1:
            x = sample.to(torch.float32)
            sigma, sigma_next = self.sigmas[index], self.sigmas[index + 1]
            denoised = x - sigma * model_output.to(torch.float32)
            if abs(float(sigma_next)) < 1e-8:
                x = denoised
            else:
                eta, s_noise = float(self.config.eta), float(self.config.s_noise)
                sigma_down = sigma_next * (1.0 + (sigma_next / sigma - 1.0) * eta)
                alpha_next, alpha_down = 1.0 - sigma_next, 1.0 - sigma_down
                keep = sigma_down / sigma
                x = keep * x + (1.0 - keep) * denoised
                if eta > 0 and s_noise > 0:
                    # The noise that, added to the rescaled sample, brings its total noise level to sigma_next.
                    fresh = (sigma_next**2 - sigma_down**2 * alpha_next**2 / (alpha_down**2 + 1e-12)).clamp(min=0).sqrt()
                    noise = randn(tuple(x.shape), generator, x.device, torch.float32)
                    x = (alpha_next / (alpha_down + 1e-12)) * x + noise * fresh * s_noise
            prev_sample = x.to(sample.dtype)
        self._step_index = min(index + 1, len(self.sigmas) - 1)
        return SchedulerOutput(prev_sample) if return_dict else (prev_sample,)


def _shifted(sigmas: np.ndarray, mu: float | None, config: dict[str, Any]) -> np.ndarray:
    """Apply the configured shift (dynamic from mu, or the static `shift`) and the terminal stretch."""
    if config["use_dynamic_shifting"]:
        # sigma' = e^mu / (e^mu + (1/sigma - 1)); linear: mu / (mu + (1/sigma - 1)).
        weight = math.exp(mu) if config["time_shift_type"] == "exponential" else mu
        sigmas = weight / (weight + (1 / sigmas - 1))
    else:
        sigmas = config["shift"] * sigmas / (1 + (config["shift"] - 1) * sigmas)
    if config["shift_terminal"] and sigmas[-1] != 1:
        # Rescale 1 - sigma so that the last sigma lands exactly on shift_terminal. (A schedule that never
        # leaves sigma = 1, e.g. a single step, has nothing to stretch; diffusers returns NaN there.)
        distance = 1 - sigmas
        sigmas = 1 - distance / (distance[-1] / (1 - config["shift_terminal"]))
    return sigmas
