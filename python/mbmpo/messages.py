"""Errors worded for Python. The library checks a run's settings once, for the CLI and for Python
alike, and its messages name CLI flags ("give --env NAME", "pass --resume"); from Python the same
message names the keyword argument instead ("give env=NAME", "pass resume=True")."""
from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])

# Flags that are switches, named with the value that turns them on.
_SWITCHES = {"resume": "resume=True", "adapt": "adapt=True"}
_FLAG = re.compile(r"--([a-z][a-z0-9-]*)( NAME)?")


def keyword_words(text: str) -> str:
    """The message with each --flag written as the keyword argument of the same name."""
    def keyword(match: re.Match[str]) -> str:
        name = match.group(1).replace("-", "_")
        if match.group(1) in _SWITCHES:
            return _SWITCHES[match.group(1)]
        return f"{name}=NAME" if match.group(2) else name

    return _FLAG.sub(keyword, text).replace("(see mbmpo envs)", "(see mbmpo.tasks())")


def in_keyword_words(function: F) -> F:
    """`function` raising its ValueErrors and TypeErrors worded with keyword arguments."""
    @functools.wraps(function)
    def call(*args: Any, **kwargs: Any) -> Any:
        try:
            return function(*args, **kwargs)
        except (ValueError, TypeError) as error:
            worded = keyword_words(str(error))
            if worded == str(error):
                raise
            raise type(error)(worded) from None

    return call  # type: ignore[return-value]
