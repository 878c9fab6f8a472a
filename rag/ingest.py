"""Files -> paragraphs: decode, find spans, drop boilerplate, de-duplicate, give stable ids.

Offsets are character offsets into the decoded file text. For .txt and .md files
``text == file_text[start:end]``. For .html the visible text of an element is not a slice of the
markup, so ``start``/``end`` span the element's inner markup and ``text`` is what a reader sees.
"""

from __future__ import annotations

import hashlib
import itertools
import re
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path, PurePosixPath

from rag.errors import IngestError
from rag.types import Paragraph

SUPPORTED_SUFFIXES = (".txt", ".md", ".markdown", ".html", ".htm")
MAX_FILE_BYTES = 20_000_000


@dataclass(frozen=True)
class Span:
    start: int
    end: int
    text: str


@dataclass(frozen=True)
class ParsedFile:
    source: str
    title: str
    text: str  # the decoded file text the offsets refer to
    hash: str  # sha256 of the raw bytes
    paragraphs: list[Paragraph]


# --- decoding ---------------------------------------------------------------------------------


def decode(name: str, data: bytes) -> str:
    """Strict UTF-8 (a leading BOM is dropped); binary and empty files are refused by name."""
    if not data.strip():
        raise IngestError(name, "file is empty")
    if len(data) > MAX_FILE_BYTES:
        raise IngestError(name, f"file is larger than {MAX_FILE_BYTES // 1_000_000} MB")
    # The whole file, not its start: a NUL further in would be stored and served back.
    if (nul := data.find(b"\x00")) != -1:
        raise IngestError(name, f"looks like a binary file (NUL byte at offset {nul}), not text")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise IngestError(
            name, f"not valid UTF-8 (byte 0x{data[e.start]:02x} at offset {e.start})"
        ) from None
    text = text.removeprefix("\ufeff")
    controls = sum(
        1 for ch in text[:8192] if unicodedata.category(ch) == "Cc" and ch not in "\n\r\t\f"
    )
    if controls > 0.05 * min(len(text), 8192):
        raise IngestError(name, "looks like a binary file (control characters), not text")
    if not any(ch.isalnum() for ch in text):
        raise IngestError(name, "file has no text")
    return text


# --- paragraph spans per format ---------------------------------------------------------------

_BLANK_LINES = re.compile(r"\n[ \t\r\f\v]*\n")
_LINE_BREAK = re.compile(r"\r?\n")
# A line that ends one of these is complete: the next line starts something new.
_CLOSES = frozenset(".!?:;\"”’'»)]…")
# Widths text is wrapped at (e-mail and plain-text conventions are 60-80 columns).
_WRAP_MIN, _WRAP_MAX = 40, 120
# A line that ends with one of these runs on into the next one.
_RUNS_ON = frozenset(",-–—(‘“«/&")


def _trimmed(text: str, start: int, end: int) -> Span | None:
    chunk = text[start:end]
    lead = len(chunk) - len(chunk.lstrip())
    trail = len(chunk) - len(chunk.rstrip())
    s, e = start + lead, end - trail
    return Span(s, e, text[s:e]) if e > s else None


def _split(text: str, sep: re.Pattern[str], start: int, end: int) -> list[Span]:
    spans: list[Span] = []
    pos = start
    for m in sep.finditer(text, start, end):
        if (span := _trimmed(text, pos, m.start())) is not None:
            spans.append(span)
        pos = m.end()
    if (span := _trimmed(text, pos, end)) is not None:
        spans.append(span)
    return spans


def is_wrapped(lines: list[str]) -> bool:
    """Whether a block's line breaks are soft wraps (one paragraph) rather than paragraph ends.

    Text saved from a page often puts one paragraph on each line; text wrapped at a fixed width
    cuts lines mid-sentence. A break is soft when the next line continues the sentence (it starts
    in lower case, or this line ends in a comma or hyphen) or when this line stops short of the
    block's width without closing a sentence. The block is wrapped when most breaks are soft.
    """
    lines = [line.strip() for line in lines if line.strip()]
    if len(lines) < 2:
        return False
    width = max(len(line) for line in lines)
    soft = 0
    for line, following in itertools.pairwise(lines):
        continues = following[0].islower() or line[-1] in _RUNS_ON
        cut_at_width = (
            line[-1] not in _CLOSES and len(line) >= 0.7 * width and _WRAP_MIN <= width <= _WRAP_MAX
        )
        soft += continues or cut_at_width
    return soft * 2 > len(lines) - 1


def text_blocks(text: str) -> list[Span]:
    """Paragraph spans of plain text.

    Blocks are separated by blank lines; inside a block, a line break ends a paragraph unless the
    block reads as text wrapped at a fixed width (``is_wrapped``), whose lines are joined.
    """
    spans: list[Span] = []
    for block in _split(text, _BLANK_LINES, 0, len(text)):
        lines = _split(text, _LINE_BREAK, block.start, block.end)
        if len(lines) > 1 and not is_wrapped([line.text for line in lines]):
            spans.extend(lines)
        else:
            spans.append(block)
    return spans


_TITLE_MAX_CHARS = 200


def _is_title_line(line: str) -> bool:
    """A headline: short, and not a sentence (news headlines carry no closing full stop)."""
    line = line.strip()
    return 0 < len(line) <= _TITLE_MAX_CHARS and line[-1] not in ".!?;,:"


def parse_text(text: str) -> tuple[str, list[Span]]:
    """Plain text: a first line that reads as a headline is the title; the rest are paragraphs.

    A file that is one line, or whose first line is a sentence, has no title line: all of it is
    content (the caller names it after the file).
    """
    blocks = text_blocks(text)
    first = blocks[0]
    if len(blocks) == 1 and "\n" not in first.text:
        return "", blocks  # a short note is content, not a title
    line_end = first.text.find("\n")
    head = first.text if line_end == -1 else first.text[:line_end]
    if not _is_title_line(head):
        return "", blocks
    if line_end == -1:
        return head.strip(), blocks[1:]
    rest = _trimmed(text, first.start + line_end + 1, first.end)
    return head.strip(), ([rest] if rest else []) + blocks[1:]


_MD_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+(.*?)\s*#*\s*$")
_MD_FENCE = re.compile(r"^\s{0,3}(```|~~~)")


def parse_markdown(text: str) -> tuple[str, list[Span]]:
    """Markdown: title from the first heading (else the first line); headings are not paragraphs."""
    title = ""
    spans: list[Span] = []
    for block in text_blocks(text):
        lines = block.text.split("\n")
        heading = _MD_HEADING.match(lines[0])
        if heading and not _MD_FENCE.match(lines[0]):
            title = title or heading.group(1).strip()
            if len(lines) == 1:
                continue
            rest = _trimmed(text, block.start + len(lines[0]) + 1, block.end)
            if rest:
                spans.append(rest)
            continue
        if _MD_HEADING.match(block.text) is None and re.fullmatch(r"[-*_=\s]{3,}", block.text):
            continue  # horizontal rule
        spans.append(block)
    if not title:
        title, spans = (spans[0].text.split("\n")[0].strip(), spans[1:]) if spans else ("", [])
    return title, spans


_HTML_BLOCKS = {"p", "li", "blockquote", "pre", "td", "th", "dd", "dt", "figcaption"}
_HTML_HEADINGS = {"h1", "h2", "h3", "h4", "h5", "h6"}
_HTML_SKIP = {
    "script",
    "style",
    "nav",
    "header",
    "footer",
    "aside",
    "form",
    "noscript",
    "svg",
    "template",
}


class _HTMLParagraphs(HTMLParser):
    """Collects the visible text of block elements with the span of their inner markup."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self._line_starts = [0] + [m.end() for m in re.finditer(r"\n", text)]
        self.title = ""
        self.h1 = ""
        self.spans: list[Span] = []
        self._skip = 0
        self._in_title = False
        self._block: str | None = None
        self._block_start = 0
        self._parts: list[str] = []

    def _offset(self) -> int:
        line, col = self.getpos()
        return self._line_starts[line - 1] + col

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _HTML_SKIP:
            self._skip += 1
        elif tag == "title":
            self._in_title = True
        elif (
            (tag in _HTML_BLOCKS or tag in _HTML_HEADINGS)
            and self._block is None
            and not self._skip
        ):
            self._block = tag
            self._block_start = self._offset() + len(self.get_starttag_text() or "")
            self._parts = []
        elif tag == "br" and self._block is not None:
            self._parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in _HTML_SKIP and self._skip:
            self._skip -= 1
        elif tag == "title":
            self._in_title = False
        elif tag == self._block:
            visible = re.sub(r"[ \t\r\f\v]+", " ", "".join(self._parts)).strip()
            visible = re.sub(r"\s*\n\s*", "\n", visible)
            if visible:
                if tag in _HTML_HEADINGS:
                    if tag == "h1" and not self.h1:
                        self.h1 = visible
                else:
                    self.spans.append(Span(self._block_start, self._offset(), visible))
            self._block = None

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title += data
        elif self._block is not None and not self._skip:
            self._parts.append(data)


def parse_html(text: str) -> tuple[str, list[Span]]:
    parser = _HTMLParagraphs(text)
    parser.feed(text)
    parser.close()
    title = parser.h1 or re.sub(r"\s+", " ", parser.title).strip()
    return title, parser.spans


# --- boilerplate and duplicates ---------------------------------------------------------------

_NAV = re.compile(
    r"(?:[<>«»←→]\s*)?(?:next|previous|prev|back|back to top|top|more|read more|continue reading|"
    r"share|share this|share this article|advertisement|advert|sponsored|subscribe|sign up|"
    r"skip to content|skip to main content|related|related articles|read next|see also|menu|"
    r"home|print|email|comments?)(?:\s*(?:article|story|page))?\s*[.:]?(?:\s*[<>«»←→])?",
    re.IGNORECASE,
)
_LEAD_IN = re.compile(
    r"(?:read next|read more|see also|related|more on this|also read)\s*[:|\-–—]", re.I
)
_CREDIT = re.compile(
    r"(?:photo|image|picture|foto|credit|photograph|illustration|video)s?\s*(?:by|:|credit:?)",
    re.IGNORECASE,
)
_AGENCY = re.compile(
    r"(?:AFP|AP|Reuters|EFE|Getty Images|Shutterstock|Xinhua|ANDINA)\b.{0,30}", re.I
)


# Markdown's own markup, read past when judging what a paragraph says: "**Read more:**
# [Budget](budget.md)" is a teaser like "Read more: Budget", and a line that is only an image
# ("![Rendering](bridge.png)") says nothing.
_MD_IMAGE = re.compile(r"!\[[^\]]*\]\([^)]*\)")
_MD_LINK = re.compile(r"\[([^\]]*)\]\([^)]*\)")
_MD_EMPHASIS = re.compile(r"(?<!\w)[*_]{1,3}|[*_]{1,3}(?!\w)")
# "Subscribe to our newsletter", "Sign up for breaking news alerts": an offer, not content.
_SIGN_UP = re.compile(
    r"(?:subscribe|sign up|sign-up|register)\b.{0,80}\b(?:newsletters?|alerts|updates|emails?)\b",
    re.IGNORECASE,
)


def _as_read(text: str) -> str:
    """Text with markdown's image, link and emphasis markup taken out."""
    return _MD_EMPHASIS.sub("", _MD_LINK.sub(r"\1", _MD_IMAGE.sub("", text))).strip()


def is_boilerplate(text: str) -> bool:
    """Navigation, photo credits, newsletter offers and 'read next' teasers: not content a
    question can be about."""
    t = _as_read(text)
    if len(t) <= 160 and _SIGN_UP.match(t):
        return True
    if not any(ch.isalnum() for ch in t):
        return True
    if _NAV.fullmatch(t):
        return True
    if len(t) <= 200 and _LEAD_IN.match(t):
        return True
    inner = t[1:-1].strip()
    if (
        t.startswith("(")
        and t.endswith(")")
        and len(inner.split()) <= 6
        and not inner.endswith(".")
    ):
        return True  # a lone parenthesised credit, e.g. "(José Jerí/X)"
    if len(t) <= 100 and _CREDIT.match(t):
        return True
    return len(t) <= 40 and _AGENCY.fullmatch(t) is not None


def _is_teaser_label(text: str) -> bool:
    return (
        re.fullmatch(
            r"(?:read next|read more|related|more stories|see also)\s*:?", text.strip(), re.I
        )
        is not None
    )


def _is_headline(text: str) -> bool:
    """Short, one line, and no closing sentence punctuation: a headline, not a paragraph."""
    t = text.strip()
    return "\n" not in t and len(t) <= 160 and t[-1] not in ".!?…" and len(t.split()) >= 2


_QUOTES = str.maketrans({"’": "'", "‘": "'", "“": '"', "”": '"', "«": '"', "»": '"'})


def normalise(text: str) -> str:
    """The form used to spot the same paragraph twice: case, accents, quotes, spacing ignored."""
    folded = unicodedata.normalize("NFKD", text.casefold().translate(_QUOTES))
    folded = "".join(ch for ch in folded if not unicodedata.combining(ch))
    return re.sub(r"\s+", " ", folded).strip()


def clean_spans(spans: list[Span]) -> list[Span]:
    """Drop boilerplate, and the headlines of other stories that trail a navigation link.

    A page saved as text often ends "Next / Next / <headline of another story>" or
    "Read next: / <headline>": once a navigation line has been seen, headlines that run to the
    end of the document belong to other stories.
    """
    kept: list[Span] = []
    after_nav = False
    for i, span in enumerate(spans):
        if _is_teaser_label(span.text) or _NAV.fullmatch(span.text.strip()):
            after_nav = True
            continue
        if is_boilerplate(span.text):
            continue
        # Only after a navigation line, and all() stops at the first paragraph of content: a long
        # file is not rescanned (or copied) to its end for every paragraph.
        if after_nav and all(
            _is_headline(s.text) or is_boilerplate(s.text) for s in itertools.islice(spans, i, None)
        ):
            continue
        after_nav = False
        kept.append(span)
    return kept


def sha256(data: bytes | str) -> str:
    raw = data.encode("utf-8") if isinstance(data, str) else data
    return hashlib.sha256(raw).hexdigest()


def paragraph_id(source: str, text: str) -> str:
    """Stable across re-ingest and reordering: the source and the paragraph's normalised text."""
    return hashlib.sha1(f"{source}\x00{normalise(text)}".encode()).hexdigest()[:16]


def to_paragraphs(source: str, title: str, spans: Iterable[Span]) -> list[Paragraph]:
    seen: set[str] = set()
    out: list[Paragraph] = []
    for span in spans:
        key = normalise(span.text)
        if key in seen:
            continue  # a repeated lead paragraph, a syndicated duplicate: keep the first
        seen.add(key)
        out.append(
            Paragraph(
                id=paragraph_id(source, span.text),
                source=source,
                title=title,
                index=len(out),
                start=span.start,
                end=span.end,
                text=span.text,
                hash=sha256(span.text),
            )
        )
    return out


# --- entry points -----------------------------------------------------------------------------


def check_source_name(name: str) -> str:
    """A source id is a relative posix path inside the sources folder: not absolute, no '..'."""
    if not name or "\x00" in name or "\\" in name:
        raise IngestError(name or "(empty name)", "invalid file name")
    path = PurePosixPath(name)
    if path.is_absolute() or any(part in ("..", ".", "") for part in path.parts):
        raise IngestError(
            name, "file name must be a plain relative name (no '..' or absolute path)"
        )
    if path.suffix.lower() not in SUPPORTED_SUFFIXES:
        raise IngestError(
            name, f"unsupported file type; use one of {', '.join(SUPPORTED_SUFFIXES)}"
        )
    return str(path)


def parse_file(source: str, data: bytes) -> ParsedFile:
    source = check_source_name(source)
    text = decode(source, data)
    suffix = PurePosixPath(source).suffix.lower()
    if suffix in (".html", ".htm"):
        title, spans = parse_html(text)
    elif suffix in (".md", ".markdown"):
        title, spans = parse_markdown(text)
    else:
        title, spans = parse_text(text)
    title = title or PurePosixPath(source).stem
    paragraphs = to_paragraphs(source, title, clean_spans(spans))
    if not paragraphs:
        raise IngestError(source, "no paragraphs of content found")
    # What is stored depends on the file and on how it was read: after a change in the reading
    # rules (one more kind of boilerplate dropped) a file whose bytes did not change is
    # re-indexed too, not left with the paragraphs the old rules made.
    read = "\n".join(f"{p.id} {p.start} {p.end}" for p in paragraphs)
    return ParsedFile(
        source=source, title=title, text=text, hash=sha256(sha256(data) + read),
        paragraphs=paragraphs,
    )


def find_files(root: Path) -> Iterator[tuple[str, Path]]:
    """(source id, path) for every supported file under root, sorted; hidden files are skipped."""
    if root.is_file():
        yield root.name, root
        return
    if not root.is_dir():
        raise IngestError(str(root), "no such file or folder")
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if any(part.startswith(".") for part in rel.parts):
            continue
        if path.is_file() and path.suffix.lower() in SUPPORTED_SUFFIXES:
            yield rel.as_posix(), path
