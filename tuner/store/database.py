"""`Database`: opening Optuna's RDB storage, and refusing what must not be opened.

Only a search (`create=True`) may create a database or its folder; every other command opens
what exists or says there is nothing. An existing file that is not a SQLite database, or a
database holding anything of another application's (a table, a view, a trigger), is refused
before Optuna writes to it; so is, for a command that only reads, a database lacking part of
Optuna's schema (Optuna would complete it).
"""

from __future__ import annotations

import time
import warnings
from pathlib import Path
from typing import Any, Callable

from tuner import config
from tuner.errors import UserError
from tuner.paths import check_can_write, length_problem, loop_problem, make_folder
from tuner.store.urls import raw_userinfo, redact, scrub
from tuner.wording import clipped

# Optuna's schema. A database is written only when it is empty or holds its core and nothing
# else; any other table, view or trigger is another application's. A schema part-way through
# creation (several workers opening a fresh database at once) lacks some of the core, for a moment.
OPTUNA_TABLES = frozenset({
    "studies", "version_info", "study_directions", "study_user_attributes", "study_system_attributes", "trials",
    "trial_user_attributes", "trial_system_attributes", "trial_params", "trial_values", "trial_intermediate_values",
    "trial_heartbeats", "alembic_version"})
OPTUNA_CORE = frozenset({"studies", "version_info", "study_directions", "trials", "trial_values"})
_VERSION_TABLES = ("version_info", "alembic_version")  # Optuna writes a row into each that lacks one
_SQLITE_MAGIC = b"SQLite format 3\x00"
_SCHEMA_WAIT_SECONDS = 2.0  # a schema another process is creating is complete within this


def _unknown_schema(reason: str) -> str:
    """Optuna's words for a schema version it does not know assume a newer Optuna wrote it (and
    name the version running as the one that did); a damaged record of the version reads the same."""
    if "no longer compatible with the table schema" not in reason or "pip install" not in reason:
        return reason
    import optuna

    return (f"its schema version is not one that Optuna {optuna.__version__} knows: another Optuna version wrote "
            f"it (a newer one: pip install -U optuna), or the database is damaged")


class Database:
    """One storage URL, opened on first use."""

    def __init__(self, url: str, heartbeat: bool = False, create: bool = False, own_folder: bool = False):
        self.url = url
        self.heartbeat = heartbeat
        self.create = create
        # The default database's folder is the results folder, which a search creates; a
        # --storage path's folder must exist (a typo must not create folders anywhere).
        self.own_folder = own_folder
        self._storage: Any = None

    @property
    def storage(self) -> Any:
        """Optuna's RDBStorage; an unreachable URL is one clear line."""
        if self._storage is None:
            self._storage = self._open()
        return self._storage

    def _open(self) -> Any:
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        kwargs = self.check()
        database = self.sqlite_file()
        if database is not None and not database.exists():
            make_folder(database.parent)  # only a search gets here (`check` refuses the rest)
        # A dead worker's trial is failed once its heartbeat is older than the grace period.
        beat: dict[str, int] = {}
        if self.heartbeat:
            interval = config.heartbeat_seconds()
            beat = {"heartbeat_interval": interval, "grace_period": 3 * interval}
        return self.guarded(lambda: _create_storage(self.url, kwargs, beat))

    def check(self) -> dict[str, Any]:
        """Refuse what cannot or must not be opened, creating nothing: a URL that is not one,
        another application's database, a missing one for a command that only reads. Returns
        the engine options for the URL."""
        if self._is_sqlite():
            exists = self._check_sqlite_file(self._parsed().database)
            kwargs: dict[str, Any] = {"connect_args": {"timeout": 120}}  # wait, not 'database is locked'
        else:
            exists = True
            kwargs = {"pool_pre_ping": True, "connect_args": {"connect_timeout": 10}}
        if exists:
            self.guarded(lambda: self._check_tables(kwargs))
        return kwargs

    def guarded(self, call: Callable[[], Any]) -> Any:
        """`call()`, with any database error turned into one line that shows no secret."""
        try:
            return call()
        except UserError:
            raise
        except Exception as e:
            reason = _unknown_schema(str(e).splitlines()[0] if str(e) else type(e).__name__)
            raise UserError(f"cannot open storage {redact(self.url)}: {scrub(reason, self.url)}") from None

    def study_rows(self) -> list[tuple[int, str]]:
        """Each study's id and name, read from Optuna's `studies` table alone."""
        import sqlalchemy

        query = sqlalchemy.text("SELECT study_id, study_name FROM studies ORDER BY study_id")
        with self.storage.engine.connect() as connection:
            return [(int(row[0]), str(row[1])) for row in connection.execute(query)]

    def exists(self) -> bool:
        """Whether there is a database to read: a server's always; a SQLite file once created
        (reading a missing one as a search would create it)."""
        database = self.sqlite_file()
        return database is None or database.exists()

    def sqlite_file(self) -> Path | None:
        """The SQLite database file, when the storage is one."""
        try:
            database = self._parsed().database if self._is_sqlite() else None
        except UserError:
            return None
        return Path(database) if database and database != ":memory:" else None

    def _is_sqlite(self) -> bool:
        return self._parsed().get_backend_name() == "sqlite"

    def _parsed(self) -> Any:
        from sqlalchemy.engine import make_url

        userinfo = raw_userinfo(self.url)
        if userinfo is not None and "@" in userinfo:
            raise UserError(f"storage {redact(self.url)}: the user or password holds an '@'; write it as %40")
        try:
            return make_url(self.url)
        except Exception:
            shown = redact(self.url)
            if "://" not in self.url and shown != "***":  # a path, most likely
                raise UserError(f"storage {shown}: not a URL; a SQLite file there is sqlite:///{shown}") from None
            raise UserError(f"storage {shown}: not a SQLAlchemy URL (e.g. sqlite:///tune.db)") from None

    def _check_sqlite_file(self, database: str | None) -> bool:
        """Whether the SQLite file exists. It may be missing only for a search, which creates
        it; an existing file must be a SQLite database."""
        if not database or database == ":memory:":
            raise UserError(f"storage {redact(self.url)}: an in-memory database keeps nothing; give a file "
                            f"(sqlite:///path/tune.db)")
        if self._parsed().query:
            raise UserError(f"storage {redact(self.url)}: query options on a SQLite URL are not supported "
                            f"(they can point SQLite at another file); give a plain sqlite:///path/tune.db")
        if database.startswith("file:"):
            raise UserError(f"storage {redact(self.url)}: SQLite URI file names (file:...) are not supported; "
                            f"give a path (sqlite:///path/tune.db)")
        if why := length_problem(database) or loop_problem(database):
            raise UserError(f"storage {clipped(redact(self.url))}: {why}")
        path = Path(database)
        if not path.exists():
            if not self.create:
                raise UserError(f"no studies yet: {path} does not exist (run `tune search` first, or pass the "
                                f"--results-dir or --storage the search used)")
            if not self.own_folder and not path.parent.is_dir():
                what = "is a file, not a folder" if path.parent.exists() else "does not exist; create it first"
                raise UserError(f"storage {redact(self.url)}: the folder {path.parent} {what} "
                                f"(a search creates only its results folder)")
            check_can_write(path.parent)
            return False
        if not path.is_file():
            raise UserError(f"storage {path}: not a file")
        with open(path, "rb") as f:
            head = f.read(len(_SQLITE_MAGIC))
        if head and head != _SQLITE_MAGIC:
            raise UserError(f"storage {path}: not a SQLite database; refused (tune never writes a file it did not make)")
        return True

    def _check_tables(self, kwargs: dict[str, Any]) -> None:
        """Refuse another application's database (or one with anything of another's in it: a
        table, a view, a trigger that would act on Optuna's writes) before Optuna writes to it."""
        tables = self._tables(kwargs)
        if tables - OPTUNA_TABLES:
            raise UserError(self._not_optuna(tables - OPTUNA_TABLES))
        if tables and not OPTUNA_CORE <= tables:  # Optuna's schema part-way: another process creating it?
            time.sleep(_SCHEMA_WAIT_SECONDS)
            if missing := OPTUNA_CORE - self._tables(kwargs):
                raise UserError(f"storage {redact(self.url)} lacks Optuna's table{'s' * (len(missing) > 1)} "
                                f"{', '.join(sorted(missing))}: not an Optuna study database's schema, or a damaged "
                                f"one; refused")
        if not tables and not self.create:
            raise UserError(f"no studies yet in {redact(self.url)} (run `tune search` first)")
        if tables and not self.create:
            self._check_complete(tables, kwargs)

    def _check_complete(self, tables: set[str], kwargs: dict[str, Any]) -> None:
        """A command that only reads must find Optuna's whole schema and its version rows:
        opening a database without them, Optuna creates the tables and writes the rows."""
        if not (missing := self._incomplete(tables, kwargs)):
            return
        time.sleep(_SCHEMA_WAIT_SECONDS)  # another process may be creating it
        if missing := self._incomplete(self._tables(kwargs), kwargs):
            raise UserError(f"storage {redact(self.url)} lacks {', '.join(missing)} of Optuna's schema: a damaged "
                            f"database, or one part-way through its creation; refused (reading it would write it)")

    def _incomplete(self, tables: set[str], kwargs: dict[str, Any]) -> list[str]:
        return sorted(OPTUNA_TABLES - tables) + [f"a row in {t}" for t in _VERSION_TABLES
                                                 if t in tables and not self._rows(t, kwargs)]

    def _rows(self, table: str, kwargs: dict[str, Any]) -> int:
        import sqlalchemy

        engine = sqlalchemy.create_engine(self.url, **kwargs)
        try:
            with engine.connect() as connection:
                return connection.execute(sqlalchemy.text(f"SELECT COUNT(*) FROM {table}")).scalar_one()
        finally:
            engine.dispose()

    def _tables(self, kwargs: dict[str, Any]) -> set[str]:
        """The database's tables, views and triggers (a view or a trigger is someone else's too)."""
        import sqlalchemy

        engine = sqlalchemy.create_engine(self.url, **kwargs)
        try:
            inspector = sqlalchemy.inspect(engine)
            query = _TRIGGERS.get(engine.dialect.name)
            with engine.connect() as connection:
                triggers = connection.execute(sqlalchemy.text(query)).scalars().all() if query else []
            return (set(inspector.get_table_names()) | set(inspector.get_view_names())
                    | {f"trigger {name}" for name in triggers})
        finally:
            engine.dispose()

    def _not_optuna(self, foreign: set[str]) -> str:
        shown = ", ".join(sorted(foreign)[:5]) + (", ..." if len(foreign) > 5 else "")
        return (f"storage {redact(self.url)} holds tables that are not an Optuna study database's ({shown}); "
                f"refused. Point --storage at a database of its own")


_TRIGGERS = {  # the triggers of the database's own schema, by SQLAlchemy dialect
    "sqlite": "SELECT name FROM sqlite_master WHERE type = 'trigger'",
    "postgresql": "SELECT DISTINCT trigger_name FROM information_schema.triggers "
                  "WHERE event_object_schema = current_schema()",
    "mysql": "SELECT trigger_name FROM information_schema.triggers WHERE trigger_schema = DATABASE()",
}


def _create_storage(url: str, engine_kwargs: dict[str, Any], beat: dict[str, int]) -> Any:
    """RDBStorage, retried while several workers race to create the same fresh schema."""
    import optuna
    from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError

    for attempt in range(6):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                return optuna.storages.RDBStorage(url, engine_kwargs=engine_kwargs, **beat)
        except (IntegrityError, ProgrammingError, OperationalError) as e:
            racing = isinstance(e, (IntegrityError, ProgrammingError)) or any(
                m in str(e) for m in ("locked", "already exists"))
            if not racing or attempt == 5:
                raise
            time.sleep(0.2 * (attempt + 1))
    raise AssertionError("unreachable")
