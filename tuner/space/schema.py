"""The typed `Space` and its checks.

A space names a dataset, fixed training settings and, under `params`, each parameter either as
a plain value (fixed) or as a mapping with a `type` (searched). Every problem becomes one
`UserError` line naming the file, the field and what is wrong.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import re
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator, model_validator

from tuner.errors import UserError
from tuner.space.objective import DEFAULT as DEFAULT_OBJECTIVE
from tuner.space.objective import OBJECTIVES, Objective
from tuner.space.params import KIND_WORDS, PARAMETERS, as_written, check_value, as_whole, complete_params, not_whole
from tuner.paths import NAME_RULE, name_problem

Scalar = Union[bool, int, float, str]


class DatasetInfo(BaseModel):
    input_shape: tuple[int, int, int] | None  # None: the space declares it (image folders)
    flips: bool  # a mirrored sample is still the same class


DATASETS: dict[str, DatasetInfo] = {
    "digits": DatasetInfo(input_shape=(8, 8, 1), flips=False),
    "mnist": DatasetInfo(input_shape=(28, 28, 1), flips=False),
    "fashion_mnist": DatasetInfo(input_shape=(28, 28, 1), flips=True),
    "cifar10": DatasetInfo(input_shape=(32, 32, 3), flips=True),
    "folder": DatasetInfo(input_shape=None, flips=True),
}


class _Strict(BaseModel):
    # NaN and infinity pass every `low <= x <= high` test that compares with them: refused here.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False, strict=True)

    @model_validator(mode="before")
    @classmethod
    def _numbers_as_meant(cls, data: Any) -> Any:
        """Pydantic reads YAML's true as the number 1: `max_epochs: true` would train one epoch.
        A whole float where a whole number belongs (`low: 8.0`) is that number, as a fixed value is."""
        if not isinstance(data, dict):
            return data
        data = dict(data)
        for name, value in data.items():
            field = cls.model_fields.get(name)
            if field is None or field.annotation not in _NUMBERS:
                continue
            if isinstance(value, bool):
                raise ValueError(f"{name}: {str(value).lower()} where a number belongs")
            if field.annotation in _WHOLE and type(value) is float:
                if type(whole := as_whole(value)) is not int:
                    raise ValueError(f"{name}: {not_whole(value)}")
                data[name] = whole
        return data


_WHOLE = (int, int | None)
_NUMBERS = (*_WHOLE, float, float | None)


class _Searched(_Strict):
    # Active only when every named parameter has one of the listed values (e.g. momentum for sgd).
    when: dict[str, list[Scalar]] | None = None

    def refusal(self, value: Any) -> str | None:
        raise NotImplementedError

    def admits(self, value: Any) -> bool:
        return self.refusal(value) is None

    @model_validator(mode="before")
    @classmethod
    def _listify_when(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("when"), dict):
            data = {**data, "when": {k: v if isinstance(v, list) else [v] for k, v in data["when"].items()}}
            if any(not values for values in data["when"].values()):
                raise ValueError("when: a parent with no values would never make this parameter active")
        return data


class IntParam(_Searched):
    type: Literal["int"]
    low: int
    high: int
    step: int = Field(1, ge=1)
    log: bool = False

    @model_validator(mode="after")
    def _ordered(self) -> "IntParam":
        _check_range(self.low, self.high, self.log)
        if self.log and self.step != 1:
            raise ValueError("log scale and step > 1 do not go together")
        if (self.high - self.low) % self.step:
            raise ValueError(f"high - low ({self.high - self.low}) is not a multiple of step ({self.step})")
        return self

    def bounds(self) -> list[Any]:
        return [self.low, self.high]

    def refusal(self, value: Any) -> str | None:
        """Why `value` is not one of the searched values, or None."""
        if type(value) is not int:
            return not_whole(value) if type(value) is float else f"{as_written(value)} is not a whole number"
        if not self.low <= value <= self.high:
            return f"{as_written(value)} is outside the searched range [{self.low}, {self.high}]"
        return None if (value - self.low) % self.step == 0 else f"{as_written(value)} is not {self.low} plus a multiple of step {self.step}"


class FloatParam(_Searched):
    type: Literal["float"]
    low: float
    high: float
    # Values low + k * step only. A parameter compiled into the training step (dropout) then
    # takes a few values, and trials that share them share a compiled program.
    step: float | None = Field(None, gt=0)
    log: bool = False

    @model_validator(mode="after")
    def _ordered(self) -> "FloatParam":
        _check_range(self.low, self.high, self.log)
        if self.step is not None:
            if self.log:
                raise ValueError("log scale and step do not go together")
            if self.step > self.high - self.low > 0:
                raise ValueError(f"step ({self.step:g}) is larger than high - low ({self.high - self.low:g})")
            if (self.high - self.low) / self.step > MAX_GRID:
                raise ValueError(f"step ({self.step:g}) would give more than {MAX_GRID} values")
            if not _on_grid(self.high, self.low, self.step):
                raise ValueError(f"high - low ({self.high - self.low:g}) is not a multiple of step ({self.step:g})")
        return self

    def bounds(self) -> list[Any]:
        return [self.low, self.high]

    def refusal(self, value: Any) -> str | None:
        """Why `value` is not one of the searched values, or None."""
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            return f"{as_written(value)} is not a number"
        if not self.low <= value <= self.high:
            return f"{as_written(value)} is outside the searched range [{self.low:g}, {self.high:g}]"
        if self.step is not None and not _on_grid(value, self.low, self.step):
            return f"{as_written(value)} is not {self.low:g} plus a multiple of step {self.step:g}"
        return None


MAX_GRID = 10**9  # values a stepped float may take: past this the step means nothing


def _on_grid(value: float, low: float, step: float) -> bool:
    steps = (value - low) / step
    return math.isfinite(steps) and abs(steps) <= MAX_GRID and abs(steps - round(steps)) < 1e-6


class CategoricalParam(_Searched):
    type: Literal["categorical"]
    choices: list[Scalar] = Field(min_length=1)

    def bounds(self) -> list[Any]:
        return list(self.choices)

    @field_validator("choices")
    @classmethod
    def _each_once(cls, choices: list[Scalar]) -> list[Scalar]:
        # A choice listed twice is drawn twice as often: a weight no sampler was asked to give.
        for i, choice in enumerate(choices):
            if _is_one_of(choice, choices[:i]):
                raise ValueError(f"{as_written(choice)} is listed twice")
        return choices

    def refusal(self, value: Any) -> str | None:
        """Why `value` is not one of the searched values, or None."""
        return None if _is_one_of(value, self.choices) else f"{as_written(value)} is not one of the choices {list(self.choices)}"


def _is_one_of(value: Any, choices: list[Scalar]) -> bool:
    return any(value == c and type(value) is type(c) for c in choices)  # 1 is not true, nor 1.0


class BoolParam(_Searched):
    type: Literal["bool"]

    def bounds(self) -> list[Any]:
        return [False, True]

    def refusal(self, value: Any) -> str | None:
        """Why `value` is not one of the searched values, or None."""
        return None if isinstance(value, bool) else f"{as_written(value)} is not true or false"


ParamSpec = Annotated[Union[IntParam, FloatParam, CategoricalParam, BoolParam], Field(discriminator="type")]
_PARAM_ADAPTER: TypeAdapter[Any] = TypeAdapter(ParamSpec)


def _check_range(low: float, high: float, log: bool) -> None:
    if low > high:
        raise ValueError(f"low ({low}) is greater than high ({high})")
    if log and low <= 0:
        raise ValueError(f"log scale needs low > 0 (got {low})")


class InputSpec(_Strict):
    height: int = Field(ge=4, le=1024)
    width: int = Field(ge=4, le=1024)
    channels: Literal[1, 3]


PRUNE_AFTER = 2


class Training(_Strict):
    max_epochs: int = Field(20, ge=1, le=10000)
    patience: int = Field(3, ge=1, le=10000)
    validation_fraction: float = Field(0.2, gt=0, lt=1)
    test_fraction: float = Field(0.2, gt=0, lt=1)  # only for data without its own test split
    seed: int = Field(0, ge=0, le=2**32 - 1)  # what numpy's and scikit-learn's generators take
    max_train_samples: int | None = Field(None, ge=10, le=10**9)  # a subset, for quick runs
    # Epochs every trial trains before a pruner may stop it (default 2). Under a one-cycle or cosine
    # schedule early epochs rank trials by their learning rate, not by where they end.
    prune_after: int | None = Field(None, ge=0, le=10000)
    # What trials are ranked by (tuner.space.objective): balanced_accuracy for imbalanced classes.
    objective: Literal["accuracy", "balanced_accuracy", "log_loss"] = DEFAULT_OBJECTIVE

    @property
    def epochs_before_pruning(self) -> int:
        return PRUNE_AFTER if self.prune_after is None else self.prune_after


class Space(_Strict):
    name: str  # the default study name: a folder under the results folder (tuner.paths)
    dataset: Literal["digits", "mnist", "fashion_mnist", "cifar10", "folder"]
    description: str = ""
    input: InputSpec | None = None
    training: Training = Training()
    params: dict[str, Any]
    # Tried first, in order, before the sampler's own proposals: known-good configurations.
    # Each names searched parameters; the ones it leaves out are drawn by the sampler.
    start: list[dict[str, Scalar]] = []
    source: str = Field("", exclude=True)  # where it was loaded from, for messages

    @field_validator("name")
    @classmethod
    def _plain_name(cls, name: str) -> str:
        if (why := name_problem(name)) is not None:
            raise ValueError(f"{name[:60]!r} cannot name a study: {why} ({NAME_RULE})")
        return name

    @model_validator(mode="after")
    def _check_params(self) -> "Space":
        info = DATASETS[self.dataset]
        if info.input_shape is None and self.input is None:
            raise ValueError("dataset 'folder' needs an `input` section (height, width, channels)")
        parsed = {name: _parse_param(name, value, self.params) for name, value in self.params.items()}
        object.__setattr__(self, "params", parsed)
        for name, spec in parsed.items():
            parsed[name] = spec = _when_as_kinds(spec)
            _check_when(name, spec, parsed)
        _check_domain_rules(self)
        for i, point in enumerate(self.start):
            _check_start_point(self, i, point)
            if point in self.start[:i]:  # Optuna's queue would drop it without a word
                raise ValueError(f"start[{i}]: the same as start[{self.start.index(point)}]; a start point runs once")
        return self

    @property
    def input_shape(self) -> tuple[int, int, int]:
        if self.input is not None:
            return (self.input.height, self.input.width, self.input.channels)
        shape = DATASETS[self.dataset].input_shape
        assert shape is not None
        return shape

    @property
    def objective(self) -> Objective:
        return OBJECTIVES[self.training.objective]

    def searched(self) -> dict[str, Any]:
        return {k: v for k, v in self.params.items() if isinstance(v, _Searched)}

    def fixed(self) -> dict[str, Any]:
        return {k: v for k, v in self.params.items() if not isinstance(v, _Searched)}

    def is_active(self, name: str, chosen: dict[str, Any]) -> bool:
        return all(chosen.get(k) in allowed for k, allowed in self._when(name).items())

    def _when(self, name: str) -> dict[str, Any]:
        """The parent values `name` is searched under (none: always)."""
        spec = self.params.get(name)
        return (spec.when if isinstance(spec, _Searched) else None) or {}

    def complete(self, chosen: dict[str, Any]) -> dict[str, Any]:
        """The full parameter dict of a trial: defaults, then fixed values, then `chosen`."""
        return complete_params({**self.fixed(), **chosen})

    def with_overrides(self, epochs: int | None = None, fixed: dict[str, Any] | None = None) -> "Space":
        """A copy with `--epochs` and `--set name=value` applied, validated again."""
        data = self.to_dict()
        given = [f"--set {name}" for name in fixed or {}] + (["--epochs"] if epochs is not None else [])
        if epochs is not None:
            data["training"]["max_epochs"] = epochs
        if (fixed or {}).get("augment", 1) == 0:  # no augmentation: its parts are off too, unless set
            fixed = {**{n: PARAMETERS[n].default for n in AUGMENTATION_PARTS if n in self.params}, **fixed}
        for name, value in (fixed or {}).items():
            data["params"][name] = value
        data["start"] = self._start_under(fixed or {})
        return replace_source(parse_space(data, f"{self.source} with {', '.join(given)}" if given else self.source),
                              self.source)

    def _start_under(self, fixed: dict[str, Any]) -> list[dict[str, Any]]:
        """The start points once `fixed` values win over theirs: a value a fixed parent makes
        inactive goes too (`--set optimizer=adam` and a point's `momentum`), a point left saying
        nothing is none, and points that then say the same run once (cifar10's two differ in
        width alone: `--set width=16`)."""
        points = [{k: v for k, v in point.items() if k not in fixed and self._active_under(k, fixed)}
                  for point in self.start]
        return [p for i, p in enumerate(points) if (p or not self.start[i]) and p not in points[:i]]

    def idle_augmentation(self) -> list[str]:
        """Augmentation's parts set or searched on where `augment` is 0 in every trial: each
        changes nothing (a warning, not a refusal: a study recorded with such a space still opens)."""
        if max(_extremes(self, "augment")) > 0:
            return []
        return [n for n in AUGMENTATION_PARTS if any(_extremes(self, n))]

    def idle_under(self, fixed: dict[str, Any]) -> dict[str, dict[str, Any]]:
        """The values of `fixed` (`--set`) that change nothing once the others are fixed too (the
        space searches them only under parent values `fixed` rules out), with their conditions."""
        return {name: self._when(name) for name in fixed if not self._active_under(name, fixed)}

    def _active_under(self, name: str, fixed: dict[str, Any]) -> bool:
        """Whether `fixed` values leave `name` active (parents it does not fix may go either way)."""
        return all(fixed[k] in allowed for k, allowed in self._when(name).items() if k in fixed)

    def to_dict(self) -> dict[str, Any]:
        data = self.model_dump(mode="json", exclude_none=True)
        if not self.start:
            del data["start"]  # a space without start points: its fingerprint does not depend on the key
        if self.training.objective == DEFAULT_OBJECTIVE:
            del data["training"]["objective"]  # likewise: a study made before objectives still opens
        data["params"] = {k: v.model_dump(mode="json", exclude_none=True, exclude_defaults=True) | {"type": v.type}
                          if isinstance(v, _Searched) else v for k, v in self.params.items()}
        return data

    def fingerprint(self) -> str:
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()[:16]


def _parse_param(name: str, value: Any, declared: dict[str, Any]) -> Any:
    if name not in PARAMETERS:
        raise ValueError(f"params.{name}: unknown parameter (known: {', '.join(PARAMETERS)})")
    if not isinstance(value, dict):
        value = _as_kind(name, value)
        if (why := check_value(name, value)) is not None:
            raise ValueError(f"params.{name}: {why}")
        return value
    try:
        spec = _PARAM_ADAPTER.validate_python(value)
    except ValidationError as e:
        raise ValueError(_describe(e, f"params.{name}")) from None
    if isinstance(spec, CategoricalParam):  # [0, 0.1] for a float: one type, as both engines need
        try:  # and once more whether each is there once: [16, 16.0] for an int is [16, 16]
            choices = CategoricalParam._each_once([_as_kind(name, c) for c in spec.choices])
        except ValueError as e:
            raise ValueError(f"params.{name}.choices: {e}") from None
        spec = spec.model_copy(update={"choices": choices})
    for bound in spec.bounds():
        if (why := check_value(name, bound)) is not None:
            raise ValueError(f"params.{name}: {why}")
    for other in spec.when or {}:
        if other not in declared or list(declared).index(other) >= list(declared).index(name):
            raise ValueError(f"params.{name}.when: '{other}' must be a parameter declared before '{name}'")
    return spec


def _when_as_kinds(spec: Any) -> Any:
    """A `when` value as its parent's kind means it (`when: {depth: 1.0}` is depth 1), each once."""
    if not isinstance(spec, _Searched) or not spec.when:
        return spec
    when = {parent: list(dict.fromkeys(_as_kind(parent, v) if parent in PARAMETERS else v for v in values))
            for parent, values in spec.when.items()}
    return spec.model_copy(update={"when": when})


def _check_when(name: str, spec: Any, params: dict[str, Any]) -> None:
    """Every value a `when` names must be one its parent can take, else the child would never be
    active. A parent fixed to another value (`--set optimizer=adam`) rules the child out on purpose."""
    for parent, allowed in ((spec.when if isinstance(spec, _Searched) else None) or {}).items():
        parent_spec = params[parent]
        for value in allowed:
            why = check_value(parent, value)
            if why is None and isinstance(parent_spec, _Searched) and not parent_spec.admits(value):  # as its kind already
                why = f"{as_written(value)} is not among the values {parent} takes ({parent_spec.bounds()})"
            if why is not None:
                raise ValueError(f"params.{name}.when.{parent}: {why}, so {name} would never be active")


def _check_start_point(space: Space, index: int, point: dict[str, Any]) -> None:
    where = f"start[{index}]"
    searched = space.searched()
    for name, value in point.items():
        spec = searched.get(name)
        if spec is None:
            why = "is fixed by the space" if name in space.params else "is not a searched parameter of this space"
            raise ValueError(f"{where}.{name}: {why}")
        value = point[name] = _as_kind(name, value)
        if (why := spec.refusal(value)) is not None:
            raise ValueError(f"{where}.{name}: {why}")
    chosen = {**space.fixed(), **point}
    for name in point:
        if not space.is_active(name, chosen):
            raise ValueError(f"{where}.{name}: inactive here (needs {searched[name].when})")


MAX_DIGIT_ROTATION = 45.0  # degrees, for data that must not be mirrored either
# How many times each family halves its input at a given depth (`tuner.training.model`).
# Separable blocks downsample with "same" padding: their maps end at 1x1, never at nothing.
HALVINGS = {"mlp": lambda depth: 0, "lenet": lambda depth: depth, "cnn": lambda depth: depth,
            "resnet": lambda depth: depth, "separable": lambda depth: 0}


def _deepest(space: Space, family: str) -> int:
    """The largest depth trials of `family` can get: the searched range where it applies to
    the family, else the fixed value or the default."""
    spec = space.params.get("depth", PARAMETERS["depth"].default)
    if not isinstance(spec, _Searched):
        return spec
    families = (spec.when or {}).get("model")
    return max(spec.bounds()) if families is None or family in families else PARAMETERS["depth"].default


def _as_kind(name: str, value: Any) -> Any:
    """An int given for a float parameter, as the float it means (0 for 0.0), and a whole float
    for an int parameter, as the int it means (`--set width=16.0`) where a float holds it exactly;
    else as given (then refused as out of range or not whole)."""
    kind = PARAMETERS[name].kind
    if kind is float and type(value) is int and value.bit_length() <= 1000:  # past that, past a float's range
        return float(value)
    if kind is float and type(value) is float and value == 0:
        return 0.0  # not -0.0: the same space, the same fingerprint
    return as_whole(value) if kind is int else value


# What `augment` scales or turns on: with augment 0 each changes nothing.
AUGMENTATION_PARTS = ("flip", "rotation", "zoom")


def _extremes(space: Space, name: str) -> list[Any]:
    """A parameter's fixed value, or the bounds (or choices) it is searched over."""
    spec = space.params.get(name, PARAMETERS[name].default)
    return spec.bounds() if isinstance(spec, _Searched) else [spec]


def _check_domain_rules(space: Space) -> None:
    values = functools.partial(_extremes, space)

    if not DATASETS[space.dataset].flips and any(values("flip")) | any(values("tta_flip")):
        raise ValueError(f"params.flip: {space.dataset} images must not be mirrored (a mirrored digit is another class)")
    if not DATASETS[space.dataset].flips and max(values("rotation")) > MAX_DIGIT_ROTATION:
        raise ValueError(f"params.rotation: {space.dataset} images must not turn by more than {MAX_DIGIT_ROTATION:g} "
                         f"degrees (a 6 turned half-way is a 9)")
    height, width, _ = space.input_shape
    if 2 * max(values("max_shift")) > min(height, width):
        raise ValueError(f"params.max_shift: a shift of {max(values('max_shift'))} pixels moves more than half of a "
                         f"{height}x{width} image out of its frame (at most {min(height, width) // 2})")
    if 2 * max(values("cutout")) > min(height, width):
        raise ValueError(f"params.cutout: a {max(values('cutout'))}-pixel square blanks more than half the side of a "
                         f"{height}x{width} image (at most {min(height, width) // 2})")
    for family in values("model"):
        deepest = _deepest(space, family)
        if (halvings := HALVINGS[family](deepest)) and 2 ** halvings > min(height, width):
            raise ValueError(f"params.depth: {family} at depth {deepest} halves the input {halvings} times, which "
                             f"shrinks a {height}x{width} input to nothing")


def _describe(error: ValidationError, prefix: str = "") -> str:
    """The first pydantic error as 'field.path[0]: message'."""
    first = error.errors()[0]
    place = first["loc"]
    if first["type"] == "invalid_key" or place[-1:] == ("[key]",):  # a key that is not text: name its mapping
        place = place[:-1] if first["type"] == "invalid_key" else place[:-2]
        first = {**first, "loc": place, "type": "key", "msg": f"the key {as_written(first['input'])} is not a name "
                                                              f"(a key is text, e.g. depth)"}
    loc = prefix + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in place if p not in _UNION_TAGS)
    loc = loc.removeprefix(".")
    msg = first["msg"].removeprefix("Value error, ")
    if loc and first["type"] == "value_error" and (field := re.match(r"(\w+): ", msg)):  # a model's check of one field
        loc, msg = f"{loc}.{field[1]}", msg[field.end():]
    if first["type"] == "extra_forbidden":
        msg = "unknown key"
    elif first["type"] == "union_tag_not_found":
        msg = "a searched parameter needs a type: int, float, categorical or bool"
    elif first["type"] in ("model_type", "model_attributes_type", "dict_type"):
        msg = f"must be a mapping (key: value lines), not {as_written(first['input'])}"
    elif first["type"] == "union_tag_invalid":
        msg = f"unknown type {first['input'].get('type')!r} (int, float, categorical or bool)"
    elif first["type"] in _STRICT_KINDS and isinstance(first["input"], str):  # a quoted number: strict, never "1" for 1
        unquoted = " (write it without quotes)" if first["type"] != "bool_type" and _a_number(first["input"]) else ""
        msg = f"{first['input']!r} is text where {KIND_WORDS[_STRICT_KINDS[first['type']]]} belongs{unquoted}"
    elif _refused_as_every_scalar(error.errors(), first["loc"][:-1]):  # pydantic would name the first kind only
        msg = f"must be one finite number, text or true/false, not {as_written(first['input'])}"
    return f"{loc}: {msg}" if loc else msg


_STRICT_KINDS = {"int_type": int, "float_type": float, "bool_type": bool}  # pydantic's error for each


def _a_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
_UNION_TAGS = ("int", "float", "categorical", "bool", "str")  # the kinds pydantic names in an error's place
_SCALAR_TAGS = {"bool", "int", "float", "str"}


def _refused_as_every_scalar(errors: list[Any], place: tuple) -> bool:
    return _SCALAR_TAGS <= {e["loc"][-1] for e in errors if e["loc"] and e["loc"][:-1] == place}


def replace_source(space: Space, source: str) -> Space:
    """The space as loaded from `source` (an override's checks named it in their messages)."""
    object.__setattr__(space, "source", source)
    return space


def parse_space(data: Any, source: str) -> Space:
    if not isinstance(data, dict):
        raise UserError(f"{source}: a space file must be a YAML mapping")
    try:
        return Space.model_validate({**data, "source": source})
    except ValidationError as e:
        raise UserError(f"{source}: {_describe(e)}") from None
