"""Gymnasium environments of autoprune: per-layer compression search as an episode.

Importing this package registers ``autoprune/Compression-v1`` (entry point
``envs.compression_env:CompressionEnv``).

Example:
    >>> import gymnasium as gym
    >>> ENV_ID in gym.registry
    True
"""

from __future__ import annotations

import gymnasium as gym

from envs._feasible import WALLS, Wall
from envs._infeasible import check_reachable
from envs.actions import (
    ACTION_DIMS,
    DIMENSIONS,
    MODES,
    LayerAction,
    decode_action,
    encode_action,
)
from envs.compression_env import CompressionEnv
from envs.observation import FEATURES, OBS_SIZE
from envs.rewards import RewardFn, make_reward, reward_names
from envs.scoring import PolicyScorer
from envs.search_space import EvaluatorLike, LayerRole, SearchSpace

ENV_ID = "autoprune/Compression-v1"
"""Registered id of :class:`CompressionEnv`."""

if ENV_ID not in gym.registry:
    gym.register(id=ENV_ID, entry_point="envs.compression_env:CompressionEnv")

__all__ = [
    "ACTION_DIMS",
    "DIMENSIONS",
    "ENV_ID",
    "FEATURES",
    "MODES",
    "OBS_SIZE",
    "WALLS",
    "CompressionEnv",
    "EvaluatorLike",
    "LayerAction",
    "LayerRole",
    "PolicyScorer",
    "RewardFn",
    "SearchSpace",
    "Wall",
    "check_reachable",
    "decode_action",
    "encode_action",
    "make_reward",
    "reward_names",
]
