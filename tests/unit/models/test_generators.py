import pytest

from models import GENERATORS, GeneratorError, generate
from models.generators import generator


def test_every_generator_has_a_family_and_draws_reproducibly() -> None:
    assert {"simulator", "queueing", "pyrca", "pyrca-linear", "pyrca-nonlinear"} <= set(GENERATORS)
    assert {generator(name).family for name in ("pyrca", "pyrca-linear", "pyrca-nonlinear")} == {"pyrca"}
    first = generate("simulator", 2, 7)
    assert [i.id for i in first] == [i.id for i in generate("simulator", 2, 7)]
    assert first[0].root_cause[1] != first[1].root_cause[1]  # fault types cycle


def test_an_unknown_generator_is_named_with_the_known_ones() -> None:
    with pytest.raises(GeneratorError, match="unknown generator 'x'; known: simulator, queueing"):
        generate("x", 1, 1)
