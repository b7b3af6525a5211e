"""config_error: the ConfigError behind an exception, through explicit causes only."""
from hydra.errors import InstantiationException

from snnexp.errors import ConfigError, config_error


def test_a_wrapped_config_error_is_found():
    try:
        try:
            raise ConfigError("neuron.tau=0.5 is invalid")
        except ConfigError as e:
            raise InstantiationException("Error in call to target") from e  # as Hydra's instantiate wraps it
    except InstantiationException as wrapped:
        assert str(config_error(wrapped)) == "neuron.tau=0.5 is invalid"


def test_an_error_raised_while_handling_one_is_not_a_config_error():
    """A bug in an except block (its __context__ is the ConfigError) must keep its traceback."""
    try:
        try:
            raise ConfigError("neuron.tau=0.5 is invalid")
        except ConfigError:
            {}["missing"]  # an unrelated bug while reporting it
    except KeyError as bug:
        assert isinstance(bug.__context__, ConfigError)
        assert config_error(bug) is None
