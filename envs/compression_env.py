"""The Gymnasium environment: one step per layer, a compressed model at the end of an episode."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import partial
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from autoprune.core.errors import AutopruneError
from autoprune.core.policy import LayerPolicy, Policy
from envs._feasible import WALLS, Wall, replay, wall_setting
from envs.actions import (
    ACTION_DIMS,
    DEFAULT_MAX_SPARSITY,
    MODES,
    LayerAction,
    Mode,
    decode_action,
    encode_action,
)
from envs.observation import (
    OBS_SIZE,
    budget_left,
    decided_means,
    headroom,
    layer_table,
    observation,
    rest_macs,
)
from envs.rewards import RewardFn
from envs.scoring import BudgetLike, PolicyScorer
from envs.search_space import EvaluatorLike, SearchSpace


class CompressionEnv(gym.Env[np.ndarray, np.ndarray]):
    """Search per-layer keep ratios, sparsity and/or bit-widths of a trained CNN under a budget.

    ## Description

    An episode walks the searchable layers of the model in execution order, one step per
    layer (AMC, HAQ). At each step the agent sees an embedding of the layer and of what the
    episode has decided so far, and answers with the layer's settings: keep ratio
    (``prune``), bit-widths (``quantize``), fine-grained sparsity and weight bits
    (``sparse``: the Deep Compression / Yang et al. space, activations stay float) or all
    four (``joint``: channel pruning, sparsity and mixed precision by one agent). After the last
    layer the policy is compressed, BatchNorm-recalibrated and scored on a validation subset
    by the injected evaluator (``evaluator.evaluate``, cached by policy), and the reward is
    paid. Every finished policy satisfies the budget (see Episode End).

    Steps per mode (``layers`` restricts the walk to a subset):

    - ``prune``: the layers whose keep ratio decides channels, i.e. the controllers of the
      prunable groups of the evaluator's ``ChannelPlan``; layers coupled to them (residual
      adds, depthwise convolutions) follow their controller, the classifier is never pruned.
    - ``quantize``: every layer whose bits are searched, i.e. all but the pinned first and
      last layers (fixed at 8 bits as in HAQ when ``pin_first_last``).
    - ``sparse``: every layer (Deep Compression prunes and quantizes every layer); first and
      last layers are not pinned unless ``pin_first_last=True``.
    - ``joint``: every layer (all have a sparsity); the keep ratio of a layer that is not a
      controller, and the bits of a pinned layer, are ignored.

    Sparsity is magnitude pruning of the weights *inside the kept channels* (structured
    pruning runs first), and ``pin_first_last`` pins bit-widths only: the first convolution
    is the most sensitive layer, but it is also tiny, so the agent (not a rule) decides how
    far to prune it, as Deep Compression did (LeNet-5's first conv kept 66% of its weights).

    ## Action Space

    ``Box(-1, 1, (k,), float32)``, one component per searched dimension in this order:
    prune ``[keep]``, quantize ``[w_bits, a_bits]``, sparse ``[sparsity, w_bits]``, joint
    ``[keep, sparsity, w_bits, a_bits]``. In every dimension -1 is the cheapest setting and
    +1 the largest. The keep ratio is linear in ``[min_keep, max_keep]`` and rounded to whole
    channels (multiples of the evaluator's ``round_to``); the sparsity is linear from
    ``max_sparsity`` (action -1) to 0 (action +1) in steps of 0.001; bits use HAQ's
    equal-width bins over ``[min_bits, max_bits]`` (:func:`envs.actions.decode_action`).
    Then the budget wall (the later layers at their minimum must still meet the budget):
    ``wall="scale"`` (default) maps each component into the step's *feasible interval*, from
    the minimum to the largest setting the wall allows, as it maps into the full range without
    a budget (:mod:`envs._feasible`), so distinct actions stay distinct policies at tight
    budgets; ``wall="clip"`` (AMC's) cuts a request at the interval's top, which sends most
    actions to one policy there. :meth:`actions_for` replays a given policy.

    The default ``max_sparsity`` 0.995 (0.5% of the weights left) covers Deep Compression's
    91-97% on the large fully connected layers of LeNet, AlexNet and VGG-16 and Yang et al.'s
    bits-count regime (their 2000x on LeNet-5 means 0.8% density even at 2 bits). Beyond 2%
    density most gaps of a fully connected layer overflow its 5-bit relative index and cost
    filler zeros, so the coded file shrinks slowly: LeNet-300-100's smallest file at 0.98 is
    1/73 of the float one, at 0.995 1/125.

    ## Observation Space

    ``Box(0, 1, (27,), float32)``; min-max normalisation is over the layers of the network.

    | Num | Observation      | Meaning                                                       |
    |-----|------------------|---------------------------------------------------------------|
    | 0   | layer_index      | position among all layers / (layers - 1)                      |
    | 1-4 | type one-hot     | conv, depthwise, grouped, linear                              |
    | 5   | in_channels      | input channels (features), min-max                            |
    | 6   | out_channels     | output channels (features), min-max                           |
    | 7   | stride           | stride, min-max                                               |
    | 8   | kernel           | kernel size, min-max                                          |
    | 9   | log_params       | log parameters, min-max                                       |
    | 10  | log_macs         | log MACs, min-max                                             |
    | 11  | input_fmap       | input feature-map pixels (HAQ), min-max                       |
    | 12  | latency_share    | layer's share of the uncompressed model's latency             |
    | 13  | energy_share     | layer's share of the uncompressed model's energy              |
    | 14  | macs_reduced     | 1 - MACs(decided layers, rest at maximum) / original MACs     |
    | 15  | macs_rest        | original MACs of the later layers / original MACs             |
    | 16  | budget_headroom  | (limit - cost at min) / (cost at max - cost at min), tightest |
    | 17  | budget_left      | (limit - cost at min) / original cost, tightest constraint    |
    | 18  | decided_density  | mean 1 - sparsity of the decided layers, weighted by params   |
    | 19  | decided_w_bits   | mean log2(weight bits) / 5 of the decided layers, by params   |
    | 20  | prev_keep        | keep ratio chosen at the previous step (1 at the first)       |
    | 21  | prev_sparsity    | sparsity chosen at the previous step (0 at the first)         |
    | 22  | prev_w_bits      | log2(weight bits) / 5 of the previous step (float = 1)        |
    | 23  | prev_a_bits      | log2(activation bits) / 5 of the previous step (float = 1)    |
    | 24  | keep_searched    | 1 when this layer's keep ratio is searched                    |
    | 25  | sparsity_searched| 1 when this layer's sparsity is searched                      |
    | 26  | bits_searched    | 1 when this layer's (weight) bit-widths are searched          |

    "cost at min/max" prices the decided layers with this and every later layer at its
    smallest/largest setting; headroom and budget left are 1 without a budget, and the
    budget left is in the unit of the target (bytes, MACs, ms...) relative to the original
    model, so the agent sees how much of its target it may still spend. The decided means
    are 1 (dense, float) before the first decision.

    ## Rewards

    0 at every step but the last; the last pays ``reward(metrics, baseline, limits)``
    (:mod:`envs.rewards`: ``accuracy`` (default), ``amc``, ``mnas``, ``weighted``, or any
    callable of that signature).

    ## Starting State

    The first searchable layer with nothing decided; there is no randomness, so
    ``reset(seed=...)`` only seeds ``np_random`` for wrappers that want it.

    ## Episode End

    Termination after the last layer (never truncated). Before evaluation HAQ's repair lowers
    bits, then raises sparsities, then lowers keep ratios, from the last layer back if the
    policy still violated the budget (the wall makes this unnecessary in an episode).
    The terminal observation is all zeros; its ``info`` holds ``policy`` (a validated
    :class:`~autoprune.core.policy.Policy` with ``metrics`` and ``budget``), ``metrics`` (accuracy,
    costs, ``accuracy_drop`` and ``budget_use_<metric>``), ``feasible``, ``repaired``,
    ``cached``, ``eval_seconds`` and ``seconds``. Every step's ``info`` names the ``layer``
    decided, its ``keep_ratio``, ``sparsity``, ``w_bits``, ``a_bits`` and whether it was
    ``clipped``.

    ## Arguments

    ```python
    >>> import gymnasium as gym, envs
    >>> env = gym.make("autoprune/Compression-v1", evaluator=evaluator,  # doctest: +SKIP
    ...                budget=["size=0.025"], mode="sparse", reward="mnas")
    ```

    | Parameter        | Type                    | Default      | Description                    |
    |------------------|-------------------------|--------------|--------------------------------|
    | `evaluator`      | PolicyEvaluator         | (required)   | scores policies, prices costs  |
    | `budget`         | Budget / list / dict    | None         | hard limits (Budget.parse)     |
    | `reward`         | str or callable         | `"accuracy"` | see Rewards                    |
    | `mode`           | str                     | `"prune"`    | prune, quantize, sparse, joint |
    | `min_keep`       | float                   | 0.2          | keep ratio of action -1        |
    | `max_keep`       | float                   | 1.0          | keep ratio of action +1        |
    | `min_bits`       | int                     | 2            | lowest bit-width               |
    | `max_bits`       | int                     | 8            | highest bit-width              |
    | `max_sparsity`   | float                   | 0.995        | sparsity of action -1, < 1     |
    | `pin_first_last` | bool or None            | None         | first/last at 8 bits (1)       |
    | `reward_kwargs`  | mapping                 | None         | keyword arguments of `reward`  |
    | `layers`         | list of str             | None (all)   | layer names to search          |
    | `wall`           | str                     | `"scale"`    | scale or clip (Action Space)   |

    (1) None: pinned in the quantize and joint modes, not in sparse (see ``PINNING_MODES``).

    ## Version History

    * v1 (later): ``wall="scale"`` is the default; ``"clip"`` keeps AMC's wall.
    * v1: ``sparse`` mode, sparsity in ``joint`` (4 action components), 27 observation
      features (budget left, decided density and bits, previous sparsity).
    * v0: Initial version.
    """

    metadata: dict[str, Any] = {"render_modes": []}

    def __init__(
        self,
        evaluator: EvaluatorLike,
        budget: BudgetLike = None,
        reward: str | RewardFn = "accuracy",
        mode: Mode = "prune",
        *,
        min_keep: float = 0.2,
        max_keep: float = 1.0,
        min_bits: int = 2,
        max_bits: int = 8,
        max_sparsity: float = DEFAULT_MAX_SPARSITY,
        pin_first_last: bool | None = None,
        reward_kwargs: Mapping[str, float] | None = None,
        layers: Sequence[str] | None = None,
        wall: Wall = "scale",
    ) -> None:
        _check_settings(mode, min_keep, max_keep, min_bits, max_bits)
        if wall not in WALLS:
            raise AutopruneError(f"unknown wall '{wall}'; choose one of: {', '.join(WALLS)}")
        self.wall: Wall = wall
        _check_sparsity(max_sparsity)
        self.evaluator = evaluator
        self.scorer = PolicyScorer(evaluator, budget, reward, reward_kwargs)
        """Scores the finished policy of an episode (:meth:`score_policy`)."""
        self.budget = self.scorer.budget
        self.mode: Mode = mode
        self.reward_fn, self.reward_name = self.scorer.reward_fn, self.scorer.reward_name
        self.space = SearchSpace(
            evaluator,
            self.budget,
            mode,
            min_keep=min_keep,
            max_keep=max_keep,
            min_bits=min_bits,
            max_bits=max_bits,
            max_sparsity=max_sparsity,
            pin_first_last=pin_first_last,
            layers=layers,
        )
        self._encode = partial(
            encode_action,
            mode=mode,
            min_keep=min_keep,
            max_keep=max_keep,
            min_bits=min_bits,
            max_bits=max_bits,
            max_sparsity=max_sparsity,
        )
        self._decode = partial(
            decode_action,
            mode=mode,
            min_keep=min_keep,
            max_keep=max_keep,
            min_bits=min_bits,
            max_bits=max_bits,
            max_sparsity=max_sparsity,
        )
        specs = self.space.specs
        self._table = layer_table(specs, evaluator.cost_report(Policy.identity(specs)))
        self._rest = rest_macs(specs)
        self.action_space = spaces.Box(-1.0, 1.0, (ACTION_DIMS[mode],), np.float32)
        self.observation_space = spaces.Box(0.0, 1.0, (OBS_SIZE,), np.float32)
        self._step = 0
        self._decided: dict[str, LayerPolicy] = {}
        self._done = True

    @property
    def layer_names(self) -> list[str]:
        """The layers an episode walks, one step each."""
        return [role.name for role in self.space.steps]

    def decode(self, action: np.ndarray) -> LayerAction:
        """What ``action`` asks for, before rounding to channels and the budget wall."""
        return self._decode(action)

    def requested_policy(self, actions: np.ndarray | Sequence[np.ndarray]) -> Policy:
        """The policy an episode playing ``actions`` asks for, before the budget wall.

        Each action is decoded and rounded as :meth:`step` does (whole channels, the sparsity
        grid; pinned layers and dimensions a layer does not search at their fixed values),
        but neither the wall nor the repair is applied: the policy may miss the budget.

        Args:
            actions: One action per step (in :attr:`layer_names` order), or one action
                played at every step.

        Raises:
            AutopruneError: When the number of actions is not the number of steps.
        """
        steps = self.space.steps
        played = np.asarray(actions, dtype=np.float64)
        if played.ndim == 1:
            played = np.broadcast_to(played, (len(steps), played.size))
        if len(played) != len(steps):
            raise AutopruneError(
                f"{len(played)} actions for {len(steps)} steps; pass one action per layer of "
                "env.layer_names, or a single action for every layer"
            )
        requests = zip(steps, played, strict=True)
        wanted = {role.name: self.space.request(role, self._decode(a)) for role, a in requests}
        return Policy.for_specs(self.space.specs, {**self.space.fixed, **wanted})

    def score_policy(self, policy: Policy) -> tuple[float, dict[str, Any]]:
        """Evaluate a finished ``policy`` and pay the reward, as the last step does.

        The policy's ``meta`` records this environment (``search``, ``mode``); see
        :meth:`PolicyScorer.score` for the rest of the record and the returned ``info``.
        The policy is scored as it is: an episode repairs it first (Episode End).
        """
        policy.meta = {"search": "CompressionEnv-v1", "mode": self.mode, **policy.meta}
        return self.scorer.score(policy)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Start an episode at the first searchable layer."""
        super().reset(seed=seed)
        self._step = 0
        self._decided = {}
        self._done = False
        return self._get_obs(), self._get_info()

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """Decide the current layer; evaluate and pay the reward after the last one."""
        if self._done:
            raise AutopruneError("the episode is over; call reset() before step()")
        role = self.space.steps[self._step]
        wanted = self._decode(action)
        chosen = self.setting_for(self._step, self._decided, action)
        self._decided[role.name] = chosen
        self._step += 1
        info = {
            "layer": role.name,
            "keep_ratio": chosen.keep_ratio,
            "sparsity": chosen.sparsity,
            "w_bits": chosen.w_bits,
            "a_bits": chosen.a_bits,
            "clipped": chosen != self.space.request(role, wanted),
        }
        if self._step < len(self.space.steps):
            return self._get_obs(), 0.0, False, False, {**info, **self._get_info()}
        self._done = True
        reward, result = self._finish()
        return np.zeros(OBS_SIZE, dtype=np.float32), reward, True, False, {**info, **result}

    def encode(self, layer: LayerPolicy | LayerAction) -> np.ndarray:
        """The action that asks for ``layer``'s settings without a budget (the inverse of
        :meth:`decode`)."""
        return self._encode(layer)

    def setting_for(
        self, step: int, decided: Mapping[str, LayerPolicy], action: np.ndarray
    ) -> LayerPolicy:
        """What step ``step`` chooses for ``action`` after the settings ``decided``."""
        return wall_setting(self.space, self.wall, step, decided, action, self._decode(action))

    def actions_for(self, policy: Policy) -> list[np.ndarray]:
        """Actions with which an episode chooses ``policy``'s settings, one per step.

        Played from :meth:`reset`, they reproduce a feasible ``policy`` on the searched
        layers and dimensions (wall and rounding included; :func:`envs._feasible.replay`).
        """
        return replay(self.space, self.wall, policy, self._encode, self._decode)

    def _get_obs(self) -> np.ndarray:
        space = self.space
        role = space.steps[self._step]
        high = space.costs(space.state(self._decided, self._step, "max"))
        room = left = 1.0
        if space.limits:
            low = space.costs(space.state(self._decided, self._step, "min"))
            room = headroom(space.limits, low, high)
            left = budget_left(space.limits, low, space.baseline)
        reduced = 1.0 - high["macs"] / space.baseline["macs"] if space.baseline["macs"] else 0.0
        density, bits = decided_means(space.specs, self._decided)
        previous = LayerPolicy()
        if self._step:
            previous = self._decided[space.steps[self._step - 1].name]
        return observation(
            self._table[role.index],
            (reduced, self._rest[role.index], room, left, density, bits),
            previous,
            (role.prunes, role.sparse, role.bits),
        )

    def _get_info(self) -> dict[str, Any]:
        return {"step": self._step, "next_layer": self.space.steps[self._step].name}

    def _finish(self) -> tuple[float, dict[str, Any]]:
        """Repair, evaluate and score the finished policy."""
        space = self.space
        layers, repaired = space.repair({**space.fixed, **self._decided})
        reward, info = self.score_policy(Policy.for_specs(space.specs, layers))
        return reward, {**info, "repaired": repaired}


def _check_settings(
    mode: str, min_keep: float, max_keep: float, min_bits: int, max_bits: int
) -> None:
    if mode not in MODES:
        raise AutopruneError(f"unknown mode '{mode}'; choose one of: {', '.join(MODES)}")
    if not 0.0 < min_keep <= max_keep <= 1.0:
        raise AutopruneError(
            f"keep range [{min_keep}, {max_keep}] is invalid; use 0 < min_keep <= max_keep <= 1"
        )
    if not 2 <= min_bits <= max_bits <= 8:
        raise AutopruneError(
            f"bit range [{min_bits}, {max_bits}] is invalid; use 2 <= min_bits <= max_bits <= 8"
        )


def _check_sparsity(max_sparsity: float) -> None:
    if not 0.0 <= max_sparsity < 1.0:
        raise AutopruneError(
            f"max_sparsity {max_sparsity} is invalid; use 0 <= max_sparsity < 1 (e.g. 0.995)"
        )
