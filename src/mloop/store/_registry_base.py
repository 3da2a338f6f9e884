"""The registry half of the Store contract: validation here, ``_do_*`` hooks in each backend."""

from __future__ import annotations

import abc
import re
from collections.abc import Mapping, Sequence
from typing import Any, Final, Literal, TypedDict

from mloop.errors import InvalidInputError
from mloop.store._entities import Page
from mloop.store._filter import (
    MODEL_ATTRIBUTES,
    VERSION_ATTRIBUTES,
    Comparison,
    OrderKey,
    parse_filter,
    parse_order_by,
)
from mloop.store._registry_entities import (
    ModelAlias,
    ModelVersion,
    RegisteredModel,
    RegistryEvent,
)
from mloop.store._validation import validate_run_id, validate_sha256, validate_tags

__all__ = ["UNSET", "RegistryStoreMixin", "validate_alias", "validate_model_name"]

_MODEL_NAME_RE = re.compile(r"^[A-Za-z0-9_][\w.\-]{0,255}$")
_ALIAS_RE = re.compile(r"^[\w-]+$")
_RESERVED_ALIAS = re.compile(r"^(latest|v\d+)$", re.IGNORECASE)


class _Unset:
    def __repr__(self) -> str:
        return "UNSET"


UNSET: Final = _Unset()


def validate_model_name(name: object) -> str:
    if not isinstance(name, str) or not _MODEL_NAME_RE.match(name):
        raise InvalidInputError(
            "model name must be 1 to 256 characters of letters, digits, '_', '-' and '.', starting "
            f"with a letter, digit or '_'; got {name!r}."
        )
    return name


def validate_alias(alias: object) -> str:
    """MLflow's alias rules: at most 255 characters of ``[\\w-]``; ``latest`` and ``v<digits>`` are reserved."""
    if not isinstance(alias, str) or not alias or len(alias) > 255 or not _ALIAS_RE.match(alias):
        raise InvalidInputError(
            f"alias must be 1 to 255 characters of letters, digits, '_' and '-'; got {alias!r}."
        )
    if _RESERVED_ALIAS.match(alias):
        raise InvalidInputError(
            f"alias {alias!r} is reserved ('latest' and 'v<number>' name versions); choose another."
        )
    return alias


def validate_version(version: object) -> int:
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise InvalidInputError(f"model version must be an int >= 1; got {version!r}.")
    return version


def _validate_actor(actor: object) -> str | None:
    if actor is not None and (not isinstance(actor, str) or len(actor) > 255):
        raise InvalidInputError(f"`actor` must be a str of at most 255 characters; got {actor!r}.")
    return actor


def _validate_reason(reason: object) -> str | None:
    if reason is not None and (not isinstance(reason, str) or len(reason) > 8000):
        raise InvalidInputError(
            f"`reason` must be a str of at most 8000 characters; got {type(reason).__name__}."
        )
    return reason


def _expected(expected_version: object) -> int | _Unset | None:
    if expected_version is UNSET or expected_version is None:
        return expected_version
    return validate_version(expected_version)


class VersionFields(TypedDict):
    """A validated model version's columns, as ``create_model_version`` passes them on."""

    artifact_uri: str
    flavor: str
    source_run_id: str | None
    signature: dict[str, Any] | None
    manifest: dict[str, Any]
    metrics: dict[str, float]
    params: dict[str, str]
    datasets: list[dict[str, Any]]
    git_commit: str | None
    description: str
    tags: dict[str, str]
    actor: str | None


class RegistryStoreMixin(abc.ABC):
    """Registered models, versions, aliases, the event log and webhooks."""

    @abc.abstractmethod
    def before_run_access(self, run_id: str | None) -> None:
        """See ``RunStoreMixin.before_run_access`` (a version's source run is read first)."""

    # ------------------------------------------------------------------ models
    def create_registered_model(
        self,
        name: str,
        *,
        description: str = "",
        tags: Mapping[str, Any] | None = None,
        actor: str | None = None,
    ) -> RegisteredModel:
        return self._do_create_registered_model(
            validate_model_name(name),
            str(description or ""),
            validate_tags(tags or {}),
            _validate_actor(actor),
        )

    def get_registered_model(self, name: str) -> RegisteredModel:
        return self._do_get_registered_model(validate_model_name(name))

    def search_registered_models(
        self,
        filter: str | None = None,
        *,
        order_by: Sequence[str] | None = None,
        max_results: int = 1000,
        page_token: str | None = None,
    ) -> Page:
        """Models matching ``filter`` (``name LIKE 'churn%' and tags.team = 'growth'``)."""
        from mloop.store._common import decode_page_token, encode_page_token, validate_max_results

        validate_max_results(max_results)
        offset = decode_page_token(page_token)
        ast = parse_filter(filter or "", attributes=MODEL_ATTRIBUTES)
        order = parse_order_by(order_by or [], attributes=MODEL_ATTRIBUTES)
        checks: list[Any] = [*ast, *order]
        for c in checks:
            if c.entity not in ("attribute", "tag"):
                raise InvalidInputError(
                    f"models can be filtered on name and tags only; got {c.entity}s.{c.key}."
                )
        items, more = self._do_search_registered_models(ast, order, max_results, offset)
        return Page(items, encode_page_token(offset + len(items)) if more else None)

    def update_registered_model(
        self, name: str, *, description: str, actor: str | None = None
    ) -> RegisteredModel:
        return self._do_update_registered_model(
            validate_model_name(name), str(description), _validate_actor(actor)
        )

    def set_registered_model_tags(
        self, name: str, tags: Mapping[str, Any], *, actor: str | None = None
    ) -> None:
        clean, who = validate_tags(tags), _validate_actor(actor)
        if not clean:  # nothing to set and no event to record; a missing model still fails
            self.get_registered_model(name)
            return
        self._do_set_model_tags(validate_model_name(name), None, clean, who)

    def delete_registered_model_tag(self, name: str, key: str, *, actor: str | None = None) -> None:
        self._do_delete_model_tag(validate_model_name(name), None, key, _validate_actor(actor))

    # ------------------------------------------------------------------ versions
    def create_model_version(
        self,
        name: str,
        *,
        artifact_uri: str,
        flavor: str,
        source_run_id: str | None = None,
        signature: Mapping[str, Any] | None = None,
        manifest: Mapping[str, Any] | None = None,
        metrics: Mapping[str, float] | None = None,
        params: Mapping[str, str] | None = None,
        datasets: Sequence[Mapping[str, Any]] = (),
        git_commit: str | None = None,
        description: str = "",
        tags: Mapping[str, Any] | None = None,
        actor: str | None = None,
    ) -> ModelVersion:
        """Register a new version (1 + the highest so far), creating the model if needed, atomically."""
        validate_model_name(name)
        if source_run_id is not None:
            validate_run_id(source_run_id)
            self.before_run_access(source_run_id)  # a run this process started, not written yet
        if not isinstance(artifact_uri, str) or not artifact_uri:
            raise InvalidInputError(
                f"`artifact_uri` must be a non-empty str; got {artifact_uri!r}."
            )
        if not isinstance(flavor, str) or not flavor:
            raise InvalidInputError(f"`flavor` must be a non-empty str; got {flavor!r}.")
        for i, d in enumerate(datasets):
            if not isinstance(d, Mapping) or "sha256" not in d:
                raise InvalidInputError(
                    f"`datasets[{i}]` must be a mapping with a 'sha256' key; got {d!r}."
                )
            validate_sha256(d["sha256"], name=f"datasets[{i}]['sha256']")
        return self._do_create_model_version(
            name,
            VersionFields(
                artifact_uri=artifact_uri,
                flavor=flavor,
                source_run_id=source_run_id,
                signature=dict(signature) if signature is not None else None,
                manifest=dict(manifest or {}),
                metrics={str(k): float(v) for k, v in (metrics or {}).items()},
                params={str(k): str(v) for k, v in (params or {}).items()},
                datasets=[dict(d) for d in datasets],
                git_commit=git_commit,
                description=str(description or ""),
                tags=validate_tags(tags or {}),
                actor=_validate_actor(actor),
            ),
        )

    def get_model_version(self, name: str, version: int) -> ModelVersion:
        return self._do_get_model_version(validate_model_name(name), validate_version(version))

    def get_latest_version(self, name: str) -> ModelVersion:
        """The highest version number that is not deleted."""
        return self._do_get_latest_version(validate_model_name(name))

    def search_model_versions(
        self,
        filter: str | None = None,
        *,
        name: str | None = None,
        order_by: Sequence[str] | None = None,
        max_results: int = 1000,
        page_token: str | None = None,
        include_deleted: bool = False,
    ) -> Page:
        """Versions matching ``filter``: ``name``, ``version``, ``run_id``, ``flavor``, ``created``,
        ``tags.*`` and ``metrics.*`` (the snapshot taken at registration).

        ``name`` restricts to one model's versions. It is added to the parsed filter, never pasted
        into its text, so an error in ``filter`` is reported at its position in ``filter``.
        """
        from mloop.store._common import decode_page_token, encode_page_token, validate_max_results

        validate_max_results(max_results)
        offset = decode_page_token(page_token)
        ast = parse_filter(filter or "", attributes=VERSION_ATTRIBUTES)
        if name is not None:
            ast = [Comparison("attribute", "name", "=", validate_model_name(name)), *ast]
        order = parse_order_by(order_by or [], attributes=VERSION_ATTRIBUTES)
        checks: list[Any] = [*ast, *order]
        for c in checks:
            if c.entity == "param":
                raise InvalidInputError(
                    f"model versions cannot be filtered on params; got params.{c.key}."
                )
        items, more = self._do_search_model_versions(
            ast, order, max_results, offset, include_deleted
        )
        return Page(items, encode_page_token(offset + len(items)) if more else None)

    def update_model_version(
        self, name: str, version: int, *, description: str, actor: str | None = None
    ) -> ModelVersion:
        return self._do_update_model_version(
            validate_model_name(name),
            validate_version(version),
            str(description),
            _validate_actor(actor),
        )

    def set_model_version_tags(
        self, name: str, version: int, tags: Mapping[str, Any], *, actor: str | None = None
    ) -> None:
        clean, who = validate_tags(tags), _validate_actor(actor)
        if not clean:  # nothing to set and no event to record; a missing version still fails
            self.get_model_version(name, version)
            return
        self._do_set_model_tags(validate_model_name(name), validate_version(version), clean, who)

    def delete_model_version_tag(
        self, name: str, version: int, key: str, *, actor: str | None = None
    ) -> None:
        self._do_delete_model_tag(
            validate_model_name(name), validate_version(version), key, _validate_actor(actor)
        )

    def delete_model_version(
        self, name: str, version: int, *, actor: str | None = None, reason: str | None = None
    ) -> ModelVersion:
        """Soft-delete a version; refused (ConflictError) while an alias points at it."""
        return self._do_delete_model_version(
            validate_model_name(name),
            validate_version(version),
            _validate_actor(actor),
            _validate_reason(reason),
        )

    # ------------------------------------------------------------------ aliases
    def set_alias(
        self,
        name: str,
        alias: str,
        version: int,
        *,
        actor: str | None = None,
        reason: str | None = None,
        expected_version: int | _Unset | None = UNSET,
        report_id: str | None = None,
        event_type: Literal["alias_set", "alias_rollback"] = "alias_set",
    ) -> ModelAlias:
        """Point ``alias`` at ``version`` atomically and record the move.

        ``expected_version`` (an int, or None for "the alias does not exist yet") makes the move
        conditional: if the alias points elsewhere, :class:`~mloop.errors.ConflictError` is raised
        and nothing changes, so of two concurrent promotions exactly one wins. A protected alias
        moves only with a ``reason``.
        """
        if event_type not in ("alias_set", "alias_rollback"):
            raise InvalidInputError(
                f"`event_type` must be 'alias_set' or 'alias_rollback'; got {event_type!r}."
            )
        return self._do_set_alias(
            validate_model_name(name),
            validate_alias(alias),
            validate_version(version),
            actor=_validate_actor(actor),
            reason=_validate_reason(reason),
            expected_version=_expected(expected_version),
            report_id=report_id,
            event_type=event_type,
        )

    def delete_alias(
        self,
        name: str,
        alias: str,
        *,
        actor: str | None = None,
        reason: str | None = None,
        expected_version: int | _Unset | None = UNSET,
    ) -> None:
        self._do_delete_alias(
            validate_model_name(name),
            validate_alias(alias),
            actor=_validate_actor(actor),
            reason=_validate_reason(reason),
            expected_version=_expected(expected_version),
        )

    def get_alias(self, name: str, alias: str) -> ModelAlias:
        return self._do_get_alias(validate_model_name(name), validate_alias(alias))

    def get_version_by_alias(self, name: str, alias: str) -> ModelVersion:
        """The version ``alias`` points at: :meth:`get_alias` then :meth:`get_model_version`,
        in one read where the backend can (what loading ``models:/name@alias`` asks for)."""
        return self._do_get_version_by_alias(validate_model_name(name), validate_alias(alias))

    def list_aliases(self, name: str) -> list[ModelAlias]:
        return self._do_list_aliases(validate_model_name(name))

    def set_alias_protected(
        self,
        name: str,
        alias: str,
        protected: bool,
        *,
        actor: str | None = None,
        reason: str | None = None,
    ) -> ModelAlias:
        return self._do_set_alias_protected(
            validate_model_name(name),
            validate_alias(alias),
            bool(protected),
            _validate_actor(actor),
            _validate_reason(reason),
        )

    # ------------------------------------------------------------------ events
    def list_events(
        self,
        *,
        model: str | None = None,
        alias: str | None = None,
        types: Sequence[str] | None = None,
        after_id: int = 0,
        limit: int = 1000,
        newest_first: bool = False,
    ) -> list[RegistryEvent]:
        """The registry event log, oldest first from the cursor ``after_id`` (or newest first)."""
        from mloop.store._common import validate_max_results

        validate_max_results(limit, name="limit")
        if model is not None:
            validate_model_name(model)
        if alias is not None:
            validate_alias(alias)
        return self._do_list_events(
            model, alias, list(types) if types else None, int(after_id), limit, newest_first
        )

    def add_event(
        self,
        type: str,
        model: str,
        *,
        version: int | None = None,
        alias: str | None = None,
        actor: str | None = None,
        before: Any = None,
        after: Any = None,
        reason: str | None = None,
        report_id: str | None = None,
    ) -> RegistryEvent:
        """Append an event to the log, e.g. ``promotion_overridden`` for a promotion forced past
        a failing or missing check report (``put_check_report`` appends ``report_attached``)."""
        from mloop.store._registry_entities import EVENT_TYPES

        if type not in EVENT_TYPES:
            raise InvalidInputError(f"event type must be one of {list(EVENT_TYPES)}; got {type!r}.")
        return self._do_add_event(
            type,
            validate_model_name(model),
            version,
            alias,
            _validate_actor(actor),
            before,
            after,
            _validate_reason(reason),
            report_id,
        )

    # ------------------------------------------------------------------ hooks
    @abc.abstractmethod
    def _do_create_registered_model(
        self, name: str, description: str, tags: dict[str, str], actor: str | None
    ) -> RegisteredModel: ...
    @abc.abstractmethod
    def _do_get_registered_model(self, name: str) -> RegisteredModel: ...
    @abc.abstractmethod
    def _do_search_registered_models(
        self, ast: list[Comparison], order: list[OrderKey], limit: int, offset: int
    ) -> tuple[list[RegisteredModel], bool]: ...
    @abc.abstractmethod
    def _do_update_registered_model(
        self, name: str, description: str, actor: str | None
    ) -> RegisteredModel: ...
    @abc.abstractmethod
    def _do_set_model_tags(
        self, name: str, version: int | None, tags: dict[str, str], actor: str | None
    ) -> None: ...
    @abc.abstractmethod
    def _do_delete_model_tag(
        self, name: str, version: int | None, key: str, actor: str | None
    ) -> None: ...
    @abc.abstractmethod
    def _do_create_model_version(self, name: str, fields: VersionFields) -> ModelVersion: ...
    @abc.abstractmethod
    def _do_get_model_version(self, name: str, version: int) -> ModelVersion: ...
    @abc.abstractmethod
    def _do_get_latest_version(self, name: str) -> ModelVersion: ...
    @abc.abstractmethod
    def _do_search_model_versions(
        self,
        ast: list[Comparison],
        order: list[OrderKey],
        limit: int,
        offset: int,
        include_deleted: bool,
    ) -> tuple[list[ModelVersion], bool]: ...
    @abc.abstractmethod
    def _do_update_model_version(
        self, name: str, version: int, description: str, actor: str | None
    ) -> ModelVersion: ...
    @abc.abstractmethod
    def _do_delete_model_version(
        self, name: str, version: int, actor: str | None, reason: str | None
    ) -> ModelVersion: ...
    @abc.abstractmethod
    def _do_set_alias(
        self,
        name: str,
        alias: str,
        version: int,
        *,
        actor: str | None,
        reason: str | None,
        expected_version: int | _Unset | None,
        report_id: str | None,
        event_type: Literal["alias_set", "alias_rollback"],
    ) -> ModelAlias: ...
    @abc.abstractmethod
    def _do_delete_alias(
        self,
        name: str,
        alias: str,
        *,
        actor: str | None,
        reason: str | None,
        expected_version: int | _Unset | None,
    ) -> None: ...
    @abc.abstractmethod
    def _do_get_alias(self, name: str, alias: str) -> ModelAlias: ...
    @abc.abstractmethod
    def _do_list_aliases(self, name: str) -> list[ModelAlias]: ...
    def _do_get_version_by_alias(self, name: str, alias: str) -> ModelVersion:
        # Two calls; a backend that can answer in one read overrides this.
        return self._do_get_model_version(name, self._do_get_alias(name, alias).version)

    @abc.abstractmethod
    def _do_set_alias_protected(
        self, name: str, alias: str, protected: bool, actor: str | None, reason: str | None
    ) -> ModelAlias: ...
    @abc.abstractmethod
    def _do_list_events(
        self,
        model: str | None,
        alias: str | None,
        types: list[str] | None,
        after_id: int,
        limit: int,
        newest_first: bool,
    ) -> list[RegistryEvent]: ...
    @abc.abstractmethod
    def _do_add_event(
        self,
        type: str,
        model: str,
        version: int | None,
        alias: str | None,
        actor: str | None,
        before: Any,
        after: Any,
        reason: str | None,
        report_id: str | None,
    ) -> RegistryEvent: ...
