"""
`Sandbox`: the state, the WSGI app, a threaded HTTP server and the webhook sender, started
together. Requests are served concurrently (one thread per connection, keep-alive), so latency
injected into one request does not hold up the others.

"Down" faults close the listening socket, so new connections are refused, and drop the open
keep-alive connections, which is how an outage looks from a client; after `down_for` seconds (or
`set_faults()` again) the server listens on the same port again.
"""

import contextlib
import logging
import socket
import threading
import time

from werkzeug.serving import ThreadedWSGIServer, WSGIRequestHandler

from .app import SandboxApp
from .seed import seed_world
from .state import DEFAULT_WEBHOOK_SECRET, SandboxState
from .webhooks import WebhookSender

logger = logging.getLogger("meetings.zoom.sandbox")


class _Handler(WSGIRequestHandler):
    def setup(self):
        super().setup()
        self.server.track(self.connection)

    def finish(self):
        try:
            super().finish()
        finally:
            self.server.untrack(self.connection)

    def handle_one_request(self):
        super().handle_one_request()
        if self.server.going_down:
            # Answer what was asked, then hang up: the next request finds the port closed.
            self.close_connection = True

    def send_response(self, code, message=None):
        self._date_sent = False
        super().send_response(code, message)

    def send_header(self, keyword, value):
        # One Date an answer, as Zoom sends: http.server adds its own in send_response and the
        # app sets Zoom's (the sandbox's clock, which tests move with advance_clock). Both went
        # out, and the client read them joined ("d1, d2"), could not parse that, and fell back
        # to its own clock: Retry-After dates became waits by the worker's clock after all.
        if keyword.lower() == "date":
            if self._date_sent:
                return
            self._date_sent = True
        super().send_header(keyword, value)

    def date_time_string(self, timestamp=None):
        # The Date http.server sends first: on the sandbox's clock too (the control API's
        # answers have no other).
        if timestamp is None:
            timestamp = self.server.app.state.now()
        return super().date_time_string(timestamp)

    def log_request(self, code="-", size="-"):
        logger.debug("%s %s %s", self.command, self.path.split("?")[0], code)

    def log_error(self, format, *args):
        logger.debug("sandbox http: " + format, *args)


class _Server(ThreadedWSGIServer):
    def __init__(self, *args, **kwargs):
        self.connections = {}
        self.connections_lock = threading.Lock()
        self.going_down = False
        super().__init__(*args, **kwargs)

    def track(self, connection):
        with self.connections_lock:
            self.connections[connection] = threading.get_ident()

    def untrack(self, connection):
        with self.connections_lock:
            self.connections.pop(connection, None)

    def drop_connections(self):
        """Hang up every open connection but the current thread's (which may be the control
        request that asked for the outage: it gets its answer, then going_down closes it)."""
        me = threading.get_ident()
        with self.connections_lock:
            connections = [c for c, ident in self.connections.items() if ident != me]
        for connection in connections:
            with contextlib.suppress(OSError):  # already closed by the client
                connection.shutdown(socket.SHUT_RDWR)


class Sandbox:
    """A Zoom stand-in over real HTTP. `Sandbox(...).start()` serves it in a daemon thread."""

    def __init__(
        self,
        seed=None,
        latency_ms=0,
        plan="pro",
        token_ttl=3600,
        webhook_url=None,
        webhook_secret=None,
        *,
        contract=False,
        spec_path=None,
        clock=None,
        daily_limits=None,
    ):
        self.state = SandboxState(
            seed=seed,
            plan=plan,
            token_ttl=token_ttl,
            latency_ms=latency_ms,
            clock=clock,
            daily_limits=daily_limits,
        )
        self.webhooks = WebhookSender(self.state)
        self.state.webhook_sender = self.webhooks
        self.state.on_down_change = self._on_down_change
        if webhook_url or webhook_secret:
            self.state.set_webhook(webhook_url, webhook_secret)
        if seed is not None:
            seed_world(self.state, seed=seed)
        checker = None
        if contract:
            from .contract import ContractChecker

            checker = ContractChecker(spec_path)
            self.state.contract_checking = True
        self.app = SandboxApp(self.state, checker)
        self.host = "127.0.0.1"
        self.port = None
        self._server = None
        self._thread = None
        self._lifecycle = threading.RLock()
        self._up_timer = None

    # --- addresses -------------------------------------------------------------------------
    @property
    def url(self):
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def api_url(self):
        return self.url + "/v2"

    @property
    def oauth_url(self):
        return self.url

    # --- lifecycle -------------------------------------------------------------------------
    def start(self, host="127.0.0.1", port=0):
        self.host = host
        self.webhooks.start()
        self._listen(port)
        return self

    def stop(self):
        with self._lifecycle:
            if self._up_timer is not None:
                self._up_timer.cancel()
                self._up_timer = None
            self._close_server()
        self.webhooks.stop()

    def __enter__(self):
        return self.start() if self._server is None else self

    def __exit__(self, *exc):
        self.stop()

    def _listen(self, port, attempts=50):
        with self._lifecycle:
            if self._server is not None:
                return
            for attempt in range(attempts):
                try:
                    server = _Server(self.host, port, self.app, handler=_Handler)
                    break
                except SystemExit:
                    # werkzeug exits when the port is busy; right after going down it can be
                    # the old socket in TIME_WAIT or a lingering accept: try again shortly.
                    if attempt == attempts - 1:
                        raise OSError(f"sandbox cannot listen on {self.host}:{port}") from None
                    time.sleep(0.05)
            self._server = server
            self.port = server.port
            self._thread = threading.Thread(
                target=server.serve_forever,
                kwargs={"poll_interval": 0.05},
                name=f"zoom-sandbox-{self.port}",
                daemon=True,
            )
            self._thread.start()

    def _close_server(self):
        server, thread = self._server, self._thread
        if server is None:
            return
        server.going_down = True
        server.shutdown()
        server.server_close()
        server.drop_connections()
        if thread is not None and thread is not threading.current_thread():
            thread.join(5)
        self._server = None
        self._thread = None

    def _on_down_change(self, down, mode, down_for):
        with self._lifecycle:
            if self._up_timer is not None:
                self._up_timer.cancel()
                self._up_timer = None
            if down and mode == "refuse":
                self._close_server()
            elif not down and self._server is None and self.port is not None:
                self._listen(self.port)
            if down and down_for:
                self._up_timer = threading.Timer(down_for, self._come_back_up)
                self._up_timer.daemon = True
                self._up_timer.start()

    def _come_back_up(self):
        with self._lifecycle:
            self._up_timer = None
            self.state.come_back_up()
            if self._server is None and self.port is not None:
                self._listen(self.port)

    def reset(self, seed=None, *, plan="pro", token_ttl=3600, latency_ms=0):
        """A fresh world on the same server: back up if it was down, no faults, no webhook
        target, the default apps, account and owner only (plus seeded data if seed is given)."""
        state = self.state
        if state.faults.down or not self.is_listening:
            state.set_faults()
            if not self.is_listening and self.port is not None:
                self._listen(self.port)
        self.webhooks.clear()
        state.reset(seed=seed, plan=plan, token_ttl=token_ttl)
        with state.lock:
            state.base_latency_ms = latency_ms
            state.set_webhook(None, DEFAULT_WEBHOOK_SECRET)
        if seed is not None:
            seed_world(state, seed=seed)
        return self

    def take_contract_violations(self):
        """The contract violations recorded so far, cleared."""
        with self.state.lock:
            violations = list(self.state.contract_violations)
            self.state.contract_violations.clear()
        return violations

    @property
    def is_listening(self):
        return self._server is not None
