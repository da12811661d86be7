"""luci-app-lvn in a real browser: OpenWrt's uhttpd, rpcd and luci-base
(built by scripts/owrt-userland.sh) serve the app on the router of
tests/kernel/site.py; Debian's headless Chromium, driven by Selenium,
runs inside the router's network namespace and talks to 127.0.0.1 there.

Any JavaScript console error fails the test; screenshots go to build/luci/
(docs/openwrt.md shows them).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest

from .netns import scaled
from .router import ENV, ROOT
from .site import UCI_TUNNEL, Site, router_site

# a userspace scenario: once, in the oldest kernel's VM, which make test
# boots beside the host stages (docs/testing.md)
pytestmark = pytest.mark.oldest

PORT = 8080
URL = f"http://127.0.0.1:{PORT}"
SHOTS = ROOT / "build" / "luci"
PASSWORD = "lvn-test"
# LuCI probes cgi-io's /cgi-bin/cgi-exec while it waits for an apply; the
# web stack built here has no cgi-io (a separate OpenWrt package): a 404
CGI_IO_404 = "/cgi-bin/cgi-exec?"
# LuCI serves its login form with status 403 (not a JavaScript error)
LOGIN_403 = "- Failed to load resource: the server responded with a status of 403 (Forbidden)"
# what LuCI throws when the browser cancels its pending requests because the
# test navigates to another page (the status page polls every 5 s)
NAVIGATION_ABORT = "Uncaught Error: XHR request aborted by browser"

# the first boot of an image with uhttpd and luci-base (as selftest.sh does);
# LuCI's requests get ten minutes, not uhttpd's 60 s: with another test file
# running beside it in the emulated VM, pages were killed mid-answer (502)
WEB_SETUP = f"""
for f in /etc/uci-defaults/*; do sh "$f" >/dev/null && rm -f "$f"; done
uci add_list uhttpd.main.ucode_prefix='/cgi-bin/luci=/usr/share/ucode/luci/uhttpd.uc'
uci -q delete uhttpd.main.lua_prefix || true
uci -q delete uhttpd.main.listen_http || true
uci -q delete uhttpd.main.listen_https || true
uci add_list uhttpd.main.listen_http=127.0.0.1:{PORT}
uci set uhttpd.main.script_timeout=600
uci commit uhttpd
/etc/init.d/uhttpd start
"""


def crypt(password: str) -> str:
    return subprocess.run(["openssl", "passwd", "-1", password], capture_output=True,
                          text=True, check=True).stdout.strip()


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    if shutil.which("chromedriver") is None:
        pytest.fail("chromium-driver is not installed (scripts/setup-deps.sh installs it)")
    with router_site(tmp_path_factory.mktemp("luci")) as s:
        if not (ROOT / "build" / "owrt" / "root" / "usr" / "sbin" / "uhttpd").exists():
            pytest.skip("OpenWrt's web stack is not built: these tests did NOT run")
        s.router.sh(f"opkg install {s.ipk}/kmod-ipudp_*.ipk {s.ipk}/lvn_*-1_all.ipk "
                    f"{s.ipk}/lvn-server_*-1_all.ipk "
                    f"{s.ipk}/luci-app-lvn_*.ipk")
        s.wait_ready()
        s.router.sh(UCI_TUNNEL)
        s.wait(lambda: s.remote() == "10.99.0.2", 60, "the tunnel to the peer")
        # root's password (the sandbox's /etc/shadow is its own copy) and a
        # second login whose ACL has nothing of lvn
        hashed = crypt(PASSWORD)
        users = (f"\nconfig login\n\toption username 'guest'\n"
                 f"\toption password '{hashed}'\n\tlist read 'unrelated'\n")
        s.router.sh(f"sed -i 's|^root:[^:]*:|root:{hashed}:|' /etc/shadow && "
                    f"cat >> /etc/config/rpcd <<'EOF'\n{users}EOF\n")
        s.router.sh(WEB_SETUP)
        s.wait(lambda: s.router.sh(f"curl -s -o /dev/null -w '%{{http_code}}' {URL}/cgi-bin/luci/",
                                   check=False) == "403", 60, "uhttpd to serve LuCI")
        yield s


class Browser:
    """Chromium in the router's netns (the thread stays in it while the
    browser is used: chromedriver's connections are made from there)."""

    def __init__(self) -> None:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service

        opts = webdriver.ChromeOptions()
        for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                    "--disable-gpu", "--window-size=1280,1000"):
            opts.add_argument(arg)
        opts.binary_location = shutil.which("chromium") or "chromium"
        opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        # get() returns at once; open() waits for the new document itself.
        # With chromedriver's own wait ("normal"), a page of a TCG guest
        # beside the host stages exceeded 300 s in CI ("Timed out receiving
        # message from renderer") while the page was still loading its scripts
        opts.page_load_strategy = "none"
        self.d = webdriver.Chrome(options=opts, service=Service(shutil.which("chromedriver")))
        # a busy TCG guest has taken over 120 s for one page: the page load
        # may take 300 s, and selenium's own request to chromedriver longer
        # still (its default, 120 s, ended the wait first; no public setter
        # in selenium 4.51's Chrome)
        self.d.set_page_load_timeout(scaled(300))
        self.d.command_executor._client_config.timeout = scaled(400)
        self.errors: list[str] = []
        self.forbidden_expected = False  # a test that expects HTTP 403 pages

    def console_errors(self) -> list[str]:
        self.errors += [e["message"] for e in self.d.get_log("browser")
                        if e["level"] == "SEVERE"
                        and not (e["message"].startswith(f"{URL}/cgi-bin/luci/")
                                 and e["message"].endswith(LOGIN_403))
                        and NAVIGATION_ABORT not in e["message"]
                        and not (self.forbidden_expected and "status of 403" in e["message"])
                        and CGI_IO_404 not in e["message"]]
        return self.errors

    def wait(self, cond: Any, timeout: float, what: str) -> Any:
        from selenium.common.exceptions import StaleElementReferenceException
        from selenium.webdriver.support.ui import WebDriverWait
        try:
            # the status page replaces its rows on every poll
            return WebDriverWait(self.d, scaled(timeout), poll_frequency=0.5,
                                 ignored_exceptions=(StaleElementReferenceException,)
                                 ).until(cond)
        except Exception as e:
            self.shot("failure")
            log = [e["message"] for e in self.d.get_log("browser")]
            raise AssertionError(f"the browser waited {timeout} s for {what}: {e!r}; "
                                 f"console: {log}; errors: {self.console_errors()}") from None

    def css(self, selector: str) -> Any:
        from selenium.webdriver.common.by import By
        return self.wait(lambda d: d.find_element(By.CSS_SELECTOR, selector), 300, selector)

    def open(self, path: str) -> None:
        """Navigate and wait until the new document has been parsed (the
        old one is marked first, so its elements are never mistaken for
        the new page's)."""
        self.d.execute_script("window.lvnOldPage = true")
        self.d.get(f"{URL}{path}")
        self.wait(lambda d: d.execute_script(
            "return !window.lvnOldPage && document.readyState !== 'loading'"), 300,
            f"the page {path}")

    def login(self, user: str, path: str = "/cgi-bin/luci/",
              expect_session: bool = True) -> None:
        """Log in on the page at path: LuCI answers it with its login form
        and, once logged in, with the page itself."""
        # every site's cookies: selenium's delete_all_cookies() deletes only
        # the current page's (none on the blank page an earlier test left)
        self.d.execute_cdp_cmd("Network.clearBrowserCookies", {})
        self.open(path)
        self.css("#luci_username").clear()
        self.css("#luci_username").send_keys(user)
        self.css("#luci_password").send_keys(PASSWORD)
        self.css("button.cbi-button-positive").click()
        if expect_session:
            self.wait(lambda d: d.get_cookie("sysauth_http") is not None, 120,
                      "the login cookie")
        else:
            # a session, a refused login (the form again, with a message) or
            # a 403 page
            self.wait(lambda d: d.get_cookie("sysauth_http") is not None
                      or "Invalid username" in d.page_source
                      or "HTTP ERROR 403" in d.page_source, 120, "the answer to the login")

    def shot(self, name: str) -> None:
        SHOTS.mkdir(parents=True, exist_ok=True)
        self.d.save_screenshot(str(SHOTS / f"{name}.png"))

    def quit(self) -> None:
        self.d.quit()


@pytest.fixture(scope="module")
def chromium(site: Site) -> Iterator[Browser]:
    """One browser for the module's tests: under TCG each start of Chromium
    cost the guest tens of CPU seconds."""
    with site.r.entered():
        b = Browser()
        try:
            yield b
        finally:
            b.quit()


@pytest.fixture
def browser(chromium: Browser) -> Iterator[Browser]:
    """The module's browser, its console errors checked per test; the test's
    page is left for a blank one, so that its polling ends with the test."""
    chromium.errors, chromium.forbidden_expected = [], False
    yield chromium
    try:
        assert chromium.console_errors() == [], "JavaScript console errors"
    finally:
        chromium.d.get("about:blank")
        chromium.d.get_log("browser")


def rx_packets(b: Browser) -> int | None:
    from selenium.webdriver.common.by import By
    for row in b.d.find_elements(By.CSS_SELECTOR, "#lvn-tunnels tr"):
        if "10.99.0.2" in row.text:
            cell = row.find_elements(By.CSS_SELECTOR, "[data-name=rx_packets]")
            return int(cell[0].text) if cell else None
    return None


def test_status_page_shows_live_counters(site: Site, browser: Browser) -> None:
    browser.login("root", "/cgi-bin/luci/admin/services/lvn/status")
    first = browser.wait(lambda d: rx_packets(browser), 120, "the tunnel row")
    browser.wait(lambda d: "valid" in d.find_element("css selector",
                                                     "#lvn-status [data-name=config]").text,
                 60, "the configuration's state")
    pings = site.r.popen("ping", "-i", "0.3", "-w", str(int(scaled(120))), "10.51.0.2",
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        # the page polls every 5 s: no reload, the numbers move by themselves
        browser.wait(lambda d: (rx_packets(browser) or 0) >= first + 5, 90,
                     "rx_packets to grow while traffic flows")
    finally:
        pings.kill()
        pings.wait()
    browser.shot("status")


def test_login_without_lvn_acl_gets_neither_page_nor_calls(site: Site, browser: Browser) -> None:
    """A login whose ACL has nothing of lvn: LuCI gives it no L-VN page
    (LuCI may refuse the whole login when the ACL grants no page at all),
    and rpcd refuses its calls to the lvn object through uhttpd."""
    browser.forbidden_expected = True
    browser.login("guest", expect_session=False)
    browser.open("/cgi-bin/luci/admin/services/lvn/status")
    assert "lvn-tunnels" not in browser.d.page_source
    assert "instantiateView('lvn/status')" not in browser.d.page_source
    browser.shot("guest")
    login = json.loads(site.router.sh(
        f"ubus call session login '{{\"username\":\"guest\",\"password\":\"{PASSWORD}\"}}'"))
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "call",
                       "params": [login["ubus_rpc_session"], "lvn", "status", {}]})
    out = subprocess.run(site.router.argv("curl", "-s", "-d", body, f"{URL}/ubus"),
                         capture_output=True, text=True, env=ENV, check=True).stdout
    assert json.loads(out)["error"]["code"] == -32002, out  # access denied
    # the same call with root's session is answered
    root = json.loads(site.router.sh(
        f"ubus call session login '{{\"username\":\"root\",\"password\":\"{PASSWORD}\"}}'"))
    body = body.replace(login["ubus_rpc_session"], root["ubus_rpc_session"])
    out = subprocess.run(site.router.argv("curl", "-s", "-d", body, f"{URL}/ubus"),
                         capture_output=True, text=True, env=ENV, check=True).stdout
    assert json.loads(out)["result"][0] == 0, out


def test_config_form_applies_and_refuses(site: Site, browser: Browser) -> None:
    browser.login("root", "/cgi-bin/luci/admin/services/lvn/config")
    port = browser.css('[id="widget.cbid.lvn.peer.remote_port"]')
    assert port.get_attribute("value") == "50003"
    browser.shot("config")
    # an invalid address: the field's datatype refuses it in the browser
    remote = browser.css('[id="widget.cbid.lvn.peer.remote"]')
    remote.clear()
    remote.send_keys("10.99.0.300")
    browser.wait(lambda d: "cbi-input-invalid" in (remote.get_attribute("class") or ""), 60,
                 "LuCI to mark the address invalid")
    remote.clear()
    remote.send_keys("10.99.0.2")
    # what LuCI's datatype lets through and the service refuses (port 0):
    # refused with lvn config validate's message, nothing staged
    port = browser.css('[id="widget.cbid.lvn.peer.remote_port"]')
    port.clear()
    port.send_keys("0")
    browser.css(".cbi-page-actions .cbi-button-apply").click()
    errors = browser.css("#lvn-errors")
    browser.wait(lambda d: "remote_port" in errors.text, 60, "the refusal")
    assert "lvn.peer.remote_port: 0 is out of range 1-65535" in errors.text, errors.text
    browser.d.execute_script("window.scrollTo(0, 0)")  # LuCI's notifications are on top
    browser.shot("config-refused")
    assert site.router.sh("uci get lvn.peer.remote_port").strip() == "50003"
    # nothing was staged in the session either: a fresh page shows the old value
    browser.open("/cgi-bin/luci/admin/services/lvn/config")
    assert browser.css('[id="widget.cbid.lvn.peer.remote_port"]').get_attribute(
        "value") == "50003"
    # a valid change: Save & Apply, procd's reload trigger, the kernel follows
    port = browser.css('[id="widget.cbid.lvn.peer.remote_port"]')
    port.clear()
    port.send_keys("50004")
    browser.css(".cbi-page-actions .cbi-button-apply").click()
    browser.wait(lambda d: site.k.device("lvn1").tunnels[0].remote_port == 50004, 120,
                 "the applied change in the kernel")
    assert site.router.sh("uci get lvn.peer.remote_port").strip() == "50004"
    # LuCI confirms the apply (else rpcd rolls it back after apply_rollback)
    browser.wait(lambda d: "Configuration changes applied." in d.page_source, 120,
                 "LuCI to confirm the apply")
    browser.shot("config-applied")


def test_markup_from_the_service_is_shown_as_text(site: Site, browser: Browser) -> None:
    """Markup in the configuration (a login with only the write ACL can
    store it): the service's refusal quotes the value, and the status page
    shows that as text; no element is made of it (LuCI inserts bare
    strings as HTML)."""
    site.router.sh("cp /etc/config/lvn /tmp/lvn.good && "
                   "uci set lvn.peer.remote='<b id=x>' && uci commit lvn && "
                   "{ ubus call lvn reload || true; }")
    try:
        browser.login("root", "/cgi-bin/luci/admin/services/lvn/status")
        browser.wait(lambda d: "<b id=x>" in d.find_element(
            "css selector", "#lvn-status [data-name=config]").text, 90,
            "the refusal, quoting the value as text")
        assert browser.d.find_elements("css selector", "#x") == []
        # a section type with markup (root can write one into the file; uci
        # through rpcd cannot): refused as uci refuses it, nothing made of it
        site.router.sh("printf \"\\nconfig '<b id=y>' 'z'\\n\" >> /etc/config/lvn && "
                       "{ ubus call lvn reload || true; }")
        browser.wait(lambda d: "invalid character in type field" in d.find_element(
            "css selector", "#lvn-status [data-name=config]").text, 90,
            "the refusal of the section type")
        assert browser.d.find_elements("css selector", "#y") == []
    finally:
        site.router.sh("cp /tmp/lvn.good /etc/config/lvn && ubus call lvn reload")


def test_screenshots_for_the_docs() -> None:
    """docs/openwrt.md shows the screenshots this module makes."""
    doc = (ROOT / "docs" / "openwrt.md").read_text()
    for name in ("status", "config", "config-refused"):
        assert f"images/luci-{name}.png" in doc
        assert (ROOT / "docs" / "images" / f"luci-{name}.png").exists()
