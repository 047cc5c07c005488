import json
from pathlib import Path

import pytest
import yaml

from models import ServiceKind, ServiceNode, Topology, TopologyError, read_topology

DATA = {
    "services": [
        "frontend",
        {"name": "checkout", "namespace": "shop"},
        {"name": "orders-db", "kind": "database", "engine": "postgres", "connection": "orders"},
    ],
    "calls": [
        ["frontend", "checkout"],
        {"caller": "checkout", "callee": "orders-db"},
        {"from": "checkout", "to": "cache"},
    ],
}


def test_from_dict_reads_every_edge_form() -> None:
    topology = Topology.from_dict(DATA)
    assert topology.names == ["frontend", "checkout", "orders-db", "cache"]
    assert topology.kind_of("orders-db") is ServiceKind.DATABASE
    assert topology.callees("checkout") == ["orders-db", "cache"]
    assert sorted(topology.ancestors("orders-db")) == ["checkout", "frontend"]


def test_unknown_edge_end_or_conflicting_duplicate_is_an_error() -> None:
    with pytest.raises(TopologyError, match="'a' is listed twice, differently"):
        Topology.from_dict({"services": [{"name": "a", "kind": "cache"}, {"name": "a", "kind": "database"}]})
    with pytest.raises(TopologyError, match="duplicate"):
        Topology(services=[ServiceNode(name="a"), ServiceNode(name="a")])
    with pytest.raises(TopologyError, match="cannot read the edge"):
        Topology.from_dict({"services": ["a"], "calls": [["a"]]})
    with pytest.raises(TopologyError, match="kind"):
        Topology.from_dict({"services": [{"name": "a", "kind": "queue"}]})


def test_a_component_listed_twice_alike_is_one_component() -> None:
    cache = {"name": "reviews-redis", "kind": "cache", "namespace": "prod"}
    topology = Topology.from_dict(
        {"services": ["reviews", cache, dict(cache), "reviews"], "calls": [["reviews", "reviews-redis"]]}
    )
    assert topology.names == ["reviews", "reviews-redis"]
    assert topology.kind_of("reviews-redis") is ServiceKind.CACHE


@pytest.mark.parametrize("suffix", [".json", ".yaml"])
def test_load_json_and_yaml(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"topology{suffix}"
    path.write_text(json.dumps(DATA) if suffix == ".json" else yaml.safe_dump(DATA))
    assert read_topology(path) == Topology.from_dict(DATA)


def test_load_bad_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("services: [unclosed")
    with pytest.raises(TopologyError, match="cannot read"):
        read_topology(path)
    with pytest.raises(TopologyError, match="no such file"):
        read_topology(tmp_path / "absent.yaml")


def test_nodes_and_edges_and_an_adjacency_map_are_read() -> None:
    nodes = Topology.from_dict({"nodes": ["frontend", "cart"], "edges": [["frontend", "cart"]]})
    adjacency = Topology.from_dict({"frontend": ["cart", "payment"], "cart": ["orders-db"]})
    assert nodes.calls == [("frontend", "cart")]
    assert sorted(adjacency.calls) == [("cart", "orders-db"), ("frontend", "cart"), ("frontend", "payment")]


def test_a_mapping_of_unknown_shape_is_an_error_not_an_empty_graph() -> None:
    with pytest.raises(TopologyError, match=r"expected 'services' and 'calls'.*found keys 'graph'"):
        Topology.from_dict({"graph": {"frontend": "cart"}})


def test_a_kind_not_stated_is_what_the_name_says() -> None:
    topology = Topology.from_dict({"services": ["frontend", {"name": "sessions-db", "kind": "service"}], "calls": []})
    adjacency = Topology.from_dict({"frontend": ["orders-db", "redis-cart"]})
    assert topology.kind_of("frontend") is ServiceKind.SERVICE
    assert topology.kind_of("sessions-db") is ServiceKind.SERVICE  # stated: kept
    assert adjacency.kind_of("orders-db") is ServiceKind.DATABASE
    assert adjacency.kind_of("redis-cart") is ServiceKind.CACHE
