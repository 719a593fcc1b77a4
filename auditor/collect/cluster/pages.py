"""One page of a LIST response: its items (running Pods and ReplicaSets read straight into
their projection), its continue token and resourceVersion, and what makes a page
malformed (Unavailable, which the lister turns into a gap)."""

from __future__ import annotations

import re
from typing import TypedDict

import msgspec
import orjson
from msgspec import Raw

from auditor.collect.cluster.http import Response, Unavailable
from auditor.collect.cluster.resources import PAGE_SIZE, ResourceType
from auditor.collect.decode import ProjectingReader
from auditor.core.errors import json_problem


def list_key(rtype: ResourceType, namespace: str | None) -> tuple[str, str]:
    return rtype.key, namespace or ""


def page_query(token: str | None) -> dict:
    return {"limit": PAGE_SIZE, "continue": token} if token else {"limit": PAGE_SIZE}


_CONTINUE = re.compile(rb'"continue"\s*:\s*"((?:[^"\\]|\\.)*)"')
_VERSION = re.compile(rb'"resourceVersion"\s*:\s*"([0-9A-Za-z._-]*)"')


def list_version(body: bytes) -> str | None:
    """The resourceVersion of a list response, read from its ListMeta before the items."""
    end = body.find(b'"items"')
    match = _VERSION.search(body, 0, end) if end > 0 else None
    return match.group(1).decode() if match else None


def continue_token(body: bytes) -> str | None:
    """The continue token of a list response, read from the bytes before its items (where
    ListMeta is) without parsing the page; None when it is not there."""
    end = body.find(b'"items"')
    match = _CONTINUE.search(body, 0, end) if end > 0 else None
    if match is None:
        return None
    try:
        token = orjson.loads(b'"' + match.group(1) + b'"')
    except orjson.JSONDecodeError:
        return None
    return token or None


class _Page(TypedDict, total=False):
    kind: object
    metadata: object
    items: list[Raw] | None


_PAGE = msgspec.json.Decoder(_Page)


def projected_page(resp: Response, rtype: ResourceType, read: ProjectingReader) -> tuple[list, str | None]:
    """A page of running Pods or ReplicaSets: each item read straight into its projection
    by the list's reader (collect.decode: replicas share their parts); what that cannot
    read, and any malformed page, as list_page does."""
    try:
        doc = _PAGE.decode(resp.body)
    except (msgspec.DecodeError, RecursionError):
        return list_page(resp)
    token = _list_token(doc)
    out: list = []
    for raw in doc.get("items") or ():
        projected = read(raw, rtype.kind, rtype.api_version)
        if projected is not None:
            out.append(projected)
        else:
            try:  # orjson reads buffers, not msgspec's Raw itself
                out.append(orjson.loads(memoryview(raw)))
            except orjson.JSONDecodeError:
                return list_page(resp)
    return out, token


def list_page(resp: Response) -> tuple[list, str | None]:
    """(items, continue token) of a LIST response; Unavailable when it is not a list."""
    try:
        doc = resp.json()
    except orjson.JSONDecodeError as err:
        raise Unavailable(f"the API server sent a list that is not JSON ({json_problem(err)})") from None
    if not isinstance(doc, dict):
        raise Unavailable(f"the API server sent a {type(doc).__name__}, not a list")
    token = _list_token(doc)
    items = doc.get("items")
    if items is not None and not isinstance(items, list):
        raise Unavailable(f"the API server sent a malformed list (items is a {type(items).__name__})")
    return items or [], token


def _list_token(doc: dict) -> str | None:
    """The continue token of a list document; Unavailable for anything that is not a whole
    page of a list: a Status (a failure sent with 200), no `items` at all (`{}`), metadata
    that is not an object, or more items announced with no token to fetch them."""
    if doc.get("kind") == "Status":
        reason = doc.get("message") or doc.get("reason") or "no reason given"
        raise Unavailable(f"the API server answered the list with a Status: {str(reason)[:200]}")
    if "items" not in doc:
        raise Unavailable("the API server sent a malformed list (no items)")
    meta = doc.get("metadata")
    if meta is not None and not isinstance(meta, dict):
        raise Unavailable(f"the API server sent a malformed list (metadata is {article(type(meta).__name__)})")
    token = (meta or {}).get("continue")
    remaining = (meta or {}).get("remainingItemCount")
    if not token and isinstance(remaining, int) and not isinstance(remaining, bool) and remaining > 0:
        raise Unavailable(f"the API server sent a list that says {remaining} more items remain but gives no continue "
                          "token to fetch them")
    return str(token) if token else None


def article(word: str) -> str:
    return f"an {word}" if word[:1] in "aeiou" else f"a {word}"

