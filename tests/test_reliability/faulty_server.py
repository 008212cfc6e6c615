"""An HTTP server on 127.0.0.1 that misbehaves on request.

``files`` maps a path (without the leading ``/``) to its body; ``modes``
maps a path to how it is served:

- ``'ok'`` (default): ``Content-Length`` and the whole body;
- ``'no_length_cut'``: no ``Content-Length``, half the body, then close;
- ``'trickle'``: ``Content-Length``, then one byte every ``trickle_s``;
- ``'trickle_headers'``: the status line, then one header byte every
  ``trickle_s`` for at most ``trickle_headers_s`` seconds, then close;
- ``'endless'``: no ``Content-Length``; the body, then zeros until the client
  hangs up;
- ``'announce'``: ``Content-Length: announced[path]``, then as ``'endless'``.

``sent`` maps a path to the body bytes written so far.
"""
import itertools
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Dict, List


class FaultyServer:
    """Serves ``files``; records every requested path in ``requests``."""

    def __init__(self, trickle_s: float = 0.2) -> None:
        self.files: Dict[str, bytes] = {}
        self.modes: Dict[str, str] = {}
        self.requests: List[str] = []
        self.announced: Dict[str, int] = {}
        self.sent: Dict[str, int] = {}
        self.trickle_s = trickle_s
        self.trickle_headers_s = 15.0
        self.stop = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = 'HTTP/1.0'

            def do_GET(self) -> None:  # noqa: N802
                name = self.path.lstrip('/')
                server.requests.append(name)
                body = server.files.get(name)
                if body is None:
                    self.send_error(404, 'Not Found')
                    return
                mode = server.modes.get(name, 'ok')
                self.send_response(200)
                if mode == 'trickle_headers':
                    self.trickle_headers()
                    return
                self.send_header('Content-Type', 'application/octet-stream')
                if mode == 'announce':
                    self.send_header('Content-Length',
                                     str(server.announced[name]))
                elif mode not in ('no_length_cut', 'endless'):
                    self.send_header('Content-Length', str(len(body)))
                self.end_headers()
                if mode in ('endless', 'announce'):
                    self.endless(name, body)
                elif mode == 'no_length_cut':
                    self.wfile.write(body[:len(body) // 2])
                elif mode == 'trickle':
                    for i in range(len(body)):
                        if server.stop.wait(server.trickle_s):
                            return
                        self.wfile.write(body[i:i + 1])
                        self.wfile.flush()
                else:
                    self.wfile.write(body)

            def trickle_headers(self) -> None:
                end = time.monotonic() + server.trickle_headers_s
                try:
                    self.flush_headers()
                    self.wfile.write(b'X-Slow: ')
                    while time.monotonic() < end:
                        if server.stop.wait(server.trickle_s):
                            return
                        self.wfile.write(b'x')
                        self.wfile.flush()
                except OSError:  # the client hung up
                    pass

            def endless(self, name: str, body: bytes) -> None:
                zeros = bytes(1 << 20)
                server.sent[name] = 0
                try:
                    for chunk in itertools.chain([body],
                                                 itertools.repeat(zeros)):
                        if server.stop.is_set():
                            return
                        self.wfile.write(chunk)
                        server.sent[name] += len(chunk)
                except OSError:  # the client hung up
                    pass

            def log_message(self, *args) -> None:
                pass

        class QuietServer(ThreadingHTTPServer):
            """Clients this server serves hang up on purpose; socketserver
            would print each such error's traceback to stderr, where the
            tests look for tracebacks of the tools."""

            def handle_error(self, request, client_address) -> None:
                pass

        self.httpd = QuietServer(('127.0.0.1', 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f'http://127.0.0.1:{self.httpd.server_address[1]}'
        self.thread = threading.Thread(target=self.httpd.serve_forever,
                                       daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.stop.set()
        self.httpd.shutdown()
        self.httpd.server_close()
