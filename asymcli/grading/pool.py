"""Grading many responses: a cache of verdicts and, with ``workers > 0``, worker processes with
hard deadlines (a worker that overruns is killed; its answer is a ``timeout``)."""

from __future__ import annotations

import multiprocessing
import time
from collections import OrderedDict, deque
from collections.abc import Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import NamedTuple

from .verdict import Verdict, _check_multi_box, _check_rel_tol
from .extract import _extract
from .rg import RGScorer, generator_of
from .verify import _check_timeout, _fast_verdict, _in_main_thread, _judge, _mv_judge


class CacheStats(NamedTuple):
    hits: int
    misses: int


def _worker_judge(extracted: str, gold: str, timeout_s: float, rel_tol: float | None = None) -> Verdict:
    # A pool worker runs tasks in its main thread, so math-verify's alarms work here.
    return _mv_judge(extracted, gold, timeout_s, alarm=True, rel_tol=rel_tol)


def _worker_ready() -> bool:
    # Warm the worker (antlr parser, sympy caches) before any item's clock starts.
    _mv_judge(r"\sqrt{8}", r"2\sqrt{2}", 60.0, alarm=True)
    return True


def grade_rows(grader: Any, responses: Sequence[str], rows: Sequence[Any]) -> list[Verdict]:
    """``grader``'s verdicts on (response, PROMPTS row) pairs: :meth:`Grader.grade_rows` (a
    reasoning-gym row is scored by its generator), or, for a grader with only ``grade_many``
    (a stand-in), ``grade_many`` on the rows' ``answer``."""
    if hasattr(grader, "grade_rows"):
        return grader.grade_rows(responses, rows)
    return grader.grade_many(responses, [row["answer"] for row in rows])


class Grader:
    """Grades batches with an LRU cache keyed by (extracted answer, gold answer).

    ``multi_box`` (one of MULTI_BOX_MODES) is how several boxes in a response are read;
    ``rel_tol`` (None: off) is the relative tolerance of :func:`grade`.

    ``workers=0`` grades in this process (math-verify alarms when called from the main
    thread, size guards only elsewhere). ``workers>0`` grades in that many worker
    processes (a ``ProcessPoolExecutor`` on the forkserver start method, so it is safe
    next to torch threads); each item gets a hard deadline of ``timeout_s`` plus
    ``grace_s`` from its start, and a worker that overruns is killed: that item is a
    ``timeout``, the other items in flight are re-run in a fresh pool. An item whose
    worker crashes the pool twice (once alone) is ``unparsable``. Answers that need no
    sympy (the fast paths and guards of :func:`grade`) are decided in this process.

    Not thread-safe: use one Grader per thread. The forkserver is told to preload
    ``asymcli.grading`` and ``math_verify`` (a process-wide setting of multiprocessing).
    """

    def __init__(self, workers: int = 0, timeout_s: float = 5.0, *, cache_size: int = 100_000, grace_s: float = 2.0,
                 multi_box: str = "set", rel_tol: float | None = None, rg_threshold: float = 1.0):
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 0:
            raise ValueError(f"workers must be an integer >= 0, got {workers!r}")
        if cache_size < 0:
            raise ValueError(f"cache_size must be >= 0, got {cache_size}")
        self.workers = workers
        self.multi_box = _check_multi_box(multi_box)
        self.rel_tol = _check_rel_tol(rel_tol)
        self.timeout_s = _check_timeout(timeout_s)
        self.grace_s = float(grace_s)
        self.cache_size = cache_size
        self._cache: OrderedDict[tuple[str, str], Verdict] = OrderedDict()
        self._hits = 0
        self._misses = 0
        self._executor: ProcessPoolExecutor | None = None
        self._closed = False
        self._worker = _worker_judge  # the function a pool worker runs (tests swap it)
        self.rg = RGScorer(rg_threshold, self.multi_box)  # reasoning-gym rows (grade_rows)

    # -- public ---------------------------------------------------------------------------

    @property
    def stats(self) -> CacheStats:
        """Cache hits and misses so far (an item repeated within one batch is a hit)."""
        return CacheStats(self._hits, self._misses)

    def grade(self, response: str, gold: str) -> Verdict:
        return self.grade_many([response], [gold])[0]

    def grade_rows(self, responses: Sequence[str], rows: Sequence[Any]) -> list[Verdict]:
        """One Verdict per (response, PROMPTS row): a reasoning-gym row by its generator's
        ``score_answer`` (:mod:`.rg`), any other row by its ``answer`` (:meth:`grade_many`)."""
        if len(responses) != len(rows):
            raise ValueError(f"got {len(responses)} responses but {len(rows)} rows")
        rg = [i for i, row in enumerate(rows) if generator_of(row) is not None]
        if not rg:
            return self.grade_many(responses, [row["answer"] for row in rows])
        out: list[Verdict | None] = [None] * len(rows)
        for i, v in zip(rg, self.rg.grade_rows([responses[i] for i in rg], [rows[i] for i in rg])):
            out[i] = v
        rest = [i for i in range(len(rows)) if out[i] is None]
        for i, v in zip(rest, self.grade_many([responses[i] for i in rest], [rows[i]["answer"] for i in rest])):
            out[i] = v
        return out  # type: ignore[return-value]

    def grade_many(self, responses: Sequence[str], golds: Sequence[str]) -> list[Verdict]:
        """One Verdict per (response, gold) pair, in order."""
        if self._closed:
            raise RuntimeError("Grader is closed")
        if len(responses) != len(golds):
            raise ValueError(f"got {len(responses)} responses but {len(golds)} gold answers")
        out: list[Verdict | None] = [None] * len(responses)
        todo: dict[tuple[str, str], list[int]] = {}
        for i, (response, gold) in enumerate(zip(responses, golds)):
            if not isinstance(gold, str):
                raise TypeError(f"gold answer {i} must be a string, got {type(gold).__name__}")
            extracted, ok = _extract(response, self.multi_box)
            if not ok:
                out[i] = Verdict(False, "unparsable", None)
                continue
            if extracted is None:
                out[i] = Verdict(False, "no_answer", None)
                continue
            key = (extracted, gold)
            cached = self._cache.get(key)
            if cached is not None:
                self._cache.move_to_end(key)
                self._hits += 1
                out[i] = cached
            elif key in todo:
                self._hits += 1
                todo[key].append(i)
            else:
                self._misses += 1
                todo[key] = [i]
        keys = list(todo)
        if keys:
            if self.workers > 0:
                # Decide what needs no sympy here; only the rest pays the trip to a worker.
                fast = [_fast_verdict(e, g, self.rel_tol) for e, g in keys]
                slow = [key for key, v in zip(keys, fast) if v is None]
                slow_verdicts = iter(self._judge_in_pool(slow) if slow else [])
                verdicts = [v if v is not None else next(slow_verdicts) for v in fast]
            else:
                alarm = _in_main_thread()
                verdicts = [_judge(e, g, self.timeout_s, alarm, self.rel_tol) for e, g in keys]
            for key, verdict in zip(keys, verdicts):
                self._remember(key, verdict)
                for i in todo[key]:
                    out[i] = verdict
        assert all(v is not None for v in out)
        return out  # type: ignore[return-value]

    def close(self) -> None:
        """Stop the worker processes (if any). Idempotent."""
        self._closed = True
        self._shutdown_pool(kill=False)

    def __enter__(self) -> Grader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- internals ------------------------------------------------------------------------

    def _remember(self, key: tuple[str, str], verdict: Verdict) -> None:
        if self.cache_size == 0 or verdict.reason == "timeout":
            return  # a timeout may be load-dependent: grade it again next time
        self._cache[key] = verdict
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)

    def _pool(self) -> ProcessPoolExecutor:
        if self._executor is None:
            ctx = multiprocessing.get_context("forkserver")
            # Workers fork from a server that has already imported math-verify (fast starts).
            ctx.set_forkserver_preload(["asymcli.grading", "math_verify"])
            ex = ProcessPoolExecutor(max_workers=self.workers, mp_context=ctx)
            # Start every worker and import math-verify before any item's clock starts.
            for f in [ex.submit(_worker_ready) for _ in range(self.workers)]:
                f.result(timeout=120)
            self._executor = ex
        return self._executor

    def _shutdown_pool(self, kill: bool) -> None:
        ex, self._executor = self._executor, None
        if ex is None:
            return
        procs = list(getattr(ex, "_processes", {}).values())  # no public API to kill workers
        if kill:
            for p in procs:
                if p.is_alive():
                    p.kill()
        ex.shutdown(wait=not kill, cancel_futures=True)
        if kill:
            for p in procs:
                p.join(timeout=5)

    def _judge_in_pool(self, keys: list[tuple[str, str]]) -> list[Verdict]:
        """Grade ``keys`` in worker processes; at most ``workers`` items in flight, so each
        item's start time is known and an overrunning item can be singled out."""
        results: list[Verdict | None] = [None] * len(keys)
        queue = deque(range(len(keys)))
        suspects: set[int] = set()  # were in flight when the pool broke: re-run alone
        inflight: dict[Future[Verdict], tuple[int, float]] = {}
        hard = self.timeout_s + self.grace_s
        while queue or inflight:
            while queue and len(inflight) < self.workers:
                i = queue[0]
                alone = i in suspects
                if alone and inflight:
                    break
                queue.popleft()
                f = self._pool().submit(self._worker, keys[i][0], keys[i][1], self.timeout_s, self.rel_tol)
                inflight[f] = (i, time.monotonic())
                if alone:
                    break
            now = time.monotonic()
            wait_s = max(0.0, min(start for _, start in inflight.values()) + hard - now)
            done, _ = wait(list(inflight), timeout=wait_s, return_when=FIRST_COMPLETED)
            broken = False
            for f in done:
                i, _ = inflight.pop(f)
                try:
                    results[i] = f.result()
                except BrokenProcessPool:
                    broken = True
                    if i in suspects:
                        results[i] = Verdict(False, "unparsable", keys[i][0])
                    else:
                        suspects.add(i)
                        queue.appendleft(i)
            now = time.monotonic()
            overdue = [f for f, (_, start) in inflight.items() if now - start > hard]
            if overdue or broken:
                for f in overdue:
                    i, _ = inflight.pop(f)
                    results[i] = Verdict(False, "timeout", keys[i][0])
                for f, (i, _) in inflight.items():  # innocent bystanders: run again
                    if broken:
                        suspects.add(i)
                    queue.appendleft(i)
                inflight.clear()
                self._shutdown_pool(kill=True)
        assert all(r is not None for r in results)
        return results  # type: ignore[return-value]
