"""Kraken nonces: the documented milliseconds, strictly increasing per key, across threads, restarts,
a clock stepped backwards, and two balance-tui processes on one machine."""

from __future__ import annotations

import itertools
import os
import stat
import subprocess
import sys
import threading
from pathlib import Path

from tui.credentials import Secret
from tui.venues.nonces import NonceSource, store_for

ROOT = Path(__file__).resolve().parent.parent

DOCS_NONCE = 1616492376594  # the nonce of Kraken's own signing example: milliseconds since the epoch


def test_milliseconds_as_the_docs_use() -> None:
    assert NonceSource(clock=lambda: 1616492376.594).next() == DOCS_NONCE


def test_strictly_increasing_with_a_frozen_clock_and_many_threads() -> None:
    source = NonceSource(clock=lambda: 1616492376.594)
    taken: list[int] = []
    lock = threading.Lock()

    def take() -> None:
        for _ in range(200):
            nonce = source.next()
            with lock:
                taken.append(nonce)

    threads = [threading.Thread(target=take) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(taken) == list(range(DOCS_NONCE, DOCS_NONCE + 800))


def test_kept_increasing_across_a_restart_with_the_clock_stepped_back(tmp_path: Path) -> None:
    store = tmp_path / "nonces" / "key"
    runs = [NonceSource(store, clock=lambda: 1616492376.594) for _ in range(3)]  # three runs, one after another
    before = [run.next() for run in runs]
    assert before == [DOCS_NONCE, DOCS_NONCE + 1, DOCS_NONCE + 2]  # the clock did not move: the file did
    restarted = NonceSource(store, clock=lambda: 1616492376.594 - 3600)  # NTP stepped the clock back an hour
    after = [restarted.next() for _ in range(3)]
    assert after[0] > max(before) and all(a < b for a, b in itertools.pairwise(after))


def test_two_processes_on_one_key_never_take_the_same_nonce(tmp_path: Path) -> None:
    """Both start taking nonces at once (they wait for a starting gun), with the same frozen clock."""
    store, gun = tmp_path / "nonces" / "key", tmp_path / "go"
    script = (
        "import sys, os\nfrom pathlib import Path\nfrom tui.venues.nonces import NonceSource\n"
        "source = NonceSource(Path(sys.argv[1]), clock=lambda: 1616492376.594)\n"
        "print('ready', flush=True)\n"
        "while not os.path.exists(sys.argv[2]): pass\n"
        "print(' '.join(str(source.next()) for _ in range(2000)))\n"
    )
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script, str(store), str(gun)], stdout=subprocess.PIPE, text=True, cwd=ROOT
        )
        for _ in range(2)
    ]
    for proc in procs:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    gun.touch()
    outputs = [[int(n) for n in proc.communicate(timeout=60)[0].split()] for proc in procs]
    for taken in outputs:
        assert len(taken) == 2000 and all(a < b for a, b in itertools.pairwise(taken))
    assert len(set(outputs[0]) | set(outputs[1])) == 4000


def test_the_store_is_private_and_never_names_the_key(tmp_path: Path) -> None:
    key = Secret("demo-kraken-key-that-must-not-show")
    store = store_for(key, tmp_path / "nonces")
    NonceSource(store, clock=lambda: 1616492376.594).next()
    assert stat.S_IMODE(store.stat().st_mode) == 0o600
    assert stat.S_IMODE(store.parent.stat().st_mode) == 0o700
    assert key.reveal() not in store.name and key.reveal() not in store.read_text()
    assert int(store.read_text()) == DOCS_NONCE


def test_an_unusable_store_falls_back_to_memory_and_says_so(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    source = NonceSource(blocker / "key", clock=lambda: 1616492376.594)
    assert [source.next(), source.next()] == [DOCS_NONCE, DOCS_NONCE + 1]
    assert source.problem is not None and "cannot keep Kraken nonces" in source.problem
    assert os.path.exists(blocker)


def test_a_file_that_holds_no_nonce_of_ours_starts_again_from_the_clock_and_says_so(tmp_path: Path) -> None:
    store = tmp_path / "key"
    for garbage in (f"{DOCS_NONCE + 500}\nGARBAGE", "999999999999999999", "not a nonce"):
        store.write_text(garbage)
        source = NonceSource(store, clock=lambda: 1616492376.594)
        assert source.next() == DOCS_NONCE  # never 1 (below Kraken's memory), never 1e18 (locking others out)
        assert source.problem is not None and "started again from the clock" in source.problem
        assert store.read_text() == f"{DOCS_NONCE}\n"  # rewritten whole: usable from now on
        assert NonceSource(store, clock=lambda: 1616492376.594).next() == DOCS_NONCE + 1
