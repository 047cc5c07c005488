"""Option parsing against allow-lists (``executors._policy.shell._options``)."""

from __future__ import annotations

import pytest

from executors._policy.shell._options import parse, table
from executors._policy.shell._words import UNKNOWN, Word, literal_word

SORTISH = table(
    "-r -n -u -k= -t= --reverse --key= --check? --color?",
    refused={"-o": "writes a file", "--output": "writes a file", "--compress-program": "runs a program"},
    next_value={"--color": r"always|never"},
)


def words(*texts: str) -> list[Word]:
    return [literal_word(t) for t in texts]


def test_clusters_values_and_operands() -> None:
    parsed = parse(words("-rnk2,2", "-t", ":", "--key=3", "--key", "4", "file", "-u"), SORTISH)

    assert parsed.problem == ""
    assert [(o, v.text if v else None) for o, v in parsed.options] == [
        ("-r", None), ("-n", None), ("-k", "2,2"), ("-t", ":"), ("--key", "3"), ("--key", "4"), ("-u", None),
    ]  # fmt: skip
    assert [w.text for w in parsed.operands] == ["file"]


def test_a_refused_option_inside_a_cluster_is_found() -> None:
    assert parse(words("-ruo/tmp/x", "f"), SORTISH).problem == "-o writes a file"


def test_an_allowed_value_cannot_hide_an_option_after_it() -> None:
    # -k takes the next word whole; -o after it is an option again
    assert parse(words("-k", "2", "-o", "/tmp/x"), SORTISH).problem == "-o writes a file"


def test_double_dash_ends_the_options() -> None:
    parsed = parse(words("-r", "--", "-o", "--output=x"), SORTISH)

    assert parsed.problem == ""
    assert [w.text for w in parsed.operands] == ["-o", "--output=x"]


def test_abbreviated_long_options_are_not_accepted() -> None:
    assert "abbreviation (of --compress-program)" in parse(words("--compress-prog=gz"), SORTISH).problem
    assert "abbreviation (of --reverse)" in parse(words("--rev"), SORTISH).problem


def test_a_flag_given_a_value_is_not_understood() -> None:
    assert parse(words("--reverse=yes"), SORTISH).problem


def test_optional_values_are_attached_or_taken_when_they_match() -> None:
    parsed = parse(words("--check=quiet", "--check", "x", "--color", "never"), SORTISH)

    assert [(o, v.text if v else None) for o, v in parsed.options] == [
        ("--check", "quiet"), ("--check", None), ("--color", "never"),
    ]  # fmt: skip
    assert [w.text for w in parsed.operands] == ["x"]


def test_a_value_option_at_the_end_needs_its_value() -> None:
    assert parse(words("-k"), SORTISH).problem == "-k needs a value"


def test_run_time_words_where_an_option_can_stand() -> None:
    dynamic = Word("$x", dynamic=True, may_be_option=True, pattern="*")

    assert "could be an option" in parse([dynamic], SORTISH).problem
    assert "split into options" in parse([UNKNOWN], SORTISH).problem
    assert parse([*words("--"), dynamic], SORTISH).problem == ""
    assert parse([*words("-t"), dynamic], SORTISH).problem == ""  # a value, whatever it is


def test_options_after_the_first_operand_end_when_the_program_does_not_permute() -> None:
    strict = table("-r", permute=False)

    assert parse(words("file", "-x"), strict).problem == ""
    assert parse(words("-x", "file"), strict).problem


def test_numeric_options() -> None:
    head = table("-n=", numeric=True)

    assert parse(words("-20", "f"), head).options[0][0] == "-NUM"
    assert parse(words("-20", "f"), SORTISH).problem


@pytest.mark.parametrize("spec", ["x", "--a --b", "-q?"])
def test_option_tables_are_checked_when_written(spec: str) -> None:
    if spec == "x":
        with pytest.raises(ValueError, match="does not start with '-'"):
            table(spec)
    elif spec == "--a --b":
        with pytest.raises(ValueError, match="read a file but take no value"):
            table(spec, reads="--a")
    else:
        with pytest.raises(ValueError, match="take the next word but are not optional"):
            table(spec, next_value={"-r": "x"})
