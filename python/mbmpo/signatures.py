"""Python signatures for the extension's functions and methods. nanobind's function objects carry
their signature only as text (``__nb_signature__``), which ``inspect.signature`` (Jupyter's and
IDEs' tooltips) cannot read, and their type is immutable; so the package exports each function,
and puts each method of the bound classes, as a thin Python function with a real ``__signature__``
parsed from that text."""
from __future__ import annotations

import ast
import functools
import inspect
from collections.abc import Callable
from typing import Any


class _Default:
    """A default value that is not a literal (e.g. an enum), shown as its source text."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text


def _value(node: ast.expr | None) -> Any:
    if node is None:
        return inspect.Parameter.empty
    try:
        return ast.literal_eval(node)
    except ValueError:
        return _Default(ast.unparse(node))


def _annotation(node: ast.expr | None) -> Any:
    return inspect.Parameter.empty if node is None else ast.unparse(node)


def parse_signature(text: str) -> inspect.Signature:
    """inspect.Signature of nanobind's "def name(a: int, b: str = 'x') -> R" text."""
    tree = ast.parse(text + ": ...")
    fn = tree.body[0]
    assert isinstance(fn, ast.FunctionDef), text
    a, P = fn.args, inspect.Parameter
    positional = a.posonlyargs + a.args
    defaults = [None] * (len(positional) - len(a.defaults)) + list(a.defaults)
    params = [P(arg.arg, P.POSITIONAL_ONLY if i < len(a.posonlyargs) else P.POSITIONAL_OR_KEYWORD,
                default=_value(default), annotation=_annotation(arg.annotation))
              for i, (arg, default) in enumerate(zip(positional, defaults))]
    if a.vararg:
        params.append(P(a.vararg.arg, P.VAR_POSITIONAL, annotation=_annotation(a.vararg.annotation)))
    params += [P(arg.arg, P.KEYWORD_ONLY, default=_value(default), annotation=_annotation(arg.annotation))
               for arg, default in zip(a.kwonlyargs, a.kw_defaults)]
    if a.kwarg:
        params.append(P(a.kwarg.arg, P.VAR_KEYWORD, annotation=_annotation(a.kwarg.annotation)))
    return inspect.Signature(params, return_annotation=_annotation(fn.returns))


def with_signature(function: Callable[..., Any]) -> Callable[..., Any]:
    """`function` (a nanobind function) as a Python function that inspect.signature can read."""
    text = function.__nb_signature__[0][0]  # type: ignore[attr-defined]

    @functools.wraps(function, assigned=("__name__", "__qualname__", "__doc__"), updated=())
    def call(*args: Any, **kwargs: Any) -> Any:
        return function(*args, **kwargs)

    call.__signature__ = parse_signature(text)  # type: ignore[attr-defined]
    call.__module__ = "mbmpo"
    return call


def add_method_signatures(cls: type) -> None:
    """Each public method of the nanobind class `cls` (its constructor and static methods too)
    replaced by a thin Python function that inspect.signature can read."""
    for name, member in list(vars(cls).items()):
        if name.startswith("_") and name != "__init__":
            continue
        kind = type(member).__name__
        if kind == "nb_method":  # called on an instance: a Python function binds as a method
            setattr(cls, name, with_signature(member))
        elif kind == "nb_func":  # def_static
            setattr(cls, name, staticmethod(with_signature(member)))
