"""Config values against their constructors' signatures (snnexp.typecheck), before anything is built."""
from typing import Literal, Mapping, Optional, Sequence

import pytest

import snnexp
from snnexp.errors import ConfigError
from snnexp.typecheck import check_config, check_node, describe, fits, parameters
from tests.helpers import compose_cfg


@pytest.mark.parametrize("value, hint, ok", [
    (2, float, True), (2.5, float, True), ("2.5", float, False), (True, float, False), (None, float, False),
    (3, int, True), (3.0, int, True), (2.5, int, False), (False, int, False),
    (True, bool, True), (1, bool, False), ("x", str, True), (1, str, False),
    (None, Optional[int], True), (None, int | None, True), ("a", int | None, False),
    ([1, 2], Sequence[int], True), ([1, "a"], Sequence[int], False), ("ab", Sequence[int], False),
    ([1.0, 2], tuple[float, float], True), ([1.0], tuple[float, float], False),
    ({"a": 1.0}, Mapping[str, float], True), ({"a": "x"}, Mapping[str, float], False), ([1], Mapping[str, float], False),
    ("16-mixed", Literal["16-mixed", "32-true"], True), ("16", Literal["16-mixed", "32-true"], False),
    ({"_target_": "x.Y"}, float, True),  # a node to build: checked on its own
])
def test_values_against_hints(value, hint, ok):
    assert fits(value, hint) is ok


def test_hints_in_words():
    assert describe(float) == "a number"
    assert describe(int | None) == "an integer or null"
    assert describe(Sequence[int]) == "a list of integers"
    assert describe(Literal["a", "b"]) == "one of ['a', 'b']"


def test_a_class_takes_the_parameters_its_kwargs_reach():
    """LIF(tau, decay_input, **fire_kwargs) passes the rest to SpikingNeuron: both sets are its keys."""
    from snnexp.neurons.lif import LIF

    params, open_ended = parameters(LIF)
    assert {"tau", "decay_input", "v_threshold", "reset", "step_mode"} <= set(params) and not open_ended
    assert params["tau"] is float


def test_an_unknown_key_is_refused_with_the_close_names():
    with pytest.raises(ConfigError, match=r"neuron\.taux is not an option of neuron .*did you mean tau\?"):
        check_node({"_target_": "snnexp.neurons.lif.LIF", "taux": 3}, "neuron")
    with pytest.raises(ConfigError, match=r"cannot be imported"):
        check_node({"_target_": "snnexp.neurons.lif.LIFF"}, "neuron")


def test_an_interpolated_value_names_where_it_came_from():
    with pytest.raises(ConfigError, match=r"learner\.scheduler\.T_max=2\.5 \(from \$\{trainer\.max_epochs\}\) "
                                          r"is invalid: must be an integer"):
        check_config(compose_cfg(["trainer.max_epochs=2.5"]))


@pytest.mark.parametrize("override, message", [
    ("neuron.tau=abc", "neuron.tau='abc' is invalid: must be a number"),
    ("model.channels=[a,b]", "model.channels=['a', 'b'] is invalid: must be a list of integers"),
    ("dataset.limit_train=x", "dataset.limit_train='x' is invalid: must be an integer or null"),
    ("encoding.T=abc", "encoding.T='abc' is invalid: must be an integer"),
    ("learner.optimizer.lr=abc", "learner.optimizer.lr='abc' is invalid: must be a number"),
    ("trainer.limit_train_batches=all", "trainer.limit_train_batches='all' is invalid"),
])
def test_a_wrong_type_in_any_group_is_refused(override, message):
    with pytest.raises(ConfigError) as e:
        check_config(compose_cfg([override]))
    assert message in str(e.value)


@pytest.mark.parametrize("override, message", [
    ("learner.optimizer=sgd", "learner.optimizer='sgd' is invalid: learner/optimizer is a config group, chosen with "
                              "a slash: learner/optimizer=sgd (options: adam, adamw, sgd)"),
    ("neuron.surrogate=triangle", "neuron.surrogate='triangle' is invalid: neuron/surrogate is a config group"),
])
def test_a_value_where_a_group_choice_goes_names_the_group_syntax(override, message):
    with pytest.raises(ConfigError) as e:
        check_config(compose_cfg([override]))
    assert message in str(e.value)


def test_null_where_a_group_choice_goes_is_a_value():
    check_config(compose_cfg(["neuron.surrogate=null"]))  # an optional part left out, not an option's name


def test_the_default_config_passes():
    check_config(compose_cfg([]))


@pytest.mark.parametrize("old, new", [("learner.levels", "learner.method.levels"),
                                      ("learner.calib_samples", "learner.method.samples")])
def test_a_flat_ann2snn_key_names_its_method_key(old, new):
    with pytest.raises(ConfigError, match=rf"{old} is now {new}: a conversion method's keys .* set {new}=4"):
        snnexp.compose(["learner=ann2snn", "learner/method=qcfs", f"{old}=4"])
