"""One pass over the calibration set that recovers a pruned model without training.

After channels are removed, two things are stale: BatchNorm statistics, and the weights of
layers whose *input* channels were removed (AMC's channel reconstruction). :func:`recover`
fixes both in a single forward pass of the whole calibration set (one batch), with hooks
that run in execution order:

* before each BatchNorm runs, its running mean and (unbiased) variance are set to the
  statistics of its input over the calibration set;
* before each layer to reconstruct runs, its weights are refitted by ridge least squares so
  that, on fixed sampled positions, its bias-free output matches what the *original*
  model's layer produced there (:class:`ReconstructionTargets`, recorded once per model).

Because every hook sees the activations of the already-recovered layers before it, the pass
gives each layer the inputs it will see at inference, and it costs one forward pass.

Example:
    >>> import copy
    >>> from autoprune.compress.pruning import prune_channels_report
    >>> model = nn.Sequential(nn.Conv2d(1, 8, 3), nn.ReLU(), nn.Conv2d(8, 4, 3)).eval()
    >>> calib = torch.randn(16, 1, 8, 8)
    >>> targets = ReconstructionTargets.record(model, calib)
    >>> pruned = copy.deepcopy(model)
    >>> report = prune_channels_report(pruned, calib[:1], {"0": 0.5})
    >>> errors = recover(pruned, calib, targets=targets, refit=report.input_pruned,
    ...                  kept_out=report.kept_out)
    >>> errors["2"][1] <= errors["2"][0]
    True
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from autoprune.compress.sparsity import latent_weight, sparsity_mask
from autoprune.core.errors import AutopruneError
from autoprune.core.modes import eval_mode

LAYER_TYPES = (nn.Conv2d, nn.Linear)
MASKED_CHUNK = 32
"""Output rows solved together in a masked refit (padded systems of their widest row)."""
RIDGE_GRID = (1e-3, 1e-2, 1e-1, 1.0)
"""Candidate ridge strengths, relative to the mean squared input column."""
HOLDOUT_EVERY = 5
"""Every 5th sampled row is held out to choose the ridge strength and accept the refit."""
_BatchNorm = nn.modules.batchnorm._BatchNorm


@dataclass(frozen=True)
class LayerTargets:
    """The original output of one layer at sampled rows.

    Attributes:
        rows: Flat indices of the sampled output positions (conv: ``n·H·W + y·W + x``;
            linear: the row of the input flattened to ``(-1, features)``).
        output: Bias-free original outputs at those rows, ``(len(rows), out_channels)``.
    """

    rows: torch.Tensor
    output: torch.Tensor


class ReconstructionTargets:
    """What the original model's Conv2d/Linear layers output at fixed sampled positions.

    Recorded once per model and calibration set; every reconstruction then needs only the
    pruned model's pass. The positions are drawn without replacement from a generator
    seeded with ``seed``, at most ``max_rows`` per layer.
    """

    def __init__(self, layers: Mapping[str, LayerTargets]) -> None:
        self.layers = dict(layers)

    @classmethod
    @torch.no_grad()
    def record(
        cls, model: nn.Module, inputs: torch.Tensor, *, max_rows: int = 4096, seed: int = 0
    ) -> ReconstructionTargets:
        """Run ``model`` once on ``inputs`` and keep each layer's output at sampled rows."""
        generator = torch.Generator().manual_seed(seed)
        names = {m: n for n, m in model.named_modules() if isinstance(m, LAYER_TYPES)}
        layers: dict[str, LayerTargets] = {}

        def hook(module: nn.Conv2d | nn.Linear, args: tuple, output: torch.Tensor) -> None:
            name = names[module]
            if name in layers:
                return  # a layer called twice keeps its first call
            flat = _flat_output(module, output)
            rows = torch.randperm(flat.shape[0], generator=generator)[:max_rows]
            rows = rows.sort().values
            value = flat[rows].float()
            if module.bias is not None:
                value = value - module.bias.detach().float()
            layers[name] = LayerTargets(rows, value.cpu())

        handles = [m.register_forward_hook(hook) for m in names]
        try:
            with eval_mode(model):
                model(inputs.to(_device(model)))
        finally:
            for handle in handles:
                handle.remove()
        return cls(layers)


def recover(
    model: nn.Module,
    inputs: torch.Tensor,
    *,
    targets: ReconstructionTargets | None = None,
    refit: Sequence[str] = (),
    kept_out: Mapping[str, Sequence[int]] | None = None,
    batchnorm: bool = True,
    ridge: Sequence[float] = RIDGE_GRID,
) -> dict[str, tuple[float, float]]:
    """Recalibrate BatchNorm and refit ``refit`` layers of ``model`` in one pass, in place.

    Args:
        model: The pruned model (its other modules are left as they are).
        inputs: The whole calibration set as one batch.
        targets: The original model's outputs (needed when ``refit`` is not empty).
        refit: Conv2d/Linear layers whose input channels were pruned.
        kept_out: Original output channels kept per layer whose outputs shrank too
            (``PruneReport.kept_out``).
        batchnorm: Whether BatchNorm statistics are re-estimated.
        ridge: Candidate ridge strengths (toward the current weights), relative to the mean
            squared input column; the best on held-out rows is used.

    Returns:
        Per refitted layer, the relative squared error of its bias-free output on held-out
        sampled rows ``(before, after)``; the new weights are kept only when they predict
        those rows better.
    """
    if refit and targets is None:
        raise AutopruneError("recover needs the original model's targets to refit layers")
    modules = dict(model.named_modules())
    errors: dict[str, tuple[float, float]] = {}
    handles = []
    for name in refit:
        layer = modules.get(name)
        if not isinstance(layer, LAYER_TYPES) or targets is None or name not in targets.layers:
            raise AutopruneError(f"layer '{name}' cannot be refitted: no recorded Conv2d/Linear")
        hook = _RefitHook(name, targets.layers[name], (kept_out or {}).get(name), ridge, errors)
        handles.append(layer.register_forward_pre_hook(hook))
    if batchnorm:
        norms = [m for m in modules.values() if isinstance(m, _BatchNorm)]
        handles += [m.register_forward_pre_hook(_set_statistics) for m in norms if _tracks(m)]
    if not handles:
        return errors
    try:
        with eval_mode(model), torch.no_grad():
            model(inputs.to(_device(model)))
    finally:
        for handle in handles:
            handle.remove()
    return errors


def _tracks(norm: _BatchNorm) -> bool:
    return bool(norm.track_running_stats and norm.running_mean is not None)


def _set_statistics(norm: _BatchNorm, args: tuple) -> None:
    """Forward pre-hook: BatchNorm statistics from the input it is about to normalise."""
    # Only registered where _tracks(norm): BatchNorm then has all three buffers.
    assert norm.running_mean is not None and norm.running_var is not None
    assert norm.num_batches_tracked is not None
    x = args[0]
    dims = [d for d in range(x.dim()) if d != 1]
    var, mean = torch.var_mean(x, dim=dims, correction=1)
    norm.running_mean.copy_(mean)
    norm.running_var.copy_(var)
    norm.num_batches_tracked.fill_(1)


class _RefitHook:
    """Forward pre-hook: refit the layer's weights on its actual inputs before it runs."""

    def __init__(
        self,
        name: str,
        targets: LayerTargets,
        kept: Sequence[int] | None,
        ridge: Sequence[float],
        errors: dict[str, tuple[float, float]],
    ) -> None:
        self.name, self.targets, self.kept = name, targets, kept
        self.ridge, self.errors = ridge, errors

    def __call__(self, layer: nn.Conv2d | nn.Linear, args: tuple) -> None:
        if self.name in self.errors:
            return
        design = _design(layer, args[0], self.targets.rows)
        target = self.targets.output
        if self.kept is not None:
            target = target[:, torch.as_tensor(list(self.kept))]
        outputs = layer.out_channels if isinstance(layer, nn.Conv2d) else layer.out_features
        if target.shape[1] != outputs:
            raise AutopruneError(
                f"layer '{self.name}' has {outputs} outputs but the original has "
                f"{target.shape[1]}; pass kept_out=report.kept_out"
            )
        mask = sparsity_mask(layer)
        if mask is None:
            self.errors[self.name] = _refit(layer, design, target.float(), self.ridge)
        else:
            self.errors[self.name] = _refit_masked(layer, design, target.float(), self.ridge, mask)


def _flat_output(module: nn.Module, output: torch.Tensor) -> torch.Tensor:
    """A layer's output as rows ``(positions, channels)``."""
    if isinstance(module, nn.Conv2d):
        return output.permute(0, 2, 3, 1).reshape(-1, output.shape[1])
    return output.reshape(-1, output.shape[-1])


def _design(layer: nn.Conv2d | nn.Linear, x: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """Least-squares inputs at ``rows``: conv patches ``(R, in·kh·kw)`` or linear inputs."""
    if isinstance(layer, nn.Linear):
        return x.reshape(-1, x.shape[-1])[rows.to(x.device)].float().cpu()
    pad = layer._reversed_padding_repeated_twice
    mode = "constant" if layer.padding_mode == "zeros" else layer.padding_mode
    padded = F.pad(x, pad, mode=mode) if any(pad) else x
    (kh, kw), (sh, sw), (dh, dw) = layer.kernel_size, layer.stride, layer.dilation
    out_h = (padded.shape[2] - dh * (kh - 1) - 1) // sh + 1
    out_w = (padded.shape[3] - dw * (kw - 1) - 1) // sw + 1
    rows = rows.to(x.device)
    n, rest = rows // (out_h * out_w), rows % (out_h * out_w)
    top = (rest // out_w) * sh
    left = (rest % out_w) * sw
    ys = top[:, None, None] + (torch.arange(kh, device=x.device) * dh)[None, :, None]
    xs = left[:, None, None] + (torch.arange(kw, device=x.device) * dw)[None, None, :]
    patches = padded.permute(0, 2, 3, 1)[n[:, None, None], ys, xs]  # (R, kh, kw, C)
    return patches.permute(0, 3, 1, 2).reshape(len(rows), -1).float().cpu()


def _refit(
    layer: nn.Conv2d | nn.Linear, design: torch.Tensor, target: torch.Tensor, ridge: Sequence[float]
) -> tuple[float, float]:
    """Refit ``layer``'s weights by ridge least squares *toward its current weights*.

    Solves ``min ||a w - t||² + λ ||w - w0||²`` per conv group, where ``w0`` are the pruned
    layer's weights: with few rows (a linear layer sees one row per calibration image) the
    data only moves the weights along the directions it determines. ``λ`` is chosen among
    ``ridge`` (relative to the mean squared input column) on held-out rows, and the refit is
    kept only if it predicts those rows better than ``w0``; the chosen ``λ`` is then refitted
    on every row. Returns the held-out relative errors ``(before, after)``.
    """
    weight = layer.weight.detach()
    groups = layer.groups if isinstance(layer, nn.Conv2d) else 1
    old = weight.reshape(weight.shape[0], -1).double().cpu()
    cols, outs = old.shape[1], old.shape[0] // groups
    w0 = old.reshape(groups, outs, cols).transpose(1, 2)  # (G, cols, outs)
    a = design.reshape(len(design), groups, cols).transpose(0, 1)  # (G, R, cols)
    t = target.reshape(len(target), groups, outs).transpose(0, 1)  # (G, R, outs)
    held = torch.zeros(len(design), dtype=torch.bool)
    held[HOLDOUT_EVERY - 1 :: HOLDOUT_EVERY] = True
    fit, check = (
        _normal_equations(a[:, ~held], t[:, ~held]),
        _normal_equations(a[:, held], t[:, held]),
    )
    before = _relative_error(*check, w0)
    scored = [
        (_relative_error(*check, _solve(*fit[:2], w0, strength)), strength) for strength in ridge
    ]
    after, strength = min(scored)
    if not after < before:
        return before, before
    everything = (fit[0] + check[0], fit[1] + check[1])
    new = _solve(*everything, w0, strength).transpose(1, 2).reshape(weight.shape)
    with torch.no_grad():
        layer.weight.copy_(new.to(weight))
    return before, after


def _refit_masked(
    layer: nn.Conv2d | nn.Linear,
    design: torch.Tensor,
    target: torch.Tensor,
    ridge: Sequence[float],
    mask: torch.Tensor,
) -> tuple[float, float]:
    """:func:`_refit` of a fine-grained sparse layer: each output row is refitted over its
    kept weights only (the mask stays as it is), so the kept weights make up for the pruned
    ones. One solve per row, on the fitting rows, with the middle strength of ``ridge``
    (a strength search would multiply the cost of the many small systems); kept only if it
    predicts the held-out rows better, as in :func:`_refit`.

    Grouped convolutions are left as they are (``(0, 0)``).
    """
    if isinstance(layer, nn.Conv2d) and layer.groups != 1:
        return 0.0, 0.0
    latent = latent_weight(layer)
    w0 = latent.detach().reshape(latent.shape[0], -1).double().cpu()  # (outs, cols)
    kept = mask.reshape(w0.shape).cpu()
    w0 = w0 * kept
    held = torch.zeros(len(design), dtype=torch.bool)
    held[HOLDOUT_EVERY - 1 :: HOLDOUT_EVERY] = True
    fit = _normal_equations(design[~held][None], target[~held][None])
    check = _normal_equations(design[held][None], target[held][None])
    before = _relative_error(*check, w0.T[None])
    new = _solve_rows(fit[0][0], fit[1][0], w0, kept, ridge[len(ridge) // 2])
    after = _relative_error(*check, new.T[None])
    if not after < before:
        return before, before
    with torch.no_grad():
        latent.copy_(new.reshape(latent.shape).to(latent))
    return before, after


def _solve_rows(
    gram: torch.Tensor,
    cross: torch.Tensor,
    w0: torch.Tensor,
    kept: torch.Tensor,
    strength: float,
    chunk: int = MASKED_CHUNK,
) -> torch.Tensor:
    """Per output row ``r``: ``argmin ||a_S w - t_r||² + λ||w - w0_S||²`` over its kept
    columns ``S``, zero elsewhere; rows are solved by Cholesky in padded float32 batches."""
    lam = strength * float(gram.diagonal().mean()) + 1e-12
    out = torch.zeros_like(w0)
    counts = kept.sum(dim=1)
    order = torch.argsort(counts)
    gram32, cross32, w32 = gram.float(), cross.T.float(), w0.float()
    for start in range(0, len(order), chunk):
        rows = order[start : start + chunk]
        width = int(counts[rows].max())
        if width == 0:
            continue
        # kept columns first (stable), padded with columns whose solution is discarded
        idx = torch.argsort((~kept[rows]).to(torch.int8), dim=1, stable=True)[:, :width]
        valid = torch.gather(kept[rows], 1, idx).float()
        system = gram32[idx[:, :, None], idx[:, None, :]] * (valid[:, :, None] * valid[:, None, :])
        system = system + (lam * valid + (1.0 - valid))[:, :, None] * torch.eye(width)
        rhs = torch.gather(cross32[rows], 1, idx) + lam * torch.gather(w32[rows], 1, idx)
        factor, info = torch.linalg.cholesky_ex(system)
        if bool(info.any()):  # not positive definite in float32: fall back to LU
            solution = torch.linalg.solve(system, (rhs * valid)[:, :, None])[:, :, 0]
        else:
            solution = torch.cholesky_solve((rhs * valid)[:, :, None], factor)[:, :, 0]
        out[rows] = out[rows].scatter(1, idx, (solution * valid).double())
    return out


def _normal_equations(a: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, float]:
    """``aᵀa``, ``aᵀt`` (products in float32, returned in float64) and ``||t||²``."""
    gram = (a.transpose(1, 2) @ a).double()
    cross = (a.transpose(1, 2) @ t).double()
    return gram, cross, float(t.double().pow(2).sum())


def _solve(
    gram: torch.Tensor, cross: torch.Tensor, w0: torch.Tensor, strength: float
) -> torch.Tensor:
    """``argmin ||a w - t||² + λ||w - w0||²`` with ``λ = strength × mean diag(aᵀa)``."""
    lam = strength * gram.diagonal(dim1=1, dim2=2).mean(dim=1) + 1e-12
    eye = torch.eye(gram.shape[-1], dtype=gram.dtype)
    return torch.linalg.solve(gram + lam[:, None, None] * eye, cross + lam[:, None, None] * w0)


def _relative_error(
    gram: torch.Tensor, cross: torch.Tensor, energy: float, w: torch.Tensor
) -> float:
    """``||a w - t||² / ||t||²`` from ``aᵀa``, ``aᵀt`` and ``||t||²`` (``w``: (G, cols, outs))."""
    fitted = (w * (gram @ w)).sum() - 2 * (w * cross).sum()
    return max(0.0, float(fitted) + energy) / max(energy, 1e-12)


def _device(model: nn.Module) -> torch.device:
    parameter = next(model.parameters(), None)
    return parameter.device if parameter is not None else torch.device("cpu")
