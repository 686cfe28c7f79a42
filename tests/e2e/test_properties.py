"""Property-based tests over every input surface: any input gives a result or one `UserError`
line, never another exception, never a path outside the results folder, never a secret.
Hypothesis runs with a fixed seed (derandomize) so that CI sees the same examples every run."""

from __future__ import annotations

import string

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from tests.conftest import TINY_SPACE, run_main
from tuner.space.params import PARAMETERS
from tuner.errors import UserError

SETTINGS = settings(derandomize=True, max_examples=150, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**30, 10**30), st.floats(allow_nan=True),
                    st.text(max_size=12))
yaml_values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                            st.dictionaries(st.text(max_size=8), inner, max_size=4)),
                           max_leaves=12)
PARAM_NAMES = ["model", "depth", "width", "dropout", "optimizer", "momentum", "learning_rate", "batch_size", "flip"]
param_specs = st.one_of(
    scalars,
    st.fixed_dictionaries({"type": st.sampled_from(["int", "float", "categorical", "bool", "big"])},
                          optional={"low": scalars, "high": scalars, "step": scalars, "log": scalars,
                                    "choices": st.lists(scalars, max_size=3), "when": yaml_values}))
spaces = st.fixed_dictionaries(
    {"name": st.one_of(st.text(max_size=20), st.sampled_from(["ok", "../x", "/abs"])),
     "dataset": st.sampled_from(["digits", "mnist", "cifar10", "folder", "svhn"]),
     "params": st.dictionaries(st.sampled_from(PARAM_NAMES), param_specs, max_size=5)},
    optional={"training": st.dictionaries(st.sampled_from(["max_epochs", "seed", "patience", "validation_fraction",
                                                           "max_train_samples", "nope"]), scalars, max_size=3),
              "input": yaml_values, "start": yaml_values})


@pytest.mark.slow
@SETTINGS
@given(data=st.one_of(spaces, yaml_values))
def test_any_space_document_is_a_space_or_one_line(data):
    from tuner.paths import name_problem
    from tuner.space.schema import Space, parse_space

    try:
        space = parse_space(data, "s.yaml")
    except UserError as e:
        assert "\n" not in str(e) and str(e).startswith("s.yaml")
        return
    assert isinstance(space, Space) and name_problem(space.name) is None
    assert parse_space(space.to_dict(), "again").fingerprint() == space.fingerprint()  # it round-trips


@SETTINGS
@given(text=st.text(alphabet=string.printable + "&*!|>{}[]", max_size=200))
def test_any_space_file_text_gives_a_space_or_one_line_through_the_cli(text, tmp_path, capsys):
    path = tmp_path / "s.yaml"
    path.write_text(text)
    code, out, err = run_main(["spaces", str(path)], capsys)
    assert code in (0, 2) and "Traceback" not in out + err
    if code == 2:
        assert len([line for line in err.splitlines() if line.strip()]) == 1


@SETTINGS
@given(name=st.sampled_from([*PARAMETERS, "lr"]),  # every word of the vocabulary, and one that is none
       text=st.one_of(st.text(max_size=30), st.sampled_from(["nan", "-inf", "1e400", "-1", "0", "181", "true", "[]",
                                                             "zeros", "separable", "average", "adamax"])))
@pytest.mark.slow
def test_any_set_value_gives_a_space_or_one_line(name, text):
    from tuner.space.files import load_space
    from tuner.space.reading import parse_value

    space = load_space(str(TINY_SPACE))
    try:
        changed = space.with_overrides(fixed={name: parse_value(text, f"--set {name}")})
    except UserError as e:
        assert "\n" not in str(e)
        return
    assert name in changed.params


@SETTINGS
@given(name=st.text(max_size=120))
def test_a_study_name_either_names_a_folder_right_under_the_results_or_is_refused(name, tmp_path):
    from tuner.store import SearchStore

    results = tmp_path / "results"
    try:
        folder = SearchStore(None, results).artifacts.study_dir(name)
    except UserError as e:
        assert "\n" not in str(e)
        return
    assert folder.resolve().parent == results.resolve() and folder.name == name


dtypes = st.sampled_from([np.uint8, np.uint16, np.int8, np.int64, np.float16, np.float32, np.float64, np.bool_])


@st.composite
def npz_arrays(draw):
    n = draw(st.integers(0, 12))
    shape = draw(st.sampled_from([(n, 28, 28), (n, 28, 28, 1), (n, 28, 28, 3), (n, 14, 28), (n, 3, 28, 28), (n,)]))
    x = draw(hnp.arrays(draw(dtypes), shape))  # every value of the dtype: NaN, infinities, extremes
    labels = draw(hnp.arrays(draw(st.sampled_from([np.int64, np.float64, np.uint8, np.bool_])),
                             draw(st.sampled_from([(n,), (n + 1,), (n, 1), (n, 10)]))))
    return x, labels


@pytest.mark.slow
@SETTINGS
@given(arrays=npz_arrays(), test_n=st.integers(1, 5))
def test_any_npz_contents_are_validated_or_one_line(arrays, test_n):
    from tuner.data.sources import RawDataset
    from tuner.data.validate import validated

    x, y = arrays
    rng = np.random.default_rng(0)
    raw = RawDataset(x, y, rng.integers(0, 256, (test_n, 28, 28), dtype=np.uint8), np.arange(test_n), [], "d.npz")
    try:
        good = validated(raw)
    except UserError as e:
        assert "\n" not in str(e) and str(e).startswith("d.npz")
        return
    assert good.x_train.dtype == np.uint8 and good.x_train.ndim == 4 and good.x_train.shape[-1] in (1, 3)
    assert good.y_train.dtype == np.int64 and good.y_train.shape == (len(good.x_train),)
    assert good.y_train.min() >= 0 and good.x_train.min() < good.x_train.max()
    assert len(good.class_names) > int(max(good.y_train.max(), good.y_test.max()))


secrets = st.text(alphabet=string.ascii_letters + string.digits + "!$%&()*+,;=-._~", min_size=6, max_size=20)


@SETTINGS
@given(secret=secrets, key=st.sampled_from(["password", "sslpassword", "passwd", "token", "api_key", "secret"]),
       where=st.sampled_from(["userinfo", "query"]))
def test_no_secret_of_a_url_survives_redaction(secret, key, where):
    from urllib.parse import quote

    from tuner.store import redact, scrub

    encoded = quote(secret, safe="")
    url = (f"postgresql://tune:{encoded}@db.example/tune?sslmode=require" if where == "userinfo"
           else f"postgresql://tune@db.example/tune?{key}={encoded}&sslmode=require")
    shown = redact(url)
    assert secret not in shown and encoded not in shown and "sslmode=require" in shown
    message = f"connection failed for {url} (password {secret!r})"
    assert secret not in scrub(message, url) and encoded not in scrub(message, url)


@SETTINGS
@given(secret=secrets, form=st.sampled_from(["u:{}@h/db", "u:{}", "{}@h", "x://u:{}@h:9x/db", "u:{}@", "{}"]))
def test_a_storage_value_that_is_no_url_is_shown_only_where_it_can_hold_no_secret(secret, form):
    """A value that does not parse was hidden whole (`--storage tune.db` read "storage ***"); now
    it is shown unless it could hold a user's password (a ':' or an '@')."""
    from tuner.store import redact

    value = form.format(secret)
    shown = redact(value)
    if ":" in value or "@" in value:
        assert secret not in shown
    else:
        assert shown == value


@settings(SETTINGS, max_examples=60)
@given(value=st.text(alphabet=st.sampled_from(["a", "/", ":", "@", ".", "\x1b", "\x07", "[", "\x9b", "\u202e", "é"]),
                     min_size=1, max_size=40),
       scheme=st.sampled_from(["", "sqlite:///", "sqlite:////tmp/", "unknowndb://u@"]))  # no network: no server named
def test_a_storage_value_is_one_line_of_text_whatever_it_holds(value, scheme, tmp_path_factory, capsys):
    """A storage value's escape sequences reached the terminal raw in the error line
    (`sqlite:///a\x1b[31mred.db` turned the rest of the line red)."""
    folder = tmp_path_factory.mktemp("s")
    code, out, err = run_main(["studies", "--results-dir", str(folder), "--storage", scheme + value], capsys)
    lines = [line for line in err.splitlines() if line.strip()]
    assert code in (0, 1, 2) and len(lines) <= 1 and "Traceback" not in out + err
    assert all(c.isprintable() for c in "".join(lines)), lines


@pytest.mark.slow
@pytest.mark.parametrize("text", ["a: &a [*a]", "[" * 3000, "a: b: c", "{", "- !!python/object:os.system x"])
def test_the_bounded_yaml_reader_refuses_what_plain_yaml_would_choke_on(text):
    from tuner.space.reading import safe_yaml

    with pytest.raises((UserError, yaml.YAMLError)):
        safe_yaml(text, "s.yaml")


def test_properties_are_seeded():
    assert SETTINGS.derandomize and SETTINGS.database is None
