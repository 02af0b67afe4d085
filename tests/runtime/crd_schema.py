"""A check of an object against a CRD's structural OpenAPI v3 schema, for the manifest tests.

It covers the keywords that crds/etltasks.etl.kube-etl.io.yaml uses: type, properties (unknown
fields are errors unless x-kubernetes-preserve-unknown-fields or additionalProperties allows
them, as with kubectl's strict field validation), required, items, minItems/maxItems,
minLength/maxLength, pattern, minimum/maximum, enum and oneOf. It is not a full OpenAPI
validator: formats and defaults are not checked, and neither is metadata, which the apiserver
validates itself.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

CRD_FILE = Path(__file__).resolve().parents[2] / "crds" / "etltasks.etl.kube-etl.io.yaml"

TYPE_CHECKS = {
    "object": lambda value: isinstance(value, dict),
    "array": lambda value: isinstance(value, list),
    "string": lambda value: isinstance(value, str),
    "boolean": lambda value: isinstance(value, bool),
    "integer": lambda value: isinstance(value, int) and not isinstance(value, bool),
    "number": lambda value: isinstance(value, int | float) and not isinstance(value, bool),
}


def etltask_schema(version: str = "v1alpha1") -> dict[str, Any]:
    crd = yaml.safe_load(CRD_FILE.read_text())
    for served in crd["spec"]["versions"]:
        if served["name"] == version:
            schema: dict[str, Any] = served["schema"]["openAPIV3Schema"]
            return schema
    raise LookupError(f"version {version} not found in {CRD_FILE}")


def schema_errors(value: Any, schema: dict[str, Any], path: str = "") -> list[str]:
    """Return one message per violation, each naming the field path; empty when the value is valid."""
    where = path or "(root)"
    expected_type = schema.get("type")
    if expected_type is not None and not TYPE_CHECKS[expected_type](value):
        return [f"{where}: expected {expected_type}, got {type(value).__name__}"]

    errors: list[str] = []
    if "enum" in schema and value not in schema["enum"]:
        errors.append(f"{where}: {value!r} is not one of {schema['enum']}")
    if isinstance(value, str):
        if len(value) < schema.get("minLength", 0):
            errors.append(f"{where}: shorter than {schema['minLength']}")
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            errors.append(f"{where}: longer than {schema['maxLength']}")
        if "pattern" in schema and re.search(schema["pattern"], value) is None:
            errors.append(f"{where}: {value!r} does not match {schema['pattern']}")
    if isinstance(value, int | float) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            errors.append(f"{where}: below {schema['minimum']}")
        if "maximum" in schema and value > schema["maximum"]:
            errors.append(f"{where}: above {schema['maximum']}")
    if isinstance(value, list):
        if len(value) < schema.get("minItems", 0):
            errors.append(f"{where}: fewer than {schema['minItems']} items")
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            errors.append(f"{where}: more than {schema['maxItems']} items")
        for index, item in enumerate(value):
            errors += schema_errors(item, schema.get("items", {}), f"{path}[{index}]")
    if isinstance(value, dict):
        errors += _object_errors(value, schema, path)
    if "oneOf" in schema:
        matching = [option for option in schema["oneOf"] if not schema_errors(value, option, path)]
        if len(matching) != 1:
            errors.append(f"{where}: matches {len(matching)} of the oneOf alternatives, expected exactly 1")
    return errors


def _object_errors(value: dict[str, Any], schema: dict[str, Any], path: str) -> list[str]:
    errors = [
        f"{path or '(root)'}: missing required field {name!r}"
        for name in schema.get("required", [])
        if name not in value
    ]
    properties: dict[str, Any] = schema.get("properties", {})
    additional = schema.get("additionalProperties")
    # A oneOf alternative without a type only adds constraints such as required, and the root's
    # metadata is checked by the apiserver's ObjectMeta rules, not by the CRD schema.
    closed = (schema.get("type") == "object" or "properties" in schema) and path != "metadata"
    closed = (
        closed and not schema.get("x-kubernetes-preserve-unknown-fields", False) and additional is not True
    )
    for name, item in value.items():
        field_path = f"{path}.{name}" if path else name
        if name in properties:
            errors += schema_errors(item, properties[name], field_path)
        elif isinstance(additional, dict):
            errors += schema_errors(item, additional, field_path)
        elif closed:
            errors.append(f"{field_path}: unknown field")
    return errors
