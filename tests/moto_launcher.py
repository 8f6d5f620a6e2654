"""Runs moto's DynamoDB-compatible server on a free loopback port for the Rust test harness.

Prints the port on stdout, then serves until its stdin closes (the test process exited or
dropped the handle), so no server outlives the tests even when they crash.

Requests are served one at a time: moto applies a transaction item by item and rolls a
failed one back by restoring a copy of the whole table, which under concurrent requests
would also undo other clients' writes. DynamoDB itself makes every write atomic, and that
is the behaviour the tests rely on. SQS requests run beside them: a long poll waits for
messages and must not hold every other client up meanwhile."""
import socket
import sys
import threading

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import make_server


class Serialized:
    """A WSGI app that runs one request (response body included) at a time."""

    def __init__(self, app):
        self.app = app
        self.lock = threading.Lock()

    def __call__(self, environ, start_response):
        if environ.get("HTTP_X_AMZ_TARGET", "").startswith("AmazonSQS."):
            return self.app(environ, start_response)
        with self.lock:
            response = self.app(environ, start_response)
            try:
                return [b"".join(response)]
            finally:
                if hasattr(response, "close"):
                    response.close()


class QuietHandler(MotoRequestHandler):
    """Keeps the test output readable: one line per request is noise, errors still print."""

    def log_request(self, code="-", size="-"):
        pass


sock = socket.socket()
sock.bind(("127.0.0.1", 0))
port = sock.getsockname()[1]
sock.close()

server = make_server(
    "127.0.0.1",
    port,
    Serialized(DomainDispatcherApplication(create_backend_app)),
    threaded=True,
    request_handler=QuietHandler,
)
threading.Thread(target=server.serve_forever, daemon=True).start()
print(port, flush=True)
sys.stdin.read()
server.shutdown()
