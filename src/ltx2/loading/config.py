"""Model configs: the keyword arguments a model was built with, as diffusers' config.json stores them."""

from __future__ import annotations

import functools
import inspect
import json
from collections.abc import Mapping
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

    A subclass lists in `neutral_config` the keys that other diffusers releases write into config.json
    for features LTX-2.0 does not use; `from_config` accepts them only at those neutral values.
    """

    config_name: ClassVar[str] = "config.json"
    neutral_config: ClassVar[dict[str, Any]] = {}

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
        return [name for name in inspect.signature(cls.__init__).parameters if name != "self"]

    @classmethod
    def from_config(cls, config: Mapping[str, Any], **overrides: Any):
        """Build from a config dict (as read from config.json); `overrides` replace its values."""
        known = set(cls.config_keys())
        kwargs = {}
        for key, value in {**config, **overrides}.items():
            if key.startswith("_"):
                continue
            if key in known:
                kwargs[key] = value
            elif key in cls.neutral_config and cls.neutral_config[key] == value:
                continue
            elif key in cls.neutral_config:
                raise ValueError(
                    f"{cls.__name__}: config key {key!r}={value!r} selects a feature ltx2 does not implement "
                    f"(only {cls.neutral_config[key]!r} is supported)"
                )
            else:
                raise ValueError(f"{cls.__name__}: config key {key!r} is not supported by ltx2")
        return cls(**kwargs)

    def config_json(self) -> str:
        payload = {"_class_name": type(self).__name__, **_jsonable(dict(self.config))}
        return json.dumps(payload, indent=2, sort_keys=False) + "\n"


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
