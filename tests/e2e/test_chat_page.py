"""The chat page in real headless Chromium (Debian's /usr/bin/chromium) through Playwright,
against a real uvicorn server, the real pipeline and the bundled model."""

from __future__ import annotations

import json
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
SEEDS = Path(__file__).resolve().parents[2] / "seeds"
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ANSWER_TIMEOUT_MS = 120_000

# A source whose text is markup: it must be shown as text and never run.
HOSTILE_NAME = "zorblax_festival.txt"
HOSTILE = (
    "Zorblax festival report\n\n"
    "The Zorblax lantern festival in Quentaria drew 40,000 visitors this year, organisers said. "
    "<script>window.__pwned=1</script> The parade banner read "
    '<img src=x onerror="window.__pwned=2"> '
    "in large letters.\n\n"
    "The Zorblax festival is held every June on the shore of Lake Quentaria.\n"
)

# A paragraph far longer than the citation panel, its one fact at the very end.
LONG_NAME = "quentaria_lighthouse.txt"
LONG = (
    "Quentaria lighthouse history\n\n"
    + "The harbour board of Quentaria met every spring to review the accounts of the port. " * 60
    + "The Quentaria lighthouse keeper, Ilse Varnholt, retired in 1987 after 41 years of service."
    + "\n"
)
# Two sources with one title: the citation list must tell them apart.
TWIN_TITLE = "Harbour report"
TWINS = {
    "harbour_north.txt": f"{TWIN_TITLE}\n\nThe north harbour of Vellmar reopened on 4 May 2024.\n",
    "harbour_south.txt": f"{TWIN_TITLE}\n\nThe south harbour of Vellmar closed on 9 June 2024.\n",
}

if not CHROMIUM.exists():
    pytest.skip(f"{CHROMIUM} is missing: apt-get install chromium", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is missing")


class Server:
    """uvicorn in a background thread on a socket bound first (no port race)."""

    def __init__(self, app: Any) -> None:
        import uvicorn

        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True
        )

    def __enter__(self) -> Server:
        self.thread.start()
        deadline = time.monotonic() + 60
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(15)
        self.sock.close()


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """Seeds plus the hostile source, in this module's own data folder."""
    from rag.config import Settings
    from rag.wiring import build_pipeline

    sources = tmp_path_factory.mktemp("page-sources")  # uploads are written here
    shutil.copytree(SEEDS, sources, dirs_exist_ok=True)
    settings = Settings(data_dir=tmp_path_factory.mktemp("page-data"), sources_dir=sources)
    p = build_pipeline(settings)
    p.ingest(sources)
    p.add_file(HOSTILE_NAME, HOSTILE.encode())
    p.add_file(LONG_NAME, LONG.encode())
    for name, text in TWINS.items():
        p.add_file(name, text.encode())
    return p


@pytest.fixture(scope="module")
def server(pipeline: Any) -> Iterator[Server]:
    from api import create_app

    with Server(create_app(pipeline)) as s:
        yield s


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.errors = errors
    try:
        yield pg
    finally:
        context.close()


def ask(page: Any, question: str) -> Any:
    """Type, press Enter, wait for the verified answer (the draft class goes away)."""
    box = page.get_by_label("Your question")
    box.fill(question)
    box.press("Enter")
    answer = page.locator("article.msg.bot").last
    sync_api.expect(answer).not_to_have_class("msg bot draft", timeout=ANSWER_TIMEOUT_MS)
    sync_api.expect(answer).not_to_have_attribute("aria-busy", "true", timeout=ANSWER_TIMEOUT_MS)
    return answer


def test_ask_then_open_the_cited_paragraph(server: Server, page: Any) -> None:
    page.goto(server.url)
    answer = ask(page, "What prison sentence are prosecutors seeking for Betssy Chávez?")
    assert answer.get_attribute("class") == "msg bot", answer.inner_text()  # not error/abstained

    answer.get_by_role("button", name="Open citation 1:").first.click()
    panel = page.locator("#panel")
    sync_api.expect(panel).to_be_visible()
    sync_api.expect(panel.locator("#panel-text")).to_contain_text("twenty-five years")
    sync_api.expect(panel.locator("#panel-text mark")).to_have_count(1)
    sync_api.expect(panel.locator("#panel-related")).to_be_hidden()  # it supports the answer
    assert panel.locator("#panel-file").inner_text() == "001_b162a8e02d0cef5d.txt"
    href = panel.get_by_role("link", name="Read the whole source").get_attribute("href")
    assert href == "/api/sources/001_b162a8e02d0cef5d.txt/text"

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "chat_page.png"), full_page=True)
    # Phone width: the panel becomes a bottom sheet and the page must stay readable.
    page.set_viewport_size({"width": 375, "height": 760})
    page.screenshot(path=str(ARTIFACTS / "chat_page_375.png"))
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    assert page.errors == []

    # The keyboard closes the panel and the whole source link serves the text.
    page.keyboard.press("Escape")
    sync_api.expect(panel).to_be_hidden()
    text = page.request.get(server.url + href)
    assert text.ok and "twenty-five years" in text.text()


def test_markup_in_sources_is_shown_as_text_and_never_runs(server: Server, page: Any) -> None:
    page.goto(server.url)
    answer = ask(page, "How many visitors did the Zorblax lantern festival draw?")
    buttons = answer.locator("button.cite")
    assert buttons.count() > 0, answer.inner_text()
    buttons.first.click()
    panel_text = page.locator("#panel-text")
    sync_api.expect(panel_text).to_contain_text("<script>window.__pwned=1</script>")
    sync_api.expect(panel_text).to_contain_text('<img src=x onerror="window.__pwned=2">')
    assert page.locator("#panel-text img, #log img, #log script").count() == 0
    time.sleep(0.5)  # an <img onerror> would have fired by now
    assert page.evaluate("typeof window.__pwned") == "undefined"
    assert page.errors == []
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "chat_page_markup.png"))


def test_page_asks_for_the_api_key_and_keeps_history_for_follow_ups(
    pipeline: Any, page: Any
) -> None:
    from api import create_app
    from rag.config import APISettings

    key = "page-test-key"
    settings = pipeline.settings.model_copy(update={"api": APISettings(api_key=key)})
    with Server(create_app(pipeline, settings)) as keyed:
        sent: list[dict[str, Any]] = []
        page.on(
            "request",
            lambda r: (
                sent.append({"auth": r.headers.get("authorization"), "body": r.post_data_json})
                if r.url.endswith("/api/chat")
                else None
            ),
        )
        page.goto(keyed.url)  # the page itself needs no key
        page.get_by_label("Your question").fill("Who is Betssy Chávez?")
        page.get_by_label("Your question").press("Enter")
        key_box = page.get_by_label("This server needs an API key", exact=False)
        sync_api.expect(key_box).to_be_visible(timeout=ANSWER_TIMEOUT_MS)
        key_box.fill(key)
        key_box.press("Enter")  # the refused question is sent again, with the key
        answer = page.locator("article.msg.bot").last
        sync_api.expect(answer).not_to_have_attribute(
            "aria-busy", "true", timeout=ANSWER_TIMEOUT_MS
        )
        assert page.locator("article.msg.user").count() == 1  # the refused attempt was replaced
        assert "error" not in (answer.get_attribute("class") or ""), answer.inner_text()

        ask(page, "What sentence are prosecutors seeking for her?")
        assert [s["auth"] for s in sent] == [None, f"Bearer {key}", f"Bearer {key}"]
        follow_up = sent[-1]["body"]["messages"]
        assert [m["role"] for m in follow_up] == ["user", "assistant", "user"]
        assert follow_up[0]["content"] == "Who is Betssy Chávez?"

        page.get_by_role("button", name="Clear").click()
        assert page.locator("article.msg").count() == 0


def test_errors_are_shown_in_words(server: Server, page: Any) -> None:
    page.goto(server.url)
    box = page.get_by_label("Your question")
    problems = page.locator("article.msg.error")

    page.route("**/api/chat", lambda route: route.abort("connectionrefused"))
    box.fill("Anyone there?")
    box.press("Enter")
    sync_api.expect(problems.last).to_contain_text("Could not reach the server")

    page.unroute("**/api/chat")
    page.route(
        "**/api/chat",
        lambda route: route.fulfill(
            status=429,
            headers={"Retry-After": "3", "Content-Type": "application/json"},
            body='{"error": "the model is busy; try again shortly"}',
        ),
    )
    box.fill("And now?")
    box.press("Enter")
    sync_api.expect(problems.last).to_contain_text("Try again in 3 seconds")

    page.unroute("**/api/chat")
    box.fill("   ")  # whitespace never leaves the page
    box.press("Enter")
    assert problems.count() == 2 and page.errors == []


# Records every text the answer bodies show, as it changes (tokens arrive between polls).
WATCH_BODIES = """
window.__seen = [];
new MutationObserver(() => {
  document.querySelectorAll("article.msg.bot").forEach((box, i) => {
    const body = box.querySelector(".body");
    if (body) window.__seen.push([i, body.textContent]);
  });
}).observe(document.getElementById("log"), {childList: true, subtree: true, characterData: true});
"""

# Questions whose streamed drafts were replaced by the checked answer before issue 14.
DRAFT_REPLACED = [
    "Why did Peru break off diplomatic relations with Mexico?",
    "What sentence does Castillo face?",
    "Who expelled the Mexican ambassador?",
]


def test_answer_area_never_shows_text_the_final_answer_lacks(server: Server, page: Any) -> None:
    page.goto(server.url)
    page.evaluate(WATCH_BODIES)
    finals = []
    for question in DRAFT_REPLACED:
        finals.append(ask(page, question).locator(".body").text_content())
    seen = page.evaluate("window.__seen")
    assert seen, "the observer saw nothing: the test proves nothing"
    shown_before_final = [(i, text) for i, text in seen if text and text != finals[i]]
    for i, text in seen:
        assert finals[i].startswith(text), (DRAFT_REPLACED[i], text, finals[i])
    print(f"\n{len(shown_before_final)} partial texts shown, all the start of the final answer")
    assert page.errors == []


def test_citation_panel_scrolls_the_highlighted_sentence_into_view(
    server: Server, page: Any
) -> None:
    page.goto(server.url)
    answer = ask(page, "When did the Quentaria lighthouse keeper retire?")
    button = answer.locator("button.cite").first
    assert button.count(), answer.inner_text()
    button.click()
    panel = page.locator("#panel")
    mark = panel.locator("#panel-text mark")
    sync_api.expect(mark).to_contain_text("1987")
    panel_box, mark_box = panel.bounding_box(), mark.bounding_box()
    assert panel.evaluate("p => p.scrollHeight > p.clientHeight")  # the paragraph overflows
    assert panel_box["y"] <= mark_box["y"], (panel_box, mark_box)
    assert mark_box["y"] + mark_box["height"] <= panel_box["y"] + panel_box["height"]
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "chat_page_long_paragraph.png"))


def test_sources_with_the_same_title_are_told_apart(server: Server, page: Any) -> None:
    # The pipeline picks one sentence per part of a question, so no seed question reliably
    # cites both twins; the answer is built here from their real paragraphs (served by the
    # API) and handed to the real page as the stream's final event.
    citations = []
    for n, name in enumerate(TWINS, 1):
        detail = page.request.get(f"{server.url}/api/sources/{name}").json()
        para = detail["paragraphs"][0]
        citations.append(
            {
                **para,
                "n": n,
                "score": 0.5,
                "paragraph": para["index"],
                "paragraph_id": para["id"],
                "supports": True,
                "quote_start": para["start"],
                "quote_end": para["end"],
            }
        )
    answer = {
        "question": "q",
        "resolved_question": "q",
        "abstained": False,
        "timings": {},
        "answer": "The north harbour reopened [1]. The south harbour closed [2].",
        "citations": citations,
    }
    body = f"event: final\ndata: {json.dumps(answer)}\n\n"
    page.route(
        "**/api/chat",
        lambda route: route.fulfill(
            status=200, headers={"Content-Type": "text/event-stream"}, body=body
        ),
    )
    page.goto(server.url)
    items = ask(page, "What happened to the harbours of Vellmar?").locator("ul.cites li")
    texts = [items.nth(i).inner_text() for i in range(items.count())]
    assert texts == [
        f"[1] {TWIN_TITLE} (harbour_north.txt) — paragraph 1",
        f"[2] {TWIN_TITLE} (harbour_south.txt) — paragraph 1",
    ], texts
    # One title cited once keeps the plain label (the file name shows in the panel).
    page.unroute("**/api/chat")
    single = ask(page, "What prison sentence are prosecutors seeking for Betssy Chávez?")
    assert ".txt)" not in single.locator("ul.cites").inner_text()


def test_api_docs_render_offline_from_local_files(server: Server, page: Any) -> None:
    console_errors: list[str] = []
    elsewhere: list[str] = []
    page.on("console", lambda m: console_errors.append(m.text) if m.type == "error" else None)
    page.on(
        "request",
        lambda r: None if r.url.startswith((server.url, "data:")) else elsewhere.append(r.url),
    )
    page.goto(server.url + "/docs")
    sync_api.expect(page.locator(".swagger-ui .info .title")).to_contain_text(
        "Grounded answers", timeout=30_000
    )
    sync_api.expect(page.locator(".opblock-summary-path").first).to_be_visible()
    assert elsewhere == [] and console_errors == [] and page.errors == []
