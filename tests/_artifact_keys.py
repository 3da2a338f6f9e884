"""What tests of any artifact store need to see behind its API: the keys it holds, and a way to
damage one. For a server's store (``BlobStore("http://...")``) that is the server's own store."""

from __future__ import annotations

from pathlib import Path
from typing import Any

# A test server's URL -> the artifact store it serves (registered by the fixture that starts it).
BACKING: dict[str, Any] = {}


def backing(store: Any) -> Any:
    """The store that holds the bytes: the server's own for a server's store, else ``store``."""
    return BACKING.get(str(store.uri), store)


def all_keys(store: Any) -> list[str]:
    """Every key under the store's root ('blobs/ab/ab12...', 'datasets/...', temp files too)."""
    s = backing(store)
    if s.is_local:
        root = Path(s._root)
        return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
    return sorted(k[len(s._root) + 1 :] for k in s._fs.find(s._root, withdirs=False))


def overwrite_key(store: Any, key: str, data: bytes) -> None:
    """Damage a stored file behind the store's back."""
    s = backing(store)
    if s.is_local:
        Path(s._full(key)).write_bytes(data)
    else:
        s._fs.pipe_file(s._full(key), data)
