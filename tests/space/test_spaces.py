"""Space files: the built-ins load, bad files give one line naming file and field."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tuner.errors import UserError
from tuner.space.params import PARAMETERS
from tuner.space.files import builtin_spaces, load_space
from tuner.space.schema import parse_space

from conftest import TINY_SPACE

BASE = {"name": "t", "dataset": "digits", "params": {"depth": {"type": "int", "low": 1, "high": 2}}}


def test_builtin_spaces_cover_the_datasets():
    names = set(builtin_spaces())
    assert {"digits", "mnist", "fashion_mnist", "cifar10", "folder"} <= names
    for name in names:
        space = load_space(name)
        assert space.dataset in ("digits", "mnist", "fashion_mnist", "cifar10", "folder")
        # The minimum: these are searched (or deliberately fixed) in every built-in space.
        for param in ("depth", "width", "dropout", "l2", "learning_rate", "lr_schedule", "optimizer", "augment"):
            assert param in space.params, (name, param)


def test_domain_rules_in_builtins():
    assert load_space("digits").params["flip"] is False
    assert load_space("mnist").params["flip"] is False
    assert load_space("cifar10").searched()["tta_flip"].type == "bool" and load_space("cifar10").params["flip"] is True
    assert load_space("fashion_mnist").searched()["flip"].type == "bool"
    assert load_space("digits").searched()["momentum"].when == {"optimizer": ["sgd"]}


def test_complete_fills_every_parameter_and_conditions_apply():
    space = load_space("digits")
    params = space.complete({"optimizer": "adam", "depth": 2})
    assert set(params) == set(PARAMETERS)
    assert params["depth"] == 2 and params["max_shift"] == 1
    assert not space.is_active("momentum", {"optimizer": "adam"})
    assert space.is_active("momentum", {"optimizer": "sgd"})


def test_overrides_fix_parameters_and_epochs():
    space = load_space("digits").with_overrides(epochs=1, fixed={"optimizer": "sgd", "depth": 1})
    assert space.training.max_epochs == 1
    assert space.params["optimizer"] == "sgd" and "optimizer" not in space.searched()
    assert space.fingerprint() != load_space("digits").fingerprint()


def test_override_is_validated_too():
    with pytest.raises(UserError, match="params.optimizer: 'lion' is not allowed"):
        load_space("digits").with_overrides(fixed={"optimizer": "lion"})


@pytest.mark.parametrize("change, message", [
    ({"foo": 1}, "foo: unknown key"),
    ({"dataset": "svhn"}, "dataset: Input should be"),
    ({"params": {"dept": 1}}, "params.dept: unknown parameter"),
    ({"params": {"depth": {"type": "int", "low": 3, "high": 2}}}, "params.depth: low (3) is greater than high (2)"),
    ({"params": {"depth": {"type": "integer", "low": 1, "high": 2}}}, "params.depth: unknown type 'integer'"),
    ({"params": {"optimizer": {"type": "categorical", "choices": []}}}, "params.optimizer.choices"),
    ({"params": {"optimizer": {"type": "categorical", "choices": ["adam", "lion"]}}}, "'lion' is not allowed"),
    ({"params": {"depth": {"type": "int", "low": 1, "high": 5}}}, "params.depth: cnn at depth 5 halves the input 5 times"),
    ({"params": {"flip": True}}, "params.flip: digits images must not be mirrored"),
    ({"params": {"depth": "two"}}, "params.depth: 'two' is not a whole number"),
    ({"params": {"momentum": {"type": "float", "low": 0.8, "high": 0.9, "when": {"optimizer": "sgd"}}}},
     "params.momentum.when: 'optimizer' must be a parameter declared before"),
    ({"params": {"learning_rate": {"type": "float", "low": 0, "high": 0.1, "log": True}}}, "log scale needs low > 0"),
    ({"params": {"dropout": {"type": "float", "low": 0.0, "high": 0.5, "step": 0.2}}}, "not a multiple of step (0.2)"),
    ({"params": {"dropout": {"type": "float", "low": 0.0, "high": 0.5, "step": 1e30}}}, "step (1e+30) is larger than high - low"),
    ({"params": {"dropout": {"type": "float", "low": 0.0, "high": 0.5, "step": True}}}, "params.dropout.step: true where a number"),
    ({"params": {"depth": {"type": "int", "low": True, "high": 2}}}, "params.depth.low: true where a number belongs"),
    ({"training": {"max_epochs": True}}, "training.max_epochs: true where a number belongs"),
    ({"training": 5}, "training: must be a mapping (key: value lines), not 5"),
    ({"params": {"cutout": {"a": 1}}}, "params.cutout: a searched parameter needs a type: int, float, categorical or bool"),
    ({"training": {"seed": False}}, "training.seed: false where a number belongs"),
    ({"params": {"l2": {"type": "float", "low": 1e-5, "high": 1e-3, "log": True, "step": 1e-5}}}, "log scale and step"),
    ({"training": {"max_epochs": 0}}, "training.max_epochs"),
    ({"training": {"max_epoch": 3}}, "training.max_epoch: unknown key"),
    ({"dataset": "folder"}, "needs an `input` section"),
    ({"params": {"rotation": 90.0}}, "params.rotation: digits images must not turn by more than 45 degrees"),
    ({"params": {"rotation": {"type": "float", "low": 0.0, "high": 46.0}}}, "must not turn by more than 45"),
    ({"params": {"model": {"type": "categorical", "choices": ["mlp", "lenet"]}, "depth": 4}},
     "lenet at depth 4 halves the input 4 times"),
    ({"params": {"activation": "softmax"}}, "params.activation: 'softmax' is not allowed"),
    ({"params": {"kernel_initializer": "orthogonal"}}, "'orthogonal' is not allowed"),
    ({"params": {"pooling": "min"}}, "params.pooling: 'min' is not allowed"),
    ({"params": {"max_norm": -1.0}}, "params.max_norm: -1.0 is not allowed"),
    ({"params": {"zoom": 1.0}}, "params.zoom: 1.0 is not allowed"),
    ({"params": {"max_shift": 5}}, "params.max_shift: a shift of 5 pixels moves more than half of a 8x8 image out of its "
                                   "frame (at most 4)"),
    ({"params": {"cutout": 9}}, "params.cutout: a 9-pixel square blanks more than half the side of a 8x8 image (at most 4)"),
    ({"params": {"cutout": {"type": "categorical", "choices": [0, 5]}}}, "params.cutout: a 5-pixel square"),
    ({"params": {"l1": {"type": "float", "low": 0.0, "high": 2.0}}}, "params.l1: 2.0 is not allowed"),
    ({"params": {"learning_rate": {"type": "float", "low": "0.001", "high": 0.1}}},
     "params.learning_rate.low: '0.001' is text where a number belongs (write it without quotes)"),
    ({"params": {"depth": {"type": "int", "low": 1, "high": "2"}}}, "params.depth.high: '2' is text where a whole number"),
    ({"params": {"learning_rate": {"type": "float", "low": 0.001, "high": 0.1, "log": "yes"}}},
     "params.learning_rate.log: 'yes' is text where true or false belongs"),
    ({"training": {"max_epochs": "3"}}, "training.max_epochs: '3' is text where a whole number belongs"),
    ({"training": {"validation_fraction": "0.1"}}, "training.validation_fraction: '0.1' is text where a number"),
    ({"params": {"width": {"type": "categorical", "choices": [8, 16, 8]}}}, "params.width.choices: 8 is listed twice"),
    ({"params": {"optimizer": {"type": "categorical", "choices": ["adam", "sgd", "adam"]}}}, "'adam' is listed twice"),
    ({"params": {1: 2}}, "params: the key 1 is not a name"),  # was "params[1].[key]: Input should be a valid string"
    ({"params": {None: 2}}, "params: the key null is not a name"),
    ({"training": {3: 2}}, "training: the key 3 is not a name"),  # was "training[3]: Keys should be strings"
])
def test_invalid_space_is_one_line_naming_file_and_field(change, message):
    with pytest.raises(UserError) as e:
        parse_space({**BASE, **change}, "my.yaml")
    text = str(e.value)
    assert text.startswith("my.yaml: ") and message in text and "\n" not in text


def test_a_key_given_twice_is_refused_with_its_line(tmp_path: Path):
    twice = tmp_path / "twice.yaml"
    twice.write_text((Path(__file__).parents[1] / "spaces" / "tiny_digits.yaml").read_text() + "name: other\n")
    with pytest.raises(UserError, match=r"twice.yaml: line \d+: 'name' is given twice in one mapping"):
        load_space(str(twice))


def test_invalid_yaml_and_missing_file(tmp_path: Path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nparams: [unclosed\n")
    with pytest.raises(UserError, match=r"bad.yaml: line \d+ invalid YAML"):
        load_space(str(bad))
    with pytest.raises(UserError, match="no space 'nope'"):
        load_space("nope")


@pytest.mark.parametrize("point, message", [
    ({"width": 100}, "start[0].width: 100 is outside the searched range [4, 16]"),
    ({"width": 5.5}, "start[0].width: 5.5 is not a whole number"),
    ({"width": "abc"}, "start[0].width: 'abc' is not a whole number"),
    ({"learning_rate": "abc"}, "start[0].learning_rate: 'abc' is not a number"),
    ({"batch_norm": 1}, "start[0].batch_norm: 1 is not true or false"),
    ({"model": "resnet"}, "start[0].model: is fixed by the space"),
    ({"tta_flip": True}, "start[0].tta_flip: is not a searched parameter"),
    ({"optimizer": "adam", "momentum": 0.9}, "start[0].momentum: inactive here"),
    ({"optimizer": "rmsprop"}, "start[0].optimizer: 'rmsprop' is not one of the choices ['adam', 'sgd']"),
    ({"head_units": "16"}, "start[0].head_units: '16' is not one of the choices [0, 16]"),
])
def test_start_points_are_checked_against_the_space(point, message):
    data = load_space(str(TINY_SPACE)).to_dict()
    data["start"] = [point]
    with pytest.raises(UserError, match=re.escape(message)):
        parse_space(data, "my.yaml")


NOT_ONE_VALUE = [float("nan"), float("inf"), None, ["cnn", "mlp"], {"a": 1}]


@pytest.mark.parametrize("value", NOT_ONE_VALUE)
def test_a_start_point_value_that_is_not_one_value_is_named_as_such(value):
    data = load_space(str(TINY_SPACE)).to_dict()
    data["start"] = [{"width": 8}, {"width": value}]
    with pytest.raises(UserError) as e:
        parse_space(data, "my.yaml")
    assert str(e.value).startswith("my.yaml: start[1].width: must be one finite number, text or true/false, not ")


def test_a_choice_that_is_not_one_value_is_named_as_such():
    with pytest.raises(UserError, match=re.escape("params.optimizer.choices[1]: must be one finite number, text or "
                                                  "true/false, not null")):
        parse_space({**BASE, "params": {"optimizer": {"type": "categorical", "choices": ["adam", None]}}}, "my.yaml")


_NOT_SCALAR = st.one_of(st.none(), st.just(float("nan")), st.just(float("-inf")),
                        st.lists(st.integers(), max_size=3), st.dictionaries(st.text(max_size=3), st.integers(), max_size=2))


@settings(max_examples=60, deadline=None, derandomize=True)
@given(name=st.sampled_from(["width", "depth", "learning_rate", "optimizer", "model"]), value=_NOT_SCALAR)
def test_any_start_point_value_that_is_not_one_value_is_one_line_naming_it(name, value):
    data = load_space(str(TINY_SPACE)).to_dict()
    data["start"] = [{name: value}]
    with pytest.raises(UserError) as e:
        parse_space(data, "my.yaml")
    text = str(e.value)
    assert text.startswith(f"my.yaml: start[0].{name}: must be one finite number") and "\n" not in text


def test_a_start_point_off_a_stepped_grid_says_so():
    data = {**BASE, "params": {"dropout": {"type": "float", "low": 0.0, "high": 0.5, "step": 0.05}}, "start": [{"dropout": 0.123}]}
    with pytest.raises(UserError, match=re.escape("start[0].dropout: 0.123 is not 0 plus a multiple of step 0.05")):
        parse_space(data, "my.yaml")


def test_a_repeated_start_point_is_refused():
    data = load_space(str(TINY_SPACE)).to_dict()
    data["start"] = [{"width": 8}, {"width": 5}, {"width": 8}]
    with pytest.raises(UserError, match=re.escape("start[2]: the same as start[0]; a start point runs once")):
        parse_space(data, "my.yaml")


def test_set_overrides_the_start_points_value():
    data = load_space(str(TINY_SPACE)).to_dict()
    data["start"] = [{"width": 8, "depth": 2}]
    space = parse_space(data, "my.yaml").with_overrides(fixed={"width": 4})
    assert space.start == [{"depth": 2}] and space.fixed()["width"] == 4


def test_start_points_that_a_set_value_makes_alike_run_once():
    """cifar10's two start points differ in width alone: the README's CPU smoke run (`--set
    width=16`) was refused ("start[1]: the same as start[0]")."""
    space = load_space("cifar10").with_overrides(epochs=1, fixed={"width": 16})
    assert len(space.start) == 1 and "width" not in space.start[0] and space.fixed()["width"] == 16
    assert load_space("cifar10").with_overrides(fixed={"learning_rate": 0.2}).start == [
        {k: v for k, v in p.items() if k != "learning_rate"} for p in load_space("cifar10").start]


@pytest.mark.parametrize("fixed, start", [
    ({"optimizer": "adam"}, [{"width": 8, "learning_rate": 0.01}, {"width": 12, "learning_rate": 0.01}, {"width": 4}]),
    ({"optimizer": "sgd"}, [{"width": 8, "momentum": 0.9, "learning_rate": 0.01},
                            {"width": 12, "momentum": 0.9, "learning_rate": 0.01}, {"width": 4}]),
    ({"width": 16}, [{"optimizer": "sgd", "momentum": 0.9, "learning_rate": 0.01}]),  # the third said width alone
    ({"width": 16, "optimizer": "adam"}, [{"learning_rate": 0.01}]),
])
def test_set_values_take_the_start_points_values_they_make_inactive_or_alike(fixed, start):
    """A point's `momentum` under `--set optimizer=adam` was refused ("inactive here"); a point
    that said only the value fixed ran on as a "start point" of the sampler's draws."""
    data = load_space(str(TINY_SPACE)).to_dict()  # optimizer adam or sgd, momentum when sgd
    data["start"] = [{"width": w, "optimizer": "sgd", "momentum": 0.9, "learning_rate": 0.01} for w in (8, 12)]
    data["start"].append({"width": 4})
    assert parse_space(data, "my.yaml").with_overrides(fixed=fixed).start == start


@pytest.mark.parametrize("params, idle", [
    ({"rotation": 10.0}, ["rotation"]),  # augment's default is 0
    ({"augment": 0.0, "zoom": {"type": "categorical", "choices": [0.0, 0.1]}}, ["zoom"]),
    ({"augment": 0.0, "rotation": 5.0, "zoom": 0.1}, ["rotation", "zoom"]),
    ({"augment": {"type": "float", "low": 0.0, "high": 1.0}, "rotation": 10.0}, []),  # some trials augment
    ({"augment": 0.5, "rotation": 10.0}, []),
    ({"augment": 0.0, "rotation": 0.0}, []),
])
def test_augmentations_parts_that_change_nothing_are_named(params, idle):
    """Searching flip, rotation or zoom with augmentation off trained every trial alike and said
    nothing. A warning, not a refusal: a study recorded with such a space must still open."""
    assert parse_space({**BASE, "params": {**BASE["params"], **params}}, "my.yaml").idle_augmentation() == idle


def test_set_augment_0_turns_off_what_it_scales_unless_set_and_a_part_set_on_is_warned_about():
    from tuner.cli.options import requested_space

    said: list[str] = []
    space = requested_space("fashion_mnist_regularization", None, ("augment=0",), said.append)
    assert {n: space.params[n] for n in ("augment", "flip", "rotation", "zoom")} == {
        "augment": 0.0, "flip": False, "rotation": 0.0, "zoom": 0.0}
    assert len(space.start) == 1 and not {"augment", "flip", "rotation", "zoom"} & set(space.start[0]) and said == []
    requested_space("fashion_mnist_regularization", None, ("augment=0", "flip=true"), said.append)
    assert said == ["flip changes nothing in this space: augment, which turns augmentation on, is 0 in every trial "
                    "(search or set augment above 0, or leave flip out)"]


@settings(max_examples=60, deadline=None, derandomize=True)
@given(data=st.data())
def test_any_built_in_space_takes_any_of_its_searched_parameters_fixed_at_a_bound(data):
    """Fixing searched parameters at one of their bounds with --set gives a space, never a refusal
    of the start points the user did not write."""
    space = load_space(data.draw(st.sampled_from(sorted(builtin_spaces()))))
    searched = space.searched()
    names = data.draw(st.lists(st.sampled_from(sorted(searched)), unique=True, max_size=4)) if searched else []
    fixed = {name: data.draw(st.sampled_from(list(searched[name].bounds()))) for name in names}
    overridden = space.with_overrides(fixed=fixed)
    if fixed.get("augment") == 0:  # its parts off, but where set on too: named as changing nothing
        assert overridden.idle_augmentation() == [n for n in ("flip", "rotation", "zoom") if fixed.get(n)]
    assert all(point and not set(point) & set(fixed) for point in overridden.start)
    assert len(overridden.start) == len({json.dumps(p, sort_keys=True) for p in overridden.start})


@pytest.mark.parametrize("params", [
    {"model": "separable", "depth": 6},  # "same" padding: its maps end at 1x1, never at nothing
    {"model": {"type": "categorical", "choices": ["mlp", "cnn"]},  # cnn keeps the default depth 2
     "depth": {"type": "int", "low": 1, "high": 6, "when": {"model": "mlp"}}},
    {"max_norm": {"type": "categorical", "choices": [0.0, 3.0]},
     "l1": {"type": "float", "low": 0.0, "high": 1e-3, "when": {"max_norm": 3}}},  # 3 means 3.0
])
def test_spaces_that_build_are_accepted(params):
    from tuner.training.model import build_model

    space = parse_space({**BASE, "params": params}, "ok.yaml")
    searched = space.searched()
    families = searched["model"].bounds() if "model" in searched else [space.params.get("model", "cnn")]
    for family in families:  # each family at the deepest it can be given
        chosen = {"model": family} if "model" in searched else {}
        if "depth" in searched and space.is_active("depth", chosen):
            chosen["depth"] = max(searched["depth"].bounds())
        if "max_norm" in searched:
            chosen["max_norm"] = 3.0
        model = build_model(space.complete(chosen), (8, 8, 1), 10)
        assert model.output.shape[-1] == 10


def test_an_int_for_a_float_is_the_float_it_means_in_choices_and_start_points():
    """`[0, 0.1]` for zoom is one type (KerasTuner refuses mixed choices) and a start point's 0 is 0.0."""
    import keras_tuner as kt

    from tuner.search.engines.kerastuner_engine import declare

    space = parse_space({**BASE, "params": {"augment": 1.0, "zoom": {"type": "categorical", "choices": [0, 0.1]}},
                         "start": [{"zoom": 0}]}, "mixed.yaml")
    assert space.params["zoom"].choices == [0.0, 0.1] and all(type(c) is float for c in space.params["zoom"].choices)
    assert space.start == [{"zoom": 0.0}] and type(space.start[0]["zoom"]) is float
    assert declare(kt.HyperParameters(), space)["zoom"] in (0.0, 0.1)


@settings(max_examples=80, deadline=None, derandomize=True)
@given(height=st.integers(4, 300), width=st.integers(4, 300), size=st.integers(0, 64), searched=st.booleans(),
       name=st.sampled_from(["max_shift", "cutout"]))
def test_a_shift_or_cutout_is_refused_exactly_when_it_takes_more_than_half_the_image(height, width, size, searched, name):
    value = {"type": "int", "low": 0, "high": size} if searched and size > 0 else size
    data = {"name": "t", "dataset": "folder", "input": {"height": height, "width": width, "channels": 3},
            "params": {"model": "mlp", name: value}}
    if 2 * size <= min(height, width):
        assert parse_space(data, "my.yaml").params[name] is not None
    else:
        with pytest.raises(UserError, match=re.escape(f"my.yaml: params.{name}: a ")):
            parse_space(data, "my.yaml")


@settings(max_examples=80, deadline=None, derandomize=True)
@given(name=st.sampled_from(["width", "dropout", "optimizer", "batch_norm", "learning_rate"]),
       value=st.one_of(st.booleans(), st.integers(-5, 40), st.floats(-1, 40, allow_nan=False), st.text(max_size=5),
                       st.sampled_from(["adam", "sgd"])))
def test_any_one_value_in_a_start_point_is_taken_exactly_when_searched_or_says_why(name, value):
    data = load_space(str(TINY_SPACE)).to_dict()
    data["start"] = [{name: value}]
    spec = load_space(str(TINY_SPACE)).params[name]
    expected = spec.refusal(float(value) if type(value) is int and spec.type == "float" else value)
    if expected is None:
        assert parse_space(data, "my.yaml").start
    else:
        with pytest.raises(UserError, match=re.escape(f"my.yaml: start[0].{name}: {expected}")):
            parse_space(data, "my.yaml")


_TEXT_FOR = {  # a searched parameter's field that takes a number or true/false, with a sound rest of its spec
    "low": {"type": "float", "high": 0.1}, "high": {"type": "float", "low": 0.001},
    "step": {"type": "float", "low": 0.0, "high": 0.5}, "log": {"type": "float", "low": 0.001, "high": 0.1},
}


@settings(max_examples=100, deadline=None, derandomize=True)
@given(field=st.sampled_from(sorted(_TEXT_FOR)), text=st.text(max_size=8))
def test_text_where_a_number_or_true_false_belongs_is_never_read_as_one(field, text):
    """YAML quotes make text of `"0.001"` or `'yes'`: pydantic's lax mode would read them as the
    number or the boolean; a space file says what it means or is refused."""
    with pytest.raises(UserError) as e:
        parse_space({**BASE, "params": {"dropout": {**_TEXT_FOR[field], field: text}}}, "my.yaml")
    assert f"params.dropout.{field}: {text!r} is text where" in str(e.value) and "\n" not in str(e.value)


@settings(max_examples=200, deadline=None, derandomize=True)
@given(x=st.floats(min_value=1e-12, max_value=9.0), notation=st.sampled_from(["{:e}", "{:g}", "{:E}", "{!r}", "{:.3e}"]),
       exponent=st.sampled_from(["", "no-plus"]))
def test_a_number_in_any_usual_notation_is_a_number(x, notation, exponent):
    """PyYAML (YAML 1.1) reads `1e-4` and `1e3` as text, which a strict space would refuse: a
    learning rate written as a user writes it is a number."""
    from tuner.space.reading import safe_yaml

    text = notation.format(x)
    if exponent:
        text = text.replace("e+", "e").replace("E+", "E")
    assert safe_yaml(f"low: {text}", "my.yaml") == {"low": float(text)}
    space = parse_space({**BASE, "params": {"learning_rate": {"type": "float", "low": float(text), "high": 10.0,
                                                              "log": True}}}, "my.yaml")
    assert space.params["learning_rate"].low == float(text)


@pytest.mark.parametrize("value, taken", [(16.0, 16), (16, 16), (1e1, 10), (16.5, None), (float("inf"), None), (True, None)])
def test_a_whole_float_for_an_int_parameter_is_that_int(value, taken):
    """`--set width=16.0` was refused as not a whole number."""
    if taken is None:
        with pytest.raises(UserError, match="params.width: "):
            load_space("cifar10").with_overrides(fixed={"width": value})
        return
    space = load_space("cifar10").with_overrides(fixed={"width": value})
    assert space.fixed()["width"] == taken and type(space.fixed()["width"]) is int
    point = parse_space({**BASE, "params": {"width": {"type": "int", "low": 8, "high": 32}}, "start": [{"width": value}]},
                        "my.yaml").start
    assert point == [{"width": taken}] and type(point[0]["width"]) is int


@pytest.mark.parametrize("sets, said", [
    (("width=1e300",), "params.width: 1e+300 is too large to be read as a whole number (write it as digits)"),  # not its 301 digits
    (("width=1e19",), "params.width: 1e+19 is too large to be read as a whole number"),  # whole, past a float's exact ints
    (("width=0x_",), "params.width: '0x_' is not a whole number"),  # malformed, not "too long to read"
    (("learning_rate=1" + "0" * 400,), "params.learning_rate: a whole number of about 10^400 is past any number allowed"),
    (("width=1" + "0" * 5000,), "--set width: a number too long to read (Exceeds the limit (4300 digits)"),
])
def test_huge_numbers_for_a_parameter_are_one_short_line(sets, said):
    """A 400-digit learning rate and a 5,000-digit width were internal errors (OverflowError, ValueError)."""
    from tuner.cli.options import requested_space

    with pytest.raises(UserError) as e:
        requested_space("digits", None, sets, print)
    assert said in str(e.value) and len(str(e.value)) < 300


def test_minus_zero_is_the_same_space_as_zero_and_a_choice_equal_once_converted_is_listed_twice():
    from tuner.cli.options import requested_space

    assert requested_space("digits", None, ("augment=-0.0",), print).fingerprint() == \
        requested_space("digits", None, ("augment=0",), print).fingerprint()
    with pytest.raises(UserError, match=r"params\.width\.choices: 16 is listed twice"):
        parse_space({**BASE, "params": {"width": {"type": "categorical", "choices": [16, 16.0]}}}, "my.yaml")


@pytest.mark.parametrize("sets, said", [
    (("momentum=0.9", "optimizer=adam"), ["--set momentum changes nothing: the space uses momentum only with optimizer "
                                          "sgd, which the other --set values rule out"]),
    (("momentum=0.9", "optimizer=sgd"), []),
    (("momentum=0.9",), []),  # the sampler may still draw sgd
    (("weight_decay=0.01", "optimizer=sgd"), ["--set weight_decay changes nothing: the space uses weight_decay only "
                                              "with optimizer adamw, which the other --set values rule out"]),
])
def test_a_set_value_whose_condition_the_other_set_values_rule_out_is_warned_about(sets, said):
    """`--set momentum=0.9 --set optimizer=adam` was accepted without a word."""
    from tuner.cli.options import requested_space

    warned: list[str] = []
    requested_space("digits", None, sets, warned.append)
    assert warned == said


@settings(max_examples=200, deadline=None, derandomize=True)
@given(name=st.sampled_from(["width", "depth", "learning_rate", "dropout", "augment"]),
       value=st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-10**400, 10**400)))
def test_any_number_set_for_a_parameter_is_of_its_kind_or_one_short_line(name, value):
    """A whole float for an int parameter is that int, an int for a float one that float; anything
    else is refused in one line of bounded length (not a 301-digit number, not an internal error)."""
    from tuner.cli.options import requested_space

    text = repr(value) if isinstance(value, float) else str(value)
    try:
        space = requested_space("digits", None, (f"{name}={text}",), lambda line: None)
    except UserError as e:
        assert "\n" not in str(e) and len(str(e)) < 400
        return
    fixed = space.fixed()[name]
    assert type(fixed) is PARAMETERS[name].kind and fixed == value


@pytest.mark.parametrize("text, read", [
    ("010", 10), ("0010", 10), ("-010", -10), ("+7", 7), ("0o10", 8), ("0x10", 16), ("1_000", 1000),
    ("0b11", "0b11"), ("1:30", "1:30"), ("1:30.5", "1:30.5"), ("-0x10", "-0x10"),  # text: refused where a number belongs
    ("1e-4", 1e-4), ("1.", 1.0), (".5", 0.5), ("-.inf", float("-inf")), ("true", True), ("null", None),
])
def test_numbers_are_read_as_yaml_1_2_reads_them(text, read):
    """YAML 1.1 read `--set width=010` as 8 (octal) and `1:30` as 90 (base 60)."""
    from tuner.space.reading import parse_value, safe_yaml

    assert parse_value(text) == read and type(parse_value(text)) is type(read)
    assert safe_yaml(f"v: [{text}]", "my.yaml") == {"v": [read]}


@settings(max_examples=200, deadline=None, derandomize=True)
@given(n=st.integers(min_value=-10**30, max_value=10**30), zeros=st.integers(min_value=0, max_value=3),
       underscores=st.booleans())
def test_a_whole_number_with_leading_zeros_is_that_number(n, zeros, underscores):
    from tuner.space.reading import parse_value

    digits = "0" * zeros + str(abs(n))
    if underscores and len(digits) > 1:
        digits = digits[0] + "_" + digits[1:]
    assert parse_value(("-" if n < 0 else "") + digits) == n


@pytest.mark.parametrize("low, said", [(8.0, None), (8, None), (8.5, "params.width.low: 8.5 is not a whole number"),
                                       (1e300, "params.width.low: 1e+300 is too large to be read as a whole number (write it as digits)"),
                                       (float("inf"), "params.width.low: .inf is not a whole number"),
                                       ("1:30", "params.width.low: '1:30' is text where a whole number belongs"),
                                       ("16", "params.width.low: '16' is text where a whole number belongs (write it without quotes)")])
def test_a_whole_float_bound_of_an_int_range_is_that_int(low, said):
    """`low: 8.0` for an int range was refused in pydantic's words where a fixed `width: 8.0` is 8."""
    spec = {**BASE, "params": {"width": {"type": "int", "low": low, "high": 64}}, "training": {"max_epochs": 3.0}}
    if said:
        with pytest.raises(UserError) as e:
            parse_space(spec, "my.yaml")
        assert str(e.value) == f"my.yaml: {said}"
        return
    space = parse_space(spec, "my.yaml")
    assert space.params["width"].low == 8 and type(space.params["width"].low) is int
    assert space.training.max_epochs == 3 and type(space.training.max_epochs) is int


@pytest.mark.parametrize("when", [1.0, 1e0, [1, 1.0], [1.0]])
def test_a_whole_float_in_a_when_condition_is_that_int(when):
    """`when: {depth: 1.0}` was refused ("1.0 is not a whole number, so head_units would never be
    active") where a fixed `width: 16.0` or `low: 8.0` is taken as the int."""
    def space(value):
        return parse_space({**BASE, "params": {"depth": {"type": "int", "low": 1, "high": 2},
                                               "head_units": {"type": "categorical", "choices": [0, 32],
                                                              "when": {"depth": value}}}}, "my.yaml")

    assert space(when).params["head_units"].when == {"depth": [1]}
    assert space(when).fingerprint() == space(1).fingerprint()


@settings(max_examples=200, deadline=None, derandomize=True)
@given(low=st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(1, 1024).map(float)))
def test_any_float_bound_of_an_int_range_is_its_int_or_one_line(low):
    """A whole float within a float's exact integers is that int; anything else one line saying why."""
    spec = {**BASE, "params": {"width": {"type": "int", "low": low, "high": 1024}}}
    try:
        space = parse_space(spec, "my.yaml")
    except UserError as e:
        assert "\n" not in str(e) and str(e).startswith("my.yaml: params.width")
        assert not (math.isfinite(low) and low.is_integer() and 1 <= low <= 1024), str(e)  # a width it should take
        return
    assert type(space.params["width"].low) is int and space.params["width"].low == low
