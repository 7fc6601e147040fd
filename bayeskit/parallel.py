"""Run many independent fits as tasks on ``dask.distributed``.

:func:`run_tasks` is the one place where bayeskit talks to Dask: ``sbc``, ``sensitivity``
and ``batch`` hand it a function and a list of task arguments. By default it starts a
``LocalCluster`` sized to the machine (one single-threaded worker process per core:
numba-compiled log densities hold the GIL, so processes, not threads, give parallelism);
``scheduler="tcp://host:port"`` uses an existing cluster; ``scheduler="none"`` runs the
tasks in a plain loop in this process (the reference the others must agree with).
``scheduler="auto"`` (the default) chooses between the two (:func:`choose_scheduler`):
a LocalCluster costs seconds to start and each worker loads the compiled samplers
again, which a two-core machine never earns back.

Each worker process keeps its own cache of compiled samplers (:mod:`bayeskit.sampling.compiled`),
so a worker compiles each model structure once however many tasks it runs. Failed
tasks are retried; results come back as they finish, with a progress bar.
"""

from __future__ import annotations

import os
import signal
import socket
import struct
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from bayeskit.errors import UserError


def default_workers() -> int:
    """Worker processes for a local cluster: the CPU cores this process may use.

    Examples
    --------
    >>> n = default_workers()
    >>> isinstance(n, int), 1 <= n <= (os.cpu_count() or 1)
    (True, True)
    """
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


#: Seconds to wait for a Dask scheduler to answer before the address is refused.
PROBE_TIMEOUT = 5.0
#: ``auto`` runs a plain loop on this many cores or fewer: on two cores a LocalCluster
#: made the OUD sensitivity analysis 2x slower (61 s against 28 s; benchmarks/speed.py)
LOOP_CORES = 2
#: seconds a LocalCluster costs before it pays: start, workers importing bayeskit and
#: loading the compile cache (benchmarks/speed.py measures it)
CLUSTER_START_S = 10.0
#: a task's seconds when the caller cannot say (an MCMC refit with a warm compile cache)
DEFAULT_TASK_S = 2.0


def choose_scheduler(
    scheduler: str | None,
    tasks: int,
    *,
    workers: int | None = None,
    task_seconds: float | None = None,
) -> tuple[str, str]:
    """Return ``(scheduler, reason)``: where ``tasks`` tasks run, and why, for the manifest.

    ``"auto"`` (or None) runs a plain loop (``"none"``) on :data:`LOOP_CORES` cores or
    fewer, and otherwise when the tasks would take less time in a loop than on a
    LocalCluster, estimated as ``CLUSTER_START_S + tasks x task_seconds / cores``;
    then ``"local"``. Anything else is kept, as asked.

    Examples
    --------
    >>> choose_scheduler("auto", 40, workers=2)[0]
    'none'
    >>> print(choose_scheduler("auto", 3, workers=8, task_seconds=1.0)[1])
    auto: a plain loop (3 tasks of about 1 s: 3 s in a loop, about 10 s on a LocalCluster of 8
    workers)
    >>> choose_scheduler("auto", 100, workers=8, task_seconds=2.0)[0]
    'local'
    >>> choose_scheduler("none", 100)
    ('none', 'as asked (--scheduler none)')
    """
    if scheduler not in (None, "auto"):
        return scheduler, f"as asked (--scheduler {scheduler})"
    cores = workers or default_workers()
    if cores <= LOOP_CORES:
        return "none", (
            f"auto: a plain loop ({cores} core{'s' * (cores != 1)}: a LocalCluster's start "
            "and each worker's compile-cache load cost more than the second core gives)"
        )
    each = DEFAULT_TASK_S if task_seconds is None else max(float(task_seconds), 0.0)
    loop = tasks * each
    cluster = CLUSTER_START_S + loop / cores
    how = (
        f"{tasks} tasks of about {each:.2g} s: {loop:.0f} s in a loop, about {cluster:.0f} s "
        f"on a LocalCluster of {cores} workers"
    )
    if cluster < loop:
        return "local", f"auto: a LocalCluster ({how})"
    return "none", f"auto: a plain loop ({how})"


def check_run_options(*, workers: int | None = None, retries: int = 0) -> None:
    """Refuse worker and retry counts that cannot run (``--workers 0`` once hung).

    Examples
    --------
    >>> check_run_options(workers=2, retries=0)
    >>> check_run_options(workers=0)
    Traceback (most recent call last):
    ...
    bayeskit.errors.UserError: --workers must be at least 1 (got 0)
    """
    if workers is not None and (isinstance(workers, bool) or workers < 1):
        raise UserError(f"--workers must be at least 1 (got {workers})")
    if isinstance(retries, bool) or retries < 0:
        raise UserError(f"--retries must be 0 or more (got {retries})")


def probe_scheduler(address: str, *, timeout: float = PROBE_TIMEOUT) -> None:
    """Refuse a ``tcp://host:port`` that does not answer as a Dask scheduler.

    A Dask scheduler greets every new connection with a short handshake message, framed
    by its length. Anything else (a web server, a database, a port that says nothing)
    is refused here: given to Dask, a stranger's first bytes are read as a frame length
    of up to 2^64 bytes, which Dask then tries to allocate. Other schemes (``tls://``,
    ``inproc://``, ...) are left to Dask.

    Examples
    --------
    >>> probe_scheduler("tcp://127.0.0.1:1", timeout=1)
    Traceback (most recent call last):
    ...
    bayeskit.errors.UserError: --scheduler tcp://127.0.0.1:1: cannot connect (...)
    """
    scheme, sep, rest = address.partition("://")
    if not sep:
        scheme, rest = "tcp", address
    if scheme != "tcp":
        return
    host, colon, port_text = rest.rstrip("/").rpartition(":")
    host = host.strip("[]")
    if not colon or not host or not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise UserError(f"--scheduler {address}: give tcp://HOST:PORT, e.g. tcp://10.0.0.5:8786")
    where = f"--scheduler {address}"
    try:
        conn = socket.create_connection((host, int(port_text)), timeout=timeout)
    except OSError as err:
        raise UserError(f"{where}: cannot connect ({err.strerror or err})") from None
    with conn:
        try:
            head = _read_exactly(conn, 8)
            (length,) = struct.unpack("<Q", head)
            if not 8 <= length <= 1 << 20:
                raise ValueError(f"its first bytes announce a message of {length:.3g} bytes")
            body = _read_exactly(conn, length)
            (frames,) = struct.unpack("<Q", body[:8])
            if not 1 <= frames <= 64:
                raise ValueError(f"its first message announces {frames:.3g} frames")
        except (OSError, ValueError, struct.error) as err:
            if isinstance(err, TimeoutError):
                reason = f"no answer within {timeout:g} s"
            else:
                reason = str(err) or type(err).__name__
            raise UserError(
                f"{where} does not answer as a Dask scheduler ({reason}); start one with "
                "`dask scheduler`, or use --scheduler local"
            ) from None


def _read_exactly(conn: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = conn.recv(n - len(data))
        if not chunk:
            raise ValueError("the connection closed")
        data += chunk
    return data


@contextmanager
def _sigint_ignored():
    """Start worker processes with Ctrl-C ignored: this process handles it and stops them."""
    # a terminal's Ctrl-C reaches every process of the group; workers that saw it would
    # each print a traceback while the cluster shuts down
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


@contextmanager
def dask_client(scheduler: str | None = None, workers: int | None = None):
    """Yield a ``distributed.Client`` on ``scheduler`` when given, else on a LocalCluster.

    Examples
    --------
    An address Dask cannot reach is the user's mistake, reported as such (a LocalCluster
    takes a second or more to start, so the example shows this case only):

    >>> with dask_client("nowhere://x") as client:
    ...     pass
    Traceback (most recent call last):
    ...
    bayeskit.errors.UserError: cannot reach the Dask scheduler at nowhere://x: ...
    """
    import logging

    from distributed import Client, LocalCluster

    check_run_options(workers=workers)
    if scheduler and scheduler != "local":
        probe_scheduler(scheduler)
        try:
            client = Client(scheduler, timeout="10s")
        except (OSError, TimeoutError, ValueError) as exc:
            raise UserError(f"cannot reach the Dask scheduler at {scheduler}: {exc}") from None
        try:
            yield client
        finally:
            client.close()
        return
    # workers and the nanny log every start and stop at INFO; keep the terminal quiet
    for name in ("distributed", "distributed.nanny", "distributed.scheduler"):
        logging.getLogger(name).setLevel(logging.ERROR)
    n = workers or default_workers()
    with _sigint_ignored():
        cluster = LocalCluster(
            n_workers=n,
            threads_per_worker=1,
            processes=True,
            # no dashboard wanted, but the scheduler's web server still binds a port: a random
            # one, so that a second cluster on the machine does not collide on 8787
            dashboard_address=":0",
            silence_logs=logging.ERROR,
        )
    with cluster, Client(cluster) as client:
        yield client


def run_tasks(
    func: Callable[..., Any],
    tasks: Sequence[tuple],
    *,
    scheduler: str | None = "auto",
    workers: int | None = None,
    retries: int = 2,
    progress: bool = True,
    label: str = "fits",
    task_seconds: float | None = None,
    record: dict | None = None,
) -> Iterator[tuple[int, Any]]:
    """Run ``func(*task)`` for every task; yield ``(index, result)`` as each finishes.

    Parameters
    ----------
    func : callable
        A module-level function (it is pickled to the workers).
    tasks : sequence of tuple
        The arguments of each call.
    scheduler : str, optional
        ``"auto"`` (default, or None): a plain loop or a LocalCluster, whichever
        :func:`choose_scheduler` expects to be faster; ``tcp://host:port`` of a running
        Dask scheduler; ``"local"`` starts a LocalCluster; ``"none"`` runs the tasks in
        this process, one after another.
    workers : int, optional
        Worker processes of the LocalCluster (default: one per core).
    retries : int
        How often a failed task is tried again before its error is raised.
    progress : bool
        Show a progress bar.
    label : str
        What the progress bar counts.
    task_seconds : float, optional
        About how long one task takes, for ``"auto"`` (e.g. the time of a fit just made).
    record : dict, optional
        Receives ``scheduler`` (where the tasks ran) and ``scheduler_reason``, for the
        caller's manifest.

    Examples
    --------
    >>> sorted(run_tasks(pow, [(2, 3), (3, 2)], scheduler="none", progress=False))
    [(0, 8), (1, 9)]
    """
    from rich.progress import Progress

    check_run_options(workers=workers, retries=retries)
    scheduler, reason = choose_scheduler(
        scheduler, len(tasks), workers=workers, task_seconds=task_seconds
    )
    if record is not None:
        record.update(scheduler=scheduler, scheduler_reason=reason)
    bar = Progress(transient=True, disable=not progress)
    with bar:
        job = bar.add_task(label, total=len(tasks))
        if scheduler == "none":
            for i, args in enumerate(tasks):
                yield i, _with_retries(func, args, retries)
                bar.advance(job)
            return
        from uuid import uuid4

        from distributed import as_completed

        run = uuid4().hex[:8]  # keys unique per run: a shared scheduler must not reuse results
        with dask_client(scheduler, workers) as client:
            futures = [
                client.submit(func, *args, retries=retries, pure=False, key=f"{label}-{run}-{i}")
                for i, args in enumerate(tasks)
            ]
            index = {f.key: i for i, f in enumerate(futures)}
            for future in as_completed(futures):
                yield index[future.key], future.result()
                bar.advance(job)


def _with_retries(func, args, retries):
    for attempt in range(retries + 1):
        try:
            return func(*args)
        except UserError:
            raise
        except Exception:
            if attempt == retries:
                raise
    raise AssertionError("unreachable")  # pragma: no cover
