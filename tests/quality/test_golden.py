from __future__ import annotations

import json
from pathlib import Path

import pytest

from gates.errors import DataError, ExitCode
from gates.quality.golden import load_calibration, load_golden_suite

REPO = Path(__file__).resolve().parents[2]


def _write(path: Path, rows: list[object]) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


def test_repo_suites_pass_their_expectations() -> None:
    prompts = load_golden_suite(REPO / "golden_prompts" / "demo.jsonl", "demo")
    assert len(prompts) >= 10
    assert len(load_calibration(REPO / "golden_prompts" / "calibration.jsonl")) >= 32


def test_duplicate_id_names_rows_and_expectation(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "g.jsonl", [{"id": "a", "prompt": "x"}, {"id": "b", "prompt": "y"}, {"id": "a", "prompt": "z"}]
    )
    with pytest.raises(DataError) as info:
        load_golden_suite(path, "g")
    msg = str(info.value)
    assert info.value.exit_code == ExitCode.BAD_INPUT
    assert f"{path}: lines 1, 3: duplicate id (expectation ExpectColumnValuesToBeUnique on 'id')" in msg


def test_empty_prompt_names_row(tmp_path: Path) -> None:
    path = _write(tmp_path / "g.jsonl", [{"id": "a", "prompt": "x"}, "", {"id": "b", "prompt": "   "}])
    with pytest.raises(DataError) as info:
        load_golden_suite(path, "g")
    assert f"{path}: lines 3: empty prompt" in str(info.value)


def test_bad_json_names_line(tmp_path: Path) -> None:
    path = _write(tmp_path / "g.jsonl", [{"id": "a", "prompt": "x"}, "{not json"])
    with pytest.raises(DataError, match=r"g\.jsonl:2: invalid JSON"):
        load_golden_suite(path, "g")


def test_unknown_key_names_line(tmp_path: Path) -> None:
    path = _write(tmp_path / "g.jsonl", [{"id": "a", "prompt": "x", "promt": "typo"}])
    with pytest.raises(DataError, match=r"g\.jsonl:1: at key 'promt': unknown key"):
        load_golden_suite(path, "g")


def test_calibration_expectations(tmp_path: Path) -> None:
    path = _write(tmp_path / "c.jsonl", [{"id": "1", "text": "hello"}, {"id": "2", "text": ""}])
    with pytest.raises(DataError, match="lines 2: empty text"):
        load_calibration(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="cannot read"):
        load_golden_suite(tmp_path / "nope.jsonl", "x")


def test_tags_outside_allowed_list_name_rows(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "g.jsonl",
        [{"id": "a", "prompt": "x", "tags": ["math"]}, {"id": "b", "prompt": "y", "tags": ["math", "poetry"]}],
    )
    load_golden_suite(path, "g")  # no allowed list: any tag
    with pytest.raises(DataError, match=r"lines 2: tag not in golden.allowed_tags \['math'\]"):
        load_golden_suite(path, "g", allowed_tags=["math"])


def test_prompt_word_bound(tmp_path: Path) -> None:
    path = _write(tmp_path / "g.jsonl", [{"id": "a", "prompt": "one two three"}, {"id": "b", "prompt": "one"}])
    with pytest.raises(DataError, match="lines 1: prompt longer than 2 whitespace tokens"):
        load_golden_suite(path, "g", max_prompt_words=2)


def test_invalid_regex_names_line(tmp_path: Path) -> None:
    path = _write(tmp_path / "g.jsonl", [{"id": "a", "prompt": "x", "regex": "(unclosed"}])
    with pytest.raises(DataError, match=r"g\.jsonl:1: at key 'regex': invalid regular expression"):
        load_golden_suite(path, "g")


def test_smollm2_suites_hold_chats_and_pass_their_expectations() -> None:
    prompts = load_golden_suite(REPO / "golden_prompts" / "smollm2.jsonl", "smollm2")
    chats = [p for p in prompts if p.row.messages is not None]
    assert chats and len(prompts) - len(chats) >= 10 and all(p.row.regex for p in prompts)
    samples = load_calibration(REPO / "golden_prompts" / "smollm2-calibration.jsonl")
    assert any(isinstance(s, tuple) for s in samples) and any(isinstance(s, str) for s in samples)


def test_a_row_is_a_prompt_or_a_chat_not_both(tmp_path: Path) -> None:
    chat = [{"role": "user", "content": "hi"}]
    path = _write(tmp_path / "g.jsonl", [{"id": "a", "messages": chat}, {"id": "b", "prompt": "x", "messages": chat}])
    with pytest.raises(DataError) as info:
        load_golden_suite(path, "g")
    assert "g.jsonl:2:" in str(info.value) and "exactly one of 'prompt'" in str(info.value)
    path = _write(tmp_path / "h.jsonl", [{"id": "a", "messages": [{"role": "wizard", "content": "hi"}]}])
    with pytest.raises(DataError, match=r"h.jsonl:1: at key 'messages.0.role'"):
        load_golden_suite(path, "h")
    path = _write(tmp_path / "e.jsonl", [{"id": "a", "messages": [{"role": "user", "content": " "}]}])
    with pytest.raises(DataError, match=r"e.jsonl.*empty prompt"):
        load_golden_suite(path, "e")


def test_chat_rows_render_with_the_template_or_name_their_line(tiny_model: Path, tmp_path: Path) -> None:
    from gates.models.loader import load_model
    from gates.models.prompts import render_golden

    _, tok = load_model(tiny_model)
    rows = [{"id": "p", "prompt": "plain"}, {"id": "c", "messages": [{"role": "user", "content": "Four score"}]}]
    golden = load_golden_suite(_write(tmp_path / "g.jsonl", rows), "suite.jsonl")
    assert golden[1].row.display == "Four score"
    with pytest.raises(DataError, match=r"^suite.jsonl:2: at key 'messages': the model's tokenizer has no chat"):
        render_golden(tok, golden)  # the tiny model's tokenizer has no chat template
    tok.chat_template = "{% for m in messages %}<s>{{ m.role }}: {{ m.content }}\n{% endfor %}assistant:"
    rendered = render_golden(tok, golden)
    assert rendered[0] == "plain" and rendered[1].endswith("user: Four score\nassistant:")


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"repeats": 5}, r"at key 'repeats': .*repeats > 1 needs 'temperature' > 0"),
        ({"temperature": 0, "repeats": 5}, r"at key 'temperature': Input should be greater than 0"),
        ({"temperature": -0.5}, r"at key 'temperature': Input should be greater than 0"),
        ({"temperature": 0.7, "repeats": 0}, r"at key 'repeats': Input should be greater than or equal to 1"),
        ({"seed": 3}, r"at key 'seed': .*'seed' needs 'temperature' > 0"),
        ({"temperature": 0.7, "seed": -1}, r"at key 'seed': Input should be greater than or equal to 0"),
        ({"temperature": "warm"}, r"at key 'temperature': Input should be a valid number"),
    ],
)
def test_sampling_keys_are_checked_with_file_and_line(tmp_path: Path, extra: dict[str, object], message: str) -> None:
    path = _write(tmp_path / "g.jsonl", [{"id": "a", "prompt": "x"}, "", {"id": "b", "prompt": "y", **extra}])
    with pytest.raises(DataError, match=rf"g\.jsonl:3: {message}") as info:
        load_golden_suite(path, "g")
    assert info.value.exit_code == ExitCode.BAD_INPUT


def test_sampled_rows_and_their_seeds(tmp_path: Path) -> None:
    rows = [
        {"id": "a", "prompt": "x", "regex": "x", "temperature": 0.7, "repeats": 4},
        {"id": "b", "prompt": "y", "regex": "y", "temperature": 0.7, "repeats": 4, "seed": 11},
        {"id": "c", "prompt": "z"},
    ]
    a, b, c = (g.row for g in load_golden_suite(_write(tmp_path / "g.jsonl", rows), "g"))
    assert a.sampled and b.sampled and not c.sampled and c.repeats == 1
    assert a.has_check and not c.has_check
    assert len(set(a.seeds())) == 4 and a.seeds() != b.seeds()
    assert all(0 <= s < 2**31 for s in a.seeds() + b.seeds())
    again = load_golden_suite(_write(tmp_path / "h.jsonl", [rows[1], rows[0]]), "h")  # reordered
    assert again[1].row.seeds() == a.seeds() and again[0].row.seeds() == b.seeds()
    renamed = load_golden_suite(_write(tmp_path / "i.jsonl", [{**rows[1], "id": "other"}]), "i")
    assert renamed[0].row.seeds() == b.seeds()  # an explicit seed, not the id, decides the draws


def test_smollm2_sampled_suite_is_sampled_and_checked() -> None:
    prompts = load_golden_suite(REPO / "golden_prompts" / "smollm2-sampled.jsonl", "s")
    assert len(prompts) >= 8
    assert all(g.row.temperature == 0.7 and g.row.repeats == 5 and g.row.regex for g in prompts)


def test_must_contain_any_is_a_task_check(tmp_path: Path) -> None:
    path = _write(tmp_path / "g.jsonl", [{"id": "a", "prompt": "Capital of France?", "must_contain_any": ["Paris"]}])
    (row,) = load_golden_suite(path, "g")
    assert row.row.must_contain_any == ["Paris"] and row.row.has_check


def test_prompt_character_limit_scales_with_max_prompt_words(tmp_path: Path) -> None:
    """Long-context suites (issue 29): 8,000 characters at the default 1,024 words, more with more."""
    f = tmp_path / "long.jsonl"
    f.write_text(json.dumps({"id": "long", "prompt": "word " * 1800, "must_contain": ["x"]}) + "\n")
    with pytest.raises(DataError, match=r"prompt length outside 1\.\.8593 characters"):  # 8000 × 1100/1024
        load_golden_suite(f, "long.jsonl", max_prompt_words=1100)
    with pytest.raises(DataError, match="prompt longer than 1024 whitespace tokens"):
        load_golden_suite(f, "long.jsonl")
    assert [g.row.id for g in load_golden_suite(f, "long.jsonl", max_prompt_words=5000)] == ["long"]
