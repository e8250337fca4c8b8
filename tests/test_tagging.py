import pytest

from raner_pool.tagging import TagSpan, decode_spans, decode_spans_like_modelscope, entity_types, split_tag, tag_scheme


def spans(tags: str) -> list[tuple[str, int, int]]:
    return [(s.type, s.start, s.end) for s in decode_spans(tags.split())]


def test_bio():
    assert spans("B-PER I-PER O B-LOC O B-ORG I-ORG I-ORG") == [("PER", 0, 2), ("LOC", 3, 4), ("ORG", 5, 8)]


def test_bioes_and_bilou():
    assert spans("S-PER B-LOC I-LOC E-LOC O") == [("PER", 0, 1), ("LOC", 1, 4)]
    assert spans("U-PER B-LOC I-LOC L-LOC") == [("PER", 0, 1), ("LOC", 1, 4)]


def test_bmes_as_in_msra():
    assert spans("B-ORG M-ORG M-ORG E-ORG O S-LOC B-PER E-PER") == [("ORG", 0, 4), ("LOC", 5, 6), ("PER", 6, 8)]


def test_adjacent_entities_of_the_same_type_stay_apart():
    assert spans("B-PER E-PER B-PER E-PER") == [("PER", 0, 2), ("PER", 2, 4)]
    assert spans("B-PER I-PER B-PER I-PER") == [("PER", 0, 2), ("PER", 2, 4)]
    assert spans("S-LOC S-LOC") == [("LOC", 0, 1), ("LOC", 1, 2)]


def test_inside_without_begin_starts_an_entity():
    assert spans("O I-PER I-PER O") == [("PER", 1, 3)]
    assert spans("M-LOC E-LOC") == [("LOC", 0, 2)]


def test_type_change_mid_entity_splits():
    assert spans("B-PER I-LOC I-LOC") == [("PER", 0, 1), ("LOC", 1, 3)]
    assert spans("B-PER E-LOC") == [("PER", 0, 1), ("LOC", 1, 2)]


def test_end_alone_is_one_token_and_o_closes():
    assert spans("O E-PER O") == [("PER", 1, 2)]
    assert spans("B-PER O I-PER") == [("PER", 0, 1), ("PER", 2, 3)]


def test_unterminated_entity_runs_to_the_end():
    assert spans("O B-ORG M-ORG") == [("ORG", 1, 3)]


def test_empty_and_all_outside():
    assert decode_spans([]) == []
    assert decode_spans(["O", "O"]) == []


def test_unknown_tags_are_outside():
    assert spans("X-PER B-PER [PAD] B") == [("PER", 1, 2)]
    assert split_tag("O") is None and split_tag("B_PER") == ("B", "PER")


def test_scheme_and_types_from_label_set():
    assert tag_scheme(["O", "B-PER", "M-PER", "E-PER", "S-PER"]) == "BMES"
    assert tag_scheme(["O", "B-PER", "I-PER", "E-PER", "S-PER"]) == "BIOES"
    assert tag_scheme(["O", "B-PER", "I-PER"]) == "BIO"
    assert entity_types(["O", "B-PER", "I-LOC", "S-ORG"]) == ["LOC", "ORG", "PER"]
    assert TagSpan("PER", 0, 2).end == 2


def modelscope_spans(tags: str) -> list[tuple[str, int, int]]:
    return [(s.type, s.start, s.end) for s in decode_spans_like_modelscope(tags.split())]


@pytest.mark.parametrize(
    ("tags", "expected"),
    [
        ("B-PER M-PER E-PER O S-LOC", [("PER", 0, 3), ("LOC", 4, 5)]),
        ("B-PER M-PER", [("PER", 0, 1)]),  # M never extends: the pipeline reports only the B character
        ("M-PER E-PER O", [("PER", 1, 2)]),  # an E with nothing open starts at itself
        ("B-LOC O E-LOC", [("LOC", 0, 3)]),  # O does not close: the E extends across it
        ("B-PER I-PER I-PER", [("PER", 0, 3)]),  # BIO: I extends
        ("I-ORG I-ORG O", [("ORG", 0, 2)]),
        ("B-PER B-LOC E-LOC", [("PER", 0, 1), ("LOC", 1, 3)]),
        ("O O", []),
    ],
)
def test_modelscope_compatible_decoding(tags: str, expected: list[tuple[str, int, int]]):
    assert modelscope_spans(tags) == expected
