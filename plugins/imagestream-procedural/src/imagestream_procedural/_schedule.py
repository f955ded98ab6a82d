"""The noise levels a diffusion sampler walks through, one per step.

Karras et al. (2022) space the sigmas evenly in ``sigma ** (1 / rho)``: with
``rho = 7`` most steps are spent at low noise, where fine detail is decided,
and only a few at the top, where one step changes little that is visible.
"""

from __future__ import annotations

import math

from ._limits import check_steps


def sigma_schedule(
    steps: int, sigma_max: float = 14.6, sigma_min: float = 0.03, rho: float = 7.0
) -> list[float]:
    """Return ``steps`` strictly decreasing sigmas from ``sigma_max`` to ``sigma_min``.

    Step ``i`` starts at ``sigmas[i]`` and ends at ``sigmas[i + 1]`` (zero
    after the last step, as in a real sampler), so the last step's sigma is
    small and its result is clean. With one step the only sigma is
    ``sigma_max``: a one-step sampler goes from pure noise straight to the image.

    Raises :class:`ValueError` for ``steps`` outside 1..200 or for sigmas and
    ``rho`` that are not finite and positive with ``sigma_max > sigma_min``.
    """
    check_steps(steps)
    finite = all(math.isfinite(x) for x in (sigma_max, sigma_min, rho))
    if not finite or not (0 < sigma_min < sigma_max) or rho <= 0:
        raise ValueError(
            "need 0 < sigma_min < sigma_max and rho > 0, got "
            f"sigma_min={sigma_min}, sigma_max={sigma_max}, rho={rho}"
        )
    if steps == 1:
        return [float(sigma_max)]
    top = sigma_max ** (1 / rho)
    bottom = sigma_min ** (1 / rho)
    sigmas = [(top + i / (steps - 1) * (bottom - top)) ** rho for i in range(steps)]
    # Pin the ends exactly: the powers above may be off in the last bit.
    sigmas[0], sigmas[-1] = float(sigma_max), float(sigma_min)
    return sigmas
