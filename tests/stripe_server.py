"""A real local Stripe-compatible server (the ``localstripe`` package) for the tests.

``start()`` runs it on a free loopback port in a subprocess and waits until it answers;
the official ``stripe`` SDK is pointed at it through ``STRIPE_API_BASE``. Stripe's own
servers are never contacted. ``client()`` is an SDK client for the test's own checks
(counting PaymentIntents, making card tokens, finishing 3-D Secure).
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass

import stripe

SECRET_KEY = "sk_test_local"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class LocalStripe:
    process: subprocess.Popen
    url: str

    def client(self) -> stripe.StripeClient:
        return stripe.StripeClient(SECRET_KEY, base_addresses={"api": self.url},
                                   max_network_retries=0)

    def intents(self, **metadata: str) -> list:
        """Every PaymentIntent at the server whose metadata has these values."""
        found, after = [], None
        while True:
            params = {"limit": 100, **({"starting_after": after} if after else {})}
            page = self.client().v1.payment_intents.list(params=params)
            for pi in page.data:
                if all(str(pi.metadata.to_dict().get(k)) == str(v) for k, v in metadata.items()):
                    found.append(pi)
            if not page.has_more:
                return found
            after = page.data[-1].id

    def card_token(self, number: str = "4242424242424242") -> str:
        token = self.client().v1.tokens.create(params={"card": {
            "number": number, "exp_month": "12", "exp_year": "2031", "cvc": "123"}})
        return token.id

    def authenticate(self, intent_id: str, client_secret: str, success: bool = True) -> None:
        """What the customer's click in the bank's 3-D Secure dialog does."""
        body = json.dumps({"key": "pk_test_local", "client_secret": client_secret}).encode()
        request = urllib.request.Request(
            f"{self.url}/v1/payment_intents/{intent_id}/_authenticate"
            f"?success={'true' if success else 'false'}", data=body, method="POST")
        urllib.request.urlopen(request, timeout=5).read()

    def flush(self) -> None:
        """Forget every object (each test starts with an empty Stripe account)."""
        request = urllib.request.Request(f"{self.url}/_config/data", method="DELETE")
        urllib.request.urlopen(request, timeout=5).read()

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()


def start() -> LocalStripe:
    port = _free_port()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "localstripe", "--port", str(port), "--from-scratch"], env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("localstripe exited at start")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                break
        except OSError:
            time.sleep(0.1)
    else:
        process.kill()
        raise RuntimeError("localstripe did not start")
    return LocalStripe(process, url)


def closed_port_url() -> str:
    """An address where nothing listens (a Stripe that cannot be reached)."""
    return f"http://127.0.0.1:{_free_port()}"
