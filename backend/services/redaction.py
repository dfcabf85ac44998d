"""Keep secrets out of responses and log lines: passwords in URIs, the API token, database URLs.

``redact(text, secrets)`` masks the password of every URI in ``text`` and every known secret value
(and its password part), whatever the text is: an MLflow error, a run param, a SQLAlchemy
message. What a URI's password is and how it is masked is
:func:`backend.ml_engine.mlflow_integration.stores.mask_uri`'s job, the one masker; this module
finds the URIs in free text and hands each to it.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from backend.ml_engine.mlflow_integration.stores import MASK, mask_uri

__all__ = ["MASK", "Redactor", "mask_uri", "redact", "redact_mapping", "redact_tree"]

#: A URI in free text: ``scheme://`` up to whitespace, a quote or an angle bracket.
_URI_RE = re.compile(r"""[A-Za-z][A-Za-z0-9+.\-]*://[^\s'"<>`]+""")


def _mask_uris(text: str) -> str:
    """``text`` with every URI in it passed through :func:`mask_uri`."""
    return _URI_RE.sub(lambda m: mask_uri(m.group(0)), text) if "://" in text else text


def _secret_forms(secret: str) -> set[str]:
    """The secret and, for a URL, its password (raw and URL-quoted), each at least 4 characters."""
    forms = {secret}
    try:
        password = urlsplit(secret).password if "://" in secret else None
    except ValueError:
        password = None
    if password:
        forms |= {password, unquote(password), quote(unquote(password), safe="")}
    return {f for f in forms if len(f) >= 4 and f != MASK}


class Redactor:
    """:func:`redact` for a fixed set of secrets, prepared once (it runs on every value of every
    answered run)."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self.urls: list[tuple[str, str]] = []
        forms: set[str] = set()
        for secret in secrets:
            if not secret:
                continue
            if "://" in secret:
                masked = mask_uri(secret)
                if masked != secret:
                    self.urls.append((secret, masked))
            forms |= {f for f in _secret_forms(secret) if "://" not in f}
        # Longest first, so a password inside a longer secret is not half-masked.
        self.forms = sorted(forms, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        if not text:
            return text
        out = _mask_uris(text)
        for secret, masked in self.urls:
            if secret in out:
                out = out.replace(secret, masked)
        for form in self.forms:
            if form in out:
                out = out.replace(form, MASK)
        return out

    def mapping(self, values: Mapping[str, Any]) -> dict[str, Any]:
        return {k: self(v) if isinstance(v, str) else v for k, v in values.items()}


@functools.lru_cache(maxsize=64)
def _redactor(secrets: tuple[str, ...]) -> Redactor:
    return Redactor(secrets)


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with URI passwords and the given secret values replaced by ``***``."""
    return _redactor(tuple(secrets))(text)


def redact_mapping(values: Mapping[str, Any], secrets: Iterable[str] = ()) -> dict[str, Any]:
    """A copy of ``values`` with every string value passed through :func:`redact`."""
    return _redactor(tuple(secrets)).mapping(values)


def redact_tree(value: Any, secrets: Iterable[str] = ()) -> Any:
    """``value`` (JSON-like: dicts, lists, strings, numbers) with every string passed through :func:`redact`."""
    redactor = _redactor(tuple(secrets))

    def walk(v: Any) -> Any:
        if isinstance(v, str):
            return redactor(v)
        if isinstance(v, dict):
            return {k: walk(x) for k, x in v.items()}
        if isinstance(v, list):
            return [walk(x) for x in v]
        return v

    return walk(value)
