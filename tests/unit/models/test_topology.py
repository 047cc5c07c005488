import json
from pathlib import Path

import pytest
import yaml

from models import ServiceKind, Topology, TopologyError, read_topology

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


def test_unknown_edge_end_or_duplicate_is_an_error() -> None:
    with pytest.raises(TopologyError, match="duplicate"):
        Topology.from_dict({"services": ["a", "a"]})
    with pytest.raises(TopologyError, match="cannot read the edge"):
        Topology.from_dict({"services": ["a"], "calls": [["a"]]})
    with pytest.raises(TopologyError, match="kind"):
        Topology.from_dict({"services": [{"name": "a", "kind": "queue"}]})


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
