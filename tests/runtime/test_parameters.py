"""ETLTask parameters without a task database: names, defaults, inputs and JSON checks."""

from __future__ import annotations

from datetime import date

import pytest

from etl_runtime import ETLTask, ParameterError
from etl_runtime._parameters import ParameterSet


class Job(ETLTask):
    def load(self) -> None:
        pass


def test_default_none_returns_none() -> None:
    assert Job().get_parameter("cutoff", None) is None


def test_stored_none_returns_none() -> None:
    job = Job(parameters={"cutoff": None})

    assert job.get_parameter("cutoff") is None
    assert job.get_parameter("cutoff", "default") is None


def test_missing_parameter_raises_naming_it() -> None:
    with pytest.raises(ParameterError, match="parameter 'batch_size' is not set"):
        Job().get_parameter("batch_size")


def test_names_are_case_insensitive() -> None:
    job = Job()
    job.set_parameter("Batch_Size", 100)

    assert job.get_parameter("batch_size") == 100
    assert job.get_parameter("BATCH_SIZE") == 100
    assert job.parameter_names() == ["Batch_Size"]


def test_later_set_replaces_other_case() -> None:
    job = Job()
    job.set_parameter("Mode", "full")
    job.set_parameter("mode", "delta")

    assert job.parameters() == {"mode": "delta"}


def test_set_parameters_accepts_dict_pairs_and_kwargs() -> None:
    job = Job()

    job.set_parameters({"a": 1}, b=2)
    job.set_parameters([("c", [3]), ("d", {"e": None})])

    assert job.parameters() == {"a": 1, "b": 2, "c": [3], "d": {"e": None}}


def test_add_parameters_match_set_parameters() -> None:
    job = Job()

    job.add_parameter("a", 1)
    job.add_parameters({"b": 2}, c=3)

    assert job.parameters() == {"a": 1, "b": 2, "c": 3}


def test_malformed_pair_raises() -> None:
    with pytest.raises(ParameterError, match="expected a \\(name, value\\) pair"):
        Job().set_parameters([("a", 1, 2)])  # type: ignore[list-item]


@pytest.mark.parametrize("name", ["", "   "])
def test_empty_name_raises(name: str) -> None:
    with pytest.raises(ParameterError, match="invalid"):
        Job().set_parameter(name, 1)


def test_non_json_value_raises_naming_parameter() -> None:
    with pytest.raises(ParameterError, match="parameter 'as_of' has a value of type date"):
        Job().set_parameter("as_of", date(2026, 12, 1))


def test_local_only_accepts_any_value() -> None:
    handle = object()
    job = Job()

    job.set_parameter("handle", handle, local_only=True)

    assert job.get_parameter("handle") is handle


def test_loaded_values_keep_unwritten_ones() -> None:
    parameters = ParameterSet()
    parameters.set("pending", "local value")
    parameters.set("local", "local value", local_only=True)
    parameters.set("written", "old")
    parameters.mark_written(["written"])

    parameters.merge_loaded({"PENDING": "db", "Local": "db", "written": "new", "other": 1})

    assert parameters.as_dict() == {
        "pending": "local value",
        "local": "local value",
        "written": "new",
        "other": 1,
    }
    assert parameters.pending() == {"pending": "local value"}
