"""Open a tenant's Prefect UI in headless Chromium, log in with basic auth, and check
that the page says it is connected to its API.

Usage: python ui_check.py URL AUTH_STRING_FILE SCREENSHOT_PNG [EXPECTED_WORK_POOL [EXPECTED_FLOW]]

Exits 0 when the UI loaded, accepted the credentials and shows the dashboard with no
"Can't connect to Server API" banner, and (when given) lists the expected work
pool on its Work Pools page, which only data from the API can show, and (when given)
shows a Completed run of the expected flow on its Runs page (the screenshot is then of
that page); prints what it saw. Uses Debian's chromium
(/usr/bin/chromium) through Playwright: no browser download.
"""
from __future__ import annotations

import sys

from playwright.sync_api import sync_playwright

CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


def main() -> int:
    url, auth_file, shot = sys.argv[1:4]
    expected_pool = sys.argv[4] if len(sys.argv) > 4 else None
    expected_flow = sys.argv[5] if len(sys.argv) > 5 else None
    with open(auth_file, encoding="utf-8") as fh:
        auth = fh.read().strip()
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        page.goto(url, wait_until="networkidle", timeout=60_000)
        # Basic auth on: the UI asks for the credentials first.
        field = page.locator("input[type=password], input[type=text]").first
        field.wait_for(timeout=30_000)
        login_text = page.inner_text("body")
        field.fill(auth)
        page.keyboard.press("Enter")
        page.wait_for_load_state("networkidle", timeout=60_000)
        page.wait_for_timeout(3000)
        body = page.inner_text("body")
        pools = ""
        if expected_pool:
            page.goto(url.rstrip("/") + "/work-pools", wait_until="networkidle", timeout=60_000)
            page.wait_for_timeout(2000)
            pools = page.inner_text("body")
        runs = ""
        if expected_flow:
            page.goto(url.rstrip("/") + "/runs", wait_until="networkidle", timeout=60_000)
            for _attempt in range(15):
                page.wait_for_timeout(2000)
                runs = page.inner_text("body")
                if expected_flow in runs and "Completed" in runs:
                    break
        page.screenshot(path=shot, full_page=False)
        browser.close()
    problems = []
    if "Can't connect to Server API" in body:
        problems.append("the UI says it cannot connect to its API")
    if "Authentication failed" in body or "Invalid password" in body:
        problems.append("the UI refused the credentials")
    connected = any(word in body for word in ("Dashboard", "Flow Runs", "Runs", "Work Pools"))
    if not connected:
        problems.append("no dashboard content")
    if expected_pool and expected_pool not in pools:
        problems.append("work pool %r not listed on the Work Pools page" % expected_pool)
    if expected_flow and not (expected_flow in runs and "Completed" in runs):
        problems.append("no Completed run of flow %r on the Runs page" % expected_flow)
    print("login page text:", " | ".join(login_text.split("\n")[:5]))
    print("after login:", " | ".join(line for line in body.split("\n")[:15] if line.strip()))
    print("screenshot:", shot)
    if problems:
        print("FAILED:", "; ".join(problems))
        return 1
    print("OK: the UI is connected to its API")
    return 0


if __name__ == "__main__":
    sys.exit(main())
