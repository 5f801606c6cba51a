"""Where the sandbox keeps what grows with a payout cycle: accounts, transfers with their
statement lines, the files of the ISO bank, idempotency keys, preset cash outcomes, callbacks
waiting for a receiver slower than the payments, and the registry's persons. They live in
scratch SQLite files, so a cycle of a million payments takes the memory of a small one; only
what is in flight is in memory.

A transfer is one object while anything holds it (a settlement timer, a queued callback, a
pending booking): looked up again, it is that object, so no change is made to a stale copy.
Once nothing holds it, it is read back from the file when asked for.

Writes are batched: new and changed transfers wait in memory until `flush`, which runs once
the loop is done with the current request or timer (so a transfer taken and settled at once is
written once), or as soon as `FLUSH_AT` of them wait; one commit, never one per row. Every
query that reads rows flushes first, so it sees what the objects say.

Everything runs on the event loop's thread. The files are scratch: a fresh one at the first
use after start or reset, deleted on reset and shutdown. Nothing is kept across a restart
(the timers and queued callbacks it would need die with the process)."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import tempfile
import weakref
from collections.abc import Collection, Iterable, Iterator, Sequence
from datetime import UTC, date, datetime
from itertools import islice
from pathlib import Path
from typing import Any, TypeVar

import orjson

from .state import Account, Booking, IsoMessage, StatusReport, Transfer

T = TypeVar("T")

# Rows per executemany while seeding, ids per IN (...) lookup, lines per statement page, and
# the transfers waiting to be written that make a flush happen at once.
WRITE_CHUNK = 10_000
LOOKUP_CHUNK = 500
PAGE_LINES = 10_000
FLUSH_AT = 20_000
# The in-flight index is swept of transfers nothing holds when it reaches twice the size it
# had after the last sweep (at least this).
SWEEP_AT = 20_000


def chunks(rows: Iterable[T], size: int) -> Iterator[list[T]]:
    iterator = iter(rows)
    while chunk := list(islice(iterator, size)):
        yield chunk


# Instants are stored as POSIX timestamps: a float holds today's microseconds exactly.
def _instant(timestamp: float) -> datetime:
    return datetime.fromtimestamp(timestamp, UTC)


def _maybe_instant(timestamp: float | None) -> datetime | None:
    return None if timestamp is None else datetime.fromtimestamp(timestamp, UTC)


def _marks(count: int) -> str:
    return ",".join("?" * count)


class ScratchDatabase:
    """One SQLite file under `directory` (the system's temporary directory when None), opened
    at first use and deleted on `close`. Durability does not matter here: WAL, no fsync. The
    page cache stays SQLite's default (2 MB): a bigger one was no faster, the OS caches the
    file."""

    def __init__(self, directory: Path | None, name: str, schema: str) -> None:
        self.directory = directory
        self.name = name
        self.schema = schema
        self._db: sqlite3.Connection | None = None
        self._path: str | None = None

    @property
    def db(self) -> sqlite3.Connection:
        if self._db is None:
            if self.directory is not None:
                self.directory.mkdir(parents=True, exist_ok=True)
            handle, self._path = tempfile.mkstemp(
                prefix=f"sandbox-{self.name}-", suffix=".sqlite3", dir=self.directory
            )
            os.close(handle)
            # Only the event loop's thread uses it, but not always the thread that built the app.
            db = sqlite3.connect(self._path, check_same_thread=False)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=OFF")
            db.executescript(self.schema)
            self._db = db
        return self._db

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None
        if self._path is not None:
            for suffix in ("", "-wal", "-shm"):
                try:
                    os.unlink(self._path + suffix)
                except FileNotFoundError:
                    pass
            self._path = None


BANK_SCHEMA = """
CREATE TABLE accounts (
    bin TEXT NOT NULL,
    account_number TEXT NOT NULL,
    holder_name TEXT NOT NULL,
    status TEXT NOT NULL,
    PRIMARY KEY (bin, account_number)
) WITHOUT ROWID;

-- seq: the order received (the ledger's entries); statement_line: the order the transfer
-- reached its counterparty's statement of statement_day (a date ordinal), when it did.
CREATE TABLE transfers (
    seq INTEGER PRIMARY KEY,
    end_to_end_id TEXT NOT NULL UNIQUE,
    counterparty TEXT NOT NULL,
    channel TEXT NOT NULL,
    amount INTEGER NOT NULL,
    batch_key TEXT NOT NULL,
    reference TEXT NOT NULL,
    received_at REAL NOT NULL,
    account_number TEXT,
    account_bin TEXT,
    commune_code TEXT,
    list_id TEXT,
    debtor_account TEXT,
    message_id TEXT,
    payment_info_id TEXT,
    status TEXT NOT NULL,
    reason_code TEXT,
    settled_at REAL,
    times_received INTEGER NOT NULL,
    recredit_attempts INTEGER NOT NULL,
    staff_id TEXT,
    paid_on INTEGER,
    credited INTEGER NOT NULL,
    statement_day INTEGER,
    statement_line INTEGER
);
CREATE INDEX transfers_on_statements ON transfers (counterparty, statement_day, statement_line)
    WHERE statement_day IS NOT NULL;

-- blocks: how many payment information blocks were read (0: a file refused unread).
CREATE TABLE files (
    bin TEXT NOT NULL,
    message_id TEXT NOT NULL,
    received_at REAL NOT NULL,
    number_of_transactions INTEGER NOT NULL,
    control_sum INTEGER NOT NULL,
    blocks INTEGER NOT NULL,
    group_rejection TEXT,
    PRIMARY KEY (bin, message_id)
) WITHOUT ROWID;

-- A file's transactions as written: its block (position of the PmtInf), and the reason it was
-- refused at intake, if it was.
CREATE TABLE file_lines (
    bin TEXT NOT NULL,
    message_id TEXT NOT NULL,
    position INTEGER NOT NULL,
    block INTEGER NOT NULL,
    payment_info_id TEXT NOT NULL,
    end_to_end_id TEXT NOT NULL,
    rejection TEXT,
    PRIMARY KEY (bin, message_id, position)
) WITHOUT ROWID;

CREATE TABLE taken_keys (key TEXT PRIMARY KEY) WITHOUT ROWID;

CREATE TABLE cash_outcomes (end_to_end_id TEXT PRIMARY KEY, outcome TEXT NOT NULL) WITHOUT ROWID;

-- Callbacks of a route waiting to go, in the order published: a row per batch of them (body:
-- JSON; JSON events as they will be sent, bookings and reports naming their transfers by seq
-- and their file by id; see _spilled_row).
CREATE TABLE spilled_callbacks (
    route TEXT NOT NULL,
    id INTEGER NOT NULL,
    body BLOB NOT NULL,
    PRIMARY KEY (route, id)
) WITHOUT ROWID;
"""

_TRANSFER_COLUMNS = (
    "seq, end_to_end_id, counterparty, channel, amount, batch_key, reference, received_at,"
    " account_number, account_bin, commune_code, list_id, debtor_account, message_id,"
    " payment_info_id, status, reason_code, settled_at, times_received, recredit_attempts,"
    " staff_id, paid_on, credited, statement_day, statement_line"
)
_INSERT_TRANSFER = f"INSERT INTO transfers ({_TRANSFER_COLUMNS}) VALUES ({_marks(25)})"
_SELECT_TRANSFER = f"SELECT {_TRANSFER_COLUMNS} FROM transfers"
# What happens to a transfer after it is taken.
_UPDATE_TRANSFER = (
    "UPDATE transfers SET status = ?, reason_code = ?, settled_at = ?, times_received = ?,"
    " recredit_attempts = ?, staff_id = ?, paid_on = ?, credited = ?, statement_day = ?,"
    " statement_line = ? WHERE seq = ?"
)

# A file's transactions with what became of each one taken (NULLs: never taken).
_FILE_LINES = (
    "SELECT l.block, l.payment_info_id, l.end_to_end_id, l.rejection, t.status, t.reason_code,"
    " t.reference, t.amount FROM file_lines l"
    " LEFT JOIN transfers t ON t.end_to_end_id = l.end_to_end_id"
    " WHERE l.bin = ? AND l.message_id = ? ORDER BY l.position"
)

# (block, PmtInfId, end-to-end id, refused at intake, status, reason, bank reference, amount)
FileLine = tuple[int, str, str, str | None, str | None, str | None, str | None, int | None]


def _changes(t: Transfer) -> tuple[Any, ...]:
    return (
        t.status,
        t.reason_code,
        None if t.settled_at is None else t.settled_at.timestamp(),
        t.times_received,
        t.recredit_attempts,
        t.staff_id,
        t.paid_on.toordinal() if t.paid_on else None,
        t.credited,
        t.statement_day,
        t.statement_line,
        t.seq,
    )


def _transfer_row(t: Transfer) -> tuple[Any, ...]:
    return (
        t.seq,
        t.end_to_end_id,
        t.counterparty,
        t.channel,
        t.amount,
        t.batch_key,
        t.reference,
        t.received_at.timestamp(),
        t.account_number,
        t.account_bin,
        t.commune_code,
        t.list_id,
        t.debtor_account,
        t.message_id,
        t.payment_info_id,
        *_changes(t)[:-1],  # what changes after it is taken, without the seq it is keyed by
    )


# A callback waiting on disk: a JSON event as it will be sent (what it says never changes), or
# a booking or a status report of the file bank.
Spilled = Booking | StatusReport | dict[str, Any]


def _spilled_row(item: Spilled) -> list[Any]:
    if isinstance(item, dict):
        return ["J", item]
    if isinstance(item, Booking):
        return [
            "B",
            item.reference,
            item.kind,
            item.status,
            [t.seq for t in item.transfers],
            item.booked_at.timestamp(),
            item.entry_ref,
            item.reason_code,
            item.batch,
            item.reverses,
        ]
    message = item.message
    return ["S", item.report_id, message.bin, message.message_id, item.rejected]


class InFlight:
    """The transfers something still holds, by end-to-end id: weak references without the
    callback per entry of a WeakValueDictionary (a cost on every transfer), swept instead."""

    def __init__(self) -> None:
        self._refs: dict[str, weakref.ref[Transfer]] = {}
        self._sweep_at = SWEEP_AT

    def get(self, end_to_end_id: str) -> Transfer | None:
        ref = self._refs.get(end_to_end_id)
        return None if ref is None else ref()

    def add(self, transfer: Transfer) -> None:
        self._refs[transfer.end_to_end_id] = weakref.ref(transfer)
        if len(self._refs) >= self._sweep_at:
            self._refs = {e2e: ref for e2e, ref in self._refs.items() if ref() is not None}
            self._sweep_at = max(SWEEP_AT, 2 * len(self._refs))


class BankStore:
    """The banks' and the post office's books on disk, and the transfers in flight in memory."""

    def __init__(self, directory: Path | None = None) -> None:
        self._file = ScratchDatabase(directory, "banks", BANK_SCHEMA)
        self._live = InFlight()
        self._new: list[Transfer] = []
        self._changed: dict[int, Transfer] = {}
        self._uncommitted = False
        self._flush_scheduled = False
        self.transfer_count = 0
        self._written = 0  # seq of the last transfer written to the file
        self._spilled = 0  # id of the last row of spilled callbacks

    def reset(self) -> None:
        """Forget everything (the file is deleted; a fresh one comes at the next use)."""
        self._file.close()
        self._live = InFlight()
        self._new = []
        self._changed = {}
        self._uncommitted = False
        self._flush_scheduled = False
        self.transfer_count = 0
        self._written = 0
        self._spilled = 0

    @property
    def _db(self) -> sqlite3.Connection:
        return self._file.db

    # -- accounts -------------------------------------------------------------------------

    def add_accounts(self, rows: Iterable[tuple[str, str, str, str]]) -> int:
        """(BIN, account number, holder name, status); an account seeded again is replaced."""
        db = self._db
        count = 0
        for chunk in chunks(rows, WRITE_CHUNK):
            db.executemany("INSERT OR REPLACE INTO accounts VALUES (?, ?, ?, ?)", chunk)
            count += len(chunk)
        db.commit()
        return count

    def account(self, bin_: str, account_number: str) -> Account | None:
        row = self._db.execute(
            "SELECT holder_name, status FROM accounts WHERE bin = ? AND account_number = ?",
            (bin_, account_number),
        ).fetchone()
        return None if row is None else Account(*row)

    def accounts(self, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], Account]:
        """The seeded accounts among these (BIN, account number)."""
        numbers_by_bin: dict[str, list[str]] = {}
        for bin_, number in keys:
            numbers_by_bin.setdefault(bin_, []).append(number)
        found: dict[tuple[str, str], Account] = {}
        db = self._db
        for bin_, numbers in numbers_by_bin.items():
            for chunk in chunks(numbers, LOOKUP_CHUNK):
                query = (
                    "SELECT account_number, holder_name, status FROM accounts"
                    f" WHERE bin = ? AND account_number IN ({_marks(len(chunk))})"
                )
                for number, holder_name, status in db.execute(query, (bin_, *chunk)):
                    found[(bin_, number)] = Account(holder_name, status)
        return found

    def account_count(self) -> int:
        count: int = self._db.execute("SELECT count(*) FROM accounts").fetchone()[0]
        return count

    # -- transfers ------------------------------------------------------------------------

    def add(self, transfer: Transfer) -> None:
        """A transfer just taken; written at the next flush."""
        self.transfer_count += 1
        transfer.seq = self.transfer_count
        self._live.add(transfer)
        self._new.append(transfer)
        self._write_soon()

    def changed(self, transfer: Transfer) -> None:
        """Write this transfer again at the next flush (a new one is written whole anyway).
        Called once the change is made: a flush may come at once."""
        if transfer.seq <= self._written:
            self._changed[transfer.seq] = transfer
            self._write_soon()

    def _write_soon(self) -> None:
        """Flush once the loop is done with what it is running now, or at once if many wait
        (or no loop runs: a caller driving the state directly)."""
        self._uncommitted = True
        if len(self._new) + len(self._changed) >= FLUSH_AT:
            self.flush()
        elif not self._flush_scheduled:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                return
            loop.call_soon(self.flush)
            self._flush_scheduled = True

    def flush(self) -> None:
        self._flush_scheduled = False
        if not self._uncommitted:
            return
        db = self._db
        if self._new:
            db.executemany(_INSERT_TRANSFER, map(_transfer_row, self._new))
            self._written = self._new[-1].seq
            self._new = []
        if self._changed:
            db.executemany(_UPDATE_TRANSFER, map(_changes, self._changed.values()))
            self._changed = {}
        db.commit()
        self._uncommitted = False

    def transfer(self, end_to_end_id: str) -> Transfer | None:
        live = self._live.get(end_to_end_id)
        if live is not None:
            return live
        row = self._db.execute(
            f"{_SELECT_TRANSFER} WHERE end_to_end_id = ?", (end_to_end_id,)
        ).fetchone()
        return None if row is None else self._load(row)

    def transfers(self, end_to_end_ids: Iterable[str]) -> dict[str, Transfer]:
        """The transfers of these ids that were taken, by id."""
        found: dict[str, Transfer] = {}
        missing: list[str] = []
        for e2e in end_to_end_ids:
            live = self._live.get(e2e)
            if live is not None:
                found[e2e] = live
            else:
                missing.append(e2e)
        db = self._db
        for chunk in chunks(missing, LOOKUP_CHUNK):
            query = f"{_SELECT_TRANSFER} WHERE end_to_end_id IN ({_marks(len(chunk))})"
            for row in db.execute(query, chunk):
                transfer = self._load(row)
                found[transfer.end_to_end_id] = transfer
        return found

    def transfers_by_seq(self, seqs: Collection[int]) -> dict[int, Transfer]:
        self.flush()
        found: dict[int, Transfer] = {}
        for chunk in chunks(seqs, LOOKUP_CHUNK):
            query = f"{_SELECT_TRANSFER} WHERE seq IN ({_marks(len(chunk))})"
            for row in self._db.execute(query, chunk):
                transfer = self._load(row)
                found[transfer.seq] = transfer
        return found

    def _load(self, row: Sequence[Any]) -> Transfer:
        """The transfer of a row: the object in flight when there is one (it may hold changes
        not written yet), else a new one."""
        live = self._live.get(row[1])
        if live is not None:
            return live
        transfer = Transfer.__new__(Transfer)
        (
            transfer.seq,
            transfer.end_to_end_id,
            transfer.counterparty,
            transfer.channel,
            transfer.amount,
            transfer.batch_key,
            transfer.reference,
            received_at,
            transfer.account_number,
            transfer.account_bin,
            transfer.commune_code,
            transfer.list_id,
            transfer.debtor_account,
            transfer.message_id,
            transfer.payment_info_id,
            transfer.status,
            transfer.reason_code,
            settled_at,
            transfer.times_received,
            transfer.recredit_attempts,
            transfer.staff_id,
            paid_on,
            credited,
            transfer.statement_day,
            transfer.statement_line,
        ) = row
        transfer.received_at = _instant(received_at)
        transfer.settled_at = _maybe_instant(settled_at)
        transfer.paid_on = date.fromordinal(paid_on) if paid_on else None
        transfer.credited = bool(credited)
        self._live.add(transfer)
        return transfer

    def ledger_page(self, limit: int, offset: int) -> list[tuple[Any, ...]]:
        """(end-to-end id, amount, counterparty, status, reason, settled at, credited, times
        received, re-credit attempts) of transfers in the order received."""
        self.flush()
        rows = self._db.execute(
            "SELECT end_to_end_id, amount, counterparty, status, reason_code, settled_at,"
            " credited, times_received, recredit_attempts FROM transfers"
            " WHERE seq > ? ORDER BY seq LIMIT ?",
            (offset, limit),
        ).fetchall()
        return [(*row[:5], _maybe_instant(row[5]), *row[6:]) for row in rows]

    def statement_lines(
        self, counterparty: str, day: date, after: int = 0
    ) -> list[tuple[int, str, int, str, str, str | None, str | None]]:
        """A page of the day's statement after line `after`: (line, end-to-end id, amount,
        reference, status, staff id, commune code)."""
        self.flush()
        return self._db.execute(
            "SELECT statement_line, end_to_end_id, amount, reference, status, staff_id,"
            " commune_code FROM transfers"
            " WHERE counterparty = ? AND statement_day = ? AND statement_line > ?"
            " ORDER BY statement_line LIMIT ?",
            (counterparty, day.toordinal(), after, PAGE_LINES),
        ).fetchall()

    # -- the file bank's files ------------------------------------------------------------

    def file(self, bin_: str, message_id: str) -> IsoMessage | None:
        row = self._db.execute(
            "SELECT received_at, number_of_transactions, control_sum, blocks, group_rejection"
            " FROM files WHERE bin = ? AND message_id = ?",
            (bin_, message_id),
        ).fetchone()
        if row is None:
            return None
        received_at, count, control_sum, blocks, group_rejection = row
        return IsoMessage(
            message_id, bin_, _instant(received_at), count, control_sum, blocks, group_rejection
        )

    def record_file(
        self, message: IsoMessage, lines: Iterable[tuple[int, str, str, str | None]]
    ) -> None:
        """A file and its transactions (block, PmtInfId, end-to-end id, refusal), replacing
        any file of the same id."""
        db = self._db
        key = (message.bin, message.message_id)
        db.execute(
            "INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                *key,
                message.received_at.timestamp(),
                message.number_of_transactions,
                message.control_sum,
                message.blocks,
                message.group_rejection,
            ),
        )
        db.execute("DELETE FROM file_lines WHERE bin = ? AND message_id = ?", key)
        db.executemany(
            "INSERT INTO file_lines VALUES (?, ?, ?, ?, ?, ?, ?)",
            ((*key, position, *line) for position, line in enumerate(lines)),
        )
        self._write_soon()

    def save_file(self, message: IsoMessage) -> None:
        self._db.execute(
            "UPDATE files SET group_rejection = ? WHERE bin = ? AND message_id = ?",
            (message.group_rejection, message.bin, message.message_id),
        )
        self._write_soon()

    def file_lines(self, bin_: str, message_id: str) -> list[FileLine]:
        self.flush()
        return self._db.execute(_FILE_LINES, (bin_, message_id)).fetchall()

    # -- callbacks waiting for the receiver -----------------------------------------------

    def spill_callbacks(self, route: str, items: Iterable[Spilled]) -> None:
        self._spilled += 1
        body = orjson.dumps([_spilled_row(item) for item in items])
        self._db.execute(
            "INSERT INTO spilled_callbacks VALUES (?, ?, ?)", (route, self._spilled, body)
        )
        self._write_soon()

    def take_spilled_callbacks(self, route: str, count: int) -> list[Spilled]:
        """The oldest spilled callbacks of `route`, whole rows of them until at least `count`
        (or all), removed from the store."""
        db = self._db
        taken: list[list[Any]] = []
        ids: list[int] = []
        rows = db.execute(
            "SELECT id, body FROM spilled_callbacks WHERE route = ? ORDER BY id", (route,)
        )
        for row_id, body in rows:
            ids.append(row_id)
            taken.extend(orjson.loads(body))
            if len(taken) >= count:
                break
        rows.close()
        if not ids:
            return []
        db.execute("DELETE FROM spilled_callbacks WHERE route = ? AND id <= ?", (route, ids[-1]))
        self._write_soon()
        return self._spilled_items(taken)

    def _spilled_items(self, rows: list[list[Any]]) -> list[Spilled]:
        seqs = {seq for row in rows if row[0] == "B" for seq in row[4]}
        transfers = self.transfers_by_seq(seqs)
        out: list[Spilled] = []
        for row in rows:
            if row[0] == "J":
                out.append(row[1])
            elif row[0] == "B":
                _, reference, kind, status, of, at, entry_ref, reason, batch, reverses = row
                out.append(
                    Booking(
                        reference,
                        kind,
                        status,
                        [transfers[seq] for seq in of],
                        _instant(at),
                        entry_ref,
                        reason,
                        batch,
                        reverses,
                    )
                )
            else:
                _, report_id, bin_, message_id, rejected = row
                message = self.file(bin_, message_id)
                assert message is not None, "a file is kept as long as its reports"
                out.append(StatusReport(report_id, message, [tuple(r) for r in rejected]))
        return out

    def drop_spilled_callbacks(self) -> None:
        if self._spilled:
            self._db.execute("DELETE FROM spilled_callbacks")
            self._write_soon()

    # -- idempotency keys and preset cash outcomes ----------------------------------------

    def take_key(self, key: str) -> None:
        self._db.execute("INSERT OR IGNORE INTO taken_keys VALUES (?)", (key,))
        self._write_soon()

    def key_taken(self, key: str) -> bool:
        found = self._db.execute("SELECT 1 FROM taken_keys WHERE key = ?", (key,))
        return found.fetchone() is not None

    def preset_cash_outcomes(self, outcomes: Iterable[tuple[str, str]]) -> None:
        self._db.executemany("INSERT OR REPLACE INTO cash_outcomes VALUES (?, ?)", outcomes)
        self._write_soon()

    def cash_outcomes(self, end_to_end_ids: Sequence[str]) -> dict[str, str]:
        found: dict[str, str] = {}
        for chunk in chunks(end_to_end_ids, LOOKUP_CHUNK):
            query = (
                "SELECT end_to_end_id, outcome FROM cash_outcomes"
                f" WHERE end_to_end_id IN ({_marks(len(chunk))})"
            )
            found.update(self._db.execute(query, chunk).fetchall())
        return found


PERSON_SCHEMA = """
-- dates: born and died as date ordinals packed in one integer (see population.py)
CREATE TABLE persons (
    national_id TEXT PRIMARY KEY,
    full_name TEXT NOT NULL,
    dates INTEGER NOT NULL
) WITHOUT ROWID;
"""


class PersonStore:
    """The population registry's persons on disk: CCCD -> (folded full name, packed dates)."""

    def __init__(self, directory: Path | None = None) -> None:
        self._file = ScratchDatabase(directory, "population", PERSON_SCHEMA)

    def reset(self) -> None:
        self._file.close()

    def add(self, rows: Iterable[tuple[str, str, int]]) -> int:
        """Add or replace persons."""
        db = self._file.db
        count = 0
        for chunk in chunks(rows, WRITE_CHUNK):
            db.executemany("INSERT OR REPLACE INTO persons VALUES (?, ?, ?)", chunk)
            count += len(chunk)
        db.commit()
        return count

    def find(self, national_ids: Iterable[str]) -> dict[str, tuple[str, int]]:
        db = self._file.db
        found: dict[str, tuple[str, int]] = {}
        for chunk in chunks(national_ids, LOOKUP_CHUNK):
            query = (
                "SELECT national_id, full_name, dates FROM persons"
                f" WHERE national_id IN ({_marks(len(chunk))})"
            )
            for national_id, name, dates in db.execute(query, chunk):
                found[national_id] = (name, dates)
        return found

    def count(self) -> int:
        count: int = self._file.db.execute("SELECT count(*) FROM persons").fetchone()[0]
        return count
