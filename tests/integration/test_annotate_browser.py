"""The annotation page end to end in headless Chromium: export, label in the browser, import, kappa.

Uses Debian's ``chromium`` (``apt-get install -y chromium``) driven by Playwright's Python client with
``executable_path``; no browser is downloaded (``playwright install`` is never run).
"""

from __future__ import annotations

import json
import os
import shutil
import threading

import pytest

from persona_gen.annotate import AnnotationApp, make_server, read_labels, read_tasks
from persona_gen.annotate.tasks import run_export, run_import
from tests.unit.annotate.synthetic import compose, write_dataset

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
