"""Static checks of an ASL definition that every state machine of the template must pass."""

from __future__ import annotations

from typing import Any


def graph_problems(definition: dict[str, Any]) -> list[str]:
    """Every transition lands on a state of its own scope; every state is reachable and ends or continues (Map
    processors included, each as a scope of its own)."""
    found: list[str] = []

    def walk(machine: dict[str, Any], scope: str) -> None:
        states = machine["States"]
        reachable: set[str] = set()
        frontier = [machine["StartAt"]]
        while frontier:
            name = frontier.pop()
            if name in reachable:
                continue
            if name not in states:
                found.append(f"{scope}: transition to missing state {name}")
                continue
            reachable.add(name)
            state = states[name]
            targets = [state.get("Next"), state.get("Default")]
            targets += [c.get("Next") for c in state.get("Choices", []) + state.get("Catch", [])]
            frontier += [t for t in targets if t]
            if not state.get("End") and state["Type"] not in ("Choice", "Succeed", "Fail") and "Next" not in state:
                found.append(f"{scope}/{name} neither ends nor continues")
        found.extend(f"{scope}/{orphan} is unreachable" for orphan in sorted(set(states) - reachable))
        for name, state in states.items():
            if "ItemProcessor" in state:
                walk(state["ItemProcessor"], f"{scope}/{name}")

    walk(definition, "")
    return found
