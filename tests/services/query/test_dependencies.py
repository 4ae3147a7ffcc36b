"""The dependency graph the API refuses cycles with: exact against a brute-force search on
random graphs (accepted edits never leave a cycle, refused ones would have made one), the
field a refusal names, and a project of 100,000 heartbeats."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.query.dependencies import DependencyGraph
from services.query.validation import InvalidField

IDS = [f"hb{n}" for n in range(7)]
TAGS = ["a", "b", "c"]


def edges(nodes: dict[str, tuple]) -> dict[str, set[str]]:
    """Every edge of one project, as docs/semantics.md states them: X -> each id of its
    ``depends_on``; X -> each other heartbeat carrying a tag of its ``depends_on_tags``."""
    out: dict[str, set[str]] = {}
    for x, (_, depends_on, depends_on_tags) in nodes.items():
        out[x] = set(depends_on) | {
            y for y, (tags, _, _) in nodes.items() if y != x and set(tags) & set(depends_on_tags)
        }
    return out


def has_cycle(nodes: dict[str, tuple]) -> bool:
    graph, state = edges(nodes), {}

    def visit(x: str) -> bool:
        state[x] = "open"
        for y in graph.get(x, ()):
            if state.get(y) == "open" or (y not in state and visit(y)):
                return True
        state[x] = "done"
        return False

    return any(x not in state and visit(x) for x in graph)


config = st.tuples(
    st.lists(st.sampled_from(TAGS), max_size=2, unique=True),
    st.lists(st.sampled_from(IDS), max_size=3, unique=True),
    st.lists(st.sampled_from(TAGS), max_size=2, unique=True),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(IDS), config), min_size=1, max_size=40))
def test_an_accepted_edit_never_leaves_a_cycle_and_a_refused_one_would_have(edits):
    graph, nodes = DependencyGraph(), {}
    for monitor_id, (tags, depends_on, depends_on_tags) in edits:
        depends_on = [d for d in depends_on if d != monitor_id]  # itself: refused before (by the API)
        proposed = {**nodes, monitor_id: (tags, depends_on, depends_on_tags)}
        path = graph.cycle("p", monitor_id, tags, depends_on, depends_on_tags)
        assert (path is not None) == has_cycle(proposed)
        if path is not None:
            hops = [step[0] for step in path]
            assert hops[0] == hops[-1] == monitor_id
            assert all(b in edges(proposed)[a] for a, b in itertools.pairwise(hops))
            continue
        nodes = proposed
        graph.put(monitor_id, "p", tags, depends_on, depends_on_tags)
        assert not has_cycle(nodes)


def name_of(monitor_id: str) -> str:
    return monitor_id.upper()


def check(graph: DependencyGraph, monitor_id: str, changed=("depends_on",), added=(), **config) -> None:
    config = {"tags": [], "depends_on": [], "depends_on_tags": [], **config}
    graph.check("p", monitor_id, config, set(changed), list(added), name_of)


def test_the_refusal_names_the_field_whose_change_closes_the_cycle():
    graph = DependencyGraph()
    graph.put("b", "p", [], [], ["db"])  # b depends on whatever carries "db"
    graph.put("c", "p", ["jobs"], ["a"], [])  # c depends on a
    with pytest.raises(InvalidField) as refused:
        check(graph, "a", changed=["tags"], tags=["db"], depends_on=["b"])
    assert (refused.value.field, str(refused.value)) == (
        "tags", "tags: would make a cycle of dependencies: 'A' -> 'B' -> (by tag 'db') 'A'"
    )  # fmt: skip
    with pytest.raises(InvalidField) as refused:
        check(graph, "a", changed=["depends_on", "tags"], tags=["db"], depends_on=["b"])
    assert refused.value.field == "depends_on"
    with pytest.raises(InvalidField) as refused:
        check(graph, "a", changed=["depends_on_tags"], depends_on_tags=["jobs"])
    assert refused.value.field == "depends_on_tags"


def test_unknown_ids_and_itself_are_refused_only_when_newly_given():
    graph = DependencyGraph()
    with pytest.raises(InvalidField, match="cannot depend on itself"):
        check(graph, "a", added=["a"], depends_on=["a"])
    with pytest.raises(InvalidField, match="unknown heartbeat id 'gone'"):
        graph.check("p", "a", {"tags": [], "depends_on": ["gone"], "depends_on_tags": []}, {"depends_on"},
                    ["gone"], lambda m: None)  # fmt: skip
    graph.check(
        "p", "a", {"tags": [], "depends_on": ["gone"], "depends_on_tags": []}, {"tags"}, [], lambda m: None
    )


def test_a_heartbeat_without_dependencies_costs_the_graph_nothing():
    graph = DependencyGraph()
    graph.put("a", "p", ["db"], [], [])
    graph.put("b", "p", ["db"], ["a"], [])
    graph.put("b", "p", ["db"], [], [])  # its dependencies taken away
    assert len(graph) == 0 and graph._carriers == {}


N = 100_000


def test_a_project_of_100000_heartbeats_is_checked_from_the_changed_one_only():
    """A chain of 100,000 (each depends on the one before) and 100,000 more that depend on the
    tag the chain's end carries: closing the chain is found, and a change elsewhere looks at
    what it reaches only."""
    graph = DependencyGraph()
    for n in range(1, N):
        graph.put(f"c{n}", "p", ["end"] if n == N - 1 else [], [f"c{n - 1}"], [])
    for n in range(N):
        graph.put(f"t{n}", "p", ["fan"], [], ["end"])
    path = graph.cycle("p", "c0", [], [f"c{N - 1}"], [])
    assert path is not None and len(path) == N + 1
    with pytest.raises(InvalidField) as refused:
        check(graph, "c0", depends_on=[f"c{N - 1}"])
    assert str(refused.value) == (
        "depends_on: would make a cycle of dependencies: 'C0' -> 'C99999' -> 'C99998' -> … -> 'C1' -> 'C0'"
    )
    assert graph.cycle("p", "t0", ["fan"], [], ["end"]) is None  # reaches the whole chain: no way back
    fanned = graph.cycle("p", "c0", [], [], ["fan"])  # c0 -> (by fan) t... -> (by end) c99999 -> ... -> c0
    assert fanned is not None and len(fanned) == N + 2 and fanned[1][1] == "fan"
