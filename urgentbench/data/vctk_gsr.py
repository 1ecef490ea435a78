"""The gsr suite's degradation conditions and how each utterance's parameters are drawn.

Part of the VCTK suite recipe (:mod:`urgentbench.data.vctk_suites`): every parameter of a
gsr utterance comes from ``numpy.random.default_rng(seed)`` in a fixed order, whatever its
condition; the condition decides which are used.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from urgentbench.manifest import DegradationSpec

__all__ = ["GSR_CONDITIONS", "GSR_RANGES", "gsr_chain"]

#: GSR conditions, assigned round-robin per speaker; chain order: reverb, noise, bandwidth, clipping.
GSR_CONDITIONS = (
    "noise",
    "reverb",
    "bandwidth",
    "clipping",
    "reverb+noise",
    "noise+bandwidth",
    "reverb+noise+bandwidth",
    "reverb+noise+bandwidth+clipping",
)
#: GSR parameter ranges (documented in the card).
GSR_RANGES: dict[str, Any] = {
    "snr_db": [-5.0, 20.0],
    "noise_source": {"demand": 0.5, "generated": 0.5},
    "generated_noise_types": ["white", "pink", "brown", "hum", "modulated"],
    "rt60_s": [0.2, 1.0],
    "room_dims_m": {"x": [3.0, 10.0], "y": [3.0, 8.0], "z": [2.5, 4.0]},
    "mic_height_m": [1.0, 2.0],
    "source_height_m": [1.2, 1.9],
    "wall_margin_m": 0.5,
    "min_source_mic_distance_m": 0.75,
    "max_image_order": 40,
    "cutoff_hz": [2000, 4000, 8000, 11025, 12000, 16000],
    "clip_threshold": [0.1, 0.5],
}


def _round(x: float, digits: int = 3) -> float:
    return float(round(float(x), digits))


def _sample_room(rng: np.random.Generator) -> dict[str, Any]:
    """Room, RT60, positions and image order (rejection-sampled until feasible)."""
    import math

    import pyroomacoustics as pra

    r = GSR_RANGES
    for _ in range(1000):
        dims = [_round(rng.uniform(*r["room_dims_m"][k]), 2) for k in ("x", "y", "z")]
        rt60 = _round(rng.uniform(*r["rt60_s"]))
        m = r["wall_margin_m"]
        mic = [
            _round(rng.uniform(m, dims[0] - m), 2),
            _round(rng.uniform(m, dims[1] - m), 2),
            _round(rng.uniform(*r["mic_height_m"]), 2),
        ]
        src = [
            _round(rng.uniform(m, dims[0] - m), 2),
            _round(rng.uniform(m, dims[1] - m), 2),
            _round(rng.uniform(*r["source_height_m"]), 2),
        ]
        if math.dist(mic, src) < r["min_source_mic_distance_m"]:
            continue
        try:
            _, order = pra.inverse_sabine(rt60, dims, c=343.0)
        except ValueError:
            continue
        return {
            "room_dims": dims,
            "rt60": rt60,
            "source": src,
            "mic": mic,
            "max_order": int(min(r["max_image_order"], max(1, order))),
        }
    raise RuntimeError("could not sample a feasible room in 1000 draws")  # practically unreachable


def gsr_chain(
    condition: str, seed: int, noise_files: dict[str, str]
) -> tuple[list[DegradationSpec], dict[str, str]]:
    """The degradation chain and tags of one GSR utterance.

    All parameters are drawn from ``default_rng(seed)`` in a fixed order, whatever the
    condition; the condition decides which are used.

    Args:
        condition: One of :data:`GSR_CONDITIONS`.
        seed: The utterance seed.
        noise_files: DEMAND environment -> prepared path (``ENV/ch01.wav``).
    """
    from urgentbench.data.demand import DURATION_S

    r = GSR_RANGES
    rng = np.random.default_rng(seed)
    room = _sample_room(rng)
    snr = _round(rng.uniform(*r["snr_db"]), 2)
    use_demand = bool(rng.random() < r["noise_source"]["demand"])
    envs = sorted(noise_files)
    env = envs[int(rng.integers(len(envs)))] if envs else None
    offset = _round(rng.uniform(0.0, DURATION_S - 20.0))
    noise_type = r["generated_noise_types"][int(rng.integers(len(r["generated_noise_types"])))]
    noise_seed = int(rng.integers(0, 2**31 - 1))
    cutoff = r["cutoff_hz"][int(rng.integers(len(r["cutoff_hz"])))]
    threshold = _round(rng.uniform(*r["clip_threshold"]))

    parts = condition.split("+")
    chain: list[DegradationSpec] = []
    tags = {"condition": condition, "noise_source": "none", "noise_type": "none"}
    if "reverb" in parts:
        chain.append(DegradationSpec("reverb_pra", room))
    if "noise" in parts:
        if use_demand and env is not None:
            chain.append(
                DegradationSpec(
                    "noise_file", {"path": f"@demand/{noise_files[env]}", "offset_s": offset, "snr_db": snr}
                )
            )
            tags.update(noise_source="demand", noise_type=env)
        else:
            chain.append(DegradationSpec("noise", {"snr_db": snr, "type": noise_type, "seed": noise_seed}))
            tags.update(noise_source="generated", noise_type=noise_type)
    if "bandwidth" in parts:
        chain.append(DegradationSpec("bandwidth_limit_poly", {"cutoff_hz": float(cutoff)}))
    if "clipping" in parts:
        chain.append(DegradationSpec("clipping", {"threshold": threshold}))
    return chain, tags
