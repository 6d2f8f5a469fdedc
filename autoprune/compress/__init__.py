"""The compression engine: structured pruning, quantization, sparsity and recovery.

``compress_model`` applies a whole policy; the pieces are usable on their own.
"""

from autoprune.compress.act_quant import (
    attach_activation_quant,
    calibrate_activations,
    remove_activation_quant,
)
from autoprune.compress.channel_plan import ChannelPlan, kept_count, pruned_specs
from autoprune.compress.importance import importance_names, make_importance
from autoprune.compress.pipeline import CompressionOptions, Compressor, compress_model
from autoprune.compress.pruning import prune_channels, prune_channels_report
from autoprune.compress.quantize import (
    apply_weight_compression,
    export_quantized,
    independent_copy,
    quantize_weights,
    squash,
)
from autoprune.compress.recovery import recalibrate_bn, reconstruct_next_layer
from autoprune.compress.sparsity import apply_sparsity, sparsity_of

__all__ = [
    "ChannelPlan",
    "CompressionOptions",
    "Compressor",
    "apply_sparsity",
    "apply_weight_compression",
    "attach_activation_quant",
    "calibrate_activations",
    "compress_model",
    "export_quantized",
    "importance_names",
    "kept_count",
    "make_importance",
    "prune_channels",
    "prune_channels_report",
    "pruned_specs",
    "quantize_weights",
    "recalibrate_bn",
    "reconstruct_next_layer",
    "remove_activation_quant",
    "sparsity_of",
    "independent_copy",
    "squash",
]
