// Chat page: streams POST /api/chat (SSE): progress lines, then answer text the citation check
// has kept (never an unchecked draft), then the final answer with clickable citations. Rule: every piece of source text or model output goes in through
// textContent / createTextNode, never innerHTML, so markup in a source is shown, not run.
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const log = $("log");
  const form = $("ask");
  const input = $("question");
  const sendButton = $("send");
  const statusLine = $("status");
  const panel = $("panel");
  const keyForm = $("keyform");
  const keyInput = $("apikey");

  const KEY_STORAGE = "rag-api-key";
  const MAX_HISTORY = 198; // the API takes 200 messages: history plus the new question
  const MAX_TURN_CHARS = 8000;

  /** @type {{role: string, content: string}[]} */
  let history = [];
  let controller = null; // AbortController of the answer in flight
  let pending = null; // {question, nodes}: a question refused for want of a key, re-sent after
  let panelOpener = null; // focus goes back here when the panel closes

  // ---- small DOM helpers ---------------------------------------------------------------------

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function announce(text) {
    statusLine.textContent = text;
  }

  function scrollToEnd(node) {
    node.scrollIntoView({ block: "end", behavior: "smooth" });
  }

  function authHeaders() {
    const key = sessionStorage.getItem(KEY_STORAGE);
    return key ? { Authorization: `Bearer ${key}` } : {};
  }

  function sourceUrl(sourceId) {
    // Ids are relative paths: encode each segment, keep the slashes.
    return "/api/sources/" + sourceId.split("/").map(encodeURIComponent).join("/") + "/text";
  }

  // ---- conversation --------------------------------------------------------------------------

  function addUserMessage(text) {
    $("empty")?.remove();
    const box = el("article", "msg user");
    box.append(el("p", "who", "You"), el("p", "body", text));
    log.append(box);
    scrollToEnd(box);
    return box;
  }

  function addAnswerBox() {
    const box = el("article", "msg bot draft");
    box.setAttribute("aria-busy", "true");
    const body = el("p", "body");
    box.append(el("p", "who", "Answer"), el("p", "progress"), body);
    log.append(box);
    scrollToEnd(box);
    return box;
  }

  /** Progress ("read 8 passages; checking…") goes beside the answer, never into it. */
  function showProgress(box, text) {
    box.querySelector(".progress").textContent = text;
    announce(text);
  }

  /** Text the server has already checked: the start of the final answer. */
  function appendChecked(box, text) {
    box.querySelector(".body").append(document.createTextNode(text));
  }

  function showError(box, message) {
    box.className = "msg bot error";
    box.removeAttribute("aria-busy");
    box.replaceChildren(el("p", "who", "Problem"), el("p", "body", message));
    announce(message);
    scrollToEnd(box);
  }

  function sameQuestion(a, b) {
    const norm = (s) => s.trim().toLowerCase().replace(/[\s?.!]+$/u, "").replace(/\s+/gu, " ");
    return norm(a) === norm(b);
  }

  /** Replace the draft with the verified answer: text nodes plus [n] buttons. */
  function showAnswer(box, answer, asked) {
    box.className = answer.abstained ? "msg bot abstained" : "msg bot";
    box.removeAttribute("aria-busy");
    const parts = [el("p", "who", "Answer")];

    if (answer.resolved_question && !sameQuestion(answer.resolved_question, asked)) {
      const note = el("p", "resolved", "Understood as: ");
      note.append(el("q", "", answer.resolved_question));
      parts.push(note);
    }
    if (answer.abstained) parts.push(el("p", "tag", "The sources don't say"));

    const byNumber = new Map(answer.citations.map((c) => [c.n, c]));
    const body = el("p", "body");
    const text = answer.answer || "";
    const marker = /\[(\d+)\]/gu;
    let last = 0;
    for (const m of text.matchAll(marker)) {
      const citation = byNumber.get(Number(m[1]));
      if (!citation) continue; // a stray "[7]" stays plain text
      body.append(document.createTextNode(text.slice(last, m.index)));
      body.append(citeButton(citation));
      last = m.index + m[0].length;
    }
    body.append(document.createTextNode(text.slice(last)));
    parts.push(body);

    if (answer.citations.length) {
      const list = el("ul", "cites");
      list.setAttribute("aria-label", answer.abstained ? "Related paragraphs" : "Sources");
      const files = new Map(); // title -> the files cited under it
      for (const c of answer.citations) files.set(c.title, (files.get(c.title) || new Set()).add(c.source));
      const shared = (c) => files.get(c.title).size > 1;
      for (const c of answer.citations) {
        const item = el("li");
        // Two sources with one title would read the same: name the file too.
        const name = shared(c) ? `${c.title} (${c.source})` : c.title;
        item.append(citeButton(c), document.createTextNode(` ${name} — paragraph ${c.paragraph + 1}`));
        if (c.supports === false) item.append(document.createTextNode(" "), el("span", "note", "(related, not answering)"));
        list.append(item);
      }
      parts.push(list);
    }
    box.replaceChildren(...parts);
    announce(answer.abstained ? "The sources don't say." : "Answer ready.");
    scrollToEnd(box);
  }

  function citeButton(citation) {
    const button = el("button", "cite", `[${citation.n}]`);
    button.type = "button";
    const kind = citation.supports === false ? "related paragraph" : "citation";
    button.setAttribute("aria-label", `Open ${kind} ${citation.n}: ${citation.title}, paragraph ${citation.paragraph + 1}`);
    button.addEventListener("click", () => openPanel(citation, button));
    return button;
  }

  // ---- citation panel ------------------------------------------------------------------------

  function openPanel(c, opener) {
    panelOpener = opener;
    $("panel-title").textContent = c.title || c.source;
    $("panel-file").textContent = c.source;
    $("panel-para").textContent = `paragraph ${c.paragraph + 1}`;
    $("panel-related").hidden = c.supports !== false;

    const quote = $("panel-text");
    quote.replaceChildren();
    const text = c.text || "";
    // Offsets are absolute in the file; the paragraph starts at c.start. Highlight only when the
    // paragraph text is a plain slice of the file (HTML sources are not) and the span fits.
    const from = c.quote_start == null ? -1 : c.quote_start - c.start;
    const to = c.quote_end == null ? -1 : c.quote_end - c.start;
    const isSlice = c.end - c.start === text.length;
    if (isSlice && from >= 0 && to > from && to <= text.length) {
      quote.append(
        document.createTextNode(text.slice(0, from)),
        el("mark", "", text.slice(from, to)),
        document.createTextNode(text.slice(to)),
      );
    } else {
      quote.append(document.createTextNode(text));
    }

    const link = $("panel-link");
    link.href = sourceUrl(c.source);
    panel.hidden = false;
    panel.scrollTop = 0;
    $("panel-title").focus({ preventScroll: true });
    const mark = quote.querySelector("mark");
    if (mark) revealInPanel(mark);
  }

  /** A long paragraph overflows the panel: bring the highlighted sentence into its view (a
   * third of the way down), scrolling the panel only, not the conversation. */
  function revealInPanel(node) {
    const offset = node.getBoundingClientRect().top - panel.getBoundingClientRect().top;
    if (offset + node.offsetHeight > panel.clientHeight) {
      panel.scrollTop += offset - panel.clientHeight / 3;
    }
  }

  function closePanel() {
    if (panel.hidden) return;
    panel.hidden = true;
    panelOpener?.focus();
  }

  $("panel-close").addEventListener("click", closePanel);
  document.addEventListener("keydown", (e) => {
    if (e.key === "Escape") closePanel();
  });

  // With an API key a plain link cannot send the header: fetch the text and open it as a blob.
  $("panel-link").addEventListener("click", async (e) => {
    if (!sessionStorage.getItem(KEY_STORAGE)) return;
    e.preventDefault();
    const url = e.currentTarget.href;
    try {
      const res = await fetch(url, { headers: authHeaders() });
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      const blob = new Blob([await res.text()], { type: "text/plain;charset=utf-8" });
      window.open(URL.createObjectURL(blob), "_blank", "noopener");
    } catch (err) {
      announce(`Could not open the source: ${err.message}`);
    }
  });

  // ---- talking to the server -----------------------------------------------------------------

  /** Server-Sent Events from a fetch body (EventSource cannot POST). */
  async function* sseEvents(body) {
    const reader = body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true }).replace(/\r\n/gu, "\n");
      let cut;
      while ((cut = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, cut);
        buffer = buffer.slice(cut + 2);
        const event = parseEvent(block);
        if (event) yield event;
      }
    }
  }

  function parseEvent(block) {
    let name = "message";
    const data = [];
    for (const line of block.split("\n")) {
      if (!line || line.startsWith(":")) continue;
      const colon = line.indexOf(":");
      const field = colon < 0 ? line : line.slice(0, colon);
      let value = colon < 0 ? "" : line.slice(colon + 1);
      if (value.startsWith(" ")) value = value.slice(1);
      if (field === "event") name = value;
      else if (field === "data") data.push(value);
    }
    if (!data.length) return null;
    try {
      return { name, data: JSON.parse(data.join("\n")) };
    } catch {
      return { name: "error", data: { error: "the server sent an unreadable event" } };
    }
  }

  async function describeHttpError(res) {
    let detail = "";
    try {
      detail = (await res.json()).error || "";
    } catch {
      // not JSON (a proxy's error page): the status says enough
    }
    switch (res.status) {
      case 401:
        keyForm.hidden = false;
        keyInput.focus();
        return "This server needs an API key. Enter it above, and the question is sent again.";
      case 429: {
        const wait = res.headers.get("Retry-After") || "a few";
        return `The model is busy with other questions. Try again in ${wait} seconds.`;
      }
      case 503:
        return `The service is not ready: ${detail || "a backend is unavailable"}.`;
      default:
        if (res.status >= 500) return `The server failed (HTTP ${res.status}). ${detail}`.trim();
        return `The question was not accepted (HTTP ${res.status}): ${detail || res.statusText}`;
    }
  }

  async function ask(question) {
    const messages = [...history.slice(-MAX_HISTORY), { role: "user", content: question }];
    const asked = addUserMessage(question);
    const box = addAnswerBox();
    setBusy(true);
    controller = new AbortController();
    let final = null;
    try {
      const res = await fetch("/api/chat", {
        method: "POST",
        headers: { "Content-Type": "application/json", ...authHeaders() },
        body: JSON.stringify({ messages, stream: true }),
        signal: controller.signal,
      });
      if (!res.ok) {
        if (res.status === 401) pending = { question, nodes: [asked, box] };
        showError(box, await describeHttpError(res));
        return;
      }
      for await (const event of sseEvents(res.body)) {
        if (event.name === "status") {
          showProgress(box, event.data.text);
        } else if (event.name === "token") {
          appendChecked(box, event.data.text);
        } else if (event.name === "final") {
          final = event.data;
          showAnswer(box, final, question);
        } else if (event.name === "error") {
          showError(box, `The answer failed: ${event.data.error}`);
          return;
        }
      }
      if (!final) {
        showError(box, "The connection closed before the answer was complete.");
        return;
      }
      // Markers refer to this turn's citations only; keep the words for follow-ups.
      const said = final.answer.replace(/\s*\[\d+\]/gu, "").slice(0, MAX_TURN_CHARS);
      history.push({ role: "user", content: question }, { role: "assistant", content: said });
    } catch (err) {
      if (err.name === "AbortError") return; // "Clear" pressed
      showError(box, `Could not reach the server (${err.message}). Is it running?`);
    } finally {
      controller = null;
      setBusy(false);
    }
  }

  function setBusy(busy) {
    sendButton.disabled = busy;
    sendButton.textContent = busy ? "Answering…" : "Send";
    if (busy) announce("Answering…");
  }

  // ---- wiring ----------------------------------------------------------------------------------

  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const question = input.value.trim();
    if (!question || controller) return;
    input.value = "";
    ask(question);
  });

  input.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      form.requestSubmit();
    }
  });

  keyForm.addEventListener("submit", (e) => {
    e.preventDefault();
    const key = keyInput.value.trim();
    if (!key) return;
    sessionStorage.setItem(KEY_STORAGE, key);
    keyInput.value = "";
    keyForm.hidden = true;
    const retry = pending;
    pending = null;
    if (retry && !controller) {
      retry.nodes.forEach((node) => node.remove()); // the refused attempt is replaced
      ask(retry.question);
    } else {
      input.focus();
    }
  });

  $("clear").addEventListener("click", () => {
    controller?.abort();
    history = [];
    pending = null;
    log.replaceChildren(el("p", "empty", "Conversation cleared. Ask a new question."));
    log.firstChild.id = "empty";
    closePanel();
    announce("Conversation cleared.");
    input.focus();
  });

  input.focus();
})();
