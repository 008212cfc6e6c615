"""A throw-away HTTP server on 127.0.0.1 for model-zoo tests."""
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Dict, List, Set


class ZooServer:
    """Serves ``files`` by name; records every request path.

    Names in ``truncated`` announce a Content-Length larger than the body
    and close the connection half-way.
    """

    def __init__(self) -> None:
        self.files: Dict[str, bytes] = {}
        self.truncated: Set[str] = set()
        self.requests: List[str] = []
        zoo = self

        class Handler(BaseHTTPRequestHandler):

            def do_GET(self) -> None:  # noqa: N802
                name = self.path.lstrip('/')
                zoo.requests.append(name)
                body = zoo.files.get(name)
                if body is None:
                    self.send_error(404, 'Not Found')
                    return
                self.send_response(200)
                self.send_header('Content-Type', 'application/octet-stream')
                if name in zoo.truncated:
                    self.send_header('Content-Length', str(len(body) * 2))
                    self.end_headers()
                    self.wfile.write(body[:len(body) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.send_header('Content-Length', str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        self.httpd = ThreadingHTTPServer(('127.0.0.1', 0), Handler)
        self.url = f'http://127.0.0.1:{self.httpd.server_address[1]}'
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
