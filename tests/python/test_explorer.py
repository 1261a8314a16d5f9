"""The trace explorer (/ui/) in headless Chromium, driven by selenium,
against a live tracefold fed by the real langfuse 5.0.4 SDK, the Swift demo
and the OpenTelemetry Python exporter. Every test checks that the browser
console logged no error; the pages' screenshots are saved under
$TRACEFOLD_ARTIFACTS/explorer (default artifacts/explorer)."""
import base64
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from types import SimpleNamespace

import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import Status, StatusCode
from selenium.common.exceptions import NoAlertPresentException
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import Select, WebDriverWait

from conftest import ROOT, TEST_CONFIG, Tracefold
from explorer_browser import chromium, console_errors
from test_langfuse_sdk import run_scenario
from test_swift_demo import run_demo

ARTIFACTS = os.path.join(os.environ.get("TRACEFOLD_ARTIFACTS", os.path.join(ROOT, "artifacts")), "explorer")
XSS = "<img src=x onerror=alert(1)>"


def send_otel(tf, name, attributes=None, error=None, headers=None):
    """One trace of a root span through the OTel Python HTTP exporter;
    returns its trace id."""
    provider = TracerProvider(resource=Resource.create({"service.name": "explorer-test"}))
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=tf.traces_url, headers=headers)))
    tracer = provider.get_tracer("explorer-test")
    with tracer.start_as_current_span(name, attributes=attributes or {}) as span:
        with tracer.start_as_current_span(f"{name} child") as child:
            if error:
                child.set_status(Status(StatusCode.ERROR, error))
        trace_id = format(span.get_span_context().trace_id, "032x")
    provider.shutdown()
    return trace_id


def api(tf, path, body=None, headers=None):
    req = urllib.request.Request(tf.base_url + path, data=json.dumps(body).encode() if body is not None else None,
                                 headers={"Content-Type": "application/json", **(headers or {})})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read() or b"null")


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    tf = Tracefold(tmp_path_factory.mktemp("explorer") / "data").start()
    proc, _ = run_demo(tf.base_url)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    demo = dict(line.split(": ", 1) for line in proc.stdout.splitlines() if ": " in line)["trace_id"]
    langfuse = run_scenario(tf)
    # A request-metadata value that is not a string is dropped with a
    # warning (SPEC §5.1): the trace panel shows it.
    xss = send_otel(tf, XSS, {"langfuse.trace.metadata.note": json.dumps("<b>bold</b>"), "user.id": "<script>alert(2)</script>"},
                    headers={"x-tracefold-metadata": '{"team": 5}'})
    tf.wait_for_trace(demo, 7)
    tf.wait_for_trace(langfuse, 5)
    tf.wait_for_trace(xss, 2)
    api(tf, "/api/public/scores", {"traceId": demo, "name": "quality", "value": 0.9})
    # An extended_trace entry for a span that never arrives.
    api(tf, f"/api/public/traces/{demo}/metadata", {"target": {"span_id": "00000000000000ab"}, "metadata": [{"kind": "eval", "values": {"grade": "A"}}]})
    yield SimpleNamespace(tf=tf, demo=demo, langfuse=langfuse, xss=xss)
    tf.stop()


@pytest.fixture(scope="module")
def browser():
    os.makedirs(ARTIFACTS, exist_ok=True)
    driver = chromium()
    yield driver
    driver.quit()


@pytest.fixture(autouse=True)
def no_console_errors(browser):
    console_errors(browser)  # what an earlier test left
    yield
    assert console_errors(browser) == []


def wait(browser, condition, timeout=30):
    return WebDriverWait(browser, timeout).until(condition)


def open_page(browser, url, css):
    browser.get(url)
    return wait(browser, EC.presence_of_element_located((By.CSS_SELECTOR, css)))


def shot(browser, name):
    browser.save_screenshot(os.path.join(ARTIFACTS, f"{name}.png"))


def row_names(browser):
    return [td.text for td in browser.find_elements(By.CSS_SELECTOR, "#traces tbody tr td:nth-child(2)")]


def tree_items(browser):
    return {e.find_element(By.CSS_SELECTOR, ".name").text: e for e in browser.find_elements(By.CSS_SELECTOR, "[role=treeitem]")}


def test_the_list_shows_the_traces_and_a_filter_narrows_it(live, browser):
    open_page(browser, live.tf.base_url + "/ui/", "#traces tbody tr[data-trace-id]")
    assert sorted(row_names(browser)) == sorted(["rag-answer", "my-trace", XSS])
    demo = browser.find_element(By.CSS_SELECTOR, f"tr[data-trace-id='{live.demo}']")
    cells = [td.text for td in demo.find_elements(By.TAG_NAME, "td")]
    assert cells[2:4] == ["user-42", "session-7"] and cells[5] == "default"
    assert [li.text for li in demo.find_elements(By.CSS_SELECTOR, "ul.tags li")] == ["demo", "rag"]
    assert cells[6].endswith(" ms")
    assert cells[7] == "469 tokens"
    assert cells[8] == "$0.000096"
    assert cells[9].startswith("ERROR")
    assert cells[10] == "quality: 0.9"
    assert "level-row-ERROR" in demo.get_attribute("class"), "errors stand out"
    shot(browser, "traces")

    browser.find_element(By.CSS_SELECTOR, "input[name=name]").send_keys("rag-answer")
    browser.find_element(By.CSS_SELECTOR, ".filters button[type=submit]").click()
    wait(browser, lambda b: row_names(b) == ["rag-answer"])
    assert "name=rag-answer" in browser.current_url
    # The URL reproduces the view.
    browser.get(browser.current_url)
    wait(browser, lambda b: row_names(b) == ["rag-answer"])
    assert browser.find_element(By.CSS_SELECTOR, "input[name=name]").get_attribute("value") == "rag-answer"
    shot(browser, "traces-filtered")

    open_page(browser, live.tf.base_url + "/ui/?metaKey=tenant&metaValue=acme", "#traces tbody tr[data-trace-id]")
    assert sorted(row_names(browser)) == ["my-trace", "rag-answer"]
    open_page(browser, live.tf.base_url + "/ui/?userId=u1&environment=staging", "#traces tbody tr[data-trace-id]")
    assert row_names(browser) == ["my-trace"]
    open_page(browser, live.tf.base_url + "/ui/?tags=demo,rag", "#traces tbody tr[data-trace-id]")
    assert row_names(browser) == ["rag-answer"]
    open_page(browser, live.tf.base_url + "/ui/?name=nothing-like-this", "#traces tbody td.empty")
    assert browser.find_element(By.ID, "traces-summary").text == "0 traces"


def test_the_trace_page_shows_the_tree_and_a_generation_with_its_model_and_tokens(live, browser):
    open_page(browser, f"{live.tf.base_url}/ui/traces/{live.demo}", "[role=treeitem]")
    items = tree_items(browser)
    assert sorted(items) == sorted(["answer-question", "retrieve", "vector-store.search", "rerank", "llm-call", "cache-miss", "lookUpOrder"])
    levels = {name: e.get_attribute("aria-level") for name, e in items.items()}
    assert levels["answer-question"] == "1" and levels["retrieve"] == "2" and levels["vector-store.search"] == "3"
    assert items["llm-call"].find_element(By.CSS_SELECTOR, ".badge.type").text == "GENERATION"
    error = items["lookUpOrder"]
    assert "level-ERROR" in error.get_attribute("class")
    assert error.find_element(By.CSS_SELECTOR, ".status-msg").text == "order A-17 not found"

    items["llm-call"].click()
    detail = wait(browser, EC.presence_of_element_located((By.CSS_SELECTOR, "#observation-detail [data-kind=usage]")))
    facts = browser.find_element(By.ID, "observation-facts").text
    assert "Model\ngpt-4o-mini" in facts
    usage = {r.find_element(By.TAG_NAME, "th").text: r.find_element(By.TAG_NAME, "td").text for r in detail.find_elements(By.TAG_NAME, "tr")}
    assert usage == {"input": "412 tokens", "output": "57 tokens", "total": "469 tokens"}
    assert "temperature" in browser.find_element(By.CSS_SELECTOR, "#observation-detail").text
    assert "observation=" in browser.current_url
    shot(browser, "trace")

    # The selection is in the URL.
    browser.get(browser.current_url)
    wait(browser, EC.text_to_be_present_in_element((By.ID, "observation-facts"), "gpt-4o-mini"))

    # Keyboard: Home, ArrowDown, Enter selects the second row; ArrowLeft on
    # an open parent collapses it.
    tree = browser.find_element(By.CSS_SELECTOR, "[role=tree]")
    tree.send_keys(Keys.HOME, Keys.ARROW_DOWN, Keys.ENTER)
    wait(browser, EC.text_to_be_present_in_element((By.CSS_SELECTOR, "#observation-detail h2"), "retrieve"))
    assert tree.get_attribute("aria-activedescendant") == "obs-" + tree_items(browser)["retrieve"].get_attribute("data-id")
    tree.send_keys(Keys.ARROW_LEFT)
    wait(browser, lambda b: "vector-store.search" not in tree_items(b))
    assert tree_items(browser)["retrieve"].get_attribute("aria-expanded") == "false"
    tree.send_keys(Keys.ARROW_RIGHT)
    wait(browser, lambda b: "vector-store.search" in tree_items(b))


def test_the_langfuse_sdk_trace_shows_its_generation_and_its_error(live, browser):
    open_page(browser, f"{live.tf.base_url}/ui/traces/{live.langfuse}", "[role=treeitem]")
    items = tree_items(browser)
    assert items["root-fn"].get_attribute("aria-level") == "1"
    assert items["gen"].get_attribute("aria-level") == "2"
    assert items["tool-x"].find_element(By.CSS_SELECTOR, ".status-msg").text.endswith("boom")
    items["gen"].click()
    wait(browser, EC.text_to_be_present_in_element((By.ID, "observation-facts"), "gpt-4o"))
    usage = browser.find_element(By.CSS_SELECTOR, "#observation-detail [data-kind=usage]").text
    assert "input 10 tokens" in usage and "output 5 tokens" in usage and "total 15 tokens" in usage
    cost = browser.find_element(By.CSS_SELECTOR, "#observation-detail [data-kind=cost]").text
    assert "input $0.001" in cost and "output $0.002" in cost and "total $0.003" in cost
    assert browser.find_element(By.ID, "trace-facts").text.count("u1") == 1
    shot(browser, "trace-langfuse")


def test_an_extended_trace_entry_shows_under_its_kind_label_on_its_span(live, browser):
    open_page(browser, f"{live.tf.base_url}/ui/traces/{live.demo}", "[role=treeitem]")
    retrieve = tree_items(browser)["retrieve"]
    assert retrieve.find_element(By.CSS_SELECTOR, ".badge.ext").text == "◆ 1"
    retrieve.click()
    entry = wait(browser, EC.presence_of_element_located(
        (By.CSS_SELECTOR, "#observation-detail .entry[data-scope=extended_trace][data-kind='userland.quality']")))
    assert entry.find_element(By.CSS_SELECTOR, ".entry-label").text == "User Metadata (quality)"
    assert "relevance" in entry.text and "0.87" in entry.text
    heading = browser.find_element(By.CSS_SELECTOR, "#observation-detail h4.scope-extended_trace").text
    assert heading.lower() == "extended trace (targets this span)"
    # The trace-level list names its target.
    listed = browser.find_element(By.CSS_SELECTOR, "#extended-entries .entry[data-kind='userland.quality']")
    assert "User Metadata (quality)" in listed.text and "on retrieve" in listed.text
    missing = browser.find_element(By.CSS_SELECTOR, "#extended-entries .entry[data-kind='userland.eval']")
    assert "User Metadata (eval)" in missing.text
    assert "on span 00000000000000ab, which has not arrived" in missing.text
    shot(browser, "trace-extended")
    # The trace panel: its facts, its metadata entries by kind.
    panel = browser.find_element(By.ID, "trace-panel")
    browser.execute_script("arguments[0].scrollIntoView()", panel)
    facts = browser.find_element(By.ID, "trace-facts").text
    assert "User\nuser-42" in facts and "Session\nsession-7" in facts and "Version\n1.4.0" in facts
    kinds = [e.get_attribute("data-kind") for e in panel.find_elements(By.CSS_SELECTOR, ".entry")]
    assert "userland.default" in kinds and "tracefold.usage" in kinds
    shot(browser, "trace-panel")


def test_the_session_page_lists_its_traces_with_input_and_output(live, browser):
    open_page(browser, f"{live.tf.base_url}/ui/sessions/session-7", "#session-traces > li")
    traces = browser.find_elements(By.CSS_SELECTOR, "#session-traces > li")
    assert [t.get_attribute("data-trace-id") for t in traces] == [live.demo]
    assert '"How fast do orders ship?"' in traces[0].text
    assert '"Orders ship within 2 days."' in traces[0].text
    shot(browser, "session")


def test_the_dashboard_groups_by_a_metadata_key(live, browser):
    open_page(browser, f"{live.tf.base_url}/ui/dashboard?groupBy=metadata&key=tenant", "#dashboard-table tbody tr")
    rows = {r.get_attribute("data-group"): [c.text for c in r.find_elements(By.CSS_SELECTOR, "th, td")]
            for r in browser.find_elements(By.CSS_SELECTOR, "#dashboard-table tbody tr")}
    assert set(rows) == {"acme", "(none)"}
    assert rows["acme"][1] == "2 traces"
    assert rows["(none)"][1] == "1 trace"
    assert rows["acme"][9] == "484 tokens", "469 from the demo, 15 from the langfuse SDK"
    charts = browser.find_elements(By.CSS_SELECTOR, ".charts svg[role=img]")
    assert len(charts) == 5
    assert all(c.find_elements(By.CSS_SELECTOR, "rect.bar") for c in charts)
    series = browser.find_element(By.CSS_SELECTOR, "svg.chart.time")
    assert "Traces per minute" in series.get_attribute("aria-label")
    assert len(series.find_elements(By.CSS_SELECTOR, "rect.bar-error")) >= 1, "the demo's trace has an ERROR observation"
    shot(browser, "dashboard")

    # Through the form: group by model.
    Select(browser.find_element(By.ID, "group-by")).select_by_value("model")
    browser.find_element(By.CSS_SELECTOR, ".filters button[type=submit]").click()
    wait(browser, lambda b: "groupBy=model" in b.current_url)
    wait(browser, EC.presence_of_element_located((By.CSS_SELECTOR, "#dashboard-table tbody tr[data-group='gpt-4o-mini']")))


def test_markup_in_the_data_renders_as_text(live, browser):
    open_page(browser, f"{live.tf.base_url}/ui/?name={urllib.parse.quote(XSS)}", "#traces tbody tr[data-trace-id]")
    assert row_names(browser) == [XSS]
    row = browser.find_element(By.CSS_SELECTOR, f"tr[data-trace-id='{live.xss}']")
    assert row.find_elements(By.TAG_NAME, "td")[2].text == "<script>alert(2)</script>"
    open_page(browser, f"{live.tf.base_url}/ui/traces/{live.xss}", "[role=treeitem]")
    assert sorted(tree_items(browser)) == sorted([XSS, f"{XSS} child"])
    assert browser.find_element(By.TAG_NAME, "h1").text.startswith(XSS)
    assert "<b>bold</b>" in browser.find_element(By.ID, "trace-panel").text
    warnings = browser.find_element(By.CSS_SELECTOR, "#trace-panel .warnings")
    assert "team" in warnings.text
    assert browser.execute_script("return document.querySelectorAll('img, script:not([src]), b').length") == 0
    shot(browser, "markup-as-text")
    with pytest.raises(NoAlertPresentException):
        browser.switch_to.alert.text


def test_live_refresh_shows_a_new_trace(live, browser):
    open_page(browser, live.tf.base_url + "/ui/?live=1", "#traces tbody tr[data-trace-id]")
    assert browser.find_element(By.ID, "live").is_selected()
    acked = time.time()
    trace_id = send_otel(live.tf, "arrived-later", error="it broke")
    wait(browser, EC.presence_of_element_located((By.CSS_SELECTOR, f"tr[data-trace-id='{trace_id}']")), timeout=20)
    print(f"new trace in the live list {time.time() - acked:.2f} s after its ack")
    assert "level-row-ERROR" in browser.find_element(By.CSS_SELECTOR, f"tr[data-trace-id='{trace_id}']").get_attribute("class")


def test_the_colour_scheme_follows_the_system(live, browser):
    open_page(browser, live.tf.base_url + "/ui/", "#traces tbody tr[data-trace-id]")
    light = browser.execute_script("return getComputedStyle(document.body).backgroundColor")
    browser.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": [{"name": "prefers-color-scheme", "value": "dark"}]})
    try:
        dark = browser.execute_script("return getComputedStyle(document.body).backgroundColor")
        shot(browser, "traces-dark")
    finally:
        browser.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": []})
    assert light == "rgb(255, 255, 255)"
    assert dark == "rgb(17, 20, 24)"


AUTHED = TEST_CONFIG.replace("        endpoint: ${env:TRACEFOLD_ENDPOINT}\n", """        endpoint: ${env:TRACEFOLD_ENDPOINT}
        auth:
          api_keys:
            - {public_key: pk-ui, secret_key: sk-ui}
""")
BASIC = "Basic " + base64.b64encode(b"pk-ui:sk-ui").decode()


def test_the_explorer_needs_the_credentials_when_auth_is_on(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "authed.yaml").write_text(AUTHED)
    tf = Tracefold(data, config=str(data / "authed.yaml")).start()
    try:
        for path in ["/ui/", "/ui/assets/app.js", "/ui/dashboard"]:
            with pytest.raises(urllib.error.HTTPError) as e:
                urllib.request.urlopen(tf.base_url + path, timeout=5)
            assert e.value.code == 401, path
            assert e.value.headers["WWW-Authenticate"] == 'Basic realm="tracefold"'
        with urllib.request.urlopen(urllib.request.Request(tf.base_url + "/ui/", headers={"Authorization": BASIC}), timeout=5) as r:
            assert r.status == 200 and b"/ui/assets/app.js" in r.read()
        trace_id = send_otel(tf, "behind-auth", headers={"Authorization": BASIC})
        driver = chromium()
        try:
            # What a browser sends once the user answered its Basic prompt.
            driver.execute_cdp_cmd("Network.enable", {})
            driver.execute_cdp_cmd("Network.setExtraHTTPHeaders", {"headers": {"Authorization": BASIC}})
            open_page(driver, tf.base_url + "/ui/", f"tr[data-trace-id='{trace_id}']")
            assert console_errors(driver) == []
        finally:
            driver.quit()
    finally:
        tf.stop()


def test_paging_and_a_long_string_folded(tmp_path, browser):
    """60 traces: two pages of 50 and 10. A 600-character input is folded
    until asked for."""
    tf = Tracefold(tmp_path / "data").start()
    try:
        provider = TracerProvider(resource=Resource.create({"service.name": "pager"}))
        provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=tf.traces_url)))
        tracer = provider.get_tracer("pager")
        long_input = "x" * 590 + "0123456789"
        for i in range(60):
            with tracer.start_as_current_span(f"bulk-{i:02d}", attributes={"langfuse.observation.input": json.dumps(long_input)}):
                pass
        provider.shutdown()
        deadline = time.time() + 30
        while api(tf, "/api/public/traces?limit=1")["meta"]["totalItems"] < 60 and time.time() < deadline:
            time.sleep(0.1)

        open_page(browser, tf.base_url + "/ui/", "#traces tbody tr[data-trace-id]")
        assert browser.find_element(By.ID, "traces-summary").text == "60 traces, page 1 of 2"
        assert len(row_names(browser)) == 50
        assert row_names(browser)[0] == "bulk-59", "newest first"
        browser.find_element(By.LINK_TEXT, "Older →").click()
        wait(browser, lambda b: len(row_names(b)) == 10)
        assert "page=2" in browser.current_url
        assert row_names(browser)[-1] == "bulk-00"
        assert browser.find_element(By.ID, "traces-summary").text == "60 traces, page 2 of 2"

        browser.find_element(By.LINK_TEXT, "bulk-00").click()
        wait(browser, EC.presence_of_element_located((By.CSS_SELECTOR, "[role=treeitem]"))).click()
        fold = wait(browser, EC.presence_of_element_located((By.CSS_SELECTOR, "#observation-detail .j-long button")))
        text = browser.find_element(By.CSS_SELECTOR, "#observation-detail .j-long .j-str")
        assert fold.text == "show all 600 characters"
        assert "0123456789" not in text.text
        fold.click()
        assert text.text == json.dumps(long_input)
        assert fold.get_attribute("aria-expanded") == "true"
    finally:
        tf.stop()
