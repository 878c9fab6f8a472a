"""Files -> paragraphs: what is kept, what is dropped, and the offsets that make citations exact."""

from __future__ import annotations

from pathlib import Path

import pytest

from rag.errors import IngestError
from rag.ingest import find_files, is_boilerplate, parse_file

SEEDS = Path(__file__).resolve().parents[2] / "seeds"
SEED_1 = "001_b162a8e02d0cef5d.txt"


def parse_seed(name: str):
    return parse_file(name, (SEEDS / name).read_bytes())


def test_first_line_of_a_text_article_is_its_title_not_a_paragraph() -> None:
    parsed = parse_seed(SEED_1)
    assert parsed.title.startswith("Peru breaks off diplomatic relations with Mexico")
    assert all(p.text != parsed.title for p in parsed.paragraphs)


@pytest.mark.parametrize("name", [SEED_1, "002_d0d88c523f641a2b.txt"])
def test_every_paragraph_is_exactly_its_slice_of_the_file(name: str) -> None:
    parsed = parse_seed(name)
    for p in parsed.paragraphs:
        assert parsed.text[p.start : p.end] == p.text
        assert p.source == name and p.title == parsed.title


def test_repeated_lead_paragraph_is_stored_once() -> None:
    parsed = parse_seed(SEED_1)
    leads = [p for p in parsed.paragraphs if p.text.startswith("Peru's government said on Monday")]
    assert len(leads) == 1
    assert parsed.text.count(leads[0].text) == 2  # the file really does repeat it


def test_navigation_photo_credits_and_read_next_teasers_are_dropped() -> None:
    texts = [p.text for p in parse_seed(SEED_1).paragraphs]
    assert "Next" not in texts
    assert "(José Jerí/X)" not in texts
    assert not any(t.startswith("Read next") for t in texts)
    assert not any(
        t == "Photo: AFP"
        for t in (p.text for p in parse_seed("002_d0d88c523f641a2b.txt").paragraphs)
    )


def test_paragraph_indexes_are_consecutive_and_ids_stable() -> None:
    a, b = parse_seed(SEED_1), parse_seed(SEED_1)
    assert [p.index for p in a.paragraphs] == list(range(len(a.paragraphs)))
    assert [p.id for p in a.paragraphs] == [p.id for p in b.paragraphs]
    assert len({p.id for p in a.paragraphs}) == len(a.paragraphs)


@pytest.mark.parametrize(
    "text",
    [
        "Next",
        "« Previous",
        "Read more",
        "(Photo: Reuters)",
        "Photo: AFP",
        "Read next: Castillo verdict expected",
        "***",
        "Advertisement",
    ],
)
def test_boilerplate_patterns(text: str) -> None:
    assert is_boilerplate(text)


@pytest.mark.parametrize(
    "text",
    [
        "Next week the court will rule on the appeal.",
        "(The court, which sat for nine hours, adjourned.)",
        "Chávez denied the charges.",
    ],
)
def test_content_is_not_boilerplate(text: str) -> None:
    assert not is_boilerplate(text)


def test_markdown_headings_give_the_title_and_are_not_paragraphs() -> None:
    md = (
        "# Storm hits coast\n\nThe storm arrived on **Tuesday**.\n\n## Damage\n\nRoofs were lost.\n"
    )
    parsed = parse_file("storm.md", md.encode())
    assert parsed.title == "Storm hits coast"
    assert [p.text for p in parsed.paragraphs] == [
        "The storm arrived on **Tuesday**.",
        "Roofs were lost.",
    ]
    for p in parsed.paragraphs:
        assert parsed.text[p.start : p.end] == p.text


def test_html_paragraphs_keep_visible_text_and_point_into_the_markup() -> None:
    html = (
        "<html><head><title>T</title><script>var x=1;</script></head><body><nav><p>Home</p></nav>"
        "<h1>Flood warning</h1><p>The river rose <b>two metres</b> &amp; kept rising.</p>"
        "<p>Next</p><footer><p>Copyright</p></footer></body></html>"
    )
    parsed = parse_file("flood.html", html.encode())
    assert parsed.title == "Flood warning"
    assert [p.text for p in parsed.paragraphs] == ["The river rose two metres & kept rising."]
    p = parsed.paragraphs[0]
    assert parsed.text[p.start : p.end] == "The river rose <b>two metres</b> &amp; kept rising."


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "empty"),
        (b"   \n\n ", "empty"),
        (b"caf\xe9 au lait\n\nmore", "not valid UTF-8"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "binary"),
    ],
)
def test_bad_files_are_refused_with_a_message_naming_the_file(data: bytes, reason: str) -> None:
    with pytest.raises(IngestError) as e:
        parse_file("bad.txt", data)
    assert "bad.txt" in str(e.value) and reason in str(e.value)


@pytest.mark.parametrize(
    "name", ["../etc/passwd.txt", "/abs/file.txt", "a/../../b.txt", "x.exe", "nul\x00.txt"]
)
def test_source_names_cannot_escape_the_sources_folder(name: str) -> None:
    with pytest.raises(IngestError):
        parse_file(name, b"Title\n\nSome text here.")


def test_find_files_lists_supported_files_sorted_and_skips_hidden(tmp_path: Path) -> None:
    (tmp_path / "b.md").write_text("# B\n\nb")
    (tmp_path / "a.txt").write_text("A\n\na")
    (tmp_path / ".hidden.txt").write_text("H\n\nh")
    (tmp_path / "image.png").write_bytes(b"\x89PNG")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "c.html").write_text("<p>c</p>")
    assert [s for s, _ in find_files(tmp_path)] == ["a.txt", "b.md", "sub/c.html"]
