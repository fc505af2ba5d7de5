"""The dashboard in a real browser: Debian's headless Chromium driven by Selenium through
chromedriver (both installed by scripts/test.sh), against a real proxy with traffic.

Each page's screenshot is written to docs/screenshots/ (the README shows them)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from selenium import webdriver
from selenium.common.exceptions import NoAlertPresentException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from tests.cli.helpers import strangler
from tests.proxy.harness import TOKEN, ProxyProcess, routes_file
from tests.proxy.upstreams import Upstream

pytestmark = pytest.mark.slow  # starts servers, processes and a browser

ROOT = Path(__file__).parents[2]
SHOTS = ROOT / "docs" / "screenshots"
MARKUP = "<img src=x onerror=alert(1)>"
ALICE = "alice-token-0123456789"
MODULES = ("  cases:\n    match: {path_prefix: /echo/cases}\n    service: service\n    stage: canary\n    weight: 20\n"
           "    release: {steps: [20, 50], interval: 3600}\n"
           "  kb:\n    match: {path_prefix: /echo/kb}\n    service: service\n    stage: legacy\n"
           f"  '{MARKUP}':\n    match: {{path_prefix: /echo/x}}\n    service: service\n    stage: shadow\n")


@pytest.fixture
def browser() -> Iterator[WebDriver]:
    opts = webdriver.ChromeOptions()
    opts.binary_location = "/usr/bin/chromium"
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1400,1000", "--disable-dev-shm-usage"):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def cockpit(tmp_path: Path, legacy: Upstream, service: Upstream, start_proxy) -> ProxyProcess:  # type: ignore[no-untyped-def]
    routes = routes_file(tmp_path / "routes.yaml", {"legacy": legacy.url, "service": service.url}, MODULES)
    tokens = tmp_path / "operators.yaml"
    tokens.write_text(f"alice: {ALICE}\n")
    p: ProxyProcess = start_proxy(routes, args=("--admin-tokens", str(tokens)))
    with httpx.Client() as c:
        for i in range(60):
            c.get(f"{p.url}/echo/cases/{i}")
            c.get(f"{p.url}/echo/kb/{i}")
    return p


def login_url(p: ProxyProcess, token: str = TOKEN) -> str:
    r = strangler("dashboard", "--admin", f"127.0.0.1:{p.admin_port}", "--no-browser", env={"STRANGLER_ADMIN_TOKEN": token})
    assert r.returncode == 0, r.stderr
    url = r.stdout.split("dashboard: ", 1)[1].split()[0]
    assert token not in r.stdout and url.startswith(f"{p.admin}/ui/login?ticket=")
    return url


def wait_for(driver: WebDriver, css: str, timeout: float = 10):  # type: ignore[no-untyped-def]
    return WebDriverWait(driver, timeout).until(lambda d: d.find_elements(By.CSS_SELECTOR, css))[0]


def rows(driver: WebDriver) -> dict[str, list[str]]:
    """The modules table, read in one go (the page refreshes it every 2 s)."""
    found: dict[str, list[str]] = driver.execute_script(
        "const out = {};"
        "for (const tr of document.querySelectorAll('#modules tbody tr'))"
        "  out[tr.dataset.module] = [...tr.querySelectorAll('th, td')].map((c) => c.innerText.trim());"
        "return out;")
    return found


def shoot(driver: WebDriver, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(SHOTS / f"{name}.png"))


def test_a_ticket_logs_in_once_and_without_a_session_only_the_login_shows(cockpit: ProxyProcess, browser: WebDriver) -> None:
    browser.get(f"{cockpit.admin}/ui/")
    assert "needs a login link" in browser.find_element(By.TAG_NAME, "main").text
    assert not browser.find_elements(By.ID, "modules")
    url = login_url(cockpit)
    browser.get(url)
    wait_for(browser, "#modules tbody tr")
    assert browser.current_url == f"{cockpit.admin}/ui/"  # the ticket leaves the address bar at once
    cookie = browser.get_cookie("strangler_ui")
    assert cookie is not None and cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["path"] == "/ui"
    assert TOKEN not in browser.page_source
    assert browser.execute_script("return document.cookie") == ""  # HttpOnly: no script reads the session
    # the same link again, in a browser without the session: refused
    browser.delete_all_cookies()
    browser.get(url)
    assert "needs a login link" in browser.find_element(By.TAG_NAME, "main").text
    page = httpx.get(url)
    assert page.status_code == 401
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
    assert httpx.get(f"{cockpit.admin}/ui/api/status").status_code == 401
    assert httpx.post(f"{cockpit.admin}/ui/tickets").status_code == 401  # a ticket needs a token


def test_the_table_shows_every_module_and_follows_a_patch_within_two_seconds(cockpit: ProxyProcess, browser: WebDriver) -> None:
    browser.get(login_url(cockpit))
    wait_for(browser, "#modules tbody tr")
    table = rows(browser)
    assert set(table) == {"cases", "kb", MARKUP}
    assert table["cases"][1] == "canary" and table["cases"][2] == "20 %" and table["kb"][1] == "legacy"
    assert table[MARKUP][0] == MARKUP and table[MARKUP][1] == "shadow"  # the name is text, never markup
    assert not browser.find_elements(By.CSS_SELECTOR, "#modules img")
    with pytest.raises(NoAlertPresentException):
        browser.switch_to.alert.text  # noqa: B018
    legacy_new = table["cases"][4].split(" | ")
    assert int(legacy_new[0]) + int(legacy_new[1]) == 60
    shoot(browser, "modules")
    started = time.monotonic()
    assert cockpit.admin_call("PATCH", "/modules/kb", json={"stage": "canary", "weight": 35}).status_code == 200
    WebDriverWait(browser, 5, poll_frequency=0.1).until(lambda d: rows(d)["kb"][1:3] == ["canary", "35 %"])
    assert time.monotonic() - started <= 2.5
    errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert errors == []  # no CSP violation, no failed request, no script error


def test_an_action_asks_first_and_lands_in_the_ledger_as_the_operator(cockpit: ProxyProcess, browser: WebDriver) -> None:
    browser.get(login_url(cockpit, ALICE))
    wait_for(browser, "#modules tbody tr")
    assert browser.find_element(By.ID, "who").text == "operator: alice"
    browser.find_element(By.CSS_SELECTOR, '#modules a[data-key="m:cases"]').click()
    weight = wait_for(browser, "#weight")
    weight.clear()
    weight.send_keys("40")
    browser.find_element(By.ID, "action-set").click()
    dialog = wait_for(browser, "dialog[open]")
    assert "Send 40 % of cases's users to its new service" in dialog.text
    browser.find_element(By.ID, "confirm-cancel").click()  # cancelled: nothing changes
    time.sleep(0.5)
    assert [e for e in cockpit.admin_call("GET", "/ledger?module=cases").json() if e["actor"] == "alice"] == []
    browser.find_element(By.ID, "action-set").click()
    wait_for(browser, "dialog[open]")
    browser.find_element(By.ID, "confirm-ok").click()
    WebDriverWait(browser, 5).until(lambda d: "recorded as alice" in d.find_element(By.ID, "toast").text)
    entry = cockpit.admin_call("GET", "/ledger?module=cases").json()[0]
    assert (entry["actor"], entry["detail"], entry["reason"]) == ("alice", {"stage": "canary", "weight": 40.0}, "dashboard: set")
    # keyboard: the release's start, from Tab and Enter alone
    start = browser.find_element(By.ID, "action-start")
    start.send_keys(Keys.ENTER)
    wait_for(browser, "dialog[open]")
    browser.switch_to.active_element.send_keys(Keys.TAB)  # Cancel has the focus first; Tab to Confirm
    browser.switch_to.active_element.send_keys(Keys.ENTER)
    WebDriverWait(browser, 5).until(lambda d: "running at canary 20 %" in d.find_element(By.ID, "toast").text)
    assert cockpit.admin_call("GET", "/ledger?module=cases").json()[0]["action"] == "release.start"
    WebDriverWait(browser, 5).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#ledger tbody tr"))
    shoot(browser, "module")
    # without the CSRF token, the session cookie alone changes nothing
    cookie = browser.get_cookie("strangler_ui")
    assert cookie is not None
    r = httpx.post(f"{cockpit.admin}/ui/api/modules/cases/action", json={"action": "abort"}, cookies={"strangler_ui": cookie["value"]})
    assert r.status_code == 403 and cockpit.admin_call("GET", "/ledger?module=cases").json()[0]["action"] == "release.start"


def test_the_estate_is_coloured_by_stage_and_a_click_shows_the_blast_radius(cockpit: ProxyProcess, browser: WebDriver,
                                                                             tmp_path: Path) -> None:
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text(
        "components:\n"
        "  db: {tier: database}\n"
        "  legacy: {tier: app, depends_on: [db]}\n"
        "  service: {tier: app, depends_on: [db]}\n"
        "  web: {tier: web, depends_on: [legacy, service]}\n")
    r = strangler("dashboard", "--admin", f"127.0.0.1:{cockpit.admin_port}", "--no-browser", "--estate", str(inventory),
                  env={"STRANGLER_ADMIN_TOKEN": TOKEN})
    assert r.returncode == 0 and "estate sent: 4 components" in r.stdout, r.stderr
    browser.get(r.stdout.split("dashboard: ", 1)[1].split()[0])
    wait_for(browser, "#modules tbody tr")
    browser.get(f"{cockpit.admin}/ui/#/estate")
    node = wait_for(browser, 'g[data-component="service"]')
    assert "canary" in (node.get_attribute("class") or "")  # the new service of cases (canary) and of the others
    assert "legacy" in (browser.find_element(By.CSS_SELECTOR, 'g[data-component="legacy"]').get_attribute("class") or "")
    browser.find_element(By.CSS_SELECTOR, 'g[data-component="db"]').click()
    blast = wait_for(browser, "#blast")
    assert "Blast radius of db" in blast.text and "fails with it, restart in this order: legacy, service, web" in blast.text
    shoot(browser, "estate")
    # an analysis saved as JSON is an estate too
    saved = tmp_path / "analysis.json"
    saved.write_text(strangler("analyze", str(inventory), "--format", "json").stdout)
    r = strangler("dashboard", "--admin", f"127.0.0.1:{cockpit.admin_port}", "--no-browser", "--estate", str(saved),
                  env={"STRANGLER_ADMIN_TOKEN": TOKEN})
    assert r.returncode == 0 and "estate sent: 4 components" in r.stdout, r.stderr


def test_the_dashboard_works_with_two_workers(tmp_path: Path, legacy: Upstream, service: Upstream, start_proxy,  # type: ignore[no-untyped-def]
                                              browser: WebDriver) -> None:
    routes = routes_file(tmp_path / "routes.yaml", {"legacy": legacy.url, "service": service.url}, MODULES)
    p = start_proxy(routes, workers=2)
    with httpx.Client() as c:
        for i in range(40):
            c.get(f"{p.url}/echo/kb/{i}", headers={"connection": "close"})
    browser.get(login_url(p))
    wait_for(browser, "#modules tbody tr")
    WebDriverWait(browser, 10).until(lambda d: "2 serving processes" in d.find_element(By.ID, "freshness").text
                                     and rows(d)["kb"][4] == "40 | 0")


def test_the_login_page_and_assets_are_shipped_in_the_package() -> None:
    from importlib.resources import files

    assets = files("strangler_proxy").joinpath("ui_assets")
    for name in ("index.html", "login.html", "app.js", "app.css"):
        text = assets.joinpath(name).read_text(encoding="utf-8")
        assert "http://" not in text.replace("http://www.w3.org/2000/svg", "") and "https://" not in text  # no CDN
    script = assets.joinpath("app.js").read_text(encoding="utf-8")
    assert "innerHTML" not in script and "insertAdjacentHTML" not in script and "eval(" not in script
    assert "<script>" not in assets.joinpath("index.html").read_text(encoding="utf-8")  # no inline script


def test_judged_steps_show_their_figures_and_a_ledger_reason_with_markup_is_text(tmp_path: Path, legacy: Upstream,
                                                                                 service: Upstream, start_proxy,  # type: ignore[no-untyped-def]
                                                                                 browser: WebDriver) -> None:
    plan = ("  cases:\n    match: {path_prefix: /echo/cases}\n    service: service\n    stage: legacy\n"
            "    release: {steps: [50, 80], interval: 0.3, analysis: {min_requests: 5}}\n")
    p = start_proxy(routes_file(tmp_path / "routes.yaml", {"legacy": legacy.url, "service": service.url}, plan))
    assert p.admin_call("PATCH", "/modules/cases", json={"stage": "legacy", "reason": "<script>alert(1)</script>"}).status_code == 200
    assert p.admin_call("POST", "/releases/cases", json={"action": "start"}).status_code == 200
    with httpx.Client() as c:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not any(
                "evidence" in e["detail"] for e in p.admin_call("GET", "/ledger?module=cases").json()):
            for i in range(20):
                c.get(f"{p.url}/echo/cases/{i}", headers={"cookie": f"u={i}"})
    judged = next(e for e in p.admin_call("GET", "/ledger?module=cases").json() if "evidence" in e["detail"])
    assert judged["detail"]["evidence"]["new"]["requests"] >= 5 and "p99_ms" in judged["detail"]["evidence"]["legacy"]
    browser.get(login_url(p))
    wait_for(browser, "#modules tbody tr")
    browser.get(f"{p.admin}/ui/#/module/cases")
    row = wait_for(browser, "#steps tbody tr")
    # a judged step's row: its verdict (a step taken, or a check that failed on a loaded machine) and both sides' figures
    _, verdict, _, legacy_cell, new_cell, _ = row.find_elements(By.TAG_NAME, "td")
    assert verdict.text in {"step", "released", "check_failed", "rollback"}, row.text
    assert verdict.get_attribute("class") == ("bad" if verdict.text in {"check_failed", "rollback"} else "good")
    assert "errors, p99" in legacy_cell.text and "errors, p99" in new_cell.text, row.text
    ledger = wait_for(browser, "#ledger tbody")
    WebDriverWait(browser, 5).until(lambda d: "<script>alert(1)</script>" in d.find_element(By.ID, "ledger").text)
    assert not browser.find_elements(By.CSS_SELECTOR, "#ledger script") and ledger is not None


def test_dark_scheme_phone_width_and_the_data_port_never_serves_it(cockpit: ProxyProcess, browser: WebDriver) -> None:
    browser.get(login_url(cockpit))
    wait_for(browser, "#modules tbody tr")
    light = browser.execute_script("return getComputedStyle(document.body).backgroundColor")
    browser.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": [{"name": "prefers-color-scheme", "value": "dark"}]})
    dark = browser.execute_script("return getComputedStyle(document.body).backgroundColor")
    assert (light, dark) == ("rgb(255, 255, 255)", "rgb(13, 17, 23)")
    browser.set_window_size(390, 844)  # a phone: the page fits, the wide table scrolls inside its box
    browser.get(f"{cockpit.admin}/ui/#/module/cases")
    wait_for(browser, "#module-live")
    for page in ("#/", "#/module/cases"):
        browser.get(f"{cockpit.admin}/ui/{page}")
        time.sleep(0.5)
        assert browser.execute_script("return document.documentElement.scrollWidth <= window.innerWidth + 1"), page
    # the dashboard is the admin listener's only: on the data port /ui/ is legacy's path like any other
    r = httpx.get(f"{cockpit.url}/ui/")
    assert "content-security-policy" not in r.headers and "needs a login link" not in r.text
    forwarded = httpx.post(f"{cockpit.url}/ui/tickets", headers={"authorization": f"Bearer {TOKEN}"})
    assert "expires_in" not in forwarded.text  # legacy answered it: no ticket comes from the data port


def test_shadow_differences_show_the_field_and_one_legacy_new_pair(tmp_path: Path, legacy: Upstream, service: Upstream,
                                                                   start_proxy, browser: WebDriver) -> None:  # type: ignore[no-untyped-def]
    shadowed = ("  cases:\n    match: {path_prefix: /shadow}\n    service: service\n    stage: shadow\n"
                "    shadow: {min_samples: 5}\n")
    p = start_proxy(routes_file(tmp_path / "routes.yaml", {"legacy": legacy.url, "service": service.url}, shadowed))
    with httpx.Client() as c:
        for _ in range(20):
            c.get(f"{p.url}/shadow/changed")
    browser.get(login_url(p))
    wait_for(browser, "#modules tbody tr")
    browser.get(f"{p.admin}/ui/#/module/cases")
    fields = wait_for(browser, "#shadow-fields", timeout=20)
    assert "/price" in fields.text
    legacy_side, new_side = (e.text for e in browser.find_elements(By.CSS_SELECTOR, "#shadow-pair pre"))
    assert '"price": 10' in legacy_side and '"price": 12' in new_side  # the pair, each side's body as it answered
