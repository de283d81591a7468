"""Runs the benchmark grid: every (model, seed) cell not yet done, each under its claim, in
order; costs first (bench.grid.costs), then each cell (bench.grid.cells) and its record."""
from __future__ import annotations

import signal
import time
from pathlib import Path

from ..cost.estimate import remaining_line
from ..runtime import distributed
from ..runtime.clock import duration, now
from ..runtime.precision import describe_precision
from ..store import ResultsStore, cell_key
from ..train.signals import Interrupted, stopped_by
from . import claims
from .cells import load_lpips, run_cell
from .costs import check_cost, log_estimates, measure_costs
from .records import cell_record
from .request import RunRequest, load_data, out_folder
from .shards import shard_cells
from .sizes import match_sizes

CLAIM_POLL_S = 1.0  # how often a run waiting for another's cell looks again


class GridInterrupted(KeyboardInterrupt):
    """Ctrl-C or SIGTERM during the grid: the message says where it stopped and how to resume;
    ``signum``: which signal (the exit status is 128 + it, bench.train.signals.exit_code)."""

    def __init__(self, message: str, signum: int = signal.SIGINT):
        super().__init__(message)
        self.signum = signum


def run_grid(request: RunRequest, log=print, data=None) -> tuple[Path, list[dict]]:
    """Runs every cell not already done (of ``request.shard`` only, if set); returns the results
    folder and the new records. ``data``: the dataset if the caller already loaded it.

    First the cost of every model still to run is measured (or read back from an earlier run of
    the same configuration on the same kind of device), and the grid's time estimated from it;
    then each cell trains, is tested and appends its record.

    Under torchrun every rank runs every cell together (data-parallel); rank 0 alone decides
    what is done, measures costs, logs, and appends to the store.
    """
    if data is None:
        data = load_data(request.preset.data, request.data_root, request.cache_dir)
    folder = out_folder(request.out_root, data, request.preset)
    store = ResultsStore(folder)
    log = log if distributed.is_main() else (lambda *args, **kwargs: None)
    matched = match_sizes(request, data, log) if request.match else {}
    pending, recorded = [], store.records()  # read again before each cell is run (_Grid)
    for name, seed in shard_cells(request.models, request.seeds, request.shard):
        record = cell_record(name, seed, request, data, matched.get(name))
        done = distributed.broadcast(None if request.rerun else store.done(cell_key(record),
                                                                           recorded))
        if done:
            log(_skip_line(done, store))
        else:
            pending.append(record)
    # Rank 0 alone profiles (the others would compete for the same cores or bus and skew its
    # timings); the others wait for its costs and estimates.
    costs, estimates = distributed.main_only(lambda: (
        measure_costs(pending, request, data, folder, log), [r["estimate"] for r in pending]))
    for record, estimate in zip(pending, estimates, strict=True):
        record["estimate"] = estimate
    if not request.profile_only and pending:
        log_estimates(pending, costs, log)
    lpips = load_lpips(data, log) if request.lpips and not request.profile_only and pending \
        else None
    grid = _Grid(request, data, folder, store, costs, log, lpips, first_new=len(recorded),
                 pending=pending)
    busy = [record for record in pending if not grid.run(record, wait=False)]
    for record in busy:  # claimed by another live process: wait for it, then run it if need be
        grid.run(record, wait=True)
    return folder, grid.new_records


class _Grid:
    """Runs the grid's cells one by one, each under its claim (bench.grid.claims): a cell another
    live process is running is left for later; once claimed, the store is read again, so a cell
    another process recorded meanwhile is skipped, never recorded twice."""

    def __init__(self, request: RunRequest, data, folder: Path, store: ResultsStore, costs: dict,
                 log, lpips, first_new: int, pending: list[dict]):
        self.request, self.data, self.folder, self.store = request, data, folder, store
        self.costs, self.log, self.lpips = costs, log, lpips
        self.first_new = first_new  # --rerun: only records from this one on count as done
        self.pending = pending  # the grid's cells, for "cell N of M" and the refreshed estimate
        self.new_records: list[dict] = []
        self.ratios: dict = {}  # model -> measured / profiled iteration time

    def run(self, record: dict, wait: bool) -> bool:
        """Runs ``record``'s cell unless another process records it; False: it is busy (only
        when not ``wait``)."""
        claim = self._claim(record, wait)
        if claim is False:
            return False
        try:
            done = distributed.broadcast(self._done(record) if distributed.is_main() else None)
            if done:
                self.log(f"skip {record['model']} seed {record['seed']}: recorded by another "
                         f"run meanwhile ({done['status']}, {done.get('finished_at')}, in "
                         f"{self.store.path})")
            else:
                self._run(record)
        finally:
            if claim is not None and claim is not True:
                claim.release()
        return True

    def _claim(self, record: dict, wait: bool):
        """Rank 0's claim (the others get True), or False when busy and not ``wait``."""
        path, said = claims.claim_path(self.folder, record), False
        while True:
            claim = claims.try_claim(path) if distributed.is_main() else None
            taken = distributed.broadcast(claim if isinstance(claim, str) else True)
            if taken is True:
                return claim if distributed.is_main() else True
            name, seed = record["model"], record["seed"]
            if not wait:
                self.log(f"later {name} seed {seed}: {taken} is running it ({path}); waiting "
                         "for it after the rest of the grid")
                return False
            if not said:
                self.log(f"waiting for {name} seed {seed}: {taken} is running it ({path})")
                said = True
            time.sleep(CLAIM_POLL_S)

    def _done(self, record: dict) -> dict | None:
        """The record that makes running the cell needless: one recorded by another run since
        this grid started (whatever its status: the cell is never recorded twice by concurrent
        runs), or without --rerun an earlier successful one."""
        records, key = self.store.records(), cell_key(record)
        meanwhile = [r for r in records[self.first_new:] if cell_key(r) == key]
        if meanwhile:
            return meanwhile[-1]
        return None if self.request.rerun else self.store.done(key, records)

    def _run(self, record: dict) -> None:
        request, data, log = self.request, self.data, self.log
        name, seed = record["model"], record["seed"]
        number = next(i for i, cell in enumerate(self.pending, 1) if cell is record)
        log(f"== {name} (seed {seed}, preset {request.preset.name}, {data.name}; "
            f"cell {number} of {len(self.pending)})")
        recipe = record["config"].get("recipe")
        if recipe is not None:  # a preset of per-model recipes: which one, and whence
            log(f"   recipe: {recipe['source'] or 'no published recipe'}"
                + (f"; {recipe['note']}" if recipe["note"] else ""))
        try:
            record.update(run_cell(record, request, data, self.folder, self.costs, log,
                                   self.lpips))
        except KeyboardInterrupt as stop:
            where = str(stop) if isinstance(stop, Interrupted) else \
                f"{name} seed {seed} stopped{stopped_by(stop)}"
            raise GridInterrupted(f"interrupted: {where}; nothing was recorded for it. Run the same "
                                  "command to resume", getattr(stop, "signum", signal.SIGINT)) from None
        record["finished_at"] = now()
        if distributed.is_main():
            self.store.append(record)
        self.new_records.append(record)
        status = record["status"] if record["status"] == "ok" else f"FAILED: {record['error']}"
        took = f"took {duration(record['wall_s'])}"
        if record["estimate"]:
            took += f", estimated {duration(record['estimate']['total_s'])}"
        log(f"   {name}: {status} ({took})")
        if not request.profile_only:
            check_cost(record, self.folder, log, self.ratios)
            ran = {id(r) for r in self.new_records}
            line = remaining_line([cell for cell in self.pending[number:] if id(cell) not in ran],
                                  self.ratios)
            if line:
                log(line)
        if record["status"] != "ok" and distributed.is_distributed():
            # The other ranks may be waiting in a collective this one will never join: stop
            # the job (torchrun ends them); a relaunch resumes the grid and retries this cell.
            raise RuntimeError(f"{name} (seed {seed}) failed on rank {distributed.rank()}: "
                               f"{record['error']}; stopping every rank")


def _skip_line(done: dict, store: ResultsStore) -> str:
    """What a skipped cell's record says: where, how (its precision in words) and when."""
    precision = describe_precision(done["precision"]) if done.get("precision") else "not recorded"
    return (f"skip {done['model']} seed {done['seed']}: done on {done['device_name']}, precision "
            f"{precision}, at {done.get('finished_at')}, in {store.path}; --rerun trains it again")
