"""The chat page in real headless Chromium (Debian's /usr/bin/chromium) through Playwright,
against a real uvicorn server, the real pipeline and the bundled model."""

from __future__ import annotations

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
