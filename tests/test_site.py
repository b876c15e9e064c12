"""The rendered book, checked as a reader sees it: served on localhost, opened in headless Chromium.

The site is built with ``jupyter-book build`` (executing every notebook, in small-data mode under
the tests) into a temporary folder, or taken from ``--site DIR`` (e.g. ``--site _build/html`` to
check the full-data build). Every page of ``_toc.yml`` must load, show its title, and every chapter
must show at least one figure that the browser actually decoded; the comparison chapter and the
results page must show their tables. The chapters that teach an algorithm must show its code (the
package's own source, :mod:`helpers.listing`), their equations and their diagram; every chapter
ends with exercises, and no output carries library warnings. These tests run after every other
test (see ``conftest.py``): building the book executes the notebooks again and reuses what they
left in ``artifacts/``. The fixtures ``site``, ``server`` and ``browser`` are in
``tests/conftest.py``, shared with ``tests/test_try_it.py`` (one build per session).

Chromium and its driver come from Debian's packages ``chromium`` and ``chromium-driver``
(``.ci/run`` installs them). Without them the tests are skipped on a reader's machine and fail in
CI.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from helpers import chapters

ROOT = Path(__file__).resolve().parents[1]
COLAB = "https://colab.research.google.com/github/distillation-book/rubert-toxic-distillation/blob/main"

pytestmark = pytest.mark.site


def toc_pages() -> list[str]:
    """Every page of the book's table of contents, root first, without file suffixes."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text(encoding="utf-8"))
    pages = [toc["root"]]
    for part in toc.get("parts", []):
        pages += [chapter["file"] for chapter in part["chapters"]]
    return [str(Path(page).with_suffix("")) for page in pages]


def notebook_title(page: str) -> str:
    """The title a chapter's first cell gives it (``# 4. Distilling BERT into a BiLSTM``)."""
    notebook = json.loads((ROOT / f"{page}.ipynb").read_text(encoding="utf-8"))
    return "".join(notebook["cells"][0]["source"]).lstrip("# ").strip()


PAGES = toc_pages()
CHAPTERS = [c.page for c in chapters.CHAPTERS]  # the registry (tests/test_chapters.py: = toc)

# Chapter (by its number) -> lines of the package's source that its listings must show.
LISTINGS = {
    chapters.BILSTM.number: (
        "def forward(self, input_ids", "for batch in train_loader:", "def optimizer_step(",
        "model.load_state_dict(self.best_state)", "def embedding_matrix(",
        "parameter.requires_grad_(epoch > frozen_epochs)"),
    chapters.DISTILL_SMALL.number: (
        "def logit_mse_loss(", "def masked_cross_entropy(", "def soft_target_kl(",
        "def kl_distillation_loss(", "draws = rng.random((n_iter, n))"),
    chapters.DISTILL_TINY_BERT.number: (
        "def select_kept_ids(", "teacher_to_student[kept_ids] = torch.arange", "sliced = {",
        "def mask_tokens(", "def pretraining_losses(", "def cls_embedding_loss(",
        "loss = sum(weights[name] * value", "def copy_layers_from_teacher(",
        "def hidden_cosine_loss("),
    chapters.COMPARISON.number: (
        "torch.onnx.export(", "def quantize_int8(", "torch.finfo(torch.float32).min"),
}
# Chapter -> the diagram (in book/figures/, drawn by helpers.diagrams) its page shows.
DIAGRAMS = {chapters.TEACHER.number: "teacher_finetuning.png",
            chapters.DISTILL_SMALL.number: "logit_distillation.png",
            chapters.DISTILL_TINY_BERT.number: "pretraining_distillation.png"}
# Chapters with equations, and those with boxed bugs of the source article (at least so many).
MATH = chapters.numbers(chapters.BASELINES, chapters.BILSTM, chapters.DISTILL_SMALL,
                        chapters.DISTILL_TINY_BERT)
BUG_BOXES = {chapters.BILSTM.number: 3, chapters.TEACHER.number: 1,
             chapters.DISTILL_TINY_BERT.number: 1}
# What a reader must never see in an output: library warnings and loader noise.
NOISE = ("Failed to load", "deprecated", "IProgress", "indexing errors",
         "Token indices sequence length")


def chapter(number: str) -> str:
    """The page of chapter ``number`` (``chapters.DISTILL_SMALL.number`` ->
    "notebooks/04_distill_bilstm")."""
    return chapters.chapter(number).page


def open_page(browser, server: str, page: str) -> None:
    """Load a page and wait until the document and its images have finished loading."""
    browser.get(f"{server}/{page}.html")
    browser.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "if (document.readyState === 'complete') { done(); }"
        "else { window.addEventListener('load', () => done()); }"
    )


def decoded_output_images(browser) -> list[str]:
    """Sources of the cell-output images that the browser decoded (a broken image has width 0)."""
    return browser.execute_script(
        "return Array.from(document.querySelectorAll('.cell_output img, .output img'))"
        ".filter(img => img.complete && img.naturalWidth > 0).map(img => img.src);"
    )


def table_rows(browser) -> list[int]:
    """Body rows of each data table (pandas' html tables) on the page."""
    return browser.execute_script(
        "return Array.from(document.querySelectorAll('table.dataframe'))"
        ".map(t => t.querySelectorAll('tbody tr').length);"
    )


def test_every_toc_page_is_in_the_built_site(site: Path) -> None:
    missing = [page for page in PAGES if not (site / f"{page}.html").is_file()]
    assert not missing, f"pages of _toc.yml missing from {site}: {missing}"


@pytest.mark.parametrize("page", PAGES)
def test_page_loads_with_its_title(browser, server: str, page: str) -> None:
    open_page(browser, server, page)
    heading = browser.execute_script(
        "const h = document.querySelector('main h1, article h1');"
        "return h ? h.textContent : null;"
    )
    assert heading, f"{page}: no h1 heading (page not rendered?)"
    heading = re.sub(r"[#¶\s]+$", "", heading.strip())
    if page in CHAPTERS:
        assert heading == notebook_title(page)
    assert heading.split()[-1] in browser.title


@pytest.mark.parametrize("page", CHAPTERS)
def test_chapter_shows_figures_outputs_and_colab_link(browser, server: str, page: str) -> None:
    open_page(browser, server, page)
    images = decoded_output_images(browser)
    assert images, f"{page}: no figure from the notebook's outputs was displayed"
    outputs = browser.execute_script("return document.querySelectorAll('.cell_output').length;")
    assert outputs >= 3, f"{page}: only {outputs} cell outputs: was the notebook executed?"
    links = browser.execute_script(
        "return Array.from(document.querySelectorAll('a')).map(a => a.href);")
    assert f"{COLAB}/{page}.ipynb" in links, f"{page}: no Open-in-Colab link to the notebook"
    errors = browser.execute_script(
        "return Array.from(document.querySelectorAll('.cell_output .output.traceback')).length;")
    assert errors == 0, f"{page}: an output shows a traceback"


def test_results_page_shows_the_final_table(browser, server: str, site: Path) -> None:
    open_page(browser, server, "results")
    rows = table_rows(browser)
    assert rows and max(rows) >= 5, f"results page: tables with {rows} rows"
    text = browser.find_element("tag name", "main").text
    for model in ("char_ngram_logreg", "BiLSTM", "tiny BERT"):
        assert model in text, f"results page: no row for {model!r}"
    # Chapter 3 names its row after the teacher it used (helpers.standin.teacher_row_name).
    assert re.search(r"(stand-in|rubert-tiny\S*|\S+) teacher\b", text), "no teacher row"


def test_comparison_chapter_shows_the_table_and_the_tradeoff_plot(browser, server: str) -> None:
    page = chapters.COMPARISON.page
    open_page(browser, server, page)
    rows = table_rows(browser)
    assert len(rows) >= 4 and max(rows) >= 10, f"{page}: tables with {rows} rows"
    text = browser.find_element("tag name", "main").text
    for column in ("latency_ms", "texts_per_s", "size_mb", "average_precision"):
        assert column in text, f"{page}: the comparison table has no {column!r} column"


@pytest.mark.parametrize("page", CHAPTERS)
def test_printed_lines_wrap_inside_the_column(browser, server: str, page: str) -> None:
    """A chapter's printed lines (every chapter prints its data line, wider than the column)
    wrap instead of scrolling sideways (_static/outputs.css)."""
    open_page(browser, server, page)
    widths = browser.execute_script(
        "return Array.from(document.querySelectorAll('.cell_output div.output.stream pre'))"
        ".map(pre => [pre.scrollWidth, pre.clientWidth]);")
    assert widths, f"{page}: no printed output found"
    wide = [pair for pair in widths if pair[0] > pair[1] + 1]
    assert not wide, f"{page}: {len(wide)} printed outputs scroll sideways: {wide[:3]}"


def texts_on(browser, server: str, page: str, selector: str) -> list[str]:
    """The text of every element of ``page`` that ``selector`` selects."""
    open_page(browser, server, page)
    return browser.execute_script(
        "return Array.from(document.querySelectorAll(arguments[0])).map(e => e.textContent);",
        selector)


@pytest.mark.parametrize("number", sorted(LISTINGS))
def test_chapter_shows_the_code_it_teaches(browser, server: str, number: str) -> None:
    code = "\n".join(texts_on(browser, server, chapter(number), ".cell_output .highlight pre"))
    missing = [line for line in LISTINGS[number] if line not in code]
    assert not missing, f"chapter {number}: no highlighted listing shows {missing}"


@pytest.mark.parametrize("number", MATH)
def test_chapter_renders_its_equations(browser, server: str, number: str) -> None:
    """Display math reaches the page and MathJax (served from the book's own _static folder,
    sphinx-mathjax-offline) typesets every equation."""
    open_page(browser, server, chapter(number))
    assert browser.execute_script("return !!(window.MathJax && window.MathJax.startup);"), \
        f"chapter {number}: MathJax did not load"
    browser.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "MathJax.startup.promise.then(() => done(), () => done());")
    blocks = browser.execute_script("return document.querySelectorAll('div.math').length;")
    assert blocks, f"chapter {number}: no display equation"
    text = browser.find_element("tag name", "main").text
    assert "$$" not in text, f"chapter {number}: unparsed $$ in the page"
    rendered = browser.execute_script(
        "return document.querySelectorAll('div.math mjx-container').length;")
    assert rendered >= blocks, f"chapter {number}: MathJax typeset {rendered} of {blocks}"
    # Real formulas, not stray text: a sum or a fraction among them, and no parse error.
    assert browser.execute_script(
        "return document.querySelectorAll('div.math mjx-munderover, div.math mjx-mfrac,"
        " div.math mjx-msubsup').length;"), f"chapter {number}: no sum or fraction typeset"
    errors = browser.execute_script("return document.querySelectorAll('mjx-merror').length;")
    assert errors == 0, f"chapter {number}: {errors} equations MathJax could not parse"


@pytest.mark.parametrize("number", sorted(DIAGRAMS))
def test_distillation_chapter_shows_its_diagram(browser, server: str, number: str) -> None:
    open_page(browser, server, chapter(number))
    name = DIAGRAMS[number]
    shown = browser.execute_script(
        "return Array.from(document.querySelectorAll('main img'))"
        ".filter(img => img.src.endsWith(arguments[0]))"
        ".map(img => img.complete && img.naturalWidth > 0);", name)
    assert shown == [True], f"chapter {number}: diagram {name} shown and decoded: {shown}"


@pytest.mark.parametrize("page", CHAPTERS)
def test_chapter_ends_with_exercises(browser, server: str, page: str) -> None:
    open_page(browser, server, page)
    headings = browser.execute_script(
        "return Array.from(document.querySelectorAll('main h2'))"
        ".map(h => h.textContent.replace(/[#¶\\s]+$/, '').trim());")
    assert headings and headings[-1] == "Exercises", f"{page}: sections {headings}"
    items = browser.execute_script(
        "const h = Array.from(document.querySelectorAll('main h2')).pop();"
        "const section = h.closest('section');"
        "return section ? section.querySelectorAll('ol > li').length : 0;")
    assert 3 <= items <= 5, f"{page}: {items} exercises"
    # Every exercise unfolds an answer: a dropdown (sphinx-design's <details>) titled "Answer"
    # inside its own list item.
    answers = browser.execute_script(
        "const section = Array.from(document.querySelectorAll('main h2')).pop()"
        ".closest('section');"
        "return Array.from(section.querySelectorAll(':scope > ol > li')).map(li => "
        "Array.from(li.querySelectorAll('details')).filter(d => d.querySelector('summary')"
        " && d.querySelector('summary').textContent.trim().startsWith('Answer')).length);")
    assert answers and all(n == 1 for n in answers), f"{page}: answers per exercise {answers}"


@pytest.mark.parametrize("number", sorted(BUG_BOXES))
def test_the_articles_bugs_are_boxed(browser, server: str, number: str) -> None:
    titles = texts_on(browser, server, chapter(number), ".admonition.warning .admonition-title")
    bugs = [title for title in titles if title.startswith("The article\u2019s bug")
            or title.startswith("The article's bug")]
    assert len(bugs) >= BUG_BOXES[number], f"chapter {number}: boxes {titles}"


@pytest.mark.parametrize("page", CHAPTERS)
def test_no_output_carries_warning_noise(browser, server: str, page: str) -> None:
    outputs = "\n".join(texts_on(browser, server, page, ".cell_output"))
    found = [noise for noise in NOISE if noise in outputs]
    assert not found, f"{page}: an output shows {found}"
    # The stand-in notice once per page at most (small mode runs the stand-in teacher): the
    # tables mark the rows that depend on it instead.
    notices = outputs.count("STAND-IN TEACHER")
    assert notices <= 1, f"{page}: the stand-in notice is printed {notices} times"


# What must fit the text column at 1280 px: tables, code blocks (cells and listings) and every
# output area. An element fits when it does not scroll sideways and does not reach past the
# article's right edge.
FIT = ("table", "pre", "div.highlight", "div.cell_output div.output")
PHONE = (390, 844)  # a phone's CSS viewport (width, height)
# The most output boxes (printed lines, tables, figures, listings: output_areas) a chapter may
# show; a reader scrolls past every one. On the small-data builds of 2026-12-03 the chapters
# showed 12, 17, 34-39, 17-21, 55-57, 38-41 and 24-25 (chapters 0-6; fewer where a run was
# reused), chapter 4's printed epoch lines (20 in small mode) sharing boxes with the rest of their
# cell's output; one box per epoch there would pass 70, and on the full data (more epochs per
# run) far more. Fewer when each run prints one record.
MAX_OUTPUT_AREAS = 60


def too_wide(browser) -> list[str]:
    """The elements of :data:`FIT` on the page that scroll sideways or reach past the column."""
    return browser.execute_script(
        "const column = document.querySelector('article.bd-article, main article, main');"
        "const right = column.getBoundingClientRect().right;"
        "const wide = [];"
        "for (const selector of arguments[0]) {"
        "  for (const e of document.querySelectorAll('main ' + selector)) {"
        "    if (e.offsetParent === null) continue;"  # hidden (e.g. a collapsed cell)
        "    const box = e.getBoundingClientRect();"
        "    if (e.scrollWidth > e.clientWidth + 1 || box.right > right + 1) {"
        "      wide.push(selector + ' ' + e.scrollWidth + '>' + e.clientWidth + ': '"
        "                + e.textContent.trim().slice(0, 60));"
        "    }"
        "  }"
        "}"
        "return wide;", list(FIT))


@pytest.mark.parametrize("page", CHAPTERS)
def test_tables_and_code_fit_the_column_at_1280_px(browser, server: str, page: str) -> None:
    """No table, code block or output area of a chapter scrolls sideways in a 1280 px window:
    chapter 6 splits its comparison into a quality and a cost table, listings are wrapped at 88
    characters and code is set small enough for 100 (_static/outputs.css)."""
    open_page(browser, server, page)
    assert browser.execute_script("return window.innerWidth;") >= 1200
    wide = too_wide(browser)
    assert not wide, f"{page}: {len(wide)} elements wider than the column: {wide[:4]}"


@pytest.mark.parametrize("page", CHAPTERS)
def test_a_phone_scrolls_tables_inside_their_box_not_the_page(browser, server: str,
                                                              page: str) -> None:
    """At a phone's width the page itself never scrolls sideways: a wide table scrolls inside
    its own output area, and code wraps."""
    browser.set_window_size(*PHONE)
    try:
        open_page(browser, server, page)
        inner, page_width = browser.execute_script(
            "return [window.innerWidth, document.documentElement.scrollWidth];")
        assert inner <= PHONE[0], f"the window did not shrink: {inner} px"
        assert page_width <= inner, f"{page}: the page is {page_width} px wide in {inner} px"
        boxes = browser.execute_script(
            "return Array.from(document.querySelectorAll('main table')).map(t => {"
            "  let box = t.parentElement;"
            "  while (box && getComputedStyle(box).overflowX === 'visible') {"
            "    box = box.parentElement; }"
            "  return box ? box.getBoundingClientRect().right : 1e9; });")
        outside = [right for right in boxes if right > inner + 1]
        assert not outside, f"{page}: {len(outside)} tables scroll with the page, not in a box"
        code = browser.execute_script(
            "return Array.from(document.querySelectorAll('main div.highlight pre'))"
            ".filter(p => p.scrollWidth > p.clientWidth + 1).length;")
        assert code == 0, f"{page}: {code} code blocks scroll sideways on a phone"
    finally:
        browser.set_window_size(1280, 1024)


def output_areas(browser) -> int:
    """The output boxes a reader scrolls past: each output of each cell (printed lines, a table,
    a figure, a listing), however many cells show them."""
    return browser.execute_script(
        "return document.querySelectorAll('main div.cell_output > div.output,"
        " main div.cell_output > img, main div.cell_output > div.highlight-python').length;")


@pytest.mark.parametrize("page", CHAPTERS)
def test_chapter_shows_a_bounded_number_of_output_areas(browser, server: str, page: str) -> None:
    open_page(browser, server, page)
    count = output_areas(browser)
    assert count <= MAX_OUTPUT_AREAS, f"{page}: {count} output areas (at most {MAX_OUTPUT_AREAS})"
