"""The KPPS phones of the replay: uploads through the intake API at a set rate, in a process of
their own so that their work does not slow the replay's probes.

    python -m benchmarks.election.load PLAN RESULTS --url URL --rate R --start-at T --until T

PLAN has one upload a line (TPS, contest, token, the phone's address), in order; upload i is due
at start + i / rate, whatever happened to the ones before (an open loop: a slow intake makes
uploads late, it does not slow the arrivals). Every upload due before --until, the end of the
night, is sent, late if the intake (or the machine) is slow; one that could not even be started
within GIVE_UP_SECONDS of its due time is left unsent, as a phone gives up, so an intake far
slower than the rate lengthens the night by that much at most, and the replay says how many
were left. Each is a
real multipart POST to /api/uploads/ with its TPS's token and an Idempotency-Key, so a retry
after a lost answer is not a second document. Like a well-behaved KPPS app it waits out a 429's
Retry-After, and retries a 5xx, a timeout or a dropped connection with a growing pause, for up
to GIVE_UP_SECONDS. RESULTS gets one JSON line
per upload: [tps, contest, final status or null, due, first sent, answered, tries, errors].
"""

import argparse
import json
import os
import threading
import time
from collections import Counter
from pathlib import Path

import httpx

GIVE_UP_SECONDS = 180
PAUSES = (0.5, 1, 2, 4, 8, 15)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("plan", type=Path)
    parser.add_argument("results", type=Path)
    parser.add_argument("--url", required=True)
    parser.add_argument("--rate", type=float, required=True)
    parser.add_argument("--start-at", type=float, required=True)
    parser.add_argument("--until", type=float, required=True)
    parser.add_argument("--clients", type=int, default=48)
    options = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sirekap_tracker.settings")
    import django

    django.setup()  # simulator.kpps reads the models' modules; no query is made here
    lines = options.plan.read_text().splitlines()
    run = Run([line.split("\t") for line in lines], options)
    threads = [threading.Thread(target=run.client) for _ in range(options.clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    run.out.close()


class Run:
    def __init__(self, uploads: list[list[str]], options) -> None:
        self.uploads = uploads
        self.url = options.url
        self.rate = options.rate
        self.start = options.start_at
        self.until = options.until
        self.next = 0
        self.lock = threading.Lock()
        self.out = options.results.open("w")

    def take(self) -> int | None:
        """The next upload to send: due before the end of the night and not given up on. Which
        are sent does not hang on how many clients are free: under a slow intake the clients are
        all waiting for answers, and an upload due meanwhile is late, not dropped."""
        with self.lock:
            while self.next < len(self.uploads):
                number, self.next = self.next, self.next + 1
                due = self.due(number)
                if due >= self.until:
                    return None
                if time.time() - due <= GIVE_UP_SECONDS:
                    return number
            return None

    def due(self, number: int) -> float:
        return self.start + number / self.rate

    def client(self) -> None:
        from simulator.kpps import form_png

        with httpx.Client(base_url=self.url, timeout=30) as client:
            while (number := self.take()) is not None:
                tps, kind, token, address = self.uploads[number]
                due = self.due(number)
                time.sleep(max(0.0, due - time.time()))
                page = form_png(f"{kind}/{tps}")
                result = self.send(client, tps, kind, token, address, page)
                self.write([tps, kind, *result[:1], due, *result[1:]])

    def send(self, client: httpx.Client, tps, kind, token, address, page) -> list:
        headers = {
            "Authorization": f"Token {token}",
            "Idempotency-Key": f"replay-{kind}-{tps}",
            "X-Forwarded-For": address,
        }
        sent = time.time()
        errors: Counter = Counter()
        tries, status = 0, None
        while True:
            tries += 1
            pause = PAUSES[min(tries - 1, len(PAUSES) - 1)]
            try:
                response = client.post(
                    "/api/uploads/",
                    data={"tps": tps, "contest": kind},
                    files={"file": (f"{tps}-{kind}.png", page, "image/png")},
                    headers=headers,
                )
                status = response.status_code
            except httpx.TimeoutException:
                status, kind_of_error = None, "timeout"
            except httpx.TransportError as error:
                status, kind_of_error = None, f"connection ({type(error).__name__})"
            if status in (200, 201) or (status is not None and status < 500 and status != 429):
                break  # taken, or refused for good (4xx): no retry changes that
            if status == 429:
                pause = float(response.headers.get("Retry-After", "1"))
                kind_of_error = "429"
            elif status is not None:
                kind_of_error = f"HTTP {status}"
            errors[kind_of_error] += 1
            if time.time() + pause - sent > GIVE_UP_SECONDS:
                status = None
                break
            time.sleep(pause)
        return [status, sent, time.time(), tries, dict(errors)]

    def write(self, row: list) -> None:
        line = json.dumps(row)
        with self.lock:
            self.out.write(line + "\n")
            self.out.flush()


if __name__ == "__main__":
    main()
