"""Result-size limits: cut on character and row boundaries, and always say so."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from executors import CloudAgent, EnvironmentCatalog, TaskStatus, open_audit_log
from executors._limits import cap_data_bytes, cap_rows, cap_text, json_size
from tests.environments import write_environment


def test_cap_text_under_and_at_the_limit_is_untouched() -> None:
    assert cap_text("", 0) == ("", False, 0)
    assert cap_text("abc", 3) == ("abc", False, 3)
    assert cap_text("abc", 100) == ("abc", False, 3)


def test_cap_text_over_the_limit() -> None:
    assert cap_text("abcdef", 4) == ("abcd", True, 6)


@pytest.mark.parametrize("character", ["é", "€", "😀"], ids=["2-byte", "3-byte", "4-byte"])
def test_cap_text_never_splits_a_character(character: str) -> None:
    text = ("a" + character) * 10
    size = len(text.encode())

    for limit in range(size):
        kept, cut, original = cap_text(text, limit)

        assert cut is True and original == size
        assert text.startswith(kept)
        encoded = kept.encode()
        assert len(encoded) <= limit
        # as much as fits: the next character would not have
        assert len(encoded) + len(text[len(kept)].encode()) > limit


def test_cap_text_counts_bytes_not_characters() -> None:
    kept, cut, original = cap_text("é" * 10, 5)

    assert (kept, cut, original) == ("éé", True, 20)


def test_cap_rows() -> None:
    rows = [[n] for n in range(10)]

    assert cap_rows(rows, 10) == (rows, False, 10)
    assert cap_rows(rows, 3) == ([[0], [1], [2]], True, 10)


def test_cap_data_bytes_under_the_limit_is_untouched() -> None:
    data = {"result_sets": [{"rows": [[1, "a"]]}]}

    kept, cut, size = cap_data_bytes(data, 1000)

    assert kept is data and cut is False and size == json_size(data)


def test_cap_data_bytes_drops_rows_from_the_end() -> None:
    rows = [[n, "x" * 10] for n in range(1000)]
    data = {"result_sets": [{"columns": ["n", "text"], "rows": rows, "row_count": 1000}]}
    original = copy.deepcopy(data)

    kept, cut, size = cap_data_bytes(data, 2000)

    assert cut is True
    assert size == json_size(original) > 2000
    assert json_size(kept) <= 2000
    kept_rows = kept["result_sets"][0]["rows"]
    assert 0 < len(kept_rows) < 1000
    assert kept_rows == original["result_sets"][0]["rows"][: len(kept_rows)]
    assert kept["result_sets"][0]["columns"] == ["n", "text"]
    assert kept["result_sets"][0]["row_count"] == 1000
    assert data == original  # the input is not modified


def test_cap_data_bytes_cuts_a_long_string() -> None:
    data = {"status_code": 200, "body": "é" * 5000}

    kept, cut, size = cap_data_bytes(data, 1000)

    assert cut is True and size == json_size(data)
    assert json_size(kept) <= 1000
    assert kept["status_code"] == 200
    assert data["body"].startswith(kept["body"]) and kept["body"]


def test_cap_data_bytes_of_a_bare_string_and_a_bare_list() -> None:
    text, text_cut, _ = cap_data_bytes("z" * 5000, 100)
    items, items_cut, _ = cap_data_bytes(list(range(5000)), 100)

    assert text_cut and json_size(text) <= 100 and set(text) == {"z"}
    assert items_cut and json_size(items) <= 100 and items == list(range(len(items)))


def test_sizes_count_utf8_bytes() -> None:
    assert json_size({"k": "é"}) == len(json.dumps({"k": "é"}, ensure_ascii=False).encode())


@pytest.mark.integration
def test_sql_data_over_the_byte_limit_is_truncated_with_its_size(config_dir: Path, state_dir: Path) -> None:
    write_environment(config_dir, "small", agents=["agent-small-001"], limits={"max_output_bytes": 2000})
    with CloudAgent(EnvironmentCatalog.load(config_dir), open_audit_log(f"sqlite:///{state_dir}/a.db")) as agent:
        result = agent.run(
            {
                "agent_id": "agent-small-001",
                "type": "postgres",
                "command": "SELECT n, repeat('x', 100) AS filler FROM generate_series(1, 100) AS n",
            }
        )

    assert result.status is TaskStatus.SUCCEEDED, result.error
    assert result.truncated is True
    assert result.original_bytes is not None and result.original_bytes > 100 * 100
    assert json_size(result.data) <= 2000
    rows = result.data["result_sets"][0]["rows"]
    assert rows and [row[0] for row in rows] == list(range(1, len(rows) + 1))
