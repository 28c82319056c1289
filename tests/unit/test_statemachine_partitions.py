"""The mission state machine in any partition: statemachine/mission.asl.json names no partition, and the template
gives it the stack's (`AWS::Partition`), so its service integrations and functions resolve to ARNs of the partition
it is deployed in."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from aegis_local.aws.template import parameter_values, predicted_deployment, substitute_definition
from tests.support.stack import EXAMPLE_PARAMETERS, STATE_MACHINE_PATH, pristine_template

# (partition, a region of it)
PARTITIONS = [("aws", "us-east-1"), ("aws-us-gov", "us-gov-west-1"), ("aws-cn", "cn-north-1")]
LAMBDA_INTEGRATIONS = {"lambda:invoke", "lambda:invoke.waitForTaskToken"}


def _states(machine: dict[str, Any]) -> list[dict[str, Any]]:
    found = []
    for state in machine["States"].values():
        found.append(state)
        processor = state.get("ItemProcessor") or state.get("Iterator")
        if processor:
            found += _states(processor)
    return found


def resolved_definition(partition: str, region: str) -> dict[str, Any]:
    """The definition as CloudFormation deploys it in `region` of `partition`, with the template's substitutions."""
    template = pristine_template()
    # The tenant's secrets live in the deployment's own partition and region.
    parameters = {
        name: value.replace("arn:aws:", f"arn:{partition}:").replace(":us-east-1:", f":{region}:")
        for name, value in EXAMPLE_PARAMETERS.items()
    }
    resolver = predicted_deployment(
        template,
        parameter_values(template, parameters),
        pseudo={"AWS::Region": region},  # the partition follows the region
    )
    machine = template["Resources"]["MissionStateMachine"]["Properties"]
    substitutions = resolver.resolve(machine["DefinitionSubstitutions"])
    text = substitute_definition(STATE_MACHINE_PATH.read_text(encoding="utf-8"), substitutions)
    parsed: dict[str, Any] = json.loads(text)
    return parsed


def test_the_definition_names_no_partition_and_takes_the_stacks() -> None:
    text = STATE_MACHINE_PATH.read_text(encoding="utf-8")
    assert re.findall(r"arn:(?!\$\{Partition\}:)[^\"]*", text) == []
    machine = pristine_template()["Resources"]["MissionStateMachine"]["Properties"]
    assert machine["DefinitionSubstitutions"]["Partition"] == {"Ref": "AWS::Partition"}


@pytest.mark.parametrize(("partition", "region"), PARTITIONS, ids=[p for p, _ in PARTITIONS])
def test_every_task_resolves_to_the_partitions_integration_and_functions(partition: str, region: str) -> None:
    tasks = [state for state in _states(resolved_definition(partition, region)) if state["Type"] == "Task"]

    assert len(tasks) == 5
    assert {task["Resource"] for task in tasks} == {
        f"arn:{partition}:states:::{integration}" for integration in LAMBDA_INTEGRATIONS
    }
    functions = {task["Parameters"]["FunctionName"] for task in tasks}
    assert len(functions) == 4
    assert all(name.startswith(f"arn:{partition}:lambda:{region}:123456789012:function:") for name in functions)
