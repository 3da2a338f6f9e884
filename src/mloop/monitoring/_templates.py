"""The Jinja2 environment of the HTML reports: package templates, autoescaped, strict.

Every ``{{ value }}`` is HTML-escaped unless it is :class:`markupsafe.Markup` (the SVG charts,
built from escaped parts), so a template cannot forget to escape a column or model name. The web
UI renders the same templates through :func:`environment`.
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING, Any

from markupsafe import Markup

if TYPE_CHECKING:
    import jinja2

__all__ = ["environment", "render", "static"]


@lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    """The shared environment (built on first use; loading templates reads no network)."""
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("mloop.monitoring", "templates"),
        autoescape=jinja2.select_autoescape(default=True, default_for_string=True),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,
    )
    env.globals["static"] = static
    return env


@lru_cache(maxsize=8)
def static(name: str) -> Markup:
    """A stylesheet or script shipped beside the templates, verbatim (never parsed as a template)."""
    env = environment()
    assert env.loader is not None
    source, _, _ = env.loader.get_source(env, name)
    return Markup(source.strip("\n"))


def render(name: str, /, **context: Any) -> str:
    """Render the template ``name`` with ``context``."""
    return environment().get_template(name).render(**context)
