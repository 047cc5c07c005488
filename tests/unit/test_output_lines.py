from contract import output_lines


def test_output_is_split_into_lines_as_the_executors_stream_it() -> None:
    assert output_lines(None) == [] and output_lines("") == []
    assert output_lines("a\nb\n") == ["a", "b"]
    assert output_lines("a\r\nb\rc") == ["a\r", "b\rc"]
    assert output_lines("\n\nx") == ["", "", "x"]
