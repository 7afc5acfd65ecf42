"""The Celery settings of runner/workers/app.py: long tasks as Airflow's CeleryExecutor has them."""

from __future__ import annotations

import pytest

from runner.errors import UsageError
from runner.workers.app import broker_url, make_app, settings, visibility_timeout
from runner.workers.orphans import check_interval, stale_pending


def test_the_settings_are_those_for_long_tasks() -> None:
    conf = settings("redis://127.0.0.1:6379/0", {})
    assert conf["task_acks_late"] is True and conf["task_reject_on_worker_lost"] is True
    assert conf["worker_prefetch_multiplier"] == 1
    assert conf["broker_transport_options"] == {"visibility_timeout": 21600}
    assert conf["task_serializer"] == "json" and conf["accept_content"] == ["json"]
    assert conf["task_ignore_result"] is True


def test_the_app_carries_them_and_the_broker() -> None:
    app = make_app("amqp://guest:guest@127.0.0.1:5672//", {"PIPE_VISIBILITY_TIMEOUT": "90000"})
    assert app.conf.broker_url == "amqp://guest:guest@127.0.0.1:5672//"
    assert app.conf.task_acks_late and app.conf.worker_prefetch_multiplier == 1
    assert app.conf.broker_transport_options == {"visibility_timeout": 90000}


def test_no_broker_means_in_process() -> None:
    assert broker_url({}) is None and broker_url({"PIPE_BROKER_URL": ""}) is None
    assert broker_url({"PIPE_BROKER_URL": "redis://h:1/2"}) == "redis://h:1/2"


@pytest.mark.parametrize("value", ["0", "-5", "6h", "1.5"])
def test_a_visibility_timeout_that_is_not_whole_seconds_is_refused(value: str) -> None:
    with pytest.raises(UsageError, match="PIPE_VISIBILITY_TIMEOUT"):
        visibility_timeout({"PIPE_VISIBILITY_TIMEOUT": value})


def test_the_check_interval_is_read_from_the_environment() -> None:
    assert check_interval({}) == 30.0
    assert check_interval({"PIPE_ORPHAN_CHECK_INTERVAL": "0"}) == 0.0
    assert check_interval({"PIPE_ORPHAN_CHECK_INTERVAL": "2.5"}) == 2.5
    for bad in ("-1", "soon", "nan", "inf"):
        with pytest.raises(UsageError, match="PIPE_ORPHAN_CHECK_INTERVAL"):
            check_interval({"PIPE_ORPHAN_CHECK_INTERVAL": bad})


def test_the_stale_pending_age_is_read_from_the_environment() -> None:
    assert stale_pending({}) == 600.0
    assert stale_pending({"PIPE_STALE_PENDING": "3"}) == 3.0
    with pytest.raises(UsageError, match="PIPE_STALE_PENDING"):
        stale_pending({"PIPE_STALE_PENDING": "-5"})
