"""A website using the official Segment SDK, pointed at Sodate, lands its page views in Sodate.

tests/events/browser/page.html loads @segment/analytics-next (bundled into dist/tracking.js by
scripts/ensure-browser-tools) from a static server on 127.0.0.1, on another port than Sodate, so
the tracking call is cross-origin. Headless Chromium opens it with every host name but 127.0.0.1
made unresolvable and a network log: the page view must arrive without any third-party host
(no settings from Segment's CDN), and the log shows the page asked for none.

Without chromium or the bundle the test is skipped, except in CI (CI=true), where it fails.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from html.parser import HTMLParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import urlencode, urlsplit

import httpx
import pytest

from tests.test_quickstart import SODATE, _clean_env, _free_port, _wait_healthy

BROWSER_DIR = Path(__file__).resolve().parent / "browser"
PAGE = BROWSER_DIR / "page.html"
BUNDLE = BROWSER_DIR / "dist" / "tracking.js"
LOCALHOST = "127.0.0.1"
REQUIRE_TOOLS = os.environ.get("CI") == "true"
CHROMIUM_TIMEOUT = 40.0  # seconds of real time for the whole browser run
DELIVERY_TIMEOUT = 20.0  # seconds for the page view to show on the contact


def _chromium() -> str:
    chromium = shutil.which("chromium")
    missing = [] if chromium else ["chromium"]
    if not BUNDLE.is_file():
        missing.append("tests/events/browser/dist/tracking.js")
    if missing:
        reason = f"{' and '.join(missing)} missing: run scripts/ensure-browser-tools"
        if REQUIRE_TOOLS:
            pytest.fail(f"CI needs the browser tools: {reason}")
        pytest.skip(reason)
    assert chromium
    return chromium


class _StaticFiles(BaseHTTPRequestHandler):
    """Serves page.html and the bundle, nothing else; records the paths asked for."""

    files: ClassVar[dict[str, tuple[bytes, str]]] = {}
    requested: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        self.requested.append(path)
        body, content_type = self.files.get(path, (b"not found", "text/plain"))
        self.send_response(200 if path in self.files else 404)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def _static_site() -> Iterator[tuple[str, list[str]]]:
    class Site(_StaticFiles):
        files: ClassVar[dict[str, tuple[bytes, str]]] = {
            "/page.html": (PAGE.read_bytes(), "text/html; charset=utf-8"),
            "/tracking.js": (BUNDLE.read_bytes(), "text/javascript; charset=utf-8"),
        }
        requested: ClassVar[list[str]] = []

    server = ThreadingHTTPServer((LOCALHOST, 0), Site)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://{LOCALHOST}:{server.server_address[1]}", Site.requested
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@contextmanager
def _sodate_up(data_dir: Path) -> Iterator[tuple[str, dict[str, str]]]:
    port = _free_port()
    base = f"http://{LOCALHOST}:{port}"
    env = _clean_env(data_dir)
    server = subprocess.Popen([SODATE, "up", "--port", str(port)], env=env, cwd=data_dir.parent)
    try:
        _wait_healthy(base, server)
        yield base, env
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


class _BodyAttributes(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.body: dict[str, str] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "body":
            self.body = {name: value or "" for name, value in attrs}


def _run_chromium(chromium: str, url: str, workdir: Path) -> tuple[dict[str, str], Path]:
    """Open `url`, let its scripts run, return the <body>'s attributes and the network log."""
    net_log = workdir / "netlog.json"
    command = [
        chromium,
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--no-default-browser-check",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-extensions",
        f"--user-data-dir={workdir / 'profile'}",
        # Any host but 127.0.0.1 fails to resolve: a CDN fetch could not succeed silently.
        f"--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE {LOCALHOST}",
        f"--log-net-log={net_log}",
        # Virtual time stands still while requests are pending: this waits for the tracking
        # call and its answer, then for the page's scripts, before the DOM is dumped.
        "--virtual-time-budget=15000",
        "--dump-dom",
        url,
    ]
    browser = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group: all of Chromium's processes end with it
    )
    try:
        dom, errors = browser.communicate(timeout=CHROMIUM_TIMEOUT)
    except subprocess.TimeoutExpired:
        pytest.fail(f"chromium did not finish within {CHROMIUM_TIMEOUT:.0f} s")
    finally:
        with suppress(ProcessLookupError):
            os.killpg(browser.pid, signal.SIGKILL)
        browser.wait()
    if browser.returncode != 0:
        pytest.fail(f"chromium exited with {browser.returncode}: {errors[-2000:]}")
    parser = _BodyAttributes()
    parser.feed(dom)
    return parser.body, net_log


def _page_requests(net_log: Path) -> list[str]:
    """Every URL the page (any request keyed to the 127.0.0.1 site) asked the network for.

    Chromium's own background requests (updates, accounts, …) have other network isolation keys
    and are left out; they were unresolvable anyway.
    """
    log = json.loads(net_log.read_text(encoding="utf-8"))
    start_job = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    urls = []
    for event in log["events"]:
        params = event.get("params") or {}
        if event["type"] != start_job or "url" not in params:
            continue
        top_frame_site = str(params.get("network_isolation_key", "")).split(" ")[0]
        if top_frame_site == f"http://{LOCALHOST}":
            urls.append(str(params["url"]))
    return urls


def _contact_of(base: str, headers: dict[str, str], anonymous_id: str) -> dict[str, Any]:
    """Polls until the tracking call was processed into a contact (done in the background)."""
    deadline = time.monotonic() + DELIVERY_TIMEOUT
    while True:
        response = httpx.get(
            f"{base}/api/v1/contacts",
            params={"anonymous_id": anonymous_id},
            headers=headers,
            timeout=5,
        )
        assert response.status_code == 200, response.text
        items = response.json()["items"]
        if items:
            assert len(items) == 1, items
            contact: dict[str, Any] = items[0]
            return contact
        if time.monotonic() > deadline:
            pytest.fail(f"no contact for anonymous id {anonymous_id} after {DELIVERY_TIMEOUT} s")
        time.sleep(0.25)


def _page_events(base: str, headers: dict[str, str], contact_id: str) -> list[dict[str, Any]]:
    deadline = time.monotonic() + DELIVERY_TIMEOUT
    while True:
        response = httpx.get(
            f"{base}/api/v1/contacts/{contact_id}/timeline", headers=headers, timeout=5
        )
        assert response.status_code == 200, response.text
        pages = [item for item in response.json()["items"] if item.get("type") == "page"]
        if pages or time.monotonic() > deadline:
            return pages
        time.sleep(0.25)


@pytest.mark.slow
def test_segment_analytics_next_page_view_reaches_a_contact(tmp_path: Path) -> None:
    chromium = _chromium()
    with _sodate_up(tmp_path / "var") as (base, env), _static_site() as (site, served):
        created = subprocess.run(
            [SODATE, "workspace", "create", "Browser Shop", "--json"],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        )
        keys = json.loads(created.stdout)
        write_key, admin_key = keys["write_key"]["key"], keys["admin_key"]["key"]
        assert write_key.startswith("wk_")
        sodate_host = urlsplit(base).netloc

        query = urlencode({"key": write_key, "api": sodate_host, "protocol": "http"})
        body, net_log = _run_chromium(chromium, f"{site}/page.html?{query}", tmp_path)

        state = body.get("data-tracking-state")
        assert state == "delivered", (
            f"page says {state!r}: {body.get('data-tracking-detail')} "
            f"(requests: {body.get('data-tracking-requests')})"
        )
        assert body["data-tracking-status"] == "200"
        anonymous_id = body["data-anonymous-id"]
        assert anonymous_id

        assert served[:2] == ["/page.html", "/tracking.js"], served
        requests = _page_requests(net_log)
        assert f"http://{sodate_host}/v1/p" in requests, requests
        third_party = [url for url in requests if urlsplit(url).hostname != LOCALHOST]
        assert third_party == [], f"the page contacted other hosts than {LOCALHOST}"

        headers = {"Authorization": f"Bearer {admin_key}"}
        contact = _contact_of(base, headers, anonymous_id)
        pages = _page_events(base, headers, contact["id"])
        # analytics-next puts the page's name into the properties as well.
        expected = {"path": "/page.html", "name": "Browser test", "section": "tests"}
        matching = [page for page in pages if expected.items() <= page["properties"].items()]
        assert matching, pages
