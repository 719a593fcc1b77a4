"""A snapshot header as mesh-audit writes it, recognized without jsonschema.

Importing jsonschema takes longer than reading a small snapshot, and every header
mesh-audit writes is valid. These types say what `schemas/snapshot.schema.json` says,
strictly (no coercion): a header they accept, the schema accepts too
(tests/test_snapshot_file.py holds the two together). Anything they do not accept is
checked against the schema itself, which words the problem.
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
from msgspec import UNSET, Meta, UnsetType

_NAME = Annotated[str, Meta(pattern="^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")]
_COUNT = Annotated[int, Meta(ge=0)]


class _Tool(msgspec.Struct):
    name: str | UnsetType = UNSET
    version: str | UnsetType = UNSET


class _Gap(msgspec.Struct):
    resource: str
    reason: str
    namespace: str | None | UnsetType = UNSET
    name: str | None | UnsetType = UNSET
    status: int | None | UnsetType = UNSET


class _Collection(msgspec.Struct):
    context: str | None | UnsetType = UNSET
    server: str | None | UnsetType = UNSET
    server_version: str | None | UnsetType = UNSET
    collected_at: str | None | UnsetType = UNSET
    namespaces: list[str] | None | UnsetType = UNSET
    counts: dict[str, _COUNT] | UnsetType = UNSET
    not_collected: list[_Gap] | UnsetType = UNSET
    not_installed: list[str] | UnsetType = UNSET


class HeaderFields(msgspec.Struct):
    kind: Literal["MeshAuditSnapshot"]
    schema_version: Annotated[int, Meta(ge=1)]
    collection: _Collection
    tool: _Tool | UnsetType = UNSET
    objects: _COUNT | UnsetType = UNSET
    cluster: _NAME | UnsetType = UNSET
    clusters: Annotated[list[_NAME], Meta(min_length=1)] | UnsetType = UNSET


def plainly_valid(header: dict) -> bool:
    """True when the header is one the schema accepts, by these types; False says only
    that the schema must decide."""
    try:
        msgspec.convert(header, HeaderFields)
    except msgspec.ValidationError:
        return False
    return True
