"""The res_2s sampler of ltx-pipelines 1.0.0 (TI2VidTwoStagesHQPipeline): a second-order exponential integrator in
float64. Each step evaluates the model at the current point and at the geometric midpoint sigma, both combined
with the phi-function coefficients; SDE noise is mixed in at the midpoint and at the step's end from two fixed
generators (seeds -1 and 9999, independent of the call's seed), standardized globally and per sample; the midpoint's
anchor is refined by fixed-point iteration ("bongmath") while the step is small. A 0.0011 sigma is inserted before
a final 0, where one last evaluation gives the result."""

from __future__ import annotations

import math
from dataclasses import replace

import torch

from .sampling import DenoiseFn, LatentState, blend_clean

MIDPOINT = 0.5
LAST_SIGMA = 0.0011
STEP_SEED, SUBSTEP_SEED = -1, -1 + 10000
BONG_ITERATIONS = 100


def phi(order: int, neg_h: float) -> float:
    """phi_j(z) = (e^z - sum_{k<j} z^k / k!) / z^j."""
    if abs(neg_h) < 1e-10:
        return 1.0 / math.factorial(order)
    head = sum(neg_h**k / math.factorial(k) for k in range(order))
    return (math.exp(neg_h) - head) / neg_h**order


def coefficients(h: float) -> tuple[float, float, float]:
    """(a21, b1, b2) of res_2s at the midpoint for a step of log-size h."""
    a21 = MIDPOINT * phi(1, -h * MIDPOINT)
    b2 = phi(2, -h) / MIDPOINT
    return a21, phi(1, -h) - b2, b2


def sde_noise(like: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """float64 Gaussian noise standardized over the whole tensor, then per sample over tokens and channels."""
    noise = torch.randn(like.shape, generator=generator, dtype=torch.float64, device=generator.device)
    noise = (noise - noise.mean()) / noise.std()
    return (noise - noise.mean(dim=(-2, -1), keepdim=True)) / noise.std(dim=(-2, -1), keepdim=True)


def sde_step(sample: torch.Tensor, target: torch.Tensor, sigma: torch.Tensor, sigma_next: torch.Tensor,
             noise: torch.Tensor) -> torch.Tensor:
    """Res2sDiffusionStep: from `sample` at sigma towards `target` at sigma_next, re-noised so that half of
    sigma_next is fresh noise (alpha_ratio, sigma_down, sigma_up as ltx-core derives them)."""
    sigma_up = torch.minimum(sigma_next * 0.5, sigma_next * 0.9999)
    residual = (sigma_next**2 - sigma_up**2).clamp(min=0) ** 0.5
    alpha_ratio = (torch.ones_like(sigma_next) - sigma_next) + residual
    sigma_down = residual / alpha_ratio
    sigma_down = torch.where(torch.isnan(sigma_down), sigma_next.to(sigma_down.dtype), sigma_down)
    alpha_ratio = torch.nan_to_num(alpha_ratio, 1.0)
    sigma_up = torch.nan_to_num(sigma_up, 0.0)
    if bool(torch.any(sigma_up == 0)) or bool(torch.any(sigma_next == 0)):
        return target
    eps = (sample - target) / (sigma - sigma_next)
    denoised = sample - sigma * eps
    return (alpha_ratio * (denoised + sigma_down * eps) + sigma_up * noise).to(target.dtype)


def res2s_loop(sigmas: torch.Tensor, video: LatentState, audio: LatentState, denoise: DenoiseFn,
               dtype: torch.dtype) -> tuple[LatentState, LatentState]:
    step_generator = torch.Generator(device=video.latent.device).manual_seed(STEP_SEED)
    substep_generator = torch.Generator(device=video.latent.device).manual_seed(SUBSTEP_SEED)
    steps = len(sigmas) - 1
    if sigmas[-1] == 0:
        sigmas = torch.cat([sigmas[:-1], torch.tensor([LAST_SIGMA, 0.0], device=sigmas.device)])
    log_steps = -torch.log(sigmas[1:].double().cpu() / sigmas[:-1].double().cpu())

    def inject(state: LatentState, sample: torch.Tensor, target: torch.Tensor, pair: torch.Tensor,
               generator: torch.Generator) -> torch.Tensor:
        noise = sde_noise(state.latent, generator)
        stepped = sde_step(sample, target, pair[0], pair[1], noise)
        return (stepped * state.mask + state.clean.float() * (1 - state.mask)).to(stepped.dtype)

    for step in range(steps):
        sigma, sigma_next = sigmas[step].double(), sigmas[step + 1].double()
        anchors = [video.latent.clone().double(), audio.latent.clone().double()]
        x0_first = [blend_clean(x0, state) for x0, state in zip(denoise(video, audio, sigmas, step), (video, audio))]
        h = log_steps[step].item()
        a21, b1, b2 = coefficients(h)
        sub_sigma = torch.sqrt(sigma * sigma_next)
        eps_first = [x0.double() - anchor for x0, anchor in zip(x0_first, anchors)]
        middles = [anchor.double() + h * a21 * eps for anchor, eps in zip(anchors, eps_first)]
        pair = torch.stack([sigma, sub_sigma])
        middles = [inject(state, anchor, middle, pair, substep_generator)
                   for state, anchor, middle in zip((video, audio), anchors, middles)]
        if h < 0.5 and sigma > 0.03:
            for _ in range(BONG_ITERATIONS):
                anchors = [middle - h * a21 * eps for middle, eps in zip(middles, eps_first)]
                eps_first = [x0.double() - anchor for x0, anchor in zip(x0_first, anchors)]
        middle_states = [replace(state, latent=middle.to(dtype)) for state, middle in zip((video, audio), middles)]
        x0_second = denoise(*middle_states, torch.stack([sub_sigma]).to(sigmas.device), 0)
        x0_second = [blend_clean(x0, state) for x0, state in zip(x0_second, (video, audio))]
        eps_second = [x0.double() - anchor for x0, anchor in zip(x0_second, anchors)]
        nexts = [anchor + h * (b1 * first + b2 * second)
                 for anchor, first, second in zip(anchors, eps_first, eps_second)]
        nexts = [inject(state, anchor, target, sigmas[step: step + 2], step_generator)
                 for state, anchor, target in zip((video, audio), anchors, nexts)]
        video, audio = (replace(state, latent=latent.to(dtype)) for state, latent in zip((video, audio), nexts))
    if sigmas[-1] == 0:
        last = [blend_clean(x0, state) for x0, state in zip(denoise(video, audio, sigmas, steps), (video, audio))]
        video, audio = (replace(state, latent=x0.to(dtype)) for state, x0 in zip((video, audio), last))
    return video, audio
