"""``Registry``: versions, aliases, audit trail, lineage and loading, over the Store and BlobStore."""

from __future__ import annotations

import getpass
import hashlib
import os
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from mloop.codec import loads
from mloop.config import Settings
from mloop.errors import InvalidInputError, NotFoundError
from mloop.registry._lineage import Lineage, VersionDiff, build_lineage, diff_versions
from mloop.registry._manifest import MANIFEST_NAME
from mloop.registry._uris import ModelRef, RunArtifactRef, parse_model_uri, parse_version_spec
from mloop.store import (
    UNSET,
    ModelAlias,
    ModelVersion,
    Page,
    RegisteredModel,
    RegistryEvent,
    Store,
    open_store,
)

if TYPE_CHECKING:
    from mloop.artifacts import BlobRef, BlobStore
    from mloop.registry._package import PackagedModel

__all__ = ["MANIFEST_FILE", "Registry"]

MANIFEST_FILE = MANIFEST_NAME
_MOVES = ("alias_set", "alias_rollback", "alias_deleted")


def _default_actor() -> str | None:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return None


class Registry:
    """The model registry.

    Parameters
    ----------
    settings : Settings, optional
        Same resolution as :class:`mloop.Client` (``MLOOP_HOME``, ``MLOOP_STORE_URI``, ...).
    store : Store, optional
    actor : str, optional
        Recorded as the author of every change (default: the OS user).

    Examples
    --------
    >>> reg = mloop.Registry()                                                   # doctest: +SKIP
    >>> reg.set_alias("churn", "champion", 3, reason="beats v2", expected_version=2)  # doctest: +SKIP
    >>> model = reg.load("models:/churn@champion")                               # doctest: +SKIP
    """

    def __init__(
        self,
        *,
        settings: Settings | None = None,
        store: Store | None = None,
        actor: str | None = None,
    ) -> None:
        self.settings = settings or Settings.from_env()
        self._store = store
        self._blobstore: BlobStore | None = None
        self.actor = actor if actor is not None else _default_actor()

    @property
    def store(self) -> Store:
        if self._store is None:
            self._store = open_store(self.settings)
        return self._store

    @property
    def blobstore(self) -> BlobStore:
        if self._blobstore is None:
            from mloop.artifacts import BlobStore

            self._blobstore = BlobStore(self.settings.artifact_uri, token=self.settings.token)
        return self._blobstore

    # ------------------------------------------------------------------ models and versions
    def get_model(self, name: str) -> RegisteredModel:
        return self.store.get_registered_model(name)

    def list_models(
        self, filter: str | None = None, *, max_results: int = 1000, page_token: str | None = None
    ) -> Page:
        return self.store.search_registered_models(
            filter, max_results=max_results, page_token=page_token
        )

    def search_versions(
        self,
        filter: str | None = None,
        *,
        name: str | None = None,
        order_by: Sequence[str] | None = None,
        max_results: int = 1000,
        page_token: str | None = None,
        include_deleted: bool = False,
    ) -> Page:
        """Versions matching ``filter`` (``name = 'churn' and metrics.acc > 0.9``), as for runs.

        ``name`` restricts to one model (``search_versions("metrics.acc > 0.9", name="churn")``);
        errors in ``filter`` are reported at their position in ``filter`` itself.
        """
        return self.store.search_model_versions(
            filter,
            name=name,
            order_by=order_by,
            max_results=max_results,
            page_token=page_token,
            include_deleted=include_deleted,
        )

    def get_version(self, name: str, version: int | str) -> ModelVersion:
        """A version by number (``3``), alias (``"@champion"``) or ``"latest"``."""
        return self._resolve_ref(parse_version_spec(name, version))

    def _resolve_ref(self, ref: ModelRef) -> ModelVersion:
        if ref.kind == "alias":
            assert ref.alias is not None
            return self.store.get_version_by_alias(ref.name, ref.alias)
        if ref.kind == "latest":
            return self.store.get_latest_version(ref.name)
        assert ref.version is not None
        mv = self.store.get_model_version(ref.name, ref.version)
        if mv.deleted:
            raise NotFoundError(f"model {ref.name!r} version {ref.version} was deleted.")
        return mv

    def resolve(self, uri: str) -> ModelVersion:
        """The version a ``models:/`` URI names."""
        ref = parse_model_uri(uri)
        if isinstance(ref, RunArtifactRef):
            raise InvalidInputError(
                f"{uri!r} is a run artifact, not a registered version; use load() or register()."
            )
        return self._resolve_ref(ref)

    def register(
        self,
        source: str,
        name: str,
        *,
        description: str = "",
        tags: Mapping[str, Any] | None = None,
    ) -> ModelVersion:
        """Register a model package already logged as a run artifact (``runs:/<run_id>/model``)."""
        ref = parse_model_uri(source)
        if not isinstance(ref, RunArtifactRef):
            raise InvalidInputError(
                f"register() takes a runs:/<run_id>/<path> URI; got {source!r}."
            )
        manifest = self._read_manifest(ref)
        return self._create_version(
            name,
            artifact_uri=str(ref),
            run_id=ref.run_id,
            manifest=manifest,
            description=description,
            tags=tags,
        )

    def _read_manifest(self, ref: RunArtifactRef) -> dict[str, Any]:
        self.store.get_run(ref.run_id)  # NotFoundError names the run
        try:
            entry = self.store.get_artifact(ref.run_id, f"{ref.path}/{MANIFEST_FILE}")
        except NotFoundError:
            raise NotFoundError(
                f"{ref} holds no mloop model package (no {MANIFEST_FILE}); log one with mloop.log_model()."
            ) from None
        with self.blobstore.open(entry.sha256) as fh:
            return dict(loads(fh.read(), what=f"{ref}/{MANIFEST_FILE}"))

    def _create_version(
        self,
        name: str,
        *,
        artifact_uri: str,
        run_id: str,
        manifest: Mapping[str, Any],
        description: str = "",
        tags: Mapping[str, Any] | None = None,
    ) -> ModelVersion:
        from mloop.tracking import create_version_from_run

        ref = parse_model_uri(artifact_uri)
        assert isinstance(ref, RunArtifactRef)
        return create_version_from_run(
            self.store,
            name,
            run_id=run_id,
            artifact_path=ref.path,
            manifest_file=f"{ref.path}/{MANIFEST_FILE}",
            manifest=manifest,
            description=description,
            tags=tags,
            actor=self.actor,
        )

    def delete_version(self, name: str, version: int, *, reason: str | None = None) -> ModelVersion:
        """Soft-delete (refused while an alias points at it)."""
        return self.store.delete_model_version(name, version, actor=self.actor, reason=reason)

    def set_tags(self, name: str, tags: Mapping[str, Any], *, version: int | None = None) -> None:
        if version is None:
            self.store.set_registered_model_tags(name, tags, actor=self.actor)
        else:
            self.store.set_model_version_tags(name, version, tags, actor=self.actor)

    def set_description(self, name: str, description: str, *, version: int | None = None) -> None:
        if version is None:
            self.store.update_registered_model(name, description=description, actor=self.actor)
        else:
            self.store.update_model_version(
                name, version, description=description, actor=self.actor
            )

    # ------------------------------------------------------------------ aliases
    def set_alias(
        self,
        name: str,
        alias: str,
        version: int,
        *,
        reason: str | None = None,
        expected_version: Any = UNSET,
        report_id: str | None = None,
    ) -> ModelAlias:
        """Point ``alias`` at ``version`` (atomic; conditional with ``expected_version``; audited)."""
        return self.store.set_alias(
            name,
            alias,
            version,
            actor=self.actor,
            reason=reason,
            expected_version=expected_version,
            report_id=report_id,
        )

    def delete_alias(
        self, name: str, alias: str, *, reason: str | None = None, expected_version: Any = UNSET
    ) -> None:
        self.store.delete_alias(
            name, alias, actor=self.actor, reason=reason, expected_version=expected_version
        )

    def protect_alias(
        self, name: str, alias: str, protected: bool = True, *, reason: str | None = None
    ) -> ModelAlias:
        """A protected alias moves only with a ``reason``."""
        return self.store.set_alias_protected(
            name, alias, protected, actor=self.actor, reason=reason
        )

    def rollback(self, name: str, alias: str, *, reason: str | None = None) -> ModelAlias:
        """Move ``alias`` back to its previous target (undoing moves one at a time, like a stack)."""
        current_alias = self.store.get_alias(name, alias)
        current = current_alias.version
        events = self.store.list_events(model=name, alias=alias, types=list(_MOVES), limit=50_000)
        stack: list[int] = []
        for e in events:
            if e.type == "alias_set":
                stack.append(int(e.after))
            elif e.type == "alias_rollback":
                if stack:
                    stack.pop()
            else:
                stack.clear()
        if len(stack) < 2:
            raise InvalidInputError(f"alias {name}@{alias} has no previous target to roll back to.")
        target = stack[-2]
        if self.store.get_model_version(name, target).deleted:
            raise InvalidInputError(
                f"cannot roll {name}@{alias} back to version {target}: it was deleted."
            )
        return self.store.set_alias(
            name,
            alias,
            target,
            actor=self.actor,
            # A protected alias needs the caller's own reason, even to roll back.
            reason=reason
            if current_alias.protected
            else (reason or f"rollback from version {current}"),
            expected_version=current,
            event_type="alias_rollback",
        )

    def history(
        self, name: str, *, alias: str | None = None, limit: int = 1000
    ) -> list[RegistryEvent]:
        """The audit trail of a model (or of one alias), oldest first."""
        self.store.get_registered_model(name)
        return self.store.list_events(model=name, alias=alias, limit=limit)

    # ------------------------------------------------------------------ lineage
    def lineage(self, name: str, version: int | str) -> Lineage:
        """version -> source run -> datasets (content hashes) -> git commit and config."""
        return build_lineage(self.store, self.get_version(name, version))

    def diff(self, name: str, a: int | str, b: int | str) -> VersionDiff:
        """Params, metrics, datasets and signature of two versions side by side."""
        return diff_versions(self.get_version(name, a), self.get_version(name, b))

    # ------------------------------------------------------------------ files
    def download(
        self, uri_or_version: str | ModelVersion, *, dest: str | os.PathLike[str] | None = None
    ) -> Path:
        """The model package as a local directory (cached by content under ``$MLOOP_HOME/cache``).

        A registered version is cached under its manifest's hash, so a warm load reads nothing but the
        version's row; every load checks the files (by hash, or by ``stat`` while they are unchanged
        since this process hashed them: see :func:`~mloop.registry.load_model_dir`).
        """
        mv: ModelVersion | None = None
        if isinstance(uri_or_version, ModelVersion):
            mv = uri_or_version
        else:
            parsed = parse_model_uri(uri_or_version)
            if isinstance(parsed, ModelRef):
                mv = self._resolve_ref(parsed)
        ref = parse_model_uri(mv.artifact_uri if mv is not None else str(uri_or_version))
        assert isinstance(ref, RunArtifactRef)
        cache_root = self.settings.home.absolute() / "cache" / "models"
        manifest_sha = mv.manifest.get("manifest_sha256") if mv is not None else None
        if dest is None and manifest_sha:
            # A cache entry appears only by renaming a complete download into place (below).
            cached = cache_root / str(manifest_sha)[:32] / ref.path
            if (cached / MANIFEST_FILE).exists():
                return cached
        known = _package_files(ref, manifest_sha, mv) if dest is None else None
        entries: Sequence[BlobRef]
        if known is not None:
            entries = known
        else:
            entries = self.store.list_artifacts(ref.run_id, prefix=ref.path)
            if not any(e.path == f"{ref.path}/{MANIFEST_FILE}" for e in entries):
                raise NotFoundError(f"{ref} holds no mloop model package (no {MANIFEST_FILE}).")
        from mloop.artifacts import download_tree

        if dest is not None:
            download_tree(self.blobstore, entries, Path(dest))
            return Path(dest) / ref.path
        if manifest_sha:
            key = str(manifest_sha)[:32]
        else:
            listing = "\n".join(f"{e.path}\0{e.sha256}" for e in entries)
            key = hashlib.sha256(listing.encode()).hexdigest()[:32]
        cache = cache_root / key
        if (cache / ref.path / MANIFEST_FILE).exists():
            return cache / ref.path
        try:
            tmp = Path(tempfile.mkdtemp(prefix=f".{key}-", dir=cache_root))
        except FileNotFoundError:  # the first download into this home
            cache_root.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(prefix=f".{key}-", dir=cache_root))
        try:
            # Files are written into a private folder that only a complete download leaves, by
            # one rename: so a cache entry that exists is whole (no marker file to write).
            # The cache is private: small files are hard links to the (read-only) local blobs,
            # which costs a directory entry each instead of a new file's data.
            download_tree(self.blobstore, entries, tmp, link=True)
            try:
                os.replace(tmp, cache)
            except OSError:  # a concurrent loader filled the cache first
                shutil.rmtree(tmp, ignore_errors=True)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
        return cache / ref.path

    def load(self, uri: str, *, strict: bool = False) -> PackagedModel:
        """Load ``models:/name@alias``, ``models:/name/3``, ``models:/name/latest`` or ``runs:/<id>/model``.

        File hashes (the manifest's own included) are verified before anything is deserialised; a
        package this process verified and that is unchanged on disk since is not hashed again, and
        a warm load of a scikit-learn model may be a copy of the one built from the same verified
        files (see :func:`~mloop.registry.load_model_dir`). From a local artifact folder, a
        registered scikit-learn (skops) package is read from its blobs, with the same checks,
        and its folder under the cache is made only when ``PackagedModel.path`` is asked for.
        ``predict`` validates its input against the signature.
        """
        from mloop.registry._package import load_model_dir

        ref = parse_model_uri(uri)
        if isinstance(ref, ModelRef):
            mv = self._resolve_ref(ref)
            if self.blobstore.is_local:
                from mloop.registry._blob_load import load_from_blobs

                loaded = load_from_blobs(
                    self.blobstore, mv, strict=strict, folder=lambda: self.download(mv)
                )
                if loaded is not None:
                    return loaded
            path = self.download(mv)
            manifest_sha = mv.manifest.get("manifest_sha256")
        else:
            path = self.download(uri)
            manifest_sha = self.store.get_artifact(ref.run_id, f"{ref.path}/{MANIFEST_FILE}").sha256
        return load_model_dir(path, strict=strict, manifest_sha256=manifest_sha)

    def __repr__(self) -> str:
        return f"Registry(store={self.store!r})"


class _PackageFile(NamedTuple):
    path: str
    sha256: str


def _package_files(
    ref: RunArtifactRef, manifest_sha: object, mv: ModelVersion | None
) -> list[_PackageFile] | None:
    """The files of a registered version's package, from the version's own record: its
    manifest's file hashes and the manifest's hash. None when the record lacks them (then the
    run's artifact index is listed). A record that disagrees with the package's manifest is
    refused by the load, which checks every file against the manifest it downloaded."""
    files = mv.manifest.get("files") if mv is not None else None
    if not manifest_sha or not isinstance(files, Mapping) or not files:
        return None
    found = [_PackageFile(f"{ref.path}/{rel}", str(sha)) for rel, sha in files.items()]
    return [*found, _PackageFile(f"{ref.path}/{MANIFEST_FILE}", str(manifest_sha))]
