"""Checks of infra/ that need neither Azure nor the Bicep CLI.

Each ``check_*`` function returns a list of problems (empty: all good) whose messages name the
file, the resource, the stream, the column or the setting at fault, so the tests can feed them
deliberately broken inputs and assert on the message.

The Bicep is read with pycep-parser (the parser checkov uses) and evaluated by a small
evaluator that knows the subset of Bicep the templates use to derive things from the DCR file:
parameters, variables, module parameters, loadJsonContent, filter(), property and index access,
conditionals and a handful of functions. Whatever it cannot evaluate (resource properties only
Azure knows, such as endpoints and ids) becomes ``UNKNOWN`` instead of a guess.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from pycep import BicepParser
from pycep.models import BicepElement

from shared.dcr_rules import SUPPORTED_TABLES_FILE, output_problem, supported_microsoft_tables  # noqa: F401

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"
DCR_DIR = INFRA / "dcr"
MAIN_BICEP = INFRA / "main.bicep"
RELAY_YAML = ROOT / "relay.yaml"

# --- Facts of the service (DESIGN.md section 4 and the Logs Ingestion API page in the seeds) ---

MAX_COLUMNS = 500
COLUMN_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,44}$")  # a letter first, at most 45 characters
RESERVED_COLUMNS = ("_ResourceId", "id", "_SubscriptionId", "TenantId", "Type", "UniqueId", "Title")
COLUMN_TYPES = ("string", "int", "long", "real", "boolean", "datetime", "dynamic")
CUSTOM_PREFIX = "Custom-"
MICROSOFT_PREFIX = "Microsoft-"


# ============================================================================================
# Bicep: parsing and a small evaluator
# ============================================================================================


class Unknown:
    """A value only Azure knows at deployment time (an endpoint, an id, a key)."""

    def __init__(self, why: str = "") -> None:
        self.why = why

    def __repr__(self) -> str:
        return f"UNKNOWN({self.why})" if self.why else "UNKNOWN"


UNKNOWN = Unknown()


def is_unknown(value: Any) -> bool:
    return isinstance(value, Unknown)


@lru_cache(maxsize=64)
def _parse_cached(path: str, mtime_ns: int) -> dict[str, Any]:
    return BicepParser().parse(file_path=Path(path))


def parse_bicep(path: Path) -> dict[str, Any]:
    """The pycep-parser tree of a .bicep file (raises if the file does not parse)."""
    return _parse_cached(str(path), path.stat().st_mtime_ns)


@dataclass
class ResourceInstance:
    """One resource a (possibly looped or conditional) resource declaration deploys."""

    file: Path
    symbol: str
    type: str
    config: Mapping[str, Any]  # raw pycep nodes of the resource body
    local: dict[str, Any]  # loop variables of this instance
    evaluator: BicepEvaluator
    conditional: bool = False

    def value(self, *path: str) -> Any:
        """Evaluate the property at ``path`` (e.g. "properties", "schema", "columns")."""
        node: Any = self.config
        for depth, key in enumerate(path):
            if _is_expression(node) or not isinstance(node, dict):
                # The rest of the path lies inside an expression: evaluate it, then walk the value.
                value = self.evaluator.value(node, self.local)
                for rest in path[depth:]:
                    value = (
                        value.get(rest, Unknown(f"no property {rest}"))
                        if isinstance(value, dict)
                        else UNKNOWN
                    )
                return value
            node = node.get(key)
        return self.evaluator.value(node, self.local)


def _unquote(key: str) -> str:
    return key[1:-1] if len(key) >= 2 and key[0] == key[-1] == "'" else key


def _is_expression(node: Any) -> bool:
    return isinstance(node, dict) and (
        (len(node) == 1 and ("function" in node or "operator" in node)) or "loop_type" in node
    )


@dataclass
class BicepEvaluator:
    """Evaluates pycep expression trees of one .bicep file, given its parameter values."""

    file: Path
    params: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.tree = parse_bicep(self.file)
        self._variables: dict[str, Any] = {}
        self._evaluating: set[str] = set()
        self.symbols = set(self.tree.get("resources", {})) | set(self.tree.get("modules", {}))

    # -- names -------------------------------------------------------------------------------

    def lookup(self, name: str, local: Mapping[str, Any]) -> Any:
        if name in local:
            return local[name]
        declared = self.tree.get("parameters", {})
        if name in declared:
            if name in self.params:
                return self.params[name]
            default = declared[name].get("default")
            return UNKNOWN if default is None else self.value(default, {})
        variables = self.tree.get("variables", {})
        if name in variables:
            if name not in self._variables:
                if name in self._evaluating:
                    return Unknown(f"variable {name} refers to itself")
                self._evaluating.add(name)
                self._variables[name] = self.value(variables[name]["value"], {})
                self._evaluating.discard(name)
            return self._variables[name]
        if name in self.symbols:
            return Unknown(f"resource {name}")
        return Unknown(f"undefined name {name}")

    # -- expressions -------------------------------------------------------------------------

    def value(self, node: Any, local: Mapping[str, Any]) -> Any:
        if node is None or isinstance(node, bool | int | float):
            return node
        if isinstance(node, BicepElement):  # a bare name: parameter, variable, resource or loop variable
            return self.lookup(node, local)
        if isinstance(node, str):
            return Unknown(f"interpolated string {node!r}") if "${" in node else node
        if isinstance(node, list):
            return [self.value(item, local) for item in node]
        if isinstance(node, dict):
            if "loop_type" in node:
                return self.loop(node, local)
            if len(node) == 1 and "function" in node:
                return self.function(node["function"], local)
            if len(node) == 1 and "operator" in node:
                return self.operator(node["operator"], local)
            # pycep keeps the quotes of quoted keys ('azd-env-name': ...)
            return {_unquote(key): self.value(item, local) for key, item in node.items()}
        return Unknown(f"unsupported node {node!r}")

    def loop(self, node: Mapping[str, Any], local: Mapping[str, Any]) -> Any:
        items = self.loop_items(node, local)
        if is_unknown(items):
            return items
        return [self.value(node["config"], item_local) for item_local, _ in items]

    def loop_items(self, node: Mapping[str, Any], local: Mapping[str, Any]) -> Any:
        """[(local scope, included?)] of a loop node; UNKNOWN when its array is not known."""
        detail = node["loop_type"]["detail"]
        kind = node["loop_type"]["type"]
        if kind not in ("array", "array_index"):
            return Unknown(f"loop of type {kind}")
        array = self.value(detail["array_name"], local)
        if not isinstance(array, list):
            return Unknown(f"loop over {array!r}")
        result = []
        for index, item in enumerate(array):
            item_local = dict(local)
            item_local[detail["item_name"]] = item
            if detail.get("index_name"):
                item_local[detail["index_name"]] = index
            condition = node.get("condition")
            included = True if condition is None else self.value(condition, item_local)
            if included is False:
                continue
            result.append((item_local, included))
        return result

    def path(self, base: Any, node: Any, local: Mapping[str, Any]) -> Any:
        """Apply an accessor chain (pycep nests ``a.b[c].d`` to the right) to ``base``."""
        if is_unknown(base):
            return base
        if isinstance(node, str):
            if isinstance(base, dict):
                return base.get(node, Unknown(f"no property {node}"))
            return Unknown(f"property {node} of {type(base).__name__}")
        if isinstance(node, dict) and "operator" in node:
            operator = node["operator"]
            first, second = operator["operands"]["operand_1"], operator["operands"]["operand_2"]
            if operator["type"] == "property_accessor":
                return self.path(self.path(base, first, local), second, local)
            if operator["type"] == "index_accessor":
                return self.index(self.path(base, first, local), self.value(second, local))
        return Unknown(f"accessor {node!r}")

    @staticmethod
    def index(container: Any, key: Any) -> Any:
        if is_unknown(container) or is_unknown(key):
            return UNKNOWN
        try:
            return container[key]
        except (KeyError, IndexError, TypeError):
            return Unknown(f"no item {key!r}")

    def operator(self, operator: Mapping[str, Any], local: Mapping[str, Any]) -> Any:
        kind, operands = operator["type"], operator.get("operands", {})
        if kind == "property_accessor":
            return self.path(self.value(operands["operand_1"], local), operands["operand_2"], local)
        if kind == "index_accessor":
            return self.index(
                self.value(operands["operand_1"], local), self.value(operands["operand_2"], local)
            )
        if kind == "conditional":
            condition = self.value(operands["condition"], local)
            if not isinstance(condition, bool):
                return Unknown("condition not known")
            return self.value(operands["true_value" if condition else "false_value"], local)
        if kind == "not":
            value = self.value(next(iter(operands.values())), local)
            return (not value) if isinstance(value, bool) else UNKNOWN
        values = [self.value(operand, local) for operand in operands.values()]
        if any(is_unknown(value) for value in values):
            return UNKNOWN
        if kind == "minus" and len(values) == 1:  # -1: "the workspace default" in table retention
            return -values[0]
        if kind == "equals":
            return values[0] == values[1]
        if kind == "not_equals":
            return values[0] != values[1]
        if kind == "and":
            return all(values)
        if kind == "or":
            return any(values)
        return Unknown(f"operator {kind}")

    def function(self, function: Mapping[str, Any], local: Mapping[str, Any]) -> Any:
        kind = function["type"]
        parameters = function.get("parameters") or {}
        if kind == "load_json_content":
            if parameters.get("json_path"):
                return Unknown("loadJsonContent with a JSON path")
            path = self.value(parameters["file_path"], local)
            return json.loads((self.file.parent / path).read_text(encoding="utf-8"))
        if kind == "filter":
            array = self.value(parameters["input_array"], local)
            lambda_ = parameters["expression"]["detail"]
            if not isinstance(array, list):
                return UNKNOWN
            kept = []
            for item in array:
                verdict = self.value(lambda_["expression"], {**local, lambda_["var_1"]: item})
                if is_unknown(verdict):
                    return UNKNOWN
                if verdict:
                    kept.append(item)
            return kept
        args = [self.value(argument, local) for argument in parameters.values()]
        if kind == "union":
            if any(not isinstance(arg, dict) for arg in args):
                return UNKNOWN
            merged: dict[str, Any] = {}
            for arg in args:
                merged.update(arg)
            return merged
        if kind == "items":
            if not isinstance(args[0], dict):
                return UNKNOWN
            return [{"key": key, "value": args[0][key]} for key in sorted(args[0], key=str.lower)]
        if any(is_unknown(arg) for arg in args if arg is not None):
            return UNKNOWN
        if kind == "starts_with":
            return args[0].startswith(args[1])
        if kind == "ends_with":
            return args[0].endswith(args[1])
        if kind == "substring":
            start = args[1]
            return args[0][start:] if args[2] is None else args[0][start : start + args[2]]
        if kind == "length":
            return len(args[0])
        if kind == "contains":
            return args[1] in args[0]
        if kind == "empty":
            return not args[0]
        if kind == "to_lower":
            return args[0].lower()
        if kind == "string":
            return str(args[0])
        return Unknown(f"function {kind}")

    # -- declarations ------------------------------------------------------------------------

    def resources(self, type_: str | None = None) -> Iterator[ResourceInstance]:
        """Each resource the file deploys (loops expanded), optionally of one type."""
        for symbol, resource in self.tree.get("resources", {}).items():
            if resource.get("existing") or (type_ and resource["type"].lower() != type_.lower()):
                continue
            body = resource["config"]
            if "loop_type" in body:
                items = self.loop_items(body, {})
                if is_unknown(items):
                    continue
                for item_local, included in items:
                    yield ResourceInstance(
                        self.file,
                        symbol,
                        resource["type"],
                        body["config"],
                        item_local,
                        self,
                        included is not True,
                    )
            elif "condition" in body and "config" in body:
                yield ResourceInstance(self.file, symbol, resource["type"], body["config"], {}, self, True)
            else:
                yield ResourceInstance(self.file, symbol, resource["type"], body, {}, self)

    def modules(self) -> Iterator[BicepEvaluator]:
        """An evaluator for each local module this file calls, bound to the parameters it passes."""
        for module in self.tree.get("modules", {}).values():
            if module.get("type") != "local":
                continue
            body = module["config"]
            if "condition" in body and "config" in body:
                body = body["config"]
            params = body.get("params", {})
            bound = {name: self.value(node, {}) for name, node in params.items()}
            yield BicepEvaluator(self.file.parent / module["detail"]["path"], bound)

    def with_modules(self) -> Iterator[BicepEvaluator]:
        """This file and every module under it, depth first."""
        yield self
        for module in self.modules():
            yield from module.with_modules()


# ============================================================================================
# What the Bicep deploys
# ============================================================================================


def bicep_app_settings(main: Path = MAIN_BICEP) -> dict[str, Any]:
    """App settings of the function app(s) the template deploys: name -> value (or UNKNOWN)."""
    settings: dict[str, Any] = {}
    for evaluator in BicepEvaluator(main).with_modules():
        for site in evaluator.resources("Microsoft.Web/sites"):
            entries = site.value("properties", "siteConfig", "appSettings")
            if is_unknown(entries):
                raise AssertionError(
                    f"{site.file.name}: cannot evaluate the app settings of {site.symbol}: {entries}"
                )
            for entry in entries or []:
                settings[entry["name"]] = entry["value"]
        for config in evaluator.resources("Microsoft.Web/sites/config"):
            if config.value("name") == "appsettings":
                values = config.value("properties")
                if not isinstance(values, dict):
                    raise AssertionError(
                        f"{config.file.name}: cannot evaluate the app settings of {config.symbol}"
                    )
                settings.update(values)
    return settings


def bicep_loaded_json_files(main: Path = MAIN_BICEP) -> set[Path]:
    """Every JSON file the template (main and its modules) loads with loadJsonContent."""
    found: set[Path] = set()

    def walk(node: Any, file: Path) -> None:
        if isinstance(node, dict):
            function = node.get("function")
            if isinstance(function, dict) and function.get("type") == "load_json_content":
                path = function["parameters"]["file_path"]
                if isinstance(path, str) and "${" not in path:
                    found.add((file.parent / path).resolve())
            for item in node.values():
                walk(item, file)
        elif isinstance(node, list):
            for item in node:
                walk(item, file)

    for evaluator in BicepEvaluator(main).with_modules():
        walk(evaluator.tree, evaluator.file)
    return found


def bicep_custom_tables(main: Path = MAIN_BICEP) -> tuple[dict[str, list[dict[str, Any]]], list[str]]:
    """Log Analytics tables the template deploys (name -> columns), and problems found on the way."""
    tables: dict[str, list[dict[str, Any]]] = {}
    problems: list[str] = []
    for evaluator in BicepEvaluator(main).with_modules():
        for table in evaluator.resources("Microsoft.OperationalInsights/workspaces/tables"):
            name = table.value("name")
            columns = table.value("properties", "schema", "columns")
            where = "/".join(table.file.parts[-2:])  # e.g. app/ingestion.bicep
            if is_unknown(name) or not isinstance(columns, list):
                problems.append(
                    f"{where}: cannot evaluate the name or columns of table resource {table.symbol}"
                )
                continue
            if name in tables:
                problems.append(
                    f"{where}: table {name} is deployed twice (two data flows write to it); "
                    "deploy it once with the columns both flows output"
                )
            tables[name] = columns
    return tables, problems


# ============================================================================================
# DCR definitions: the service's rules
# ============================================================================================


def check_column(column: Any, where: str) -> list[str]:
    """Problems of one column declaration {"name": ..., "type": ...}."""
    if not isinstance(column, dict) or not isinstance(column.get("name"), str):
        return [f"{where}: column {column!r} has no name"]
    name, type_ = column["name"], column.get("type")
    problems = []
    if not COLUMN_NAME.fullmatch(name):
        problems.append(
            f"{where}: column {name!r} breaks the naming rule "
            "(start with a letter, at most 45 letters, digits or '_')"
        )
    if name in RESERVED_COLUMNS:
        problems.append(f"{where}: column {name!r} is a reserved column name ({', '.join(RESERVED_COLUMNS)})")
    if type_ not in COLUMN_TYPES:
        problems.append(f"{where}: column {name!r} has type {type_!r}, not one of {', '.join(COLUMN_TYPES)}")
    return problems


def check_columns(columns: Any, where: str) -> list[str]:
    if not isinstance(columns, list) or not columns:
        return [f"{where}: declares no columns"]
    problems = [problem for column in columns for problem in check_column(column, where)]
    if len(columns) > MAX_COLUMNS:
        problems.append(f"{where}: {len(columns)} columns, more than the {MAX_COLUMNS} a table can have")
    seen: dict[str, str] = {}
    for column in columns:
        name = column.get("name") if isinstance(column, dict) else None
        if isinstance(name, str):
            if name.lower() in seen:
                problems.append(
                    f"{where}: column {name!r} is declared twice (also as {seen[name.lower()]!r})"
                )
            seen[name.lower()] = name
    return problems


class TransformError(ValueError):
    """A transformKql this checker cannot follow, or one that names columns that do not exist."""


_KQL_CASTS = {
    "tostring": "string",
    "toint": "int",
    "tolong": "long",
    "toreal": "real",
    "todouble": "real",
    "tobool": "boolean",
    "toboolean": "boolean",
    "todatetime": "datetime",
    "todynamic": "dynamic",
    "parse_json": "dynamic",
    "now": "datetime",
}


def _split_top_level(text: str, separator: str) -> list[str]:
    """Split KQL on a separator outside quotes and brackets."""
    parts, depth, quote, current = [], 0, "", []
    for char in text:
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
        elif char == separator and depth == 0:
            parts.append("".join(current))
            current = []
            continue
        current.append(char)
    parts.append("".join(current))
    return [part.strip() for part in parts]


def _expression_type(expression: str, columns: Mapping[str, str]) -> str:
    expression = expression.strip()
    if expression in columns:
        return columns[expression]
    call = re.fullmatch(r"(\w+)\s*\(.*\)", expression, re.DOTALL)
    if call and call.group(1).lower() in _KQL_CASTS:
        return _KQL_CASTS[call.group(1).lower()]
    if re.fullmatch(r"'[^']*'|\"[^\"]*\"", expression):
        return "string"
    if re.fullmatch(r"-?\d+", expression):
        return "long"
    if re.fullmatch(r"-?\d+\.\d*", expression):
        return "real"
    if expression in ("true", "false"):
        return "boolean"
    raise TransformError(f"cannot tell the type of {expression!r}: wrap it in a cast such as tostring(...)")


def transform_output_columns(transform: str, input_columns: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Columns a transformKql outputs, for `source` followed by where/project/project-away/extend."""
    stages = _split_top_level(transform or "source", "|")
    if stages[0] != "source":
        raise TransformError(f"transformKql must start with 'source', not {stages[0]!r}")
    columns = {column["name"]: column["type"] for column in input_columns}
    for stage in stages[1:]:
        operator, _, arguments = stage.partition(" ")
        if operator == "where":
            continue
        if operator in ("project", "extend"):
            projected: dict[str, str] = {} if operator == "project" else dict(columns)
            for item in _split_top_level(arguments, ","):
                name, equals, expression = item.partition("=")
                name = name.strip()
                if equals and not expression.startswith("="):
                    projected[name] = _expression_type(expression, columns)
                elif operator == "extend":
                    raise TransformError(f"extend needs 'Name = expression', got {item!r}")
                elif item not in columns:
                    raise TransformError(
                        f"project names column {item!r}, which the input stream does not declare"
                    )
                else:
                    projected[item] = columns[item]
            columns = projected
        elif operator == "project-away":
            for item in _split_top_level(arguments, ","):
                if item not in columns:
                    raise TransformError(
                        f"project-away names column {item!r}, which the input stream does not declare"
                    )
                del columns[item]
        else:
            raise TransformError(
                f"operator {operator!r} is not understood by this check (source, where, project, project-away, "
                "extend are); extend tests/infra/infra_checks.py or declare the table in tableColumnOverrides"
            )
    return [{"name": name, "type": type_} for name, type_ in columns.items()]


def flow_output_columns(dcr: Mapping[str, Any], flow: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Columns a data flow writes to its output table."""
    declarations = dcr.get("properties", {}).get("streamDeclarations", {})
    stream = flow["streams"][0]
    return transform_output_columns(flow.get("transformKql", "source"), declarations[stream]["columns"])


def check_dcr_rules(dcr: Mapping[str, Any], name: str) -> list[str]:
    """Problems of a DCR definition against the Logs Ingestion API's rules."""
    properties = dcr.get("properties")
    if not isinstance(properties, dict):
        return [f"{name}: no 'properties' object"]
    problems = []
    if dcr.get("kind") != "Direct":
        problems.append(
            f"{name}: kind is {dcr.get('kind')!r}; a DCR for the Logs Ingestion API is kind 'Direct'"
        )
    declarations = properties.get("streamDeclarations") or {}
    if not declarations:
        problems.append(f"{name}: declares no streams (streamDeclarations)")
    for stream, declaration in declarations.items():
        if not stream.startswith(CUSTOM_PREFIX):
            problems.append(f"{name}: stream {stream!r} must start with {CUSTOM_PREFIX!r}")
        problems += check_columns((declaration or {}).get("columns"), f"{name}: stream {stream}")

    destinations = properties.get("destinations") or {}
    destination_names = {
        entry.get("name")
        for entries in destinations.values()
        if isinstance(entries, list)
        for entry in entries
    }
    if len(destinations.get("logAnalytics") or []) != 1:
        problems.append(
            f"{name}: needs exactly one logAnalytics destination (infra/app/ingestion.bicep points it at the "
            "deployed workspace)"
        )

    flows = properties.get("dataFlows") or []
    if not flows:
        problems.append(f"{name}: has no dataFlows")
    for number, flow in enumerate(flows, 1):
        where = f"{name}: dataFlows[{number}]"
        streams = flow.get("streams") or []
        if not streams:
            problems.append(f"{where}: names no stream")
        for stream in streams:
            if stream not in declarations:
                problems.append(f"{where}: stream {stream!r} is not declared in streamDeclarations")
        for destination in flow.get("destinations") or []:
            if destination not in destination_names:
                problems.append(f"{where}: destination {destination!r} is not declared in destinations")
        if not flow.get("destinations"):
            problems.append(f"{where}: names no destination")
        output = flow.get("outputStream")
        problem = output_problem(output)  # the core's rule (shared/dcr_rules.py), one statement of it
        if problem is not None:
            problems.append(f"{where}: {problem}")
        if not isinstance(output, str):
            continue
        if not streams or streams[0] not in declarations:
            continue
        try:
            columns = flow_output_columns(dcr, flow)
        except TransformError as error:
            problems.append(f"{where} ({output}): transformKql: {error}")
            continue
        problems += check_columns(columns, f"{where} output {output}")
        if output.startswith(CUSTOM_PREFIX) and {"name": "TimeGenerated", "type": "datetime"} not in columns:
            problems.append(f"{where}: custom table {output} needs a TimeGenerated column of type datetime")
    return problems


def check_tables_match_dcr(main: Path = MAIN_BICEP) -> list[str]:
    """The custom tables the Bicep deploys have exactly the columns the deployed DCRs output."""
    tables, problems = bicep_custom_tables(main)
    dcr_files = sorted(path for path in bicep_loaded_json_files(main) if _looks_like_dcr(path))
    if not dcr_files:
        return [*problems, f"{main.name}: loads no DCR definition (loadJsonContent of a file with dataFlows)"]
    expected: dict[str, tuple[str, list[dict[str, Any]]]] = {}
    for path in dcr_files:
        dcr = json.loads(path.read_text(encoding="utf-8"))
        for flow in dcr["properties"].get("dataFlows", []):
            output = flow.get("outputStream", "")
            if not output.startswith(CUSTOM_PREFIX):
                continue
            try:
                expected[output[len(CUSTOM_PREFIX) :]] = (path.name, flow_output_columns(dcr, flow))
            except (TransformError, KeyError, IndexError) as error:
                problems.append(f"{path.name}: cannot derive the columns of {output}: {error}")
    for table, (source, columns) in sorted(expected.items()):
        if table not in tables:
            problems.append(f"table {table}: {source} writes to it but the Bicep does not deploy it")
            continue
        deployed = {column["name"]: column.get("type") for column in tables[table]}
        wanted = {column["name"]: column["type"] for column in columns}
        for column, type_ in wanted.items():
            if column not in deployed:
                problems.append(
                    f"table {table}: column {column} ({type_}) is output by {source} but missing in the Bicep"
                )
            elif (deployed[column] or "").lower() != type_.lower():
                problems.append(
                    f"table {table}: column {column} is {deployed[column]} in the Bicep but {type_} in {source}"
                )
        for column in deployed.keys() - wanted.keys():
            problems.append(f"table {table}: column {column} is in the Bicep but {source} does not output it")
    for table in sorted(tables.keys() - expected.keys()):
        problems.append(
            f"table {table}: deployed by the Bicep but no data flow of a deployed DCR writes to it"
        )
    return problems


def _looks_like_dcr(path: Path) -> bool:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and "dataFlows" in (data.get("properties") or {})


# ============================================================================================
# App settings: what the code reads vs what the Bicep sets
# ============================================================================================


def _read_by(setting: str, names: Iterable[str]) -> bool:
    """A setting matches a name, or a prefix name ending in '__' it starts with."""
    return any(setting == name or (name.endswith("__") and setting.startswith(name)) for name in names)


def check_settings(
    code_settings: Iterable[str],
    bicep_settings: Iterable[str],
    not_set_by_bicep: Mapping[str, str],
    host_prefixes: Iterable[str],
    must_not_deploy: Iterable[str] = (),
) -> list[str]:
    """Every setting the code reads is set by the Bicep (or allow-listed), and none is dead."""
    code, bicep, host = list(code_settings), list(bicep_settings), tuple(host_prefixes)
    problems = []
    for name in code:
        is_set = any(_read_by(setting, [name]) for setting in bicep)
        if not is_set and name not in not_set_by_bicep:
            kind = "prefix" if name.endswith("__") else "setting"
            problems.append(
                f"app {kind} {name} is read by the code (shared/settings.py APP_SETTINGS) but not set by the Bicep "
                "app settings nor in the allow-list of settings left out on purpose"
            )
    for setting in bicep:
        if not (_read_by(setting, code) or setting.startswith(host)) and setting not in not_set_by_bicep:
            problems.append(
                f"app setting {setting} is set by the Bicep but read by neither the code (APP_SETTINGS) nor the "
                "Functions host: a dead setting"
            )
    for name in must_not_deploy:
        if name in bicep:
            problems.append(f"app setting {name} must never be deployed to Azure, but the Bicep sets it")
    for name in not_set_by_bicep:
        if name not in code:
            problems.append(
                f"allow-listed setting {name} is not read by the code any more: drop it from the list"
            )
    return problems


# Identity-based connections (DESIGN.md section 4): what each connection needs.
IDENTITY_CONNECTIONS = {
    "AzureWebJobsStorage": ("blobServiceUri", "queueServiceUri", "tableServiceUri"),
    "RelayStorage": ("blobServiceUri", "queueServiceUri"),  # a blob trigger needs the queue service too
    "EventHubConnection": ("fullyQualifiedNamespace",),
}


def check_identity_connections(settings: Mapping[str, Any]) -> list[str]:
    """Each connection is identity-based, complete, and uses the user-assigned identity."""
    problems = []
    for connection, required in IDENTITY_CONNECTIONS.items():
        if connection in settings:
            problems.append(
                f"{connection} is set as a connection string; use identity-based {connection}__* settings"
            )
        for part in required:
            if f"{connection}__{part}" not in settings:
                problems.append(f"{connection}__{part} is missing: the {connection} connection needs it")
        credential = settings.get(f"{connection}__credential")
        if credential != "managedidentity":
            problems.append(f"{connection}__credential is {credential!r}, not 'managedidentity'")
        if f"{connection}__clientId" not in settings:
            problems.append(
                f"{connection}__clientId is missing: without it the host picks no user-assigned identity"
            )
    return problems


# ============================================================================================
# Routes file vs deployed DCR and settings
# ============================================================================================

_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(:-[^}]*)?\}")


def _strings(node: Any) -> Iterator[str]:
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for value in node.values():
            yield from _strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from _strings(value)


def check_routes(
    relay_yaml: Path, root: Path, deployed_files: Iterable[Path], bicep_settings: Iterable[str]
) -> list[str]:
    """Every route's stream is declared in a DCR file that exists and is deployed; its variables are set."""
    data = yaml.safe_load(relay_yaml.read_text(encoding="utf-8")) or {}
    deployed = {path.resolve() for path in deployed_files}
    settings = set(bicep_settings)
    defaults = data.get("defaults") or {}
    routes = data.get("routes") or []
    problems = []
    if not routes:
        problems.append(f"{relay_yaml.name}: has no routes")
    for route in routes:
        name = route.get("name", "?")
        schema = route.get("schema", defaults.get("schema"))
        stream = route.get("stream")
        if not schema:
            problems.append(
                f"route {name}: has no schema file (inline columns are not deployed): the stream must be declared "
                "in a DCR file under infra/dcr that the Bicep deploys"
            )
            continue
        path = (root / schema).resolve()
        if not path.is_file():
            problems.append(f"route {name}: schema file {schema} does not exist")
            continue
        declarations = (
            json.loads(path.read_text(encoding="utf-8")).get("properties", {}).get("streamDeclarations", {})
        )
        if stream not in declarations:
            problems.append(f"route {name}: stream {stream!r} is not declared in {schema}")
        if path not in deployed:
            problems.append(
                f"route {name}: schema file {schema} is not deployed by the Bicep (no loadJsonContent of it)"
            )
    for text in _strings(data):
        for match in _VARIABLE.finditer(text):
            variable, default = match.group(1), match.group(2)
            if default is None and variable not in settings:
                problems.append(
                    f"{relay_yaml.name} uses ${{{variable}}} but the Bicep does not set app setting {variable}: "
                    "the deployed relay would fail to load its routes"
                )
    return sorted(set(problems))


# ============================================================================================
# Text rules: https only, no public-cloud suffixes
# ============================================================================================

# Public-cloud host names that have a cloud-neutral form (environment(), resource properties).
PUBLIC_CLOUD_SUFFIXES = (
    "monitor.azure.com",
    "azure.com",
    "core.windows.net",
    "servicebus.windows.net",
    "azurewebsites.net",
    "vault.azure.net",
    "microsoftonline.com",
    "applicationinsights.azure",
)


def strip_bicep_comments(text: str) -> str:
    """Bicep source without // and /* */ comments (quotes respected), so comments may mention hosts."""
    out, index, quote = [], 0, False
    while index < len(text):
        char = text[index]
        if quote:
            if char == "\\":
                out.append(text[index : index + 2])
                index += 2
                continue
            quote = char != "'"
        elif char == "'":
            quote = True
        elif text.startswith("//", index):
            end = text.find("\n", index)
            index = len(text) if end < 0 else end
            continue
        elif text.startswith("/*", index):
            end = text.find("*/", index)
            index = len(text) if end < 0 else end + 2
            continue
        out.append(char)
        index += 1
    return "".join(out)


def check_cloud_neutral(text: str, where: str) -> list[str]:
    """No http:// and no hard-coded public-cloud host names in Bicep code."""
    code = strip_bicep_comments(text)
    problems = []
    for number, line in enumerate(code.splitlines(), 1):
        if "http://" in line:
            problems.append(f"{where}:{number}: uses http://; everything is https only")
        for suffix in PUBLIC_CLOUD_SUFFIXES:
            if suffix in line:
                problems.append(
                    f"{where}:{number}: hard-codes {suffix!r}; use environment().suffixes or the resource's own "
                    "endpoint property so sovereign clouds work"
                )
                break
    return problems


# ============================================================================================
# Role assignments
# ============================================================================================

GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


@dataclass(frozen=True)
class RoleAssignment:
    file: str
    symbol: str
    scope_type: str  # resource type of the scope ("" when not a resource of this file)
    role_id: str
    role_variable: str
    principal: str
    name_arguments: tuple[str, ...]


def role_assignments(bicep_file: Path) -> tuple[list[RoleAssignment], list[str]]:
    """Role assignments of a file, and problems with how they are written."""
    tree = parse_bicep(bicep_file)
    resources = tree.get("resources", {})
    variables = {name: var["value"] for name, var in tree.get("variables", {}).items()}
    found, problems = [], []
    for symbol, resource in resources.items():
        if resource["type"] != "Microsoft.Authorization/roleAssignments":
            continue
        body = resource["config"]
        if "condition" in body and "config" in body:
            body = body["config"]
        properties = body.get("properties", {})
        role_node = properties.get("roleDefinitionId")
        role_variable = ""
        if isinstance(role_node, dict) and "function" in role_node:
            arguments = list((role_node["function"].get("parameters") or {}).values())
            role_variable = next((arg for arg in arguments[1:] if isinstance(arg, str)), "")
        if role_variable not in variables or not GUID.fullmatch(str(variables[role_variable])):
            problems.append(
                f"{bicep_file.name}: {symbol}: roleDefinitionId must use a named variable holding the role's GUID"
            )
            continue
        name_node = body.get("name")
        name_arguments: tuple[str, ...] = ()
        if isinstance(name_node, dict) and name_node.get("function", {}).get("type") == "guid":
            name_arguments = tuple(json.dumps(arg) for arg in name_node["function"]["parameters"].values())
        principal = properties.get("principalId")
        if (
            len(name_arguments) != 3
            or json.dumps(principal) not in name_arguments[1]
            or role_variable not in name_arguments[2]
        ):
            problems.append(f"{bicep_file.name}: {symbol}: name must be guid(scope, principal, role)")
        scope = body.get("scope")
        scope_type = resources.get(scope, {}).get("type", "") if isinstance(scope, str) else ""
        found.append(
            RoleAssignment(
                bicep_file.name,
                symbol,
                scope_type,
                str(variables[role_variable]),
                role_variable,
                principal if isinstance(principal, str) else json.dumps(principal),
                name_arguments,
            )
        )
    return found, problems


MONITORING_METRICS_PUBLISHER = "3913510d-42f4-4e42-8a64-420c390055eb"


def check_required_roles(assignments: Iterable[RoleAssignment], principal: str) -> list[str]:
    """The relay's identity holds each role it needs, at the right scope."""
    required = {
        (
            "Microsoft.Insights/dataCollectionRules",
            MONITORING_METRICS_PUBLISHER,
        ): "Monitoring Metrics Publisher on the DCR",
        (
            "Microsoft.Storage/storageAccounts",
            "b7e6dc6d-f1e8-4753-8033-0f276bb0955b",
        ): "Storage Blob Data Owner on storage",
        (
            "Microsoft.Storage/storageAccounts",
            "974c5e8b-45b9-4653-ba55-5f855dd0fb88",
        ): "Storage Queue Data Contributor on storage",
        (
            "Microsoft.EventHub/namespaces/eventhubs",
            "a638d3c7-ab3a-418d-83e6-5f17a39d4fde",
        ): "Event Hubs Data Receiver on the hub",
        (
            "Microsoft.Insights/components",
            MONITORING_METRICS_PUBLISHER,
        ): "Monitoring Metrics Publisher on Application Insights",
    }
    held = {(a.scope_type, a.role_id.lower()) for a in assignments if a.principal == principal}
    return [
        f"the relay's identity ({principal}) lacks {what} (role {role} at a {scope_type} scope)"
        for (scope_type, role), what in required.items()
        if (scope_type, role) not in held
    ]
