"""Config values against the signatures of the constructors they go to, before anything is built.

Every config node with a `_target_` is checked against that callable: a key it does not take is
refused (`+neuron.taux=3`), and so is a value whose type does not fit the parameter's type hint
(`neuron.tau=abc` for `tau: float`), with the key, the value and the expected type. One check for
every group at once, so no constructor needs its own `float(x)` guard. What a hint cannot say
(ranges, choices among strings) the constructors check themselves.

Hints that are not plain data (a Callable, a module class, a Protocol) accept a nested
`_target_` node (it is checked on its own) and refuse a plain value that is not an instance.
A plain value where a config group's choice goes (`learner.method=qcfs`, where `learner/method`
is a group of conf/) is refused with the group's own syntax (`learner/method=qcfs`).
"""
from __future__ import annotations

import collections.abc as abc
import difflib
import inspect
import math
import types
import typing
from typing import Any, Literal, Union

from hydra.utils import get_object
from omegaconf import DictConfig, OmegaConf

from snnexp.context import CONF
from snnexp.errors import ConfigError
from snnexp.moved import moved_error

HYDRA_KEYS = {"_target_", "_partial_", "_recursive_", "_convert_", "_args_"}
_UNCHECKED = object()  # a hint this module does not interpret: any value passes


def check_config(cfg: DictConfig) -> None:
    """Raise ConfigError for the first value in `cfg` (every group) its target cannot take."""
    plain = OmegaConf.to_container(cfg, resolve=True, throw_on_missing=False)
    raw = OmegaConf.to_container(cfg, resolve=False)  # interpolations as written, to name their source
    plain.pop("hydra", None)
    _walk(plain, raw, "")


def _walk(node: Any, raw: Any, path: str) -> None:
    if isinstance(node, dict):
        raw = raw if isinstance(raw, dict) else {}
        if "_target_" in node:
            check_node(node, path, raw)
        for key, value in node.items():
            _walk(value, raw.get(key), f"{path}.{key}" if path else str(key))
    elif isinstance(node, list):
        raw = raw if isinstance(raw, list) and len(raw) == len(node) else [None] * len(node)
        for i, value in enumerate(node):
            _walk(value, raw[i], f"{path}[{i}]")
    elif node == "???":
        raise ConfigError(f"{path} is mandatory (???) and not set: give it on the command line, {path}=...")


def check_node(node: dict, path: str, raw: dict | None = None) -> None:
    """`node` (a plain dict with `_target_`, found at `path`; `raw`: unresolved) against its target."""
    target = node["_target_"]
    try:
        obj = get_object(target)
    except Exception as e:  # ImportError, AttributeError: a misspelt path or a missing package
        raise ConfigError(f"{path}._target_={target!r} is invalid: it cannot be imported ({e})") from None
    params, open_ended = parameters(obj)
    if params is None:  # no signature to read (a builtin): nothing to check
        return
    for key, value in node.items():
        if key in HYDRA_KEYS:
            continue
        full = f"{path}.{key}"
        if key not in params:
            if open_ended:
                continue
            if (moved := moved_error(full)) is not None:  # e.g. model.stdp, set in a preset of one's own
                raise moved
            close = difflib.get_close_matches(str(key), list(params), n=3)
            hint = (f"did you mean {' or '.join(close)}?" if close else
                    f"it takes {', '.join(params) or 'no arguments'}." if len(params) <= 16 else "")
            raise ConfigError(f"{full} is not an option of {path} ({target}): {hint} Check the spelling, or remove it"
                              .replace(":  ", ": "))
        refuse_group_value(full, value)
        hint = params[key]
        if _non_finite(value):  # no constructor here can use them: tau=inf never fires, threshold=nan never compares
            raise ConfigError(f"{full}={value!r} is invalid: must be a finite number (not inf or nan) "
                              f"(argument {key} of {target})")
        if value == "???" or hint is _UNCHECKED or fits(value, hint):
            continue
        source = (raw or {}).get(key)
        via = f" (from {source})" if isinstance(source, str) and "${" in source else ""
        raise ConfigError(f"{full}={value!r}{via} is invalid: must be {describe(hint)} "
                          f"(argument {key} of {target})")


def refuse_group_value(path: str, value: Any) -> None:
    """ConfigError for an option's name at `path` ("learner.method=qcfs") where conf/ has a group ("learner/method").
    null stays a value: an optional part (neuron.surrogate=null) is left out that way."""
    group = path.replace(".", "/")
    if not isinstance(value, str) or not (CONF / group).is_dir():
        return
    options = ", ".join(sorted(p.stem for p in (CONF / group).glob("*.yaml")))
    raise ConfigError(f"{path}={value!r} is invalid: {group} is a config group, chosen with a slash: "
                      f"{group}={value} (options: {options}); its keys are then {path}.<key>")


def _non_finite(value: Any) -> bool:
    if isinstance(value, float):
        return not math.isfinite(value)
    return isinstance(value, list) and any(_non_finite(v) for v in value)


def parameters(obj: Any) -> tuple[dict[str, Any] | None, bool]:
    """({keyword parameter: type hint}, whether it also takes other keywords) of a class or function.

    A class whose __init__ passes **kwargs on to its base class takes the base's parameters too.
    """
    if inspect.isclass(obj):
        params: dict[str, Any] = {}
        for cls in obj.__mro__:
            init = cls.__dict__.get("__init__")
            if init is None or cls is object:
                continue
            own, open_ended = _function_parameters(init, cls)
            if own is None:
                return (params or None), True
            params.update({k: v for k, v in own.items() if k not in params})
            if not open_ended:
                return params, False
        return params, True
    if callable(obj):
        return _function_parameters(obj, None)
    return None, True


def _function_parameters(fn: Any, cls: type | None) -> tuple[dict[str, Any] | None, bool]:
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return None, True
    hints = _hints(fn, cls)
    params, open_ended = {}, False
    for name, p in sig.parameters.items():
        if p.kind is p.VAR_KEYWORD:
            open_ended = True
        elif p.kind is not p.VAR_POSITIONAL and name != "self":
            params[name] = hints.get(name, _UNCHECKED)
    return params, open_ended


def _hints(fn: Any, cls: type | None) -> dict[str, Any]:
    """Resolved type hints of `fn` (a dataclass's generated __init__: the class's field hints)."""
    for source in (fn, cls):
        if source is None:
            continue
        try:
            return typing.get_type_hints(source)
        except Exception:  # a hint naming something imported only for type checkers
            continue
    return {}


def fits(value: Any, hint: Any) -> bool:
    """Whether a plain config value (from YAML or the command line) can be passed as `hint`."""
    if hint is Any or hint is _UNCHECKED or isinstance(hint, (typing.TypeVar, str, typing.ForwardRef)):
        return True
    if isinstance(value, dict) and "_target_" in value:
        return True  # built by instantiate, checked on its own
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is Union or isinstance(hint, types.UnionType):
        return any(fits(value, h) for h in args)
    if hint is None or hint is type(None):
        return value is None
    if origin is Literal:
        return value in args
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return (isinstance(value, int) and not isinstance(value, bool)) or (
            isinstance(value, float) and value.is_integer())
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is str:
        return isinstance(value, str)
    if origin in (list, tuple, set, frozenset, abc.Sequence, abc.Iterable, abc.Collection, abc.MutableSequence):
        if not isinstance(value, list):
            return False
        if origin is tuple and args and args[-1] is not Ellipsis:
            return len(value) == len(args) and all(fits(v, h) for v, h in zip(value, args))
        return not args or all(fits(v, args[0]) for v in value)
    if origin in (dict, abc.Mapping, abc.MutableMapping):
        return isinstance(value, dict) and (len(args) < 2 or all(fits(v, args[1]) for v in value.values()))
    if origin is abc.Callable or hint is abc.Callable:
        return False  # a plain value is not callable; a _target_ node passed above
    cls = origin or hint
    if isinstance(value, (dict, list)) or not inspect.isclass(cls):
        return True  # a container for some object type: its constructor decides
    try:
        return isinstance(value, cls)
    except TypeError:  # a Protocol that is not runtime-checkable
        return True


def describe(hint: Any) -> str:
    """`hint` in words: "a number", "an integer or null", "a list of integers"."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is Union or isinstance(hint, types.UnionType):
        return " or ".join(dict.fromkeys(describe(h) for h in args))
    if hint is None or hint is type(None):
        return "null"
    if origin is Literal:
        return f"one of {list(args)}"
    simple = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}
    if hint in simple:
        return simple[hint]
    if origin in (list, tuple, set, frozenset, abc.Sequence, abc.Iterable, abc.Collection, abc.MutableSequence):
        plural = {"an integer": "integers", "a number": "numbers", "a string": "strings"}
        inner = describe(args[0]) if args else ""
        return f"a list of {plural[inner]}" if inner in plural else "a list"
    if origin in (dict, abc.Mapping, abc.MutableMapping):
        return "a mapping (key: value, ...)"
    if origin is abc.Callable or hint is abc.Callable:
        return "a _target_ node (something to build)"
    return f"a {getattr(origin or hint, '__name__', str(hint))}"
