"""test_wachat_live_browser.py - Wachat's live QR page (GET /wachat/instance/qr/live) in headless
Chromium against `wagate sandbox` (issue 7): the page fits a 420x460 iframe, shows the current
QR (the image decodes, with zbarimg, to the engine's real pairing string), replaces it when the
engine rotates the QR (WAGATE_QR_FIRST_MS / WAGATE_QR_NEXT_MS are set short here), and turns
into "Connected" with the linked number after a sandbox phone scans the code it shows.

Chromium is driven over the DevTools protocol from the standard library (tests/browser/cdp.py:
--headless=new, a temporary --user-data-dir, --no-sandbox when running as root, the whole
process group ended by its PID). Without Chromium (Debian package `chromium`, installed by
scripts/deps.sh) the test fails when CI=true and is skipped with a message otherwise.
"""
import base64
import os
import sys
import time

from harness import Server
from test_dialect_wachat import png_text
from test_link import Sandbox

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "browser"))
import cdp  # noqa: E402

ADMIN = "wga_wachat_live_admin_key_0123456789"
TIMEOUT = 20  # seconds for each thing the page must show

STATE_JS = """JSON.stringify((function () {
  var img = document.getElementById('qr'), ok = document.getElementById('ok');
  var de = document.documentElement || {scrollWidth: 0, scrollHeight: 0};
  return {state: document.body ? document.body.dataset.state : null,
          rotations: document.body ? Number(document.body.dataset.rotations) : 0,
          src: img ? img.src : '',
          shown: !!img && !img.hidden && img.complete && img.naturalWidth > 0,
          imgBox: img ? [img.getBoundingClientRect().width, img.getBoundingClientRect().height] : [],
          connected: !!ok && !ok.hidden,
          title: ok ? ok.querySelector('h2').textContent : '',
          number: document.getElementById('number') ? document.getElementById('number').textContent : '',
          scroll: [de.scrollWidth, de.scrollHeight], view: [innerWidth, innerHeight]};
})())"""


def page_state(b):
    import json
    return json.loads(b.evaluate(STATE_JS))


def wait_page(b, pred, what, srv):
    deadline = time.time() + TIMEOUT
    s = None
    while time.time() < deadline:
        try:
            s = page_state(b)
        except RuntimeError:  # evaluated while the document was being replaced: ask again
            time.sleep(0.1)
            continue
        if pred(s):
            return s
        time.sleep(0.1)
    raise AssertionError("live page: timed out waiting for %s (last %r)\n%s" % (
        what, {k: (v[:60] if isinstance(v, str) else v) for k, v in (s or {}).items()},
        srv.stderr()[-2000:]))


def api_code(srv, api, key):
    st, _, q = srv.request("GET", "/wachat/instance/qr?instanceName=" + api, token=key)
    assert st == 200 and q["qrcode"], (st, q)
    return q["qrcode"]["code"]


def src_text(src):
    assert src.startswith("data:image/png;base64,"), src[:40]
    return png_text(base64.b64decode(src[len("data:image/png;base64,"):]))


def test_wachat_live_page_in_headless_chromium():
    if not cdp.find_chromium():
        msg = "chromium not installed (Debian package `chromium`; scripts/deps.sh installs it)"
        if os.environ.get("CI") == "true":
            raise AssertionError(msg)
        print("SKIP test_wachat_live_page_in_headless_chromium: " + msg, flush=True)
        return
    sb = Sandbox().start()
    srv = None
    try:
        srv = Server(env={"WAGATE_ADMIN_KEY": ADMIN, "WAGATE_WA_URL": sb.url(),
                          "WAGATE_WA_ROOT_KEY": sb.root, "WAGATE_RATE_CREATE": "0",
                          "WAGATE_RATE_READ": "0", "WAGATE_RATE_WRITE": "0",
                          "WAGATE_WA_PREKEYS_INITIAL": "50", "WAGATE_WORKERS": "1",
                          "WAGATE_QR_WAIT_MS": "10000", "WAGATE_QR_FIRST_MS": "4000",
                          "WAGATE_QR_NEXT_MS": "3000"}).start()
        st, _, js = srv.request("POST", "/v1/accounts", {"name": "live", "plan": "pro"},
                                token=ADMIN)
        assert st == 201, js
        key = js["data"]["apiKey"]
        st, _, js = srv.request("POST", "/wachat/instance/create",
                                {"instanceName": "live-page"}, token=key, timeout=30)
        assert st == 201, (st, js)
        live = js["qrcode"]["liveUrl"]
        api = js["instance"]["apiInstanceName"]
        assert live == ("http://127.0.0.1:%d/wachat/instance/qr/live?instanceName=%s&apiKey=%s"
                        % (srv.port, api, key)), live
        with cdp.Chromium(timeout=TIMEOUT) as b:
            b.navigate(live)
            # the current QR, visible, the real pairing string, inside 420x460
            s = wait_page(b, lambda s: s["state"] == "qr" and s["shown"], "a QR", srv)
            # the image is a QR the engine really shows: one the API reports around the time
            # the page holds it (the page polls every 1.5 s, so it may lag one rotation)
            seen, deadline = {js["qrcode"]["code"]}, time.time() + TIMEOUT
            while True:
                seen.add(api_code(srv, api, key))
                s = page_state(b)
                text = src_text(s["src"])
                seen.add(api_code(srv, api, key))
                if text in seen or time.time() > deadline:
                    break
                time.sleep(0.2)
            assert text in seen, (text, seen)
            assert text.startswith("https://wa.me/settings/linked_devices#") or \
                text.count(",") >= 3, text
            first = s["src"]
            assert s["view"] == [420, 460], s
            assert s["scroll"][0] <= 420 and s["scroll"][1] <= 460, s
            assert s["imgBox"][0] >= 200 and s["imgBox"][1] >= 200, s
            assert not s["connected"], s
            # rotation: the engine shows a new ref; the page swaps the image by itself
            s = wait_page(b, lambda s: s["state"] == "qr" and s["shown"] and
                          s["src"] != first and s["rotations"] >= 1, "a rotated QR", srv)
            rotated = src_text(s["src"])
            assert rotated != text and rotated.count(",") >= 3, (rotated, text)
            # a sandbox phone scans the code the page shows now (it may rotate meanwhile:
            # then read it again)
            phone = str(5511950000000 + int(time.time()) % 100000)
            st, pj = sb.api("POST", "/phones", {"number": phone, "pushName": "Live"})
            assert st == 201, pj
            for _ in range(5):
                code = src_text(page_state(b)["src"])
                st, sj = sb.api("POST", "/phones/%s/scan" % phone, {"qr": code})
                if st == 200:
                    break
                time.sleep(0.3)
            assert st == 200, (st, sj)
            s = wait_page(b, lambda s: s["connected"], "the success message", srv)
            assert s["state"] == "connected" and s["title"] == "Connected", s
            assert s["number"] == "+" + phone, s
            assert s["scroll"][0] <= 420 and s["scroll"][1] <= 460, s
            # the success stays (no more polling turns it back)
            time.sleep(2)
            assert page_state(b)["connected"]
    finally:
        if srv:
            srv.stop()
        sb.cleanup()
