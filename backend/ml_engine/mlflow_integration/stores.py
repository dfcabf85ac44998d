"""Tracking store URIs: kind, driver, password masking and a cheap reachability check.

Three kinds of store are supported, chosen by ``MLFLOW_TRACKING_URI`` alone:

===========  =====================================  ==========================================
kind         example                                check before any training
===========  =====================================  ==========================================
``sqlite``   ``sqlite:///mlruns/mlflow.db``         parent folder created (embedded default)
``database`` ``postgresql://user:pw@host:5432/db``  SQLAlchemy connect, ``connect_timeout=3``
``http``     ``http://mlflow-server:5000``          ``GET /health`` with a timeout
===========  =====================================  ==========================================

An unreachable store raises :class:`TrackingStoreUnavailable` with one line that names
the store (password masked) and says why in plain words: connection refused,
authentication failed, database missing, timeout.

PostgreSQL driver: SQLAlchemy 2.1 maps a bare ``postgresql://`` URI to the ``psycopg``
(version 3) driver. When that package is not installed but ``psycopg2`` is, the URI is
rewritten to ``postgresql+psycopg2://`` (:func:`resolve_tracking_uri`) so that the user's
``.env`` works unchanged. What is shown to people is always the configured URI, masked.
"""

from __future__ import annotations

import importlib.util
import logging
import re
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

from backend.ml_engine.errors import one_line

logger = logging.getLogger(__name__)

#: What a masked password reads as.
MASK = "***"
#: Seconds a reachability check may take before the store counts as unavailable.
DEFAULT_CHECK_TIMEOUT_S = 3.0

_DB_SCHEMES = ("postgresql", "postgres", "mysql", "mssql")
_SECRET_QUERY_KEYS = {"password", "pass", "pwd", "passwd", "token", "secret", "sslpassword"}


class TrackingStoreUnavailable(RuntimeError):
    """The configured MLflow tracking store cannot be reached; raised before any training starts.

    ``str(err)`` is one line with the password masked. ``uri`` is the masked URI, ``reason``
    the plain-words diagnosis.
    """

    def __init__(self, uri: str, reason: str) -> None:
        self.uri = mask_uri(uri)
        self.reason = one_line(reason)
        super().__init__(f"MLflow tracking store {self.uri} is unavailable: {self.reason}")


def mask_uri(uri: str) -> str:
    """The URI with any password (in the netloc or in the query string) replaced by ``***``."""
    try:
        parts = urlsplit(uri)
    except ValueError:
        return re.sub(r"(//[^:/@]*:)[^@]*@", rf"\1{MASK}@", uri)
    netloc = parts.netloc
    changed = False
    if "@" in netloc:
        userinfo, _, hostport = netloc.rpartition("@")
        if ":" in userinfo:
            user = userinfo.split(":", 1)[0]
            netloc = f"{user}:{MASK}@{hostport}"
            changed = True
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        if any(k.lower() in _SECRET_QUERY_KEYS for k, _ in pairs):
            query = urlencode([(k, MASK if k.lower() in _SECRET_QUERY_KEYS else v) for k, v in pairs], safe="*")
            changed = True
    if not changed:
        return uri  # nothing secret: keep the URI byte for byte (sqlite:/// keeps its slashes)
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def mask_secrets(text: str, uri: str) -> str:
    """``text`` with the password of ``uri`` (raw and URL-quoted) and the URI itself masked."""
    out = text.replace(uri, mask_uri(uri)) if uri else text
    password = _password_of(uri)
    if password:
        for form in {password, quote(password, safe="")}:
            out = out.replace(form, MASK)
    return out


def _password_of(uri: str) -> str | None:
    try:
        parts = urlsplit(uri)
        pw = parts.password
        if pw is None and parts.query:
            for k, v in parse_qsl(parts.query):
                if k.lower() in _SECRET_QUERY_KEYS and v:
                    return v
        return pw
    except ValueError:
        return None


def store_kind(uri: str) -> str:
    """``"sqlite"``, ``"database"`` (PostgreSQL and other SQLAlchemy URLs), ``"http"`` or ``"file"``."""
    scheme = urlsplit(uri).scheme.lower()
    base = scheme.split("+", 1)[0]
    if base == "sqlite":
        return "sqlite"
    if base in _DB_SCHEMES:
        return "database"
    if base in ("http", "https"):
        return "http"
    if base in ("", "file"):
        return "file"
    raise ValueError(f"unsupported MLflow tracking URI scheme {scheme!r} in {mask_uri(uri)}")


def _has_module(name: str) -> bool:
    return importlib.util.find_spec(name) is not None


def resolve_tracking_uri(uri: str) -> str:
    """The URI MLflow and SQLAlchemy are given: a bare PostgreSQL scheme gets an installed driver.

    ``postgresql://`` and ``postgres://`` become ``postgresql+psycopg2://`` when psycopg 3 is not
    installed and psycopg2 is (SQLAlchemy 2.1 defaults to psycopg 3). Every other URI is returned
    unchanged.
    """
    scheme, sep, rest = uri.partition("://")
    if not sep or scheme.lower() not in ("postgresql", "postgres"):
        return uri
    if _has_module("psycopg"):
        return f"postgresql://{rest}"
    if _has_module("psycopg2"):
        return f"postgresql+psycopg2://{rest}"
    return f"postgresql://{rest}"


def sqlite_path(uri: str) -> Path | None:
    """The database file of a ``sqlite:///`` URI (relative paths stay relative), None for memory."""
    if not uri.lower().startswith("sqlite:"):
        return None
    path = uri.split(":", 1)[1]
    path = path.split("?", 1)[0]
    if path.startswith("///"):
        path = path[3:]
    elif path.startswith("//"):
        path = path[2:]
    if not path or path == ":memory:":
        return None
    return Path(path)


def diagnose_connection_error(exc: BaseException, uri: str = "") -> str:
    """A plain, one-line diagnosis of a database or HTTP connection error, password masked."""
    text = one_line(str(getattr(exc, "orig", None) or exc))
    low = text.lower()
    host, port, db, user = _target_of(uri)
    where = f"{host}:{port}" if host else "the server"
    if "does not exist" in low and "database" in low:
        reason = f"database {db!r} does not exist on {where} (create it: CREATE DATABASE {db};)"
    elif "password authentication failed" in low or "authentication failed" in low:
        reason = f"authentication failed for user {user!r} on {where} (check the user name and password)"
    elif "role" in low and "does not exist" in low:
        reason = f"authentication failed: role {user!r} does not exist on {where}"
    elif "no password supplied" in low or "password is required" in low:
        reason = f"authentication failed: the server on {where} requires a password for user {user!r}"
    elif "connection refused" in low:
        reason = f"connection refused by {where}: is the server running and accepting TCP connections?"
    elif "timeout" in low or "timed out" in low:
        reason = f"no answer from {where} within the timeout (server down, firewall or wrong host?)"
    elif "could not translate host name" in low or "name or service not known" in low or "nodename nor servname" in low:
        reason = f"host name {host!r} cannot be resolved"
    else:
        reason = f"{type(exc).__name__}: {text}"
    return mask_secrets(reason, uri)


def _target_of(uri: str) -> tuple[str | None, int | None, str, str | None]:
    try:
        parts = urlsplit(uri)
        port = parts.port
    except ValueError:
        return None, None, "", None
    default_port = {"postgresql": 5432, "postgres": 5432, "mysql": 3306, "http": 80, "https": 443}
    base = parts.scheme.split("+", 1)[0].lower()
    return parts.hostname, port or default_port.get(base), parts.path.lstrip("/"), parts.username


def check_tracking_store(uri: str, timeout: float = DEFAULT_CHECK_TIMEOUT_S) -> None:
    """Raise :class:`TrackingStoreUnavailable` unless the store at ``uri`` answers within ``timeout``.

    sqlite: creates the parent folder of the database file. database: one SQLAlchemy connection
    (``connect_timeout``), closed at once. http: ``GET <uri>/health``. file: creates the folder.
    """
    kind = store_kind(uri)
    if kind == "sqlite":
        path = sqlite_path(uri)
        if path is not None:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise TrackingStoreUnavailable(uri, f"cannot create folder {path.parent}: {exc}") from exc
        return
    if kind == "file":
        path = Path(urlsplit(uri).path if uri.startswith("file:") else uri)
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise TrackingStoreUnavailable(uri, f"cannot create folder {path}: {exc}") from exc
        return
    if kind == "database":
        _check_database(uri, timeout)
        return
    _check_http(uri, timeout)


def _check_database(uri: str, timeout: float) -> None:
    import sqlalchemy

    resolved = resolve_tracking_uri(uri)
    base = urlsplit(resolved).scheme.split("+", 1)[0].lower()
    connect_args: dict[str, object] = {}
    if base in ("postgresql", "postgres", "mysql"):
        connect_args["connect_timeout"] = max(1, round(timeout))
    try:
        engine = sqlalchemy.create_engine(resolved, connect_args=connect_args, poolclass=sqlalchemy.pool.NullPool)
    except Exception as exc:  # noqa: BLE001 - bad URL or missing driver: the store is unusable, said why
        raise TrackingStoreUnavailable(uri, diagnose_connection_error(exc, uri)) from None
    try:
        with engine.connect() as conn:
            conn.execute(sqlalchemy.text("SELECT 1"))
    except Exception as exc:  # noqa: BLE001 - any driver error: the store is unusable, said why
        raise TrackingStoreUnavailable(uri, diagnose_connection_error(exc, uri)) from None
    finally:
        engine.dispose()


def _check_http(uri: str, timeout: float) -> None:
    url = uri.rstrip("/") + "/health"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:  # configured URI
            if resp.status != 200:
                raise TrackingStoreUnavailable(uri, f"GET /health answered HTTP {resp.status}")
    except TrackingStoreUnavailable:
        raise
    except urllib.error.HTTPError as exc:
        raise TrackingStoreUnavailable(uri, f"GET /health answered HTTP {exc.code}") from None
    except urllib.error.URLError as exc:
        raise TrackingStoreUnavailable(uri, diagnose_connection_error(Exception(str(exc.reason)), uri)) from None
    except (TimeoutError, OSError) as exc:
        raise TrackingStoreUnavailable(uri, diagnose_connection_error(exc, uri)) from None
