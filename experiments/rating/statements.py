"""Statements the rater path runs on every message, compiled by the ORM once per thread
instead of on every call: building the SQL of a select_related query costs the worker several
times more CPU than PostgreSQL takes to run it."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.db import connections
from django.db.models import Model, QuerySet
from django.db.models.query import get_related_populators
from django.db.transaction import TransactionManagementError

# A primary key no row has: found among the compiled statement's parameters, it marks where
# each call's key goes. A text key takes a text marker (the ORM would turn a number into text).
PK_MARKER = -7_349_118_275
TEXT_MARKER = "~compiled-statement-key~"


@dataclass(frozen=True)
class _Plan:
    connection: Any
    settings: dict
    sql: str
    params: tuple
    key_at: int
    locks: bool
    model: type[Model]
    init_list: list[str]
    model_columns: slice
    populators: list
    converters: dict
    compiler: Any


class CompiledGet:
    """`make().get(<key>=...)` for a queryset that never changes but for the key (a unique
    field: the primary key by default): the SQL and the row-to-objects plan are made by the
    ORM on first use in a thread, then reused. The objects are built as the ORM builds them
    (deferred fields, select_related objects, database converters), so callers cannot tell
    the difference but by the cost."""

    def __init__(self, make: Callable[[], QuerySet], *, key: str = "pk", marker: Any = PK_MARKER):
        self._make = make
        self._key = key
        self._marker = marker
        self._local = threading.local()

    def _plan(self, using: str) -> _Plan:
        connection = connections[using]
        plan = getattr(self._local, "plan", None)
        # A plan holds its thread's connection object, and belongs to one settings dict (the
        # tests swap databases under a running thread).
        if (
            plan is not None
            and plan.connection is connection
            and plan.settings is connection.settings_dict
        ):
            return plan
        queryset = self._make().order_by().filter(**{self._key: self._marker})
        compiler = queryset.query.get_compiler(using=using)
        sql, params = compiler.as_sql()
        key_at = [i for i, value in enumerate(params) if value == self._marker]
        if len(key_at) != 1:
            raise RuntimeError("a compiled statement must take its key exactly once")
        klass_info, select = compiler.klass_info, compiler.select
        fields = klass_info["select_fields"]
        model_columns = slice(fields[0], fields[-1] + 1)
        plan = _Plan(
            connection=connection,
            settings=connection.settings_dict,
            sql=sql,
            params=tuple(params),
            key_at=key_at[0],
            locks=queryset.query.select_for_update,
            model=klass_info["model"],
            init_list=[column[0].target.attname for column in select[model_columns]],
            model_columns=model_columns,
            populators=get_related_populators(klass_info, select, using),
            converters=compiler.get_converters([column[0] for column in select]),
            compiler=compiler,
        )
        self._local.plan = plan
        return plan

    def get(self, key: Any, *, using: str = "default") -> Model:
        """The one object with this key; the model's DoesNotExist when there is none."""
        plan = self._plan(using)
        if plan.locks and not plan.connection.in_atomic_block:
            # What the ORM checks when it compiles: a lock outside a transaction is released
            # at once, which would be a silent bug.
            raise TransactionManagementError(
                "select_for_update cannot be used outside of a transaction."
            )
        params = list(plan.params)
        params[plan.key_at] = key
        with plan.connection.cursor() as cursor:
            cursor.execute(plan.sql, params)
            row = cursor.fetchone()
        if row is None:
            raise plan.model.DoesNotExist(
                f"{plan.model._meta.object_name} matching query does not exist."
            )
        if plan.converters:
            row = next(iter(plan.compiler.apply_converters([row], plan.converters)))
        obj = plan.model.from_db(using, plan.init_list, row[plan.model_columns])
        for populator in plan.populators:
            populator.populate(row, obj)
        return obj
