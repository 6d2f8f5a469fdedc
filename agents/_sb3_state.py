"""An SB3 agent's checkpoint in formats that cannot run code when a run folder is resumed.

SB3's own ``model.zip`` keeps its settings, noise and spaces as cloudpickle, and its
``save_replay_buffer`` pickles the whole buffer: loading either from a planted file runs
whatever the file says. A checkpoint here is instead

* ``agent.pt``: the networks' and optimisers' state dicts and SB3's saved tensors
  (``log_ent_coef``), read with ``torch.load(weights_only=True)``;
* ``replay.npz``: the replay buffer's arrays, read with ``allow_pickle=False`` after each
  array's header was checked against the buffer that the run's config builds;
* counters, noise and random states in the method's ``state.json``.

Resuming rebuilds the algorithm from the run's config, then loads these into it; a file
that is missing, damaged or of another shape is one :class:`AutopruneError` line.
"""

from __future__ import annotations

import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.noise import ActionNoise, VectorizedActionNoise
from stable_baselines3.common.utils import get_device

from agents._amc import TruncatedNormalNoise
from autoprune.core.errors import AutopruneError
from autoprune.system.npz_files import memory_bytes, read_arrays, read_headers

AGENT_FILE = "agent.pt"
REPLAY_FILE = "replay.npz"
PICKLED_FILES = ("model.zip", "replay.pkl")
"""What older versions wrote (pickles): never loaded."""
COUNTERS = ("num_timesteps", "_n_updates", "_episode_num")
"""SB3's progress counters that a resumed ``learn`` continues from."""
_BUFFER_ARRAYS = ("observations", "next_observations", "actions", "rewards", "dones", "timeouts")
_NEW_SEARCH = "start a new search (its finished episodes stay readable in history.jsonl)"


class ShapeMismatch(AutopruneError):
    """A checkpoint's networks have other shapes than the run's environment needs."""


def save_agent(model: BaseAlgorithm, folder: Path) -> dict[str, int]:
    """Write ``agent.pt``; the counters to keep in the method's JSON state."""
    state_dicts, variables = model._get_torch_save_params()
    data = {
        "params": {name: _attr(model, name).state_dict() for name in state_dicts},
        "variables": {name: _attr(model, name).detach().cpu() for name in variables},
    }
    torch.save(data, folder / AGENT_FILE)
    return {name: int(getattr(model, name)) for name in COUNTERS}


def load_agent(model: BaseAlgorithm, folder: Path, counters: dict[str, Any]) -> None:
    """Load ``agent.pt`` and ``counters`` into ``model``, built from the run's config."""
    path = folder / AGENT_FILE
    refuse_pickles(folder)
    device = get_device(model.device)
    weights = sum(t.numel() * t.element_size() for t in model.policy.state_dict().values())
    _check_inflated(path, 8 * weights + (1 << 20))  # weights, targets, optimiser moments
    try:
        data = torch.load(path, map_location=device, weights_only=True)
    except Exception as exc:  # torch raises zip, unpickling, runtime and EOF errors alike
        raise AutopruneError(
            f"agent checkpoint {path} is damaged ({_reason(exc)}); {_NEW_SEARCH}"
        ) from None
    state_dicts, variables = model._get_torch_save_params()
    params, tensors = _parts(data, path, state_dicts, variables)
    try:
        model.set_parameters(params, exact_match=True, device=device)
    except (RuntimeError, ValueError, KeyError, TypeError) as exc:
        raise ShapeMismatch(
            f"the checkpoint in {folder} does not fit the search environment ({_reason(exc)})"
        ) from None
    for name, value in tensors.items():
        target = _attr(model, name)
        if value.shape != target.shape:
            raise ShapeMismatch(f"tensor '{name}' of {path} has shape {tuple(value.shape)}")
        target.data.copy_(value.to(target.device))
    for name in COUNTERS:
        setattr(model, name, _count(counters, name, folder))


def check_agent_files(folder: Path) -> None:
    """Before any work: an SB3 checkpoint in ``folder`` holds readable files, no pickles only.

    Methods that write no ``agent.pt`` (Optuna, uniform, one-shot) pass untouched.
    """
    if not folder.is_dir() or not any((folder / n).is_file() for n in (AGENT_FILE, *PICKLED_FILES)):
        return
    refuse_pickles(folder)
    _check_inflated(folder / AGENT_FILE, memory_bytes() // 2)
    try:
        torch.load(folder / AGENT_FILE, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises zip, unpickling, runtime and EOF errors alike
        raise AutopruneError(
            f"agent checkpoint {folder / AGENT_FILE} is damaged ({_reason(exc)}); {_NEW_SEARCH}"
        ) from None
    if (folder / REPLAY_FILE).is_file():
        read_headers(folder / REPLAY_FILE, memory_bytes() // 2)


def _check_inflated(path: Path, limit: int) -> None:
    """Refuse an ``agent.pt`` (a zip) whose members inflate beyond ``limit`` bytes, before
    ``torch.load`` allocates them."""
    try:
        with zipfile.ZipFile(path) as archive:
            inflated = sum(info.file_size for info in archive.infolist())
    except (OSError, zipfile.BadZipFile, ValueError) as exc:
        raise AutopruneError(
            f"agent checkpoint {path} is damaged ({_reason(exc)}); {_NEW_SEARCH}"
        ) from None
    if inflated > limit:
        raise AutopruneError(
            f"agent checkpoint {path} would inflate to {inflated:,} bytes, more than the "
            f"{limit:,} its networks need; {_NEW_SEARCH}"
        )


def refuse_pickles(folder: Path) -> None:
    """A checkpoint holding only pickles (of an older autoprune) is refused, never loaded."""
    if (folder / AGENT_FILE).is_file():
        return
    found = [name for name in PICKLED_FILES if (folder / name).is_file()]
    if found:
        raise AutopruneError(
            f"the checkpoint in {folder} holds only {', '.join(found)}: pickles, which can run "
            f"code and are never loaded (written by an older autoprune); {_NEW_SEARCH}"
        )
    raise AutopruneError(f"the checkpoint in {folder} has no {AGENT_FILE}; {_NEW_SEARCH}")


def _parts(
    data: Any, path: Path, state_dicts: list[str], variables: list[str]
) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """The state dicts and tensors of a loaded ``agent.pt``, checked for their names."""
    if not isinstance(data, dict) or set(data) != {"params", "variables"}:
        raise AutopruneError(f"agent checkpoint {path} is not one autoprune wrote; {_NEW_SEARCH}")
    params, tensors = data["params"], data["variables"]
    if not isinstance(params, dict) or sorted(params) != sorted(state_dicts):
        names = sorted(params) if isinstance(params, dict) else []
        raise ShapeMismatch(f"agent checkpoint {path} holds parts {names}, not {state_dicts}")
    if not isinstance(tensors, dict) or sorted(tensors) != sorted(variables):
        raise ShapeMismatch(f"agent checkpoint {path} holds other tensors than {variables}")
    if not all(isinstance(t, torch.Tensor) for t in tensors.values()):
        raise AutopruneError(f"agent checkpoint {path} is damaged; {_NEW_SEARCH}")
    return params, tensors


def _attr(model: BaseAlgorithm, dotted: str) -> Any:
    """``model.a.b`` for ``"a.b"`` (SB3's names of saved parts)."""
    value: Any = model
    for part in dotted.split("."):
        value = getattr(value, part)
    return value


def _count(counters: dict[str, Any], name: str, folder: Path) -> int:
    value = counters.get(name)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise AutopruneError(
            f"state.json of the checkpoint in {folder} lacks the counter '{name}'; {_NEW_SEARCH}"
        )
    return value


def _reason(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:160] or type(exc).__name__


def save_replay(buffer: ReplayBuffer, path: Path) -> None:
    """Write the buffer's arrays, position and reward baseline to ``replay.npz``."""
    arrays = {k: getattr(buffer, k) for k in _BUFFER_ARRAYS if getattr(buffer, k) is not None}
    baseline = getattr(buffer, "baseline", None)
    np.savez(
        path,
        **arrays,
        pos=np.array(buffer.pos, dtype=np.int64),
        full=np.array(buffer.full),
        baseline=np.array(np.nan if baseline is None else baseline, dtype=np.float64),
    )


def load_replay(buffer: ReplayBuffer, path: Path) -> None:
    """Fill ``buffer`` (built from the run's config) from ``replay.npz``.

    Every array's declared shape and type must equal the buffer's before any is read.
    """
    expected = {k: getattr(buffer, k) for k in _BUFFER_ARRAYS if getattr(buffer, k) is not None}
    scalars = {"pos": np.dtype(np.int64), "full": np.dtype(bool), "baseline": np.dtype(np.float64)}
    limit = sum(a.nbytes for a in expected.values()) + (1 << 20)
    if not path.is_file():
        raise AutopruneError(f"the checkpoint has no {path.name} ({path}); {_NEW_SEARCH}")
    headers = read_headers(path, limit)
    wanted = {k: (a.shape, a.dtype) for k, a in expected.items()}
    wanted.update({k: ((), dtype) for k, dtype in scalars.items()})
    found = {k: (h.shape, h.dtype) for k, h in headers.items()}
    if found != wanted:
        raise ShapeMismatch(
            f"replay buffer {path} does not fit the search environment (other arrays or shapes)"
        )
    arrays = read_arrays(path, limit)
    for name, array in expected.items():
        array[...] = arrays[name]
    pos = int(arrays["pos"])
    if not 0 <= pos < buffer.buffer_size:
        raise AutopruneError(f"replay buffer {path} is damaged (position {pos}); {_NEW_SEARCH}")
    buffer.pos, buffer.full = pos, bool(arrays["full"])
    if hasattr(buffer, "baseline"):
        value = float(arrays["baseline"])
        buffer.baseline = None if np.isnan(value) else value


def noise_state(noise: ActionNoise | None) -> list[Mapping[str, Any]]:
    """The random states of AMC's truncated-normal noises (other noises hold none)."""
    return [n.rng.bit_generator.state for n in _noises(noise)]


def set_noise_state(noise: ActionNoise | None, states: Any, folder: Path) -> None:
    """Restore what :func:`noise_state` captured into the freshly built ``noise``."""
    noises = _noises(noise)
    if not isinstance(states, list) or len(states) != len(noises):
        raise AutopruneError(
            f"state.json of the checkpoint in {folder} has no noise state for "
            f"{len(noises)} noise generator(s); {_NEW_SEARCH}"
        )
    for item, state in zip(noises, states, strict=True):
        try:
            item.rng.bit_generator.state = state
        except (TypeError, ValueError, KeyError) as exc:
            raise AutopruneError(
                f"noise state in the checkpoint in {folder} is damaged ({_reason(exc)}); "
                f"{_NEW_SEARCH}"
            ) from None


def _noises(noise: ActionNoise | None) -> list[TruncatedNormalNoise]:
    if isinstance(noise, TruncatedNormalNoise):
        return [noise]
    if isinstance(noise, VectorizedActionNoise):
        return [n for n in noise.noises if isinstance(n, TruncatedNormalNoise)]
    return []
