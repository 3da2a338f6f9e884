"""``@step`` and ``@pipeline``: calling steps inside a pipeline function builds its graph.

Outside a pipeline a step is its plain function. Inside one (while the pipeline function builds
the graph), calling a step records a node and returns :class:`OutputRef` objects: references to
outputs that exist once the run computes them. Arguments are references (edges of the graph) or
literal values (the step's parameters, hashed into its cache key like any input).
"""

from __future__ import annotations

import contextvars
import importlib
import inspect
import math
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, overload

from mloop.errors import InvalidInputError
from mloop.pipelines._resources import parse_resources
from mloop.store import validate_pipeline_name

__all__ = ["Graph", "Node", "OutputRef", "PipelineDef", "Step", "pipeline", "step"]

# The engine's ``run`` and its option names, set by ``_engine`` (which imports this module).
_RUNNER: list[tuple[Callable[..., Any], frozenset[str]]] = []

_building: contextvars.ContextVar[Graph | None] = contextvars.ContextVar("graph", default=None)


@dataclass(frozen=True)
class OutputRef:
    """Output ``output`` of node ``node``: a value once the run has computed it."""

    node: str
    output: str

    def __bool__(self) -> bool:
        raise InvalidInputError(
            f"output {self.output!r} of step {self.node!r} has no value while the pipeline is "
            "built: branch inside a step, not on a step's output in the pipeline function."
        )


@dataclass
class Node:
    name: str
    step: Step
    args: dict[str, Any]  # argument name -> OutputRef or literal value

    @property
    def upstream(self) -> list[str]:
        return sorted({a.node for a in self.args.values() if isinstance(a, OutputRef)})


@dataclass
class Graph:
    nodes: dict[str, Node] = field(default_factory=dict)  # in order of calls (a topological order)

    def add(self, step: Step, args: dict[str, Any]) -> Node:
        name = step.name
        n = 2
        while name in self.nodes:
            name = f"{step.name}_{n}"
            n += 1
        node = Node(name, step, args)
        self.nodes[name] = node
        return node

    def downstream(self, name: str) -> set[str]:
        """Every node that depends on ``name``, directly or not."""
        out: set[str] = set()
        for node in self.nodes.values():  # call order: an upstream comes first
            if any(u == name or u in out for u in node.upstream):
                out.add(node.name)
        return out


def _code_ref(fn: Callable[..., Any]) -> str:
    return f"{fn.__module__}:{fn.__qualname__}"


def _check_type(value: Any, annotation: Any, *, what: str) -> None:
    """isinstance against plain classes and unions of them; other annotations are not checked."""
    if annotation is inspect.Parameter.empty or annotation is Any:
        return
    options = typing.get_args(annotation) if _is_union(annotation) else (annotation,)
    classes: list[type] = []
    for opt in options:
        origin = typing.get_origin(opt) or opt
        if opt is None or opt is type(None):
            classes.append(type(None))
        elif isinstance(origin, type):
            classes.append(origin)
        else:
            return  # a TypeVar, a Literal, ...: not checked
    if float in classes and int not in classes:
        classes.append(int)  # PEP 484: an int is acceptable where a float is expected
    if not isinstance(value, tuple(classes)) or (
        isinstance(value, bool) and bool not in classes and int in classes and float not in classes
    ):
        names = " | ".join(c.__name__ for c in classes)
        raise InvalidInputError(f"{what} must be {names}; got {type(value).__name__}.")


def _is_union(tp: Any) -> bool:
    import types

    return typing.get_origin(tp) in (typing.Union, types.UnionType)


class Step:
    """A function whose calls inside a pipeline become cached, retried, recorded steps."""

    def __init__(
        self,
        fn: Callable[..., Any],
        *,
        name: str | None = None,
        outputs: tuple[str, ...] | None = None,
        cache: bool = True,
        retries: int = 0,
        retry_delay: float = 0.0,
        resources: Mapping[str, Any] | None = None,
    ) -> None:
        if not callable(fn):
            raise InvalidInputError(f"@step needs a function; got {fn!r}.")
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
            raise InvalidInputError(f"`retries` must be an int >= 0; got {retries!r}.")
        if (
            isinstance(retry_delay, bool)
            or not isinstance(retry_delay, (int, float))
            or not math.isfinite(retry_delay)
            or retry_delay < 0
        ):
            raise InvalidInputError(f"`retry_delay` must be a number >= 0; got {retry_delay!r}.")
        if not isinstance(cache, bool):
            raise InvalidInputError(f"`cache` must be a bool; got {cache!r}.")
        outs = ("output",) if outputs is None else tuple(outputs)
        if not outs or len(set(outs)) != len(outs) or not all(o.isidentifier() for o in outs):
            raise InvalidInputError(f"`outputs` must be distinct identifiers; got {outputs!r}.")
        self.fn = fn
        self.name = name or fn.__name__
        if not self.name.isidentifier():
            raise InvalidInputError(f"a step's name must be an identifier; got {self.name!r}.")
        self.outputs = outs
        self.multiple = outputs is not None
        self.cache = cache
        self.retries = retries
        self.retry_delay = float(retry_delay)
        self.resources = parse_resources(resources)
        self.code_ref = _code_ref(fn)
        self.signature = inspect.signature(fn)
        self.__doc__ = fn.__doc__
        self.__wrapped__ = fn

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        graph = _building.get()
        if graph is None:
            return self.fn(*args, **kwargs)
        try:
            bound = self.signature.bind(*args, **kwargs)
        except TypeError as exc:
            raise InvalidInputError(f"step {self.name!r}: {exc}.") from None
        bound.apply_defaults()
        node = graph.add(self, dict(bound.arguments))
        refs = tuple(OutputRef(node.name, o) for o in self.outputs)
        return refs if self.multiple else refs[0]

    def hints(self) -> dict[str, Any]:
        try:
            return typing.get_type_hints(self.fn)
        except (NameError, TypeError):
            return {}

    def check_inputs(self, values: Mapping[str, Any]) -> None:
        hints = self.hints()
        for name, value in values.items():
            if name in hints:
                _check_type(value, hints[name], what=f"step {self.name!r} input `{name}`")

    def split_outputs(self, result: Any) -> dict[str, Any]:
        """The function's return value as ``{output name: value}``, type-checked."""
        ret = self.hints().get("return", inspect.Parameter.empty)
        if not self.multiple:
            _check_type(result, ret, what=f"step {self.name!r} output")
            return {"output": result}
        if not isinstance(result, (tuple, list)) or len(result) != len(self.outputs):
            raise InvalidInputError(
                f"step {self.name!r} must return a tuple of {len(self.outputs)} values "
                f"({', '.join(self.outputs)}); got {type(result).__name__}."
            )
        kinds = typing.get_args(ret) if typing.get_origin(ret) is tuple else ()
        out = dict(zip(self.outputs, result, strict=True))
        if len(kinds) == len(self.outputs):
            for (o, v), k in zip(out.items(), kinds, strict=True):
                _check_type(v, k, what=f"step {self.name!r} output `{o}`")
        return out

    def __reduce__(self) -> tuple[Any, ...]:
        # By reference (the module attribute), so a process pool runs the same step.
        module, _, qualname = self.code_ref.partition(":")
        return (_load, (module, qualname))

    def __repr__(self) -> str:
        return f"<step {self.name} ({self.code_ref})>"


def _load(module: str, qualname: str) -> Any:
    obj: Any = importlib.import_module(module)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return obj


class PipelineDef:
    """A function that composes steps; ``run()`` executes it (see :func:`mloop.pipelines.run`)."""

    def __init__(self, fn: Callable[..., Any], *, name: str | None = None) -> None:
        self.fn = fn
        self.name = validate_pipeline_name(name or fn.__name__.replace("_", "-"), what="name")
        self.code_ref = _code_ref(fn)
        self.signature = inspect.signature(fn)
        self.__doc__ = fn.__doc__
        self.__wrapped__ = fn

    def params(self, kwargs: Mapping[str, Any]) -> dict[str, Any]:
        """The pipeline's arguments with defaults applied (keyword-only: they are recorded)."""
        try:
            bound = self.signature.bind(**kwargs)
        except TypeError as exc:
            raise InvalidInputError(f"pipeline {self.name!r}: {exc}.") from None
        bound.apply_defaults()
        return dict(bound.arguments)

    def build(self, params: Mapping[str, Any]) -> tuple[Graph, Any]:
        """The graph the function builds with ``params``, and what it returns (references)."""
        graph = Graph()
        token = _building.set(graph)
        try:
            returned = self.fn(**params)
        finally:
            _building.reset(token)
        if not graph.nodes:
            raise InvalidInputError(f"pipeline {self.name!r} calls no step.")
        return graph, returned

    def __call__(self, **kwargs: Any) -> Any:
        raise InvalidInputError(
            f"run a pipeline with `{self.fn.__name__}.run(...)` or mloop.pipelines.run(); "
            "calling it only builds its graph."
        )

    def run(self, **kwargs: Any) -> Any:
        """Run the pipeline: see :func:`mloop.pipelines.run` (its options are keyword-only too)."""
        run, options = _RUNNER[0]
        opts = {k: kwargs.pop(k) for k in list(kwargs) if k in options}
        return run(self, params=kwargs, **opts)

    def __repr__(self) -> str:
        return f"<pipeline {self.name} ({self.code_ref})>"


@overload
def step(fn: Callable[..., Any], /) -> Step: ...
@overload
def step(
    *,
    name: str | None = ...,
    outputs: tuple[str, ...] | None = ...,
    cache: bool = ...,
    retries: int = ...,
    retry_delay: float = ...,
    resources: Mapping[str, Any] | None = ...,
) -> Callable[[Callable[..., Any]], Step]: ...
def step(fn: Callable[..., Any] | None = None, /, **options: Any) -> Any:
    """Make ``fn`` a pipeline step (``@step`` or ``@step(retries=2, cache=False, ...)``).

    Parameters
    ----------
    name : str, optional
        The step's name in runs (default the function's name).
    outputs : tuple of str, optional
        Names of several outputs: the function returns a tuple, and a call in a pipeline returns
        one reference per name. Default: one output named ``output``.
    cache : bool, default True
        False: always execute (the run's ``cache=`` and ``MLOOP_PIPELINE_CACHE=0`` turn the cache
        off for every step).
    retries : int, default 0
        Call again this many times after an exception.
    retry_delay : float, default 0
        Seconds before the first retry; doubled before each next one.
    resources : mapping, optional
        What one call needs: ``cpus`` (number > 0), ``memory`` (bytes, or a size such as
        ``"2GB"``), ``gpus`` (number >= 0). Recorded on each step run; Ray schedules the task with
        it (``num_cpus``, ``memory``, ``num_gpus``); the process pool runs no more CPUs at once
        than it has workers.
    """
    if fn is not None:
        return Step(fn, **options)
    return lambda f: Step(f, **options)


def pipeline(fn: Callable[..., Any] | None = None, /, *, name: str | None = None) -> Any:
    """Make ``fn`` a pipeline: its calls to steps build the graph (``@pipeline(name="x")`` too)."""
    if fn is not None:
        return PipelineDef(fn, name=name)
    return lambda f: PipelineDef(f, name=name)
