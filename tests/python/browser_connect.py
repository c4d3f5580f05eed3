"""The connect flow in a real browser (Debian's Chromium, driven by Playwright), as a person
and Dex go through it. Dex is played by this script: a loopback callback server, PKCE, the
token exchange, and the official OpenAI SDK through the proxy with the access token.

usage: browser_connect.py API_URL PROXY_URL SANDBOX_URL SCREENSHOT_DIR [POINDEXTER_BIN]
With POINDEXTER_BIN, `poindexter connect` plays Dex once more, end to end, as in the README.
Prints one `PASS <scenario>` line per scenario; exits non-zero on the first failure.
"""

import base64
import hashlib
import json
import os
import secrets
import subprocess
import sys
import threading
import urllib.error
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, HTTPServer

from openai import OpenAI
from playwright.sync_api import expect, sync_playwright

API, PROXY, SANDBOX, SHOTS = sys.argv[1:5]
BIN = sys.argv[5] if len(sys.argv) > 5 else None
os.makedirs(SHOTS, exist_ok=True)
PASSWORD = "correct horse 42"
WAIT_MS = 60_000
CARD = "4242 4242 4242 4242"
DECLINED = "4000 0000 0000 0002"
expect.set_options(timeout=WAIT_MS)


class Dex:
    """One Dex instance: its id, a loopback callback, and its PKCE pair."""

    def __init__(self):
        self.client_id = "dex-" + secrets.token_hex(4)
        self.verifier = secrets.token_urlsafe(48)
        self.challenge = (
            base64.urlsafe_b64encode(hashlib.sha256(self.verifier.encode()).digest())
            .rstrip(b"=")
            .decode()
        )
        # Spaces and & make sure state survives every hop exactly.
        self.state = "s " + secrets.token_urlsafe(12) + "&x"
        self.arrived = threading.Event()
        self.params = {}
        dex = self

        class Callback(BaseHTTPRequestHandler):
            def do_GET(self):
                url = urllib.parse.urlparse(self.path)
                # The browser also asks this origin for /favicon.ico: only the callback counts,
                # or that request would overwrite what the callback received.
                if url.path != "/callback":
                    self.send_response(404)
                    self.end_headers()
                    return
                q = urllib.parse.parse_qs(url.query)
                dex.params = {k: v[0] for k, v in q.items()}
                dex.arrived.set()
                self.send_response(200)
                self.send_header("content-type", "text/html")
                self.end_headers()
                self.wfile.write(b"<!doctype html><title>Dex</title><h1>Dex is connected</h1>")

            def log_message(self, *args):
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Callback)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.redirect_uri = f"http://127.0.0.1:{self.server.server_address[1]}/callback"

    def authorize_url(self):
        return API + "/oauth/authorize?" + urllib.parse.urlencode(
            {
                "response_type": "code",
                "client_id": self.client_id,
                "redirect_uri": self.redirect_uri,
                "state": self.state,
                "code_challenge": self.challenge,
                "code_challenge_method": "S256",
            }
        )

    def callback(self):
        assert self.arrived.wait(WAIT_MS / 1000), "Dex's callback was never called"
        assert self.params.get("state") == self.state, f"state changed: {self.params}"
        return self.params

    def exchange(self, code):
        return post_form(
            API + "/oauth/token",
            {
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": self.redirect_uri,
                "client_id": self.client_id,
                "code_verifier": self.verifier,
            },
        )


def post_form(url, fields):
    req = urllib.request.Request(
        url,
        data=urllib.parse.urlencode(fields).encode(),
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    with urllib.request.urlopen(req) as res:
        return json.load(res)


def get_json(url, token):
    req = urllib.request.Request(url, headers={"authorization": f"Bearer {token}"})
    with urllib.request.urlopen(req) as res:
        return json.load(res)


def post_json(url, body):
    req = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"content-type": "application/json"}
    )
    with urllib.request.urlopen(req) as res:
        return res.status


def shot(page, name):
    """The page at desktop and phone widths (for people to look at; not compared)."""
    for width in (1280, 390):
        page.set_viewport_size({"width": width, "height": 900})
        page.screenshot(path=f"{SHOTS}/{name}-{width}.png", full_page=True)
    page.set_viewport_size({"width": 1280, "height": 900})


def sign_up(page, name, email):
    expect(page.get_by_role("heading", name="Welcome to Poindexter Cloud")).to_be_visible()
    page.get_by_label("Your name").fill(name)
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()


def pay(page, card):
    expect(page.get_by_role("button", name="Pay and subscribe")).to_be_visible()
    page.get_by_label("Card number").fill(card)
    page.get_by_label("Expiration (MM / YY)").fill("12 / 34")
    page.get_by_label("CVC").fill("123")
    page.get_by_label("Cardholder name").fill("Ada Lovelace")
    page.get_by_role("button", name="Pay and subscribe").click()


def new_user_connects(browser):
    """Dex's Connect → sign-up → plan → a declined card, then a good one → live progress →
    auto-approved → code at Dex → tokens → identity → AI through the proxy with the SDK."""
    dex = Dex()
    page = browser.new_context().new_page()
    page.goto(dex.authorize_url())
    expect(page.get_by_text(f"{dex.client_id} will be connected")).to_be_visible()
    shot(page, "01-signup")
    sign_up(page, "Ada Lovelace", f"ada-{secrets.token_hex(3)}@example.com")
    expect(page.get_by_role("heading", name="Choose your plan")).to_be_visible()
    expect(page.get_by_role("button", name="Select Basic")).to_be_visible()
    expect(page.get_by_role("button", name="Select Pro")).to_be_visible()
    shot(page, "02-plans")
    page.get_by_role("button", name="Select Basic").click()
    shot(page, "03-checkout")
    pay(page, DECLINED)
    expect(page.get_by_role("alert")).to_contain_text("Your card was declined.")
    shot(page, "04-checkout-declined")
    assert not dex.arrived.is_set()
    pay(page, CARD)
    # Back from Checkout: progress, steps updated in place until the identity is active.
    expect(page.get_by_role("heading", name="Setting up your Poindexter identity…")).to_be_visible()
    shot(page, "05-progress")
    params = dex.callback()
    assert "code" in params, f"no code: {params}"
    expect(page.get_by_role("heading", name="Dex is connected")).to_be_visible()
    tokens = dex.exchange(params["code"])
    assert tokens["token_type"] == "Bearer" and 3500 < tokens["expires_in"] <= 3600, tokens
    identity = get_json(API + "/v1/identity", tokens["access_token"])
    assert identity["status"] == "active", identity
    assert identity["email"].startswith("dex-") and identity["phone"].startswith("+"), identity
    ai = OpenAI(api_key=tokens["access_token"], base_url=PROXY + "/v1")
    answer = ai.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "Hello from Dex"}]
    )
    assert answer.choices[0].message.content and answer.usage.total_tokens > 0
    refreshed = post_form(
        API + "/oauth/token",
        {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"], "client_id": dex.client_id},
    )
    assert refreshed["access_token"] != tokens["access_token"]
    assert get_json(API + "/v1/me", refreshed["access_token"])["authenticated_with"] == "oauth"
    # The portal shows the connected instance and its request.
    page.goto(API + "/instances")
    expect(page.get_by_role("cell", name=dex.client_id, exact=True)).to_be_visible()
    shot(page, "06-instances")
    page.goto(API + "/dashboard")
    expect(page.get_by_role("heading", name="Your identity")).to_be_visible()
    expect(page.get_by_text(identity["email"])).to_be_visible()
    shot(page, "07-dashboard")
    for name in ("billing", "keys", "activity"):
        page.goto(f"{API}/{name}")
        shot(page, f"08-{name}")
    print("PASS new user connects Dex in one browser session", flush=True)
    return page.context


def subscriber_connects_another_instance(browser, email):
    """An existing subscriber: log in, consent, code at Dex."""
    dex = Dex()
    page = browser.new_context().new_page()
    page.goto(dex.authorize_url())
    page.get_by_role("link", name="Log in").click()
    expect(page.get_by_role("heading", name="Log in")).to_be_visible()
    shot(page, "09-login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Authorize Poindexter instance")).to_be_visible()
    expect(page.get_by_text(f"{dex.client_id} wants to connect to your account")).to_be_visible()
    shot(page, "10-consent")
    page.get_by_role("button", name="Authorize").click()
    params = dex.callback()
    assert "code" in params, params
    dex.exchange(params["code"])
    print("PASS an existing subscriber connects a second instance (login and consent only)", flush=True)
    return page


def cancel_at_consent(page):
    dex = Dex()
    page.goto(dex.authorize_url())
    page.get_by_role("button", name="Cancel").click()
    params = dex.callback()
    assert params.get("error") == "access_denied" and "code" not in params, params
    print("PASS cancel at consent sends access_denied to Dex", flush=True)


def failed_provisioning_is_retried(browser):
    """A provider fault fails provisioning: the page shows the reason and a Retry that works."""
    status = post_json(
        SANDBOX + "/_sandbox/faults",
        {"provider": "google", "route": "/admin/directory/v1/users", "method": "POST",
         "kind": "status", "status": 400, "count": 1},
    )
    assert status == 201, status
    dex = Dex()
    page = browser.new_context().new_page()
    page.goto(dex.authorize_url())
    sign_up(page, "Grace Hopper", f"grace-{secrets.token_hex(3)}@example.com")
    page.get_by_role("button", name="Select Pro").click()
    pay(page, CARD)
    expect(page.get_by_role("heading", name="Setup did not finish")).to_be_visible(timeout=WAIT_MS)
    expect(page.get_by_role("alert")).to_contain_text("Reason:")
    shot(page, "11-provisioning-failed")
    page.get_by_role("button", name="Retry setup").click()
    params = dex.callback()
    assert "code" in params, params
    print("PASS a failed provisioning shows its reason and is retried from the page", flush=True)


def connect_command(page):
    """`poindexter connect` as Dex: it prints the authorize URL, the logged-in person
    approves in the browser, and the command exchanges, calls the api and the proxy,
    refreshes and revokes."""
    proc = subprocess.Popen(
        [BIN, "connect", "--no-open", "--revoke", "--api", API, "--proxy", PROXY,
         "--timeout-secs", "60"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    lines = []
    url = None
    for line in proc.stdout:
        lines.append(line.rstrip())
        if line.startswith("http"):
            url = line.strip()
            break
    assert url and "/oauth/authorize?" in url, lines
    page.goto(url)
    page.get_by_role("button", name="Authorize").click()
    out, err = proc.communicate(timeout=WAIT_MS / 1000)
    lines += out.splitlines()
    text = "\n".join(lines)
    assert proc.returncode == 0, f"{text}\n{err}"
    for marker in ("Connected: access token expires in", "Identity: email dex-", "AI (gpt-4o-mini):",
                   "Refreshed: new access token works", "Revoked: the grant is closed"):
        assert marker in text, f"missing {marker!r} in:\n{text}"
    assert "pdx_at_" not in text and "pdx_rt_" not in text, "a token was printed"
    print("PASS poindexter connect does what Dex does", flush=True)


def main():
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path="/usr/bin/chromium",
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"],
        )
        browser.new_context = browser_context(browser)
        first = new_user_connects(browser)
        email = first.pages[0].locator(".who .email").inner_text()
        page = subscriber_connects_another_instance(browser, email)
        cancel_at_consent(page)
        if BIN:
            connect_command(page)
        failed_provisioning_is_retried(browser)
        browser.close()


def browser_context(browser):
    make = browser.new_context

    def new_context():
        ctx = make(viewport={"width": 1280, "height": 900})
        ctx.set_default_timeout(WAIT_MS)
        return ctx

    return new_context


if __name__ == "__main__":
    main()
