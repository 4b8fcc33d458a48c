"""The annotation page end to end in headless Chromium: export, label in the browser, import, kappa.

Uses Debian's ``chromium`` (``apt-get install -y chromium``) driven by Playwright's Python client with
``executable_path``; no browser is downloaded (``playwright install`` is never run). Screenshots of the page at
1280x900 and 390x844 go to ``$PERSONA_GEN_SCREENSHOTS`` (default: the test's tmp dir).
"""

from __future__ import annotations

import json
import os
import shutil
import threading

import pytest

from persona_gen.annotate import AnnotationApp, make_server, read_labels, read_tasks
from persona_gen.annotate.tasks import run_export, run_import
from tests.unit.annotate.synthetic import compose, feedback_frame, write_dataset

pytestmark = pytest.mark.integration

CHROMIUM = os.environ.get("PERSONA_GEN_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]
JUSTIFICATION = "Ça me ressemble: <b>not html</b> & fits my views"


@pytest.fixture(scope="module")
def browser():
    if not os.path.isfile(CHROMIUM):
        pytest.skip(f"chromium not found at {CHROMIUM}: install Debian's browser with `apt-get install -y chromium`")
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright (no browser download needed)")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, timeout=30_000)
        yield browser
        browser.close()


def _label_all(page, url, rater):
    # Waits are CSS selectors on the page's data-state/data-task: the page's CSP forbids the eval that
    # Playwright's wait_for_function would need.
    page.goto(url)
    page.fill("#rater-id", rater)
    page.click("#start")
    page.wait_for_selector("body[data-state]", state="attached")
    labeled = 0
    while page.get_attribute("body", "data-state") == "task":
        task_id = page.get_attribute("body", "data-task")
        ideology = page.locator("#persona tr", has_text="ideology").locator("td").text_content()
        choice = "a" if ideology in page.text_content("#answer-a") else "b"
        page.check(f"#choice-{choice}")
        page.fill("#justification", JUSTIFICATION)
        page.click("#submit")
        page.wait_for_selector(f"body[data-state='done'], body[data-task]:not([data-task='{task_id}'])",
                               state="attached")
        labeled += 1
    assert page.is_visible("#done")
    return labeled


def test_annotation_page_round_trips_labels_into_kappa(browser, tmp_path):
    dataset = write_dataset(tmp_path, num_personas=2, questions=3)
    exported = run_export(compose(tmp_path / "export", tmp_path / "cache", [f"annotate.dataset_dir={dataset}"]))
    labels_file = exported.folder / "web_labels.jsonl"
    server = make_server(AnnotationApp(read_tasks(exported.folder), labels_file), 0)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/"
    try:
        counts = []
        for rater in ("r1", "r2", "r3", "r4"):  # two raters per persona
            context = browser.new_context()
            counts.append(_label_all(context.new_page(), url, rater))
            context.close()
    finally:
        server.shutdown()
        server.server_close()
    assert counts == [3, 3, 3, 3]
    labels = read_labels([labels_file], read_tasks(exported.folder).by_id(), require_justification=True)
    assert {lab.justification for lab in labels} == {JUSTIFICATION}

    result = run_import(compose(tmp_path / "import", tmp_path / "cache",
                                [f"annotate.tasks_dir={exported.folder}", f"annotate.labels=[{labels_file}]"]))
    report = json.loads(result.report_path.read_text())
    assert (report["labels"], report["raters"], report["items"]) == (12, 4, 6)
    assert report["human_vs_human"]["mean_kappa"] == 1.0
    assert report["human_vs_judge"]["direct"]["n_pairs"] == 12


# Census labels as the dataset holds them: code prefixes and state codes a rater should not have to read.
CENSUS_LINES = "\nindustry category: EDU-Elementary And Secondary Schools\nplace of birth: Wyoming/WY"


def _serve(tmp_path, **app_kwargs):
    frame = feedback_frame(num_personas=2, questions=2)
    frame["persona"] = frame["persona"] + CENSUS_LINES
    frame["instruction"] = frame["instruction"] + " It matters to me a great deal, and to my family too."
    folder = tmp_path / "dataset" / "data" / "feedback"
    folder.mkdir(parents=True)
    frame.to_parquet(folder / "train-00000-of-00001.parquet", index=False)
    exported = run_export(compose(tmp_path / "export", tmp_path / "cache",
                                  [f"annotate.dataset_dir={tmp_path / 'dataset'}"]))
    app = AnnotationApp(read_tasks(exported.folder), exported.folder / "web_labels.jsonl", **app_kwargs)
    server = make_server(app, 0)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/"


def _shots(tmp_path):
    folder = os.environ.get("PERSONA_GEN_SCREENSHOTS") or str(tmp_path / "screenshots")
    os.makedirs(folder, exist_ok=True)
    return folder


def _in_view(page, selector, viewport):
    box = page.locator(selector).bounding_box()
    assert box is not None, f"{selector} is not rendered"
    return box["y"] >= 0 and box["y"] + min(box["height"], 40) <= viewport["height"] and box["x"] >= 0 \
        and box["x"] + box["width"] <= viewport["width"] + 1


@pytest.mark.parametrize("viewport", [{"width": 1280, "height": 900}, {"width": 390, "height": 844}],
                         ids=["desktop", "phone"])
def test_annotation_page_for_real_raters(browser, tmp_path, viewport):
    server, url = _serve(tmp_path)
    context = browser.new_context(viewport=viewport)
    page = context.new_page()
    shots = _shots(tmp_path)
    name = f"{viewport['width']}x{viewport['height']}"
    try:
        page.goto(url)
        page.fill("#rater-id", "r1")
        page.press("#rater-id", "Enter")
        page.wait_for_selector("body[data-state='task']", state="attached")
        # The question is on screen at once, on a phone too; the persona folds away on a phone.
        assert _in_view(page, "#question", viewport)
        persona_open = page.get_attribute("#persona-box", "open") is not None
        assert persona_open == (viewport["width"] > 768)
        page.screenshot(path=f"{shots}/annotate-{name}-start.png")
        if not persona_open:
            page.click("#persona-box summary")
        # Labels without census codes.
        cells = page.locator("#persona td").all_text_contents()
        assert "Elementary And Secondary Schools" in cells and "Wyoming" in cells
        assert not any("EDU-" in c or "/WY" in c for c in cells)

        # Save stays disabled until the item is complete; what is missing is said next to the button.
        assert page.is_disabled("#submit")
        page.locator("#question").click()  # focus outside the text box: keys pick the answer
        page.keyboard.press("2")
        assert page.is_checked("#choice-b")
        assert page.is_disabled("#submit")
        status = page.text_content("#form-status")
        assert status == "To save: say in a few words why."
        button, note = page.locator("#submit").bounding_box(), page.locator("#form-status").bounding_box()
        assert abs((button["y"] + button["height"] / 2) - (note["y"] + note["height"] / 2)) < 40 or \
            0 <= note["y"] - (button["y"] + button["height"]) < 40, (button, note)
        page.keyboard.press("1")
        assert page.is_checked("#choice-a")
        page.keyboard.press("3")
        assert page.is_checked("#choice-tie")
        page.fill("#justification", "Fits how this person weighs family and work.")
        assert page.is_enabled("#submit")
        page.locator("#submit").scroll_into_view_if_needed()
        assert _in_view(page, "#question", viewport)  # the question stays visible while the rater writes
        page.screenshot(path=f"{shots}/annotate-{name}-ready.png")

        # A refusal by the server shows next to the button, in a rater's words, and the form can be sent again.
        page.route("**/api/labels", lambda route: route.fulfill(status=400, content_type="application/json",
                   body=json.dumps({"error": "task_id must be ...", "message": "This question belongs to another "
                                    "person than the one you play. Reload the page to continue."})))
        page.click("#submit")
        page.wait_for_selector("#form-status.error", state="visible")
        assert page.text_content("#form-status").startswith("This question belongs to another person")
        assert _in_view(page, "#form-status", viewport)
        page.screenshot(path=f"{shots}/annotate-{name}-error.png")
        page.unroute("**/api/labels")
        task_id = page.get_attribute("body", "data-task")
        page.keyboard.press("Control+Enter")
        page.wait_for_selector(f"body[data-state='done'], body[data-task]:not([data-task='{task_id}'])",
                               state="attached")
    finally:
        context.close()
        server.shutdown()
        server.server_close()


def test_annotation_page_two_raters_overlap_and_agreement_is_computed(browser, tmp_path):
    """raters_per_item=2: the first two raters play the same persona, so human-vs-human kappa exists."""
    dataset = write_dataset(tmp_path, num_personas=3, questions=3)
    exported = run_export(compose(tmp_path / "export", tmp_path / "cache", [f"annotate.dataset_dir={dataset}"]))
    labels_file = exported.folder / "web_labels.jsonl"
    server = make_server(AnnotationApp(read_tasks(exported.folder), labels_file, raters_per_item=2), 0)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/"
    try:
        for rater in ("r1", "r2"):
            context = browser.new_context()
            _label_all(context.new_page(), url, rater)
            context.close()
    finally:
        server.shutdown()
        server.server_close()
    result = run_import(compose(tmp_path / "import", tmp_path / "cache",
                                [f"annotate.tasks_dir={exported.folder}", f"annotate.labels=[{labels_file}]",
                                 "annotate.judge_source=skip"]))
    hvh = result.report["human_vs_human"]
    assert hvh["shared_items"] == 3 and hvh["mean_kappa"] is not None
    assert hvh["warning"].startswith("small sample: 3 items")
