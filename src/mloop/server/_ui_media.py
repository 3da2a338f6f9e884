"""The run page's Media section: one read that lists a run's media by key, each item with the
sha256 and size of the artifact holding its bytes, so the page fetches an image straight from the
blob route and a table's first rows through the artifact preview (no second listing)."""

from __future__ import annotations

from typing import Any

from mloop.store import Store

__all__ = ["MAX_HISTOGRAM_STEPS", "media_listing"]

# A histogram key logged every step of a long run would make the answer megabytes (each step
# carries its counts); the page draws at most this many steps, evenly spaced, first and last kept.
MAX_HISTOGRAM_STEPS = 500


def _spread(items: list[Any], n: int) -> list[Any]:
    if len(items) <= n:
        return items
    last = len(items) - 1
    return [items[round(i * last / (n - 1))] for i in range(n)]


def media_listing(store: Store, run_id: str) -> dict[str, Any]:
    """``{"keys": [{"key", "kind", "items": [{step, path, sha256, size, meta, timestamp_ms}]}]}``,
    keys in name order (one group per key and kind), items by step (an item whose artifact is
    gone has ``sha256`` None); a histogram key of more than :data:`MAX_HISTOGRAM_STEPS` steps is
    thinned to that many, evenly spaced, and says how many steps were logged (``logged_steps``)."""
    items = store.list_media(run_id)
    files = {}
    if items:
        files = {a.path: a for a in store.list_artifacts(run_id, prefix="media")}
        missing = {i.path for i in items} - files.keys()
        if missing:  # logged outside media/ (the index allows any artifact of the run)
            files.update({a.path: a for a in store.list_artifacts(run_id) if a.path in missing})
    groups: dict[tuple[str, str], dict[str, Any]] = {}
    for item in items:  # by key then step: a key logged as two kinds makes two groups
        group = groups.setdefault(
            (item.key, item.kind), {"key": item.key, "kind": item.kind, "items": []}
        )
        entry = files.get(item.path)
        group["items"].append(
            {
                "step": item.step,
                "kind": item.kind,
                "path": item.path,
                "sha256": entry.sha256 if entry else None,
                "size": entry.size if entry else None,
                "meta": dict(item.meta),
                "timestamp_ms": item.timestamp_ms,
            }
        )
    for group in groups.values():
        if group["kind"] == "histogram" and len(group["items"]) > MAX_HISTOGRAM_STEPS:
            group["logged_steps"] = len(group["items"])
            group["items"] = _spread(group["items"], MAX_HISTOGRAM_STEPS)
    return {"run_id": run_id, "keys": list(groups.values())}
