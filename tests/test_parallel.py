"""Where many fits run: the ``auto`` scheduler's choice and the reason it records."""

import pytest

from bayeskit import parallel
from bayeskit.parallel import CLUSTER_START_S, LOOP_CORES, choose_scheduler, run_tasks


@pytest.mark.parametrize("cores", [1, 2])
def test_two_cores_or_fewer_always_loop(cores):
    for tasks, seconds in ((1, 0.01), (1000, 60.0)):
        chosen, reason = choose_scheduler("auto", tasks, workers=cores, task_seconds=seconds)
        assert chosen == "none"
        assert f"{cores} core" in reason


def test_the_cluster_is_chosen_exactly_where_it_pays():
    # loop: n * t; cluster: CLUSTER_START_S + n * t / cores (8 cores, 1 s tasks)
    crossover = CLUSTER_START_S / (1 - 1 / 8)
    below, above = int(crossover), int(crossover) + 1
    assert choose_scheduler("auto", below, workers=8, task_seconds=1.0)[0] == "none"
    chosen, reason = choose_scheduler("auto", above, workers=8, task_seconds=1.0)
    assert chosen == "local"
    assert reason.startswith("auto: a LocalCluster") and f"{above} tasks" in reason


def test_quick_tasks_never_start_a_cluster():
    # exact refits take milliseconds: no batch is large enough to earn the start back
    assert choose_scheduler("auto", 2000, workers=16, task_seconds=0.002)[0] == "none"


def test_an_explicit_scheduler_is_kept_and_said_so():
    for asked in ("none", "local", "tcp://10.0.0.5:8786"):
        assert choose_scheduler(asked, 10**6, workers=1) == (
            asked,
            f"as asked (--scheduler {asked})",
        )


def test_run_tasks_records_where_the_tasks_ran(monkeypatch):
    monkeypatch.setattr(parallel, "default_workers", lambda: LOOP_CORES)
    where = {}
    done = sorted(run_tasks(pow, [(2, 3), (3, 2)], progress=False, record=where))
    assert done == [(0, 8), (1, 9)]
    assert where["scheduler"] == "none"
    assert where["scheduler_reason"].startswith("auto: a plain loop (2 cores")
