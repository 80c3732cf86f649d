"""Model configs: the keyword arguments a model was built with, as diffusers' config.json stores them."""

from __future__ import annotations

import functools
import inspect
import json
import types
import typing
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar


class Config(dict):
    """A config dict whose keys also read as attributes (`model.config.in_channels`)."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


def _jsonable(value: Any) -> Any:
    if isinstance(value, (tuple, list)):
        return [_jsonable(item) for item in value]
    if isinstance(value, dict):
        return {key: _jsonable(item) for key, item in value.items()}
    return value


class Configurable:
    """Mixin recording the constructor's keyword arguments as `self.config`.

    A constructor takes every keyword of diffusers' constructor, also those of features LTX-2 never switches on,
    and refuses those at any other value (`require_neutral`).
    """

    config_name: ClassVar[str] = "config.json"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        init = cls.__dict__.get("__init__")
        if init is None:
            return
        signature = inspect.signature(init)

        @functools.wraps(init)
        def recording_init(self: Any, *args: Any, **init_kwargs: Any) -> None:
            bound = signature.bind(self, *args, **init_kwargs)
            bound.apply_defaults()
            init(self, *args, **init_kwargs)
            # A subclass's wrapper runs last and so records the outermost constructor's arguments.
            self.config = Config({key: value for key, value in bound.arguments.items() if key != "self"})

        cls.__init__ = recording_init

    @classmethod
    def config_keys(cls) -> list[str]:
        return list(_constructor_parameters(cls))

    @classmethod
    def resolve_config(cls, config: Mapping[str, Any], **overrides: Any) -> dict[str, Any]:
        """The constructor's keyword arguments, defaults filled in, for a config dict and `overrides`.

        Raises ValueError naming the key for an unknown key and a value whose type is not the constructor's (JSON
        lists stand for tuples); the constructor refuses a feature ltx2 does not implement.
        """
        parameters = _constructor_parameters(cls)
        kwargs = {}
        for key, value in {**config, **overrides}.items():
            if key.startswith("_"):
                continue
            if key in parameters:
                annotation = parameters[key].annotation
                if not _matches(value, annotation):
                    raise ValueError(
                        f"{cls.__name__}: config key {key!r} is {value!r} ({type(value).__name__}); "
                        f"expected {_type_name(annotation)}"
                    )
                kwargs[key] = value
            else:
                raise ValueError(f"{cls.__name__}: config key {key!r} is not supported by ltx2")
        defaults = {key: parameter.default for key, parameter in parameters.items()}
        return {**defaults, **kwargs}

    @classmethod
    def from_config(cls, config: Mapping[str, Any], **overrides: Any):
        """Build from a config dict (as read from config.json); `overrides` replace its values."""
        return cls(**cls.resolve_config(config, **overrides))

    def config_json(self) -> str:
        payload = {"_class_name": type(self).__name__, **_jsonable(dict(self.config))}
        return json.dumps(payload, indent=2, sort_keys=False) + "\n"


def require_neutral(owner: str, **settings: tuple[Any, Any]) -> None:
    """Refuse a keyword (name=(value, neutral value)) that diffusers' constructor takes for a feature LTX-2 never
    uses, at anything but its neutral value."""
    for key, (value, neutral) in settings.items():
        if value != neutral:
            raise ValueError(f"{owner}: config key {key!r}={value!r} selects a feature ltx2 does not implement "
                             f"(only {neutral!r} is supported)")


def read_config(path: Path) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as file:
            config = json.load(file)
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: config file not found") from None
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}: not valid JSON ({error})") from None
    if not isinstance(config, dict):
        raise ValueError(f"{path}: expected a JSON object, found {type(config).__name__}")
    return config


@contextmanager
def naming_config_errors(origin: str) -> Iterator[None]:
    """Prefix a ValueError raised while a config is read or its model built with where the config came from."""
    try:
        yield
    except ValueError as error:
        raise ValueError(f"{origin}: {error}") from None


@functools.cache
def _constructor_parameters(cls: type) -> dict[str, inspect.Parameter]:
    # inspect follows the recording wrapper's __wrapped__ to the real constructor and its module's names.
    signature = inspect.signature(cls.__init__, eval_str=True)
    return {name: parameter for name, parameter in signature.parameters.items() if name != "self"}


def _matches(value: Any, annotation: Any) -> bool:
    """Whether a config value fits a constructor annotation; annotations not understood here accept anything."""
    origin, arguments = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, argument) for argument in arguments)
    if annotation is type(None):
        return value is None
    if annotation is bool:
        return isinstance(value, bool)
    if annotation in (int, float):
        # JSON writes 10000.0 as 10000 too; a bool is never a number here.
        accepted = int if annotation is int else (int, float)
        return isinstance(value, accepted) and not isinstance(value, bool)
    if annotation is str:
        return isinstance(value, str)
    if origin in (tuple, list, Sequence):
        if not isinstance(value, (list, tuple)):
            return False
        if origin is tuple and arguments and arguments[-1] is not Ellipsis:
            return len(value) == len(arguments) and all(map(_matches, value, arguments))
        return not arguments or all(_matches(item, arguments[0]) for item in value)
    return True


def _type_name(annotation: Any) -> str:
    return annotation.__name__ if isinstance(annotation, type) else str(annotation).replace("typing.", "")
