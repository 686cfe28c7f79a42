"""The parameter vocabulary: every name a space file may search or fix.

A parameter set is a plain dict from these names to values. `complete_params` fills the
defaults, so a stored dict rebuilds its model and training run exactly. The model builder
and the training loop read only these names.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable

MODELS = ("mlp", "lenet", "cnn", "resnet", "separable")
OPTIMIZERS = ("adam", "adamw", "sgd", "rmsprop", "adagrad", "adadelta", "nadam", "adamax")
ACTIVATIONS = ("relu", "elu", "selu", "gelu", "swish", "tanh", "sigmoid", "leaky_relu")
# Keras's names; zeros is the course's example of a start that does not learn, searchable on purpose.
INITIALIZERS = ("glorot_uniform", "glorot_normal", "he_uniform", "he_normal", "lecun_normal", "random_uniform",
                "random_normal", "zeros")
POOLINGS = ("max", "average")
SCHEDULES = ("constant", "step", "cosine", "exponential", "plateau", "onecycle")
CLASS_WEIGHTS = ("none", "balanced")


@dataclass(frozen=True)
class ParamInfo:
    kind: type  # int, float, bool or str
    default: Any
    help: str
    check: Callable[[Any], bool] = lambda v: True
    rule: str = ""  # what `check` demands, for error messages
    used_when: dict[str, tuple[Any, ...]] = field(default_factory=dict)  # the training reads it only then


def used(name: str, params: dict[str, Any]) -> bool:
    """Whether training reads the parameter `name` under `params` (momentum under sgd only,
    whatever the space says); a name outside the vocabulary: yes."""
    info = PARAMETERS.get(name)
    return info is None or all(params.get(k) in allowed for k, allowed in info.used_when.items())


def _choice(options: tuple[str, ...]) -> Callable[[Any], bool]:
    return lambda v: v in options


PARAMETERS: dict[str, ParamInfo] = {
    "model": ParamInfo(str, "cnn", "model family: mlp (dense layers), lenet (5x5 convs, flattened), cnn (VGG-style), "
                       "resnet (ResNet-9 style), separable (Xception-style)", _choice(MODELS), f"one of {', '.join(MODELS)}"),
    "depth": ParamInfo(int, 2, "dense layers (mlp), conv blocks (lenet, cnn, separable) or stages (resnet)",
                       lambda v: 1 <= v <= 6, "1 to 6"),
    "width": ParamInfo(int, 32, "units of every dense layer (mlp); filters of the first block, doubling per block (the rest)",
                       lambda v: 1 <= v <= 1024, "1 to 1024"),
    "activation": ParamInfo(str, "relu", "activation of every hidden layer", _choice(ACTIVATIONS),
                            f"one of {', '.join(ACTIVATIONS)}"),
    "kernel_initializer": ParamInfo(str, "glorot_uniform", "how every kernel starts (drawn from the trial's seed)",
                                    _choice(INITIALIZERS), f"one of {', '.join(INITIALIZERS)}"),
    "pooling": ParamInfo(str, "max", "the 2x2 downsampling of lenet and cnn blocks and separable blocks' 3x3 (LeNet-5: "
                         "average)", _choice(POOLINGS), f"one of {', '.join(POOLINGS)}"),
    "head_units": ParamInfo(int, 128, "dense units before the classifier (0: none)", lambda v: 0 <= v <= 8192, "0 to 8192"),
    "dropout": ParamInfo(float, 0.0, "dropout rate before the head and classifier", lambda v: 0 <= v < 1, "in [0, 1)"),
    "l2": ParamInfo(float, 0.0, "L2 penalty on kernels", lambda v: 0 <= v <= 1, "in [0, 1]"),
    "l1": ParamInfo(float, 0.0, "L1 penalty on kernels", lambda v: 0 <= v <= 1, "in [0, 1]"),
    "max_norm": ParamInfo(float, 0.0, "largest norm of each unit's incoming weights, kept after every step (0: none)",
                          lambda v: 0 <= v <= 100, "in [0, 100]"),
    "logit_scale": ParamInfo(float, 1.0, "multiplies the classifier's logits (the DAWNBench ResNet-9 uses 0.125)",
                             lambda v: 0 < v <= 10, "in (0, 10]"),
    "batch_norm": ParamInfo(bool, True, "batch normalization after each conv"),
    "batch_size": ParamInfo(int, 128, "training batch size", lambda v: 1 <= v <= 65536, "1 to 65536"),
    "learning_rate": ParamInfo(float, 1e-3, "peak learning rate", lambda v: 0 < v <= 10, "in (0, 10]"),
    "lr_schedule": ParamInfo(str, "constant", "learning-rate schedule", _choice(SCHEDULES), f"one of {', '.join(SCHEDULES)}"),
    "warmup_epochs": ParamInfo(int, 0, "linear warm-up epochs (cosine, onecycle)", lambda v: 0 <= v <= 100, "0 to 100"),
    "optimizer": ParamInfo(str, "adam", "optimizer", _choice(OPTIMIZERS), f"one of {', '.join(OPTIMIZERS)}"),
    "momentum": ParamInfo(float, 0.9, "SGD momentum (Nesterov)", lambda v: 0 <= v < 1, "in [0, 1)",
                          {"optimizer": ("sgd",)}),
    "weight_decay": ParamInfo(float, 1e-4, "decoupled weight decay (adamw)", lambda v: 0 <= v <= 1, "in [0, 1]",
                              {"optimizer": ("adamw",)}),
    "label_smoothing": ParamInfo(float, 0.0, "label smoothing of the training loss", lambda v: 0 <= v < 1, "in [0, 1)"),
    "augment": ParamInfo(float, 0.0, "augmentation strength: shift = augment * max_shift pixels", lambda v: 0 <= v <= 1, "in [0, 1]"),
    "max_shift": ParamInfo(int, 0, "largest random shift in pixels at augment 1", lambda v: 0 <= v <= 64, "0 to 64"),
    "flip": ParamInfo(bool, False, "random horizontal flips while training (when augment > 0)"),
    "rotation": ParamInfo(float, 0.0, "largest random rotation in degrees at augment 1", lambda v: 0 <= v <= 180,
                          "in [0, 180]"),
    "zoom": ParamInfo(float, 0.0, "largest random zoom at augment 1, as a fraction (0.2: 80% to 120%)",
                      lambda v: 0 <= v <= 0.9, "in [0, 0.9]"),
    "cutout": ParamInfo(int, 0, "side in pixels of a square blanked at a random place in each training image (0: none)",
                        lambda v: 0 <= v <= 256, "0 to 256"),
    "tta_flip": ParamInfo(bool, False, "average predictions over the image and its mirror"),
    "class_weight": ParamInfo(str, "none", "weigh each training image by n / (classes * its class's count) (balanced)",
                              _choice(CLASS_WEIGHTS), f"one of {', '.join(CLASS_WEIGHTS)}"),
    "prior_bias": ParamInfo(bool, False, "start the classifier's bias at the log class priors of the training images"),
}


def complete_params(params: dict[str, Any]) -> dict[str, Any]:
    """Every vocabulary name with its value: the given one, else the default."""
    unknown = set(params) - set(PARAMETERS)
    if unknown:
        raise KeyError(f"unknown parameters: {', '.join(sorted(unknown))}")
    return {name: params.get(name, info.default) for name, info in PARAMETERS.items()}


KIND_WORDS = {int: "a whole number", float: "a number", bool: "true or false", str: "text"}


def as_written(value: Any) -> str:
    """A value as a space file or `--set` writes it: null, true, .nan, a list; text quoted."""
    if isinstance(value, (list, dict)):
        return "a list" if isinstance(value, list) else "a mapping"
    if isinstance(value, float) and not math.isfinite(value):
        return ".nan" if math.isnan(value) else ("-" if value < 0 else "") + ".inf"
    if type(value) is int and value.bit_length() > 100:  # not hundreds (or, past 4,300, any) of its digits
        return f"a whole number of about 10^{int(value.bit_length() * math.log10(2))}"
    return "null" if value is None else str(value).lower() if isinstance(value, bool) else repr(value)


def kind_problem(name: str, value: Any) -> str | None:
    """Why `value` is not of parameter `name`'s kind (a whole number, a number, true or false,
    text), or None; a whole number is a number too."""
    kind = PARAMETERS[name].kind
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return None
    if kind is int and type(value) is float:
        return not_whole(value)
    if kind is int and isinstance(value, bool) or not isinstance(value, kind):
        return f"{as_written(value)} is not {KIND_WORDS[kind]}"
    return None


EXACT = 2 ** 53  # the whole numbers a float holds exactly


def as_whole(value: Any) -> Any:
    """A whole float as the int it means (`16.0` is 16) where a float holds it exactly; any other
    value as given."""
    if type(value) is float and value.is_integer() and abs(value) <= EXACT:
        return int(value)
    return value


def not_whole(value: float) -> str:
    """Why a float is not taken where a whole number belongs (one within 2^53 that is whole is
    converted before it gets here)."""
    if math.isfinite(value) and value.is_integer():
        return f"{as_written(value)} is too large to be read as a whole number (write it as digits)"
    return f"{as_written(value)} is not a whole number"


def check_value(name: str, value: Any) -> str | None:
    """Why `value` is not allowed for parameter `name`, or None when it is."""
    info = PARAMETERS[name]
    if info.kind is float and isinstance(value, int) and not isinstance(value, bool):
        if value.bit_length() > 1000:  # past a float's range (about 1.8e308)
            return f"{as_written(value)} is past any number allowed"
        value = float(value)
    if (why := kind_problem(name, value)) is not None:
        return why
    if not info.check(value):
        return f"{as_written(value)} is not allowed ({info.rule})"
    return None
