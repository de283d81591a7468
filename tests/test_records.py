"""The one failure capture (bench.grid.records) every mode's failed record is made with."""
from bench.grid.records import failure, keep_traceback


def _raised(error):
    try:
        raise error
    except Exception as caught:
        return caught, failure(caught)


def test_a_failure_has_status_error_and_traceback():
    error, fields = _raised(ValueError("bad shape"))
    assert fields["status"] == "failed" and fields["error"] == "ValueError: bad shape"
    assert "raise error" in fields["traceback"] and set(fields) == {"status", "error", "traceback"}


def test_running_out_of_memory_is_named_first():
    _, fields = _raised(MemoryError("no room"))
    assert fields["error"] == "out of memory: MemoryError: no room"


def test_a_kept_traceback_is_the_one_recorded_when_raised_again():
    try:
        raise RuntimeError("profiling failed")
    except RuntimeError as error:
        kept = keep_traceback(error)
    _, fields = _raised(kept)
    assert fields["traceback"] == kept.traceback and "profiling failed" in fields["traceback"]
