"""Real receivers for what the alerts service sends: an HTTP server that verifies Standard
Webhooks signatures (and can be told to fail first), and an SMTP server (aiosmtpd). Both on
free loopback ports, in threads of the test process."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aiosmtpd.controller import Controller
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from stack.services import free_port


@dataclass
class Delivery:
    id: str
    body: dict[str, Any]


@dataclass
class WebhookReceiver:
    """Answers each POST per `script` (status codes; "timeout" hangs past the sender's timeout;
    "429 N" is a 429 with `Retry-After: N`) then 200; keeps what it accepted. A bad signature is
    a 401 and counted."""

    secret: str | None = None
    script: list[int | str] = field(default_factory=list)
    hang_s: float = 3.0
    accepted: list[Delivery] = field(default_factory=list)
    attempts: list[str] = field(default_factory=list)
    bad_signatures: int = 0
    url: str = ""

    def unique(self) -> dict[str, Delivery]:
        """Accepted deliveries by webhook-id: what a receiver that keeps the ids acts on."""
        return {d.id: d for d in self.accepted}


@contextmanager
def webhook_receiver(receiver: WebhookReceiver) -> Iterator[WebhookReceiver]:
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", 0)))
            headers = {k.lower(): v for k, v in self.headers.items()}
            with lock:
                receiver.attempts.append(headers.get("webhook-id", ""))
                action = receiver.script.pop(0) if receiver.script else 200
            if action == "timeout":
                time.sleep(receiver.hang_s)
                action = 200
            retry_after = None
            if isinstance(action, str) and action.startswith("429 "):  # "429 <Retry-After>"
                retry_after = action.split(" ", 1)[1]
                action = 429
            if receiver.secret is not None:
                try:
                    Webhook(receiver.secret).verify(body, headers)
                except WebhookVerificationError:
                    with lock:
                        receiver.bad_signatures += 1
                    action = 401
            if action == 200:
                with lock:
                    receiver.accepted.append(Delivery(headers["webhook-id"], json.loads(body)))
            self.send_response(int(action))
            if retry_after is not None:
                self.send_header("Retry-After", retry_after)
            self.end_headers()

        def log_message(self, *_args: object) -> None:
            pass

    port = free_port()
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    receiver.url = f"http://127.0.0.1:{port}/hook"
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()


class SmtpSink:
    """A real SMTP server that keeps every message it accepts, refuses (550) mail to the
    addresses in `refused`, and answers "try again later" (451) to the next `busy` recipients."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.refused: set[str] = set()
        self.busy = 0
        self.port = free_port()
        self._controller = Controller(self, hostname="127.0.0.1", port=self.port)

    async def handle_RCPT(
        self, _server: object, _session: object, envelope: Any, address: str, _options: object
    ) -> str:
        if address in self.refused:
            return "550 no such mailbox"
        if self.busy > 0:
            self.busy -= 1
            return "451 try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, _server: object, _session: object, envelope: Any) -> str:
        message = message_from_bytes(envelope.content, policy=policy.default)
        self.messages.append(message)  # type: ignore[arg-type]
        return "250 OK"

    def unique(self) -> dict[str, EmailMessage]:
        return {str(m["Message-ID"]): m for m in self.messages}

    def __enter__(self) -> SmtpSink:
        self._controller.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._controller.stop()
