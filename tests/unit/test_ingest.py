"""Files -> paragraphs: what is kept, what is dropped, and the offsets that make citations exact."""

from __future__ import annotations

from pathlib import Path

import pytest

from rag.errors import IngestError
from rag.ingest import find_files, is_boilerplate, parse_file

ROOT = Path(__file__).resolve().parents[2]
SEEDS = ROOT / "seeds"
STANDINS = ROOT / "tests" / "data" / "standin_seeds" / "articles"
SEED_0 = "000_bab5d49e54810767.txt"  # one paragraph per line, repeated lead paragraph
SEED_1 = "001_b162a8e02d0cef5d.txt"  # blank-line paragraphs, photo credit, "Next" + teaser


def parse_seed(name: str, folder: Path = SEEDS):
    return parse_file(name, (folder / name).read_bytes())


def test_first_line_of_a_text_article_is_its_title_not_a_paragraph() -> None:
    parsed = parse_seed(SEED_0)
    assert parsed.title == "Peru Severs Ties With Mexico As Political Standoff Deepens"
    assert all(p.text != parsed.title for p in parsed.paragraphs)


@pytest.mark.parametrize(
    ("name", "folder"),
    [(SEED_0, SEEDS), (SEED_1, SEEDS), (SEED_1, STANDINS), ("002_d0d88c523f641a2b.txt", STANDINS)],
)
def test_every_paragraph_is_exactly_its_slice_of_the_file(name: str, folder: Path) -> None:
    parsed = parse_seed(name, folder)
    for p in parsed.paragraphs:
        assert parsed.text[p.start : p.end] == p.text
        assert p.source == name and p.title == parsed.title


def test_a_text_with_one_paragraph_per_line_is_split_per_line() -> None:
    parsed = parse_seed(SEED_0)
    assert len(parsed.paragraphs) == 12
    assert all("\n" not in p.text for p in parsed.paragraphs)
    assert parsed.paragraphs[-1].text.startswith("On Monday, De Zela did not say")


def test_repeated_lead_paragraph_is_stored_once() -> None:
    parsed = parse_seed(SEED_0)
    leads = [p for p in parsed.paragraphs if p.text.startswith("Peru broke off diplomatic")]
    assert len(leads) == 1
    assert parsed.text.count(leads[0].text) == 2  # the file really does repeat it


def test_navigation_photo_credits_and_trailing_teasers_are_dropped() -> None:
    texts = [p.text for p in parse_seed(SEED_1).paragraphs]
    assert len(texts) == 7
    assert not any("Next" in t.split() for t in texts)
    assert not any("José Jerí/X" in t for t in texts)
    assert "Peru Has a New President" not in texts  # another story's headline after "Next"
    standin = [p.text for p in parse_seed(SEED_1, STANDINS).paragraphs]
    assert "Next" not in standin and not any(t.startswith("Read next") for t in standin)
    assert "Photo: AFP" not in [
        p.text for p in parse_seed("002_d0d88c523f641a2b.txt", STANDINS).paragraphs
    ]


def test_paragraph_indexes_are_consecutive_and_ids_stable() -> None:
    a, b = parse_seed(SEED_0), parse_seed(SEED_0)
    assert [p.index for p in a.paragraphs] == list(range(len(a.paragraphs)))
    assert [p.id for p in a.paragraphs] == [p.id for p in b.paragraphs]
    assert len({p.id for p in a.paragraphs}) == len(a.paragraphs)


# The rules above on text that is not the seeds: other topics, other layouts.

WRAPPED = """The Voyage Out

The ship left the harbour at dawn, carrying some two hundred passengers and a
cargo of wool bound for the northern ports. Nobody aboard expected the weather
to turn so quickly, and by noon the captain had ordered the sails reefed.

By evening the sea had calmed again. The passengers came up on deck, and the
cook served a supper of bread and salted fish to anyone who could eat.
"""

PER_LINE = """Village Library Reopens After Flood Repairs
The library on Mill Street reopened on Saturday after eight months of repairs.
Volunteers moved 12,000 books back onto the shelves in a single weekend.
"It feels like the heart of the village is beating again," said the head librarian.
The council paid for new wiring; a local bakery paid for the children's corner.
"""


def test_text_wrapped_at_a_fixed_width_keeps_its_paragraphs_whole() -> None:
    parsed = parse_file("voyage.txt", WRAPPED.encode())
    assert parsed.title == "The Voyage Out"
    assert len(parsed.paragraphs) == 2
    assert (
        parsed.paragraphs[0].text.startswith("The ship left")
        and "reefed." in parsed.paragraphs[0].text
    )


def test_a_page_saved_with_one_paragraph_per_line_on_another_topic_is_split() -> None:
    parsed = parse_file("library.txt", PER_LINE.encode())
    assert parsed.title == "Village Library Reopens After Flood Repairs"
    assert [p.text[:12] for p in parsed.paragraphs] == [
        "The library ",
        "Volunteers m",
        '"It feels li',
        "The council ",
    ]


def test_headlines_of_other_stories_after_a_next_link_are_dropped_elsewhere_too() -> None:
    page = (
        "Bridge Closed For Repairs\n\nThe old bridge will close for six weeks from Monday.\n\n"
        "Drivers are asked to use the ring road.\n\nPrevious\nNext\n\n"
        "Council Approves New Budget\nSchool Term Starts Early\n"
    )
    texts = [p.text for p in parse_file("bridge.txt", page.encode()).paragraphs]
    assert texts == [
        "The old bridge will close for six weeks from Monday.",
        "Drivers are asked to use the ring road.",
    ]


def test_a_headline_in_the_middle_of_an_article_is_kept() -> None:
    page = "Title Here\n\nNext\n\nA Subheading Of The Story\n\nThe story goes on here.\n"
    texts = [p.text for p in parse_file("mid.txt", page.encode()).paragraphs]
    assert texts == ["A Subheading Of The Story", "The story goes on here."]


def test_a_one_line_note_is_a_source_named_after_its_file() -> None:
    parsed = parse_file("note.txt", b"The boiler was serviced on 4 March 2024.\n")
    assert parsed.title == "note"
    assert [p.text for p in parsed.paragraphs] == ["The boiler was serviced on 4 March 2024."]


def test_a_text_whose_first_line_is_a_sentence_has_no_title_line() -> None:
    parsed = parse_file("memo.txt", b"Rents rose by 4% this year.\n\nThey fell the year before.\n")
    assert parsed.title == "memo"
    assert len(parsed.paragraphs) == 2


def test_curly_and_straight_quotes_make_the_same_paragraph() -> None:
    text = 'Notes\n\nThe mayor’s “plan” was approved.\n\nThe mayor\'s "plan" was approved.\n'
    parsed = parse_file("quotes.txt", text.encode())
    assert len(parsed.paragraphs) == 1


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
        "**Read more:** [The budget explained](budget.md)",
        "![Rendering of the new bridge](bridge.png)",
        "*Subscribe to the Ledger newsletter for weekly city news.*",
        "Sign up for breaking news alerts",
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
        "*The council voted 7-2 on Tuesday.*",
        "Subscribers to the service will pay more from May, the company said.",
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
