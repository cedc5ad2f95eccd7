"""The page `balance-tui web` serves in place of textual-serve's own, which names its script, stylesheet and
WebSocket by absolute URLs built from the address `web` listens on (`http://127.0.0.1:8766/...`) and loads
its font from fonts.googleapis.com. Here every URL is relative to the page: whatever address and port the
browser reached it by (`ssh -L 9000:127.0.0.1:8766 desk` and http://localhost:9000/) is the one its script,
font and WebSocket come from, and nothing is asked of any other machine (the font is the one textual-serve
ships, served from its static folder; `CSP` tells the browser to refuse anything else).

textual-serve's script (static/js/textual.js) reads the WebSocket's address from the terminal element's
`data-session-websocket-url` when the page has loaded: the inline script below sets it from the page's own
location first. The classes the script sets (`-first-byte`, `-closed`) drive the dialogs, as in the original.
"""

from __future__ import annotations

import html

# Nothing but this origin: the page, its script, its stylesheet, its font and its WebSocket ('self' covers
# ws:/wss: to the same host and port). The two inline pieces (style, the script that sets the socket's URL)
# need 'unsafe-inline'; what they run is this page's own text, never anything a venue or a server sent.
CSP = (
    "default-src 'none'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "font-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'"
)

PAGE = """<!DOCTYPE html>
<html>
  <head>
    <meta charset="utf-8" />
    <title>{title}</title>
    <link rel="stylesheet" href="static/css/xterm.css" />
    <script src="static/js/textual.js"></script>
    <style>
      @font-face {{
        font-family: "Roboto Mono";
        src: url("static/fonts/RobotoMono-VariableFont_wght.ttf") format("truetype");
        font-style: normal;
      }}
      @font-face {{
        font-family: "Roboto Mono";
        src: url("static/fonts/RobotoMono-Italic-VariableFont_wght.ttf") format("truetype");
        font-style: italic;
      }}
      body {{ background: #0c181f; margin: 0; }}
      .dialog-container {{
        position: absolute; width: 100vw; height: 100vh; display: flex; align-items: center;
        justify-content: center; z-index: 10;
      }}
      .shade {{ position: absolute; width: 100%; height: 100%; background: #0c181f; }}
      .intro {{
        width: 640px; height: 240px; font-size: 16px; z-index: 20; font-family: "Roboto Mono", monospace;
        text-align: center; color: rgba(255, 255, 255, 0.95); background-color: #12232d; display: flex;
        flex-direction: column; align-items: center; justify-content: center; margin: 32px;
      }}
      body.-first-byte .intro-dialog, body.-first-byte .intro-dialog .shade {{ display: none; }}
      body .textual-terminal {{ opacity: 0; transition: opacity 0.3s ease-out; }}
      body.-first-byte .textual-terminal {{ opacity: 1; }}
      button {{
        padding: 16px 32px; background-color: #5e0ba7; color: rgba(255, 255, 255, 0.95); border: none;
        font-family: "Roboto Mono", monospace; margin: 16px; cursor: pointer;
      }}
      .closed-dialog {{ display: none; }}
      body.-closed .closed-dialog {{ display: flex; }}
    </style>
  </head>
  <body>
    <div class="dialog-container intro-dialog">
      <div class="shade"></div>
      <div class="intro"><div>{title}</div></div>
    </div>
    <div class="dialog-container closed-dialog">
      <div class="shade"></div>
      <div class="intro">
        <div>Session ended.</div>
        <button type="button" onclick="window.location.reload()">Restart</button>
      </div>
    </div>
    <div id="terminal" class="textual-terminal" data-font-size="{font_size}"></div>
    <script>
      (() => {{
        const socket = new URL("ws", window.location.href);
        socket.protocol = window.location.protocol === "https:" ? "wss:" : "ws:";
        socket.search = "";
        socket.hash = "";
        document.getElementById("terminal").dataset.sessionWebsocketUrl = socket.href;
      }})();
    </script>
  </body>
</html>
"""


def index_html(title: str, font_size: int) -> str:
    """The page, for a session of `font_size` pixels (textual-serve's `?fontsize=`)."""
    return PAGE.format(title=html.escape(title), font_size=int(font_size))
