"""The routes file: YAML with ``${VAR}`` substitution, validated into typed routes.

Every problem is reported with the route and key it concerns, so a broken file is
fixed from the message alone (``relay validate`` prints these).
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any
from urllib.parse import urlsplit

import yaml

from .dcr_rules import check_dcr
from .routing import REJECT, Condition, Router, parse_where
from .schema import SchemaError, StreamSchema, load_dcr_streams, parse_columns
from .signatures import ENCODINGS, SignatureScheme
from .sources import registry
from .tables import route_table_problems

FORMATS = ("auto", "ndjson", "json", "records", "csv")
TYPE_ERROR_POLICIES = ("reject", "extra")
ROUTE_KEYS = frozenset(
    {
        "name", "source", "match", "endpoint", "dcr", "stream", "schema", "columns", "time_field",
        "map", "extra", "secret", "id_column", "auxiliary", "on_type_error", "format", "where", "continue",
        "original_time_column", "signature",
    }
)
DEFAULT_KEYS = frozenset({"endpoint", "dcr", "schema", "id_column", "auxiliary", "on_type_error", "extra"})
#: Stands in for an unset ${VAR}: its problem is reported once, not again by later checks.
UNSET = "\x00unset\x00"
_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_ROUTE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_DCR_ID = re.compile(r"dcr-[0-9a-f]{32}")
_HEADER = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{0,99}")
_SIGNATURE_KEYS = ("secret", "header", "prefix", "encoding", "timestamp_header", "timestamp_prefix", "signed",
                   "tolerance")


class ConfigError(ValueError):
    """The routes file cannot be used; ``problems`` lists every finding (``warnings``: what could not be checked)."""

    def __init__(self, problems: list[str], warnings: tuple[str, ...] = ()):
        self.problems = problems
        self.warnings = warnings
        super().__init__("; ".join(problems))


@dataclass(frozen=True)
class Route:
    """One route: which input goes to which DCR stream, and how it is shaped."""

    name: str
    source: str
    match: str
    endpoint: str
    dcr: str
    stream: str
    schema: StreamSchema
    time_field: str | None = None
    map: Mapping[str, str] = field(default_factory=dict)
    extra: str | None = None
    secret: str | None = field(default=None, repr=False)
    id_column: str | None = None
    auxiliary: bool = False
    on_type_error: str = "reject"
    format: str = "auto"
    where: tuple[Condition, ...] = ()  # every condition must hold for a record to be taken
    continue_: bool = False  # a record taken is also offered to later routes (YAML ``continue``)
    signature: SignatureScheme | None = field(default=None, repr=False)


@dataclass(frozen=True)
class RelayConfig:
    routes: tuple[Route, ...]
    path: Path | None = None
    unrouted: str = REJECT  # "reject", or the name of the catch-all route
    warnings: tuple[str, ...] = ()  # what the load could not check (shared/dcr_rules.py), refusing nothing

    def candidates(self, source: str, key: str) -> list[Route]:
        """The routes of ``source`` whose ``match`` holds for ``key``, in the order records try them."""
        return registry.candidates(source, self.routes, key)

    def route_for(self, source: str, key: str) -> Route | None:
        """The first route input keyed ``key`` (segment, blob path, hub name) is offered to."""
        return next(iter(self.candidates(source, key)), None)

    def router(self, source: str, key: str) -> Router | None:
        """Where each record of input keyed ``key`` goes; None when no route's ``match`` holds."""
        candidates = self.candidates(source, key)
        if not candidates:
            return None
        catch_all = None if self.unrouted == REJECT else next(r for r in self.routes if r.name == self.unrouted)
        return Router(candidates, catch_all, registry.context_roots())

    def http_route(self, segment: str) -> Route | None:
        return self.route_for("http", segment)

    def routes_for(self, source: str) -> tuple[Route, ...]:
        return tuple(r for r in self.routes if r.source == source)

    @property
    def endpoints(self) -> frozenset[str]:
        return frozenset(r.endpoint for r in self.routes)


def is_loopback_url(url: str) -> bool:
    try:
        host = urlsplit(url).hostname or ""
    except ValueError:  # e.g. an unclosed IPv6 bracket
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def substitute(value: object, env: Mapping[str, str], where: str, problems: list[str]) -> object:
    """Replace ``${NAME}`` / ``${NAME:-default}`` in every string of a parsed YAML tree."""
    if isinstance(value, str):
        def replace(match: re.Match[str]) -> str:
            name, default = match.group(1), match.group(2)
            if name in env and env[name] != "":
                return env[name]
            if default is not None:
                return default
            problems.append(f"{where}: environment variable {name} is not set")
            return UNSET

        return _VARIABLE.sub(replace, value)
    if isinstance(value, dict):
        return {k: substitute(v, env, f"{where}.{k}", problems) for k, v in value.items()}
    if isinstance(value, list):
        return [substitute(v, env, f"{where}[{i}]", problems) for i, v in enumerate(value)]
    return value


class _SchemaCache:
    """DCR files are shared by many routes: read and check each once per load."""

    def __init__(self, base: Path):
        self.base = base
        self._files: dict[Path, dict[str, StreamSchema] | SchemaError] = {}
        self.rule_problems: list[str] = []  # the service's DCR rules, once per file (shared/dcr_rules.py)
        self.rule_warnings: list[str] = []  # what those rules could not check, once per file
        self._reported: set[int] = set()

    def first_report(self, error: SchemaError) -> bool:
        """True the first time a file's problems are reported: seven routes sharing one broken DCR
        file get its problems once (the first route names them), not seven times."""
        if id(error) in self._reported:
            return False
        self._reported.add(id(error))
        return True

    def stream(self, relative: str, stream: str) -> StreamSchema:
        path = Path(relative)
        if not path.is_absolute():
            path = self.base / path
        if path not in self._files:
            try:
                self._files[path] = load_dcr_streams(path)
                check = check_dcr(json.loads(path.read_bytes()), relative)
                self.rule_problems += check.problems
                self.rule_warnings += check.warnings
            except SchemaError as error:
                self._files[path] = error
        streams = self._files[path]
        if isinstance(streams, SchemaError):
            raise streams
        if stream not in streams:
            declared = ", ".join(sorted(streams)) or "none"
            raise SchemaError(f"stream {stream!r} is not declared in {relative} (declared: {declared})")
        return streams[stream]


class _RouteCheck:
    """Validates one raw route, a group of keys per method, collecting every problem with the route's
    label and key (nothing stops at the first)."""

    def __init__(self, raw: dict, index: int, defaults: dict, schemas: _SchemaCache, problems: list[str]):
        self.raw, self.schemas, self.problems = raw, schemas, problems
        self.merged = {**defaults, **raw}
        name = raw.get("name")
        self.label = f"route {name!r}" if isinstance(name, str) and name else f"route #{index + 1}"

    def problem(self, key: str, message: str) -> None:
        value = self.merged.get(str(key).split(".", 1)[0])  # YAML keys need not be strings
        if isinstance(value, str) and UNSET in value:
            return  # already reported as an unset environment variable
        self.problems.append(f"{self.label}: {key}: {message}")

    def route(self) -> Route | None:
        before = len(self.problems)
        merged = self.merged
        self.identity()
        self.endpoint()
        schema = self.schema()
        policy = self.options()
        mapping = self.mapping(schema)
        where = self.routing()
        signature = self.signature()
        if len(self.problems) > before or schema is None:
            return None
        return Route(
            name=merged["name"], source=merged["source"], match=merged["match"],
            endpoint=merged["endpoint"].rstrip("/"), dcr=merged["dcr"], stream=schema.stream, schema=schema,
            time_field=merged.get("time_field"), map=MappingProxyType(dict(mapping)), extra=merged.get("extra"),
            secret=merged.get("secret"), id_column=merged.get("id_column"),
            auxiliary=merged.get("auxiliary", False), on_type_error=policy, format=merged.get("format", "auto"),
            where=where, continue_=merged.get("continue", False),
            signature=signature,
        )

    def identity(self) -> None:
        """Known keys, the name, the source (from the registry) and what ``match`` may be for it."""
        merged, problem = self.merged, self.problem
        for key in sorted(set(self.raw) - ROUTE_KEYS, key=str):
            problem(key, f"unknown key (known: {', '.join(sorted(ROUTE_KEYS))})")
        name = self.raw.get("name")
        if not isinstance(name, str) or not _ROUTE_NAME.fullmatch(name):
            problem("name", "required: letters, digits, '_', '-', '.' (at most 64)")
        source = merged.get("source")
        if source not in registry.names():
            problem("source", f"{source!r} is not one of {', '.join(registry.names())}")
        match = merged.get("match")
        if not isinstance(match, str) or not match:
            problem("match", "required: the path segment (http), a glob (blob) or an event hub name")
        elif source == "http" and not re.fullmatch(r"[A-Za-z0-9_.-]+", match):
            problem("match", f"{match!r} must be a single URL path segment of letters, digits, '_', '-', '.'")

    def routing(self) -> tuple[Condition, ...]:
        """``where`` conditions and ``continue`` (per-record routing, ``shared/routing.py``)."""
        if not isinstance(self.merged.get("continue", False), bool):
            self.problem("continue", f"{self.merged.get('continue')!r} must be true or false")
        return parse_where(self.raw.get("where"), self.problem)

    def endpoint(self) -> None:
        """https only (http for a loopback emulator), and a DCR immutable id."""
        endpoint, problem = self.merged.get("endpoint"), self.problem
        if not isinstance(endpoint, str) or not endpoint:
            problem("endpoint", "required (here or in defaults): the DCE or DCR logs ingestion endpoint")
        else:
            try:
                scheme = urlsplit(endpoint).scheme
            except ValueError as error:  # e.g. an unclosed IPv6 bracket
                problem("endpoint", f"{endpoint!r} is not a valid URL: {error}")
            else:
                if scheme != "https" and not (scheme == "http" and is_loopback_url(endpoint)):
                    problem("endpoint", f"{endpoint!r} must use https (http only for a loopback emulator)")
        dcr = self.merged.get("dcr")
        if not isinstance(dcr, str) or not _DCR_ID.fullmatch(dcr):
            problem("dcr", f"{dcr!r} is not a DCR immutable id like dcr-0123456789abcdef0123456789abcdef")

    def schema(self) -> StreamSchema | None:
        """The stream's declared columns, from inline ``columns`` or the DCR file."""
        raw, merged, problem = self.raw, self.merged, self.problem
        stream = merged.get("stream")
        if not isinstance(stream, str) or not re.fullmatch(r"(Custom|Microsoft)-[A-Za-z0-9_]+", stream):
            problem("stream", f"{stream!r} must be a stream name like Custom-MyTable")
            return None
        try:
            if raw.get("columns") is not None:
                return parse_columns(stream, raw["columns"], "inline columns")
            if isinstance(merged.get("schema"), str):
                return self.schemas.stream(merged["schema"], stream)
            problem("schema", "required: a DCR file with streamDeclarations, or inline columns")
        except SchemaError as error:
            if self.schemas.first_report(error):
                for message in error.problems:  # every bad column, not only the first
                    problem("columns" if raw.get("columns") is not None else "schema", message)
        return None

    def options(self) -> str:
        """``format``, ``on_type_error``, ``auxiliary`` (and the table's plan), ``secret``, ``time_field``;
        returns the type error policy."""
        merged, problem = self.merged, self.problem
        fmt = merged.get("format", "auto")
        if fmt not in FORMATS:
            problem("format", f"{fmt!r} is not one of {', '.join(FORMATS)}")
        policy = merged.get("on_type_error", "reject")
        if policy not in TYPE_ERROR_POLICIES:
            problem("on_type_error", f"{policy!r} is not one of {', '.join(TYPE_ERROR_POLICIES)}")
        if policy == "extra" and not merged.get("extra"):
            problem("on_type_error", "'extra' needs the route's extra column")
        auxiliary = merged.get("auxiliary", False)
        if not isinstance(auxiliary, bool):
            problem("auxiliary", f"{auxiliary!r} must be true or false")
        stream = merged.get("stream") if isinstance(merged.get("stream"), str) else None
        for message in route_table_problems(merged, stream, self.schemas.base):  # table plans (shared/tables.py)
            problem("auxiliary", message)
        secret = merged.get("secret")
        if secret is not None and (not isinstance(secret, str) or not secret):
            problem("secret", "must be a non-empty string when given")
        elif isinstance(secret, str) and secret.startswith("@Microsoft.KeyVault("):
            # App Service hands over the literal reference until the identity may read the vault:
            # a guessable text must never serve as the signing secret.
            problem("secret", "is an unresolved Key Vault reference (check the app's Key Vault role)")
        time_field = merged.get("time_field")
        if time_field is not None and (not isinstance(time_field, str) or not time_field):
            problem("time_field", "must be a dotted path like created_at")
        return policy

    def signature(self) -> SignatureScheme | None:
        """``signature``: the generic HMAC-SHA256 webhook scheme (shared/signatures.py), http routes only."""
        raw, problem = self.merged.get("signature"), self.problem
        if raw is None:
            return None
        if not isinstance(raw, dict):
            problem("signature", "must be a mapping with secret and header (see docs/signatures.md)")
            return None
        before = len(self.problems)
        for key in sorted(set(raw) - set(_SIGNATURE_KEYS), key=str):
            problem(f"signature.{key}", f"unknown key (known: {', '.join(_SIGNATURE_KEYS)})")
        if self.merged.get("source") != "http":
            problem("signature", "only http routes are signed")
        if self.merged.get("secret") is not None:
            problem("signature", "use secret (GitHub's X-Hub-Signature-256) or signature, not both")
        secret = raw.get("secret")
        if not isinstance(secret, str) or not secret:
            problem("signature.secret", "required: a non-empty string, e.g. ${SENDER_WEBHOOK_SECRET}")
        elif secret.startswith("@Microsoft.KeyVault("):
            problem("signature.secret", "is an unresolved Key Vault reference (check the app's Key Vault role)")
        signed = self._signature_format(raw)
        if len(self.problems) > before:
            return None
        return SignatureScheme(secret, raw["header"], raw.get("prefix", ""), raw.get("encoding", "hex"),
                               raw.get("timestamp_header"), raw.get("timestamp_prefix", ""), signed,
                               raw.get("tolerance", 300))

    def _signature_format(self, raw: dict) -> str:
        """Headers, prefixes, encoding, the signed text and the replay window; returns the signed template."""
        problem = self.problem
        for key in ("header", "timestamp_header"):
            value = raw.get(key)
            if (key == "header" or value is not None) and not (isinstance(value, str) and _HEADER.fullmatch(value)):
                problem(f"signature.{key}", f"{value!r} must be an HTTP header name like X-Signature")
        for key in ("prefix", "timestamp_prefix"):
            if not isinstance(raw.get(key, ""), str):
                problem(f"signature.{key}", "must be a string, e.g. 'sha256='")
        if raw.get("encoding", "hex") not in ENCODINGS:
            problem("signature.encoding", f"{raw.get('encoding')!r} is not one of {', '.join(ENCODINGS)}")
        timed = raw.get("timestamp_header") is not None
        signed = raw.get("signed", "{timestamp}.{body}" if timed else "{body}")
        if not isinstance(signed, str) or signed.count("{body}") != 1 or ("{timestamp}" in signed) != timed:
            problem("signature.signed", f"{signed!r} must hold {{body}} once, and {{timestamp}} exactly when "
                                        "timestamp_header is set (an unsigned timestamp guards nothing)")
        tolerance = raw.get("tolerance", 300)
        if type(tolerance) is not int or not 1 <= tolerance <= 86_400:
            problem("signature.tolerance", f"{tolerance!r} must be whole seconds from 1 to 86400")
        return signed  # type: ignore[no-any-return]

    def mapping(self, schema: StreamSchema | None) -> dict:
        """``map`` and the computed columns (``extra``, ``id_column``, TimeGenerated) against the stream."""
        mapping = self.merged.get("map") or {}
        if not isinstance(mapping, dict):
            self.problem("map", "must be a mapping of column: dotted.path")
            return {}
        original = self.merged.get("original_time_column")
        if original is not None:
            mapping = {**mapping, **self._original_time(original, schema)}
        if schema is not None:
            declared = {c.name: c.type for c in schema.columns}
            self._mapped_columns(mapping, declared, schema.stream)
            self._computed_columns(mapping, declared, schema.stream)
        return mapping

    def _original_time(self, column: Any, schema: StreamSchema | None) -> dict[str, str]:
        """``original_time_column``: the time_field's value also kept in a datetime column of its own
        (the service replaces a TimeGenerated far from the ingestion time)."""
        time_field = self.merged.get("time_field")
        if not isinstance(time_field, str) or not time_field:
            self.problem("original_time_column", "needs time_field (the time it keeps)")
            return {}
        declared = {c.name: c.type for c in schema.columns} if schema is not None else {}
        if not isinstance(column, str) or (schema is not None and declared.get(column) != "datetime"):
            self.problem("original_time_column", f"{column!r} must be a datetime column the stream declares")
            return {}
        return {column: time_field}

    def _mapped_columns(self, mapping: dict, declared: dict[str, str], stream: str) -> None:
        for column, path in mapping.items():
            if column not in declared:
                self.problem(f"map.{column}", f"column is not declared in stream {stream}")
            if not isinstance(path, str) or not path or path.startswith(".") or path.endswith("."):
                self.problem(f"map.{column}", f"{path!r} must be a dotted path like repository.full_name")

    def _computed_columns(self, mapping: dict, declared: dict[str, str], stream: str) -> None:
        merged, problem = self.merged, self.problem
        time_field = merged.get("time_field")
        computed = {merged.get(key): key for key in ("extra", "id_column") if isinstance(merged.get(key), str)}
        if time_field is not None:
            computed["TimeGenerated"] = "time_field"
        for column in mapping:
            if column in computed:
                problem(f"map.{column}", f"column is filled by {computed[column]}; remove it from map")
        for key, wanted in (("extra", ("dynamic", "string")), ("id_column", ("string",))):
            column = merged.get(key)
            if column is None:
                continue
            if not isinstance(column, str) or column not in declared:
                problem(key, f"column {column!r} is not declared in stream {stream}")
            elif declared[column] not in wanted:
                problem(key, f"column {column!r} is {declared[column]}, must be {' or '.join(wanted)}")
        if time_field is not None and declared.get("TimeGenerated") != "datetime":
            problem("time_field", f"stream {stream} does not declare TimeGenerated as datetime")


def _route(raw: dict, index: int, defaults: dict, schemas: _SchemaCache, problems: list[str]) -> Route | None:
    return _RouteCheck(raw, index, defaults, schemas, problems).route()


def parse_config(text: str, env: Mapping[str, str], base: Path, path: Path | None = None) -> RelayConfig:
    """Validate a routes document; raises ConfigError listing every problem found."""
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise ConfigError([f"routes file is not valid YAML: {error}"]) from None
    if not isinstance(document, dict):
        raise ConfigError(["routes file must be a mapping with a 'routes' list"])
    problems: list[str] = []
    for key in sorted(set(document) - {"defaults", "routes", "unrouted"}, key=str):
        problems.append(f"{key}: unknown top-level key (known: defaults, routes, unrouted)")
    defaults = substitute(document.get("defaults") or {}, env, "defaults", problems)
    if not isinstance(defaults, dict):
        problems.append("defaults: must be a mapping")
        defaults = {}
    for key in sorted(set(defaults) - DEFAULT_KEYS, key=str):
        problems.append(f"defaults.{key}: not allowed in defaults (allowed: {', '.join(sorted(DEFAULT_KEYS))})")
    raw_routes = document.get("routes")
    if not isinstance(raw_routes, list) or not raw_routes:
        raise ConfigError([*problems, "routes: must be a non-empty list"])
    schemas = _SchemaCache(base)
    routes: list[Route] = []
    names: set[str] = set()
    http_paths: dict[str, dict] = {}  # path -> the last raw route answering it
    for index, raw in enumerate(raw_routes):
        if not isinstance(raw, dict):
            problems.append(f"route #{index + 1}: must be a mapping")
            continue
        label = f"route {raw.get('name', index + 1)!r}"
        raw = {key: substitute(value, env, f"{label}: {key}", problems) for key, value in raw.items()}
        name = raw.get("name")
        if isinstance(name, str) and name in names:
            problems.append(f"route {name!r}: name: duplicate route name")
        names.add(name if isinstance(name, str) else "")
        match = raw.get("match")
        if raw.get("source") == "http" and isinstance(match, str):  # _route reports a match that is no string
            problems.extend(_shared_http_path(http_paths.get(match), raw))
            http_paths[match] = raw
        route = _route(raw, index, {k: v for k, v in defaults.items() if k in DEFAULT_KEYS}, schemas, problems)
        if route is not None:
            routes.append(route)
    problems += schemas.rule_problems
    unrouted = substitute(document.get("unrouted", REJECT), env, "unrouted", problems)
    if unrouted != REJECT and unrouted not in names:
        problems.append(f"unrouted: {unrouted!r} must be 'reject' or the name of a route (the catch-all)")
    if problems:
        raise ConfigError(problems, tuple(schemas.rule_warnings))
    return RelayConfig(tuple(routes), path, unrouted, tuple(schemas.rule_warnings))  # type: ignore[arg-type]


def _shared_http_path(before: dict | None, raw: dict) -> list[str]:
    """Several http routes may answer one path when records are split among them: the earlier one
    must pass some records on (``where`` or ``continue: true``; else the later one never gets any),
    and all must verify the same secret and signature."""
    if before is None:
        return []
    name, match = raw.get("name"), raw.get("match")
    if not before.get("where") and before.get("continue") is not True:
        return [f"route {name!r}: match: another http route already answers {match!r}"]
    for key in ("secret", "signature"):
        if before.get(key) != raw.get(key):
            return [f"route {name!r}: {key}: http routes answering {match!r} must verify the same {key}"]
    return []


def load_config(path: Path, env: Mapping[str, str], base: Path | None = None) -> RelayConfig:
    """Read and validate the routes file; DCR paths are relative to ``base`` (the app dir)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError([f"routes file {str(path)!r} does not exist (set RELAY_CONFIG)"]) from None
    except UnicodeDecodeError:
        raise ConfigError([f"routes file {str(path)!r} is not UTF-8"]) from None
    return parse_config(text, env, base or path.parent, path)
