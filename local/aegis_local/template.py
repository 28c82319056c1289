"""Read `template.yaml` the way CloudFormation does, so tests and the local stack share one source of resources.

CloudFormation's YAML short forms (`!Ref`, `!Sub`, `!GetAtt` ...) become the JSON forms (`{"Ref": ...}`,
`{"Fn::Sub": ...}`, `{"Fn::GetAtt": [...]}`), exactly as `aws cloudformation` would see them. Nothing is resolved
here: resolving needs parameter values and physical ids, which only the caller knows.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

__all__ = ["TemplateError", "load_template", "substitute_definition"]

# Short-form tags whose long form is not simply "Fn::<Tag>".
_LONG_FORM = {"Ref": "Ref", "Condition": "Condition"}
_SUBSTITUTION = re.compile(r"\$\{([A-Za-z0-9_.:]+)\}")


class TemplateError(ValueError):
    """The template (or a state machine definition) is not what CloudFormation would accept."""


class _TemplateLoader(yaml.SafeLoader):
    """A SafeLoader that also understands CloudFormation's intrinsic-function tags."""


def _construct_intrinsic(loader: _TemplateLoader, tag_suffix: str, node: yaml.Node) -> dict[str, Any]:
    long_form = _LONG_FORM.get(tag_suffix, f"Fn::{tag_suffix}")
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
        if tag_suffix == "GetAtt":
            # `!GetAtt Resource.Attribute` splits at the first dot only (attributes may contain dots).
            resource, _, attribute = str(value).partition(".")
            if not attribute:
                raise TemplateError(f"!GetAtt {value!r} needs the form Resource.Attribute (line {_line(node)})")
            value = [resource, attribute]
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    elif isinstance(node, yaml.MappingNode):
        value = loader.construct_mapping(node, deep=True)
    else:  # pragma: no cover - PyYAML has no other node kinds
        raise TemplateError(f"unsupported node for !{tag_suffix} (line {_line(node)})")
    return {long_form: value}


def _line(node: yaml.Node) -> int:
    return node.start_mark.line + 1


_TemplateLoader.add_multi_constructor("!", _construct_intrinsic)


def load_template(path: str | Path) -> dict[str, Any]:
    """Parse a CloudFormation/SAM YAML template into its JSON-equivalent dict.

    Raises TemplateError if the file is not valid YAML or is not a template (no `Resources` mapping).
    """
    source = Path(path)
    try:
        document = yaml.load(source.read_text(encoding="utf-8"), Loader=_TemplateLoader)  # noqa: S506
    except yaml.YAMLError as error:
        raise TemplateError(f"{source} is not valid YAML: {error}") from error
    if not isinstance(document, dict) or not isinstance(document.get("Resources"), dict):
        raise TemplateError(f"{source} has no Resources mapping, so it is not a CloudFormation template")
    return document


def substitute_definition(definition: str, substitutions: Mapping[str, str]) -> str:
    """Apply `DefinitionSubstitutions` the way Step Functions does: `${Name}` replaced textually.

    Raises TemplateError naming every `${...}` in the definition that has no value, because CloudFormation
    would otherwise deploy a state machine that fails only when it reaches that state.
    """
    missing = sorted({name for name in _SUBSTITUTION.findall(definition) if name not in substitutions})
    if missing:
        raise TemplateError(f"definition uses substitutions with no value: {', '.join(missing)}")
    return _SUBSTITUTION.sub(lambda match: str(substitutions[match.group(1)]), definition)
