"""Compile a metering policy into SQL over a table of usage records: the vectorised twin of ``meter.py``.

Owns: turning a :class:`~talktime.core.metering.policy.Policy` into queries (validation, per-record results,
totals) in a :class:`~talktime.engine.dialects.Dialect`. Does not own: reading files or talking to an
engine (``backends.py``), or what a policy means (the scalar meter is the oracle; this must agree with it).

How it stays exact: every duration is an integer count of 10^-scale seconds. Timestamps become integer
microseconds, seconds columns (DECIMAL(18,6)) become integer microseconds, and every policy constant
``p x 10^-k`` multiplies by the integer ``p`` and adds ``k`` to the scale, which this module tracks per
variant and per step. Rounding to a block is integer floor division. Nothing is ever a float.

A count basis (tokens, characters, requests: ``MeteringParams.count_terms``) is the same kind of integer, in
millionths of its unit: counts x 10^6 plus weighted seconds columns, which are microseconds already. So every
step after the basis is the same SQL for a count as for time.

Rules and versions become *variants*: one per (version, subset of that version's rules that match), each a
fully resolved :class:`MeteringParams`, so every step below is straight-line SQL with constants. Each step is
one ``SELECT *, CASE _v WHEN <variant> THEN ... END`` layer, in the scalar meter's order::

    variant -> basis/gates/cap -> segments -> rounding -> minimum -> channels x factor -> multiplier
      -> (session/period scope: window over the group, the rounding's gain on the last billing record,
          its loss taken from the billing records from the last one back)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import ROUND_CEILING, Decimal
from typing import Final

from talktime.core.metering.meter import NOT_COUNTED, count_label  # count_label: the reference's words
from talktime.core.metering.policy import MeteringParams, Policy, Rule, apply_overrides
from talktime.core.records import ATTR_PREFIX, COUNT_FIELDS, COUNT_PARTS, KINDS, STATUSES
from talktime.engine.dialects import DUCKDB, NUMBER_PATTERN, Dialect
from talktime.errors import PolicyError

#: More rule combinations than this would make the compiled query unreasonably large.
MAX_VARIANTS: Final = 256
_SECONDS_COLUMNS: Final = {
    "audio_seconds": "_audio",
    "speech_seconds": "_speech",
    "provider_reported_seconds": "_reported",
}
_COUNT_COLUMNS: Final = ("channels", *COUNT_FIELDS)
_TEXT_COLUMNS: Final = ("id", "customer", "provider", "product", "session", "kind", "status")
_TIMES: Final = {
    "started_at": "_start",
    "ended_at": "_end",
    "answered_at": "_answered",
    "first_audio_at": "_first_audio",
    "last_audio_at": "_last_audio",
}
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


class UnsupportedPolicy(PolicyError):
    """A valid policy this engine cannot compile (a declared gap; the reference engine meters it)."""


@dataclass(frozen=True, slots=True)
class Variant:
    """One fully resolved parameter set: a version with a given subset of its rules applied.

    ``index`` is the code the query computes: the version's offset plus one bit per matching rule.
    """

    index: int
    version: int
    mask: int
    params: MeteringParams


def _expected(value: object) -> str:
    return str(value).strip().lower()


def _feasible_masks(rules: tuple[Rule, ...]) -> list[int]:
    """Rule subsets that can match together: no two rules ask one field for different values."""
    masks: list[int] = []

    def extend(bit: int, mask: int, fixed: dict[str, str]) -> None:
        if bit == len(rules):
            masks.append(mask)
            return
        extend(bit + 1, mask, fixed)
        wanted = {name: _expected(value) for name, value in rules[bit].when.items()}
        if all(fixed.get(name, value) == value for name, value in wanted.items()):
            extend(bit + 1, mask | (1 << bit), {**fixed, **wanted})
        if len(masks) > MAX_VARIANTS:
            return

    extend(0, 0, {})
    return sorted(masks)


def variants(policy: Policy) -> list[Variant]:
    """Every (version, matching-rule subset) with its parameters, resolved like ``meter._resolve``."""
    found: list[Variant] = []
    offset = 0
    for number, version in enumerate(policy.versions):
        rules = version.params.rules
        for mask in _feasible_masks(rules):
            params = version.params
            for bit, rule in enumerate(rules):
                if mask & (1 << bit):
                    params = apply_overrides(params, rule.set)
            found.append(Variant(offset + mask, number, mask, params))
            if len(found) > MAX_VARIANTS:
                raise UnsupportedPolicy(
                    f"policy {policy.id!r}: more than {MAX_VARIANTS} version/rule combinations; "
                    "use --engine reference"
                )
        offset += 2 ** len(rules)
    return found


def _fixed(value: Decimal) -> tuple[int, int]:
    """``value`` as ``(p, k)`` with ``value == p * 10**-k`` and ``k >= 0``."""
    sign, digits, exponent = value.normalize().as_tuple()
    assert isinstance(exponent, int)
    number = int("".join(map(str, digits)) or "0") * (-1 if sign else 1)
    if exponent >= 0:
        return number * 10**exponent, 0
    return number, -exponent


def _at(value: Decimal, scale: int) -> int:
    """``value`` as an integer count of ``10**-scale`` (``scale`` at least its number of decimals)."""
    p, k = _fixed(value)
    assert k <= scale
    return int(p * 10 ** (scale - k))


def _micros(moment: datetime) -> int:
    return (moment - _EPOCH) // _ONE_US


_ONE_US: Final = datetime(1970, 1, 1, 0, 0, 0, 1, tzinfo=UTC) - _EPOCH


@dataclass
class _Column:
    """One layer's per-variant expressions for a value, with each variant's scale."""

    name: str
    exprs: dict[int, str] = field(default_factory=dict)
    scales: dict[int, int] = field(default_factory=dict)


@dataclass
class Compiled:
    """The queries for one policy over one relation, and how to read their integer results."""

    validation: str
    any_duplicate: str
    duplicates: str
    records: str
    totals: str
    #: :attr:`totals` with one more column on every row: how many records break the format or cannot be
    #: metered, except for a missing id, which :attr:`id_screen` counts (so this query need not read ids).
    checked_totals: str
    #: One row: how many ids are missing, and how many repeat (at least: DuckDB counts distinct id hashes,
    #: so a collision only sends the engine to the exact queries).
    id_screen: str
    #: Each record's id as a 64-bit hash (DuckDB only), for an engine that screens for repeats itself.
    id_hashes: str
    #: One row: how many records there are (from metadata, where the engine keeps it).
    id_count: str
    billable_scale: int
    variants: list[Variant]
    #: Like :attr:`validation`, for record-format errors alone: the first row that breaks the format, else
    #: the first row (its error NULL). The reference reads every record of a policy with parts (the format,
    #: repeated ids) before it meters any part.
    formats: str

    @property
    def version_of(self) -> dict[int, int]:
        """Variant code -> version number."""
        return {v.index: v.version for v in self.variants}


class _Builder:
    def __init__(self, policy: Policy, dialect: Dialect, relation: str, carry: tuple[str, ...] = ()) -> None:
        self.policy = policy
        self.d = dialect
        self.relation = relation
        self.carry = carry
        self.variants = variants(policy)
        self.layers: list[str] = []
        self.errors: list[str] = []  # error-code columns, in the order the scalar meter meets them

    # --- small helpers ---------------------------------------------------------------------------------

    def lit(self, value: int) -> str:
        return self.d.int_lit(value)

    def up(self, expr: str, scale: int, to: int) -> str:
        """``expr`` (an integer at ``scale``) at the larger scale ``to``."""
        assert to >= scale
        return expr if to == scale else f"({expr}) * {self.lit(10 ** (to - scale))}"

    def const(self, value: Decimal, scale: int) -> str:
        return self.lit(_at(value, scale))

    def layer(self, columns: dict[str, str]) -> None:
        select = ", ".join(f"{expr} AS {name}" for name, expr in columns.items())
        previous = self.last()
        self.layers.append(f"SELECT *, {select} FROM {previous}{self.d.layer_fence}")

    def last(self) -> str:
        """The name of the newest layer (``_src`` is the first, then ``_l0``, ``_l1``, ...)."""
        return f"_l{len(self.layers) - 2}" if len(self.layers) > 1 else "_src"

    def per_variant(self, exprs: dict[int, str], default: str = "NULL", key: str = "_v") -> str:
        groups: dict[str, list[int]] = {}
        for index, expr in exprs.items():
            groups.setdefault(expr, []).append(index)
        if len(groups) == 1 and len(exprs) == len(self.variants):
            return next(iter(groups))
        whens = " ".join(
            f"WHEN {self.d.in_list(key, [str(i) for i in idx])} THEN {expr}" for expr, idx in groups.items()
        )
        return f"(CASE {whens} ELSE {default} END)"

    def text_in(self, column: str, values: tuple[str, ...] | list[str]) -> str:
        return self.d.one_of(column, list(values))

    # --- the source: normalised columns and integer durations -------------------------------------------

    def source(self) -> str:
        d = self.d
        cols = ["_row"]
        for name in _TEXT_COLUMNS:
            value = d.trim.format(x=d.ident(name))
            if name in ("kind", "status"):
                value = f"LOWER({value})"
            if name == "status":
                value = f"COALESCE({value}, 'completed')"
            cols.append(f"{value} AS {d.ident(name)}" if name != "id" else f"{value} AS id")
        cols.append(f"COALESCE({d.ident('channels')}, 1) AS channels")
        for name in _COUNT_COLUMNS[1:]:
            cols.append(f"{d.ident(name)} AS {name}")
        for name, alias in _TIMES.items():
            cols.append(f"{d.epoch_us.format(x=d.ident(name))} AS {alias}")
        cols.append(f"{d.ident('started_at')} AS _started_ts")
        for name, alias in _SECONDS_COLUMNS.items():
            cols.append(f"{d.seconds_us.format(x=d.ident(name))} AS {alias}")
        for attr in self.attrs():
            cols.append(f"{d.trim.format(x=d.ident(attr))} AS {self.attr_alias(attr)}")
        cols += [d.ident(name) for name in self.carry]
        return f"SELECT {', '.join(cols)} FROM {self.relation}"

    def attrs(self) -> list[str]:
        names: set[str] = set()
        for variant in self.variants:
            p = variant.params
            names.update(s.field for s in p.segments)
            if p.multiplier is not None:
                names.add(p.multiplier.field)
        for version in self.policy.versions:
            for rule in version.params.rules:
                names.update(rule.when)
        return sorted(n for n in names if n.startswith(ATTR_PREFIX))

    @staticmethod
    def attr_alias(name: str) -> str:
        return "_a_" + "".join(c if c.isalnum() else "_" for c in name[len(ATTR_PREFIX) :]) + f"_{len(name)}"

    def format_errors(self, *, with_id: bool = True) -> str:
        """Record-format checks, in ``parse_record``'s order, for typed sources (Parquet, engine tables).

        ``with_id=False`` leaves out the missing id, for queries whose id screen counts it instead.
        """
        checks = [("id IS NULL", "fmt:id")] if with_id else []
        checks += [
            ("_start IS NULL", "fmt:started_at"),
            (f"NOT {self.text_in('status', sorted(STATUSES))}", "fmt:status"),
            (f"kind IS NOT NULL AND NOT {self.text_in('kind', sorted(KINDS))}", "fmt:kind"),
            ("_end IS NULL AND status = 'completed'", "fmt:ended_at:completed"),
            ("_end < _start", "fmt:ended_at:before"),
        ]
        for name in ("answered_at", "first_audio_at", "last_audio_at"):
            col = _TIMES[name]
            checks.append((f"{col} < _start", f"fmt:{name}:before"))
            checks.append((f"{col} > _end", f"fmt:{name}:after"))
        checks.append(("_last_audio < _first_audio", "fmt:last_audio_at:order"))
        for name, col in _SECONDS_COLUMNS.items():
            checks.append((f"{col} < 0", f"fmt:{name}:negative"))
        for name in _COUNT_COLUMNS[1:]:
            checks.append((f"{name} < 0", f"fmt:{name}:negative"))
        for part, whole in COUNT_PARTS.items():
            checks.append((f"{part} > {whole}", f"fmt:{part}:part:{whole}"))
        checks.append(("channels < 1", "fmt:channels:positive"))
        whens = " ".join(f"WHEN {cond} THEN '{code}'" for cond, code in checks)
        return f"(CASE {whens} END)"

    # --- rules and versions ------------------------------------------------------------------------------

    def field_text(self, name: str) -> str:
        """A field as the lower-cased text a rule compares (``str(value).strip().lower()``)."""
        if name.startswith(ATTR_PREFIX):
            return f"LOWER({self.attr_alias(name)})"
        if name in _TEXT_COLUMNS:
            return f"LOWER({name})" if name != "id" else "LOWER(id)"
        if name in _COUNT_COLUMNS:
            return f"CAST({name} AS {self.d.text})"
        raise UnsupportedPolicy(
            f"policy {self.policy.id!r}: a rule's condition on {name!r} (a timestamp or seconds field) "
            "depends on how the file wrote it; use --engine reference"
        )

    def variant_expr(self) -> str:
        whens: list[str] = []
        for number in reversed(range(len(self.policy.versions))):
            version = self.policy.versions[number]
            base = min(v.index - v.mask for v in self.variants if v.version == number)
            bits = []
            for bit, rule in enumerate(version.params.rules):
                conds = " AND ".join(
                    f"{self.field_text(name)} = {self.d.str_lit(_expected(expected))}"
                    for name, expected in rule.when.items()
                )
                bits.append(f"(CASE WHEN {conds} THEN {1 << bit} ELSE 0 END)")
            value = " + ".join([str(base), *bits])
            whens.append(f"WHEN _start >= {self.lit(_micros(version.effective_from))} THEN {value}")
        return f"(CASE {' '.join(whens)} END)"

    # --- the pipeline -----------------------------------------------------------------------------------

    def measure(self, basis: str, end: str) -> str:
        """One measure in microseconds, NULL when missing.

        Only ever read as ``COALESCE(largest(measures), 0)``, and never negative in a record that passes
        the format checks, so a missing measure may be NULL where ``meter._measure`` says 0 (an unanswered
        call): the larger of NULL and x is x, as is the larger of 0 and x. A missing measure that makes a
        billed record unmeasurable is :meth:`missing`'s error, not this value's.
        """
        if basis == "connection":
            return f"({end} - _start)"
        if basis == "answered":
            return f"({end} - _answered)"
        if basis == "audio_span":
            return "(_last_audio - _first_audio)"
        return {"audio_sent": "_audio", "speech": "_speech", "provider_reported": "_reported"}[basis]

    def missing(self, basis: str, end: str) -> list[tuple[str, str]]:
        """(condition, field) pairs that make a billed record unmeasurable, in the scalar meter's order."""
        if basis == "connection":
            return [(f"{end} IS NULL", "ended_at")]
        if basis == "answered":
            return [
                ("_answered IS NULL AND status = 'completed'", "answered_at"),
                (f"_answered IS NOT NULL AND {end} IS NULL", "ended_at"),
            ]
        if basis == "audio_span":
            return [("_first_audio IS NULL", "first_audio_at"), ("_last_audio IS NULL", "last_audio_at")]
        name = {"audio_sent": "audio_seconds", "speech": "speech_seconds"}.get(basis, basis + "_seconds")
        return [(f"{_SECONDS_COLUMNS[name]} IS NULL", name)]

    def count(self, terms: tuple[tuple[str, int], ...]) -> str:
        """A count basis in millionths of its unit, an integer at scale 6 like time's microseconds.

        Each count field x weight x 10^6, each seconds field (already microseconds) x weight, ``request``
        10^6 x weight; a missing field adds 0 (whether it may be missing is :meth:`uncounted`'s). The count
        fields are cast to the dialect's exact integer first: a count is at most an int64 (9.2e18), so a
        term is below 9.2e24 x weight, well inside the 128-bit integers and DECIMAL(38) of the wide
        dialects. DuckDB's 64-bit fast path holds weighted counts up to about 9.2e12 units (9.2e18 / 10^6)
        and raises beyond, so the engine reruns on 128 bits (see ``DuckDBEngine.totals``).
        """
        summands = []
        for name, weight in terms:
            if name == "request":  # typed: a literal alone is 32-bit, and 10^6 x 10^6 overflows it
                summands.append(self.d.to_big.format(x=self.lit(weight * 10**6), big=self.d.big))
            elif name in _SECONDS_COLUMNS:
                summands.append(f"COALESCE({_SECONDS_COLUMNS[name]}, 0) * {self.lit(weight)}")
            else:
                value = self.d.to_big.format(x=name, big=self.d.big)
                summands.append(f"COALESCE({value}, 0) * {self.lit(weight * 10**6)}")
        return "(" + " + ".join(summands) + ")"

    @staticmethod
    def uncounted(terms: tuple[tuple[str, int], ...]) -> list[tuple[str, str]]:
        """(condition, field) pairs that make a billed record uncountable, in ``meter._count``'s order: a
        missing field with a positive weight, unless it is a part whose total is there (it is then 0)."""
        found = []
        for name, weight in terms:
            if weight < 0 or name == "request":
                continue
            cond = f"{_SECONDS_COLUMNS.get(name, name)} IS NULL"
            if name in COUNT_PARTS:
                cond += f" AND {COUNT_PARTS[name]} IS NULL"
            found.append((cond, name))
        return found

    def negative_count(self, terms: tuple[tuple[str, int], ...]) -> str:
        """The error code of a count below zero (its parts do not fit in its totals): the first field
        subtracted that the record has (above 0), the reference's label of the basis, and the count (at scale
        6) to put in the message."""
        label = count_label(terms)
        subtracted = [name for name, weight in terms if weight < 0]
        whens = " ".join(
            f"WHEN {_SECONDS_COLUMNS.get(name, name)} > 0 THEN {self.d.str_lit(f'negcount:{name}:{label}:')}"
            for name in subtracted
        )
        prefix = f"(CASE {whens} ELSE {self.d.str_lit(f'negcount:{subtracted[0]}:{label}:')} END)"
        return f"({prefix} || CAST(_actual AS {self.d.text}))"

    def largest(self, exprs: list[str]) -> str:
        best = exprs[0]
        for expr in exprs[1:]:
            best = (
                f"(CASE WHEN {best} IS NULL THEN {expr} WHEN {expr} IS NULL THEN {best} "
                f"WHEN {best} >= {expr} THEN {best} ELSE {expr} END)"
            )
        return best

    def basis_layer(self) -> dict[int, int]:
        actual: dict[int, str] = {}
        errors: dict[int, str] = {}
        live: dict[int, str] = {}
        free: dict[int, dict[str, int]] = {}
        trail: dict[int, str] = {}
        scales: dict[int, int] = {}
        meters: dict[int, str] = {}
        for v in self.variants:
            p = v.params
            cap = p.open_cap_seconds
            end = "_end"
            if cap is not None:
                cap_us = int(cap.scaleb(6))
                end = f"(CASE WHEN status = 'open' THEN _start + {self.lit(cap_us)} ELSE _end END)"
            counted = "1 = 1"
            checks: list[tuple[str, str]] = []
            if p.kinds is not None:
                counted = f"kind IS NOT NULL AND {self.text_in('kind', list(p.kinds))}"
                checks.append(("kind IS NULL", "'kind_missing'"))
            if p.is_count:
                measured = self.count(p.count_terms)
            else:
                measured = self.largest([self.measure(b, end) for b in p.bases])
            is_billed = f"(status = 'open' OR {self.text_in('status', list(p.billed_statuses))})"
            if p.is_count and any(weight < 0 for _, weight in p.count_terms):
                # a record the policy does not bill whose parts exceed its totals counts nothing (as the
                # reference); a billed one is the negative-count error below
                measured = f"(CASE WHEN {measured} < 0 AND NOT {is_billed} THEN 0 ELSE {measured} END)"
            actual[v.index] = f"(CASE WHEN {counted} THEN COALESCE({measured}, 0) ELSE 0 END)"
            if cap is None:
                checks.append((f"{counted} AND status = 'open'", "'open_no_cap'"))
            for basis in p.bases:
                for cond, name in self.missing(basis, end):
                    checks.append((f"{counted} AND {is_billed} AND {cond}", f"'need:{name}:{basis}'"))
            for cond, name in self.uncounted(p.count_terms):
                checks.append((f"{counted} AND {is_billed} AND {cond}", f"'count:{name}'"))
            if any(weight < 0 for _, weight in p.count_terms):
                checks.append((f"{is_billed} AND _actual < 0", self.negative_count(p.count_terms)))
            errors[v.index] = (
                "(CASE " + " ".join(f"WHEN {c} THEN {e}" for c, e in checks) + " END)"
                if checks
                else "(CASE WHEN 1 = 0 THEN 'none' END)"
            )
            gates = [is_billed, f"({counted})", "_actual > 0"]
            if any(w.params.free_below_seconds > 0 for w in self.variants):
                # actual (whole microseconds) >= free_below  <=>  actual >= ceil(free_below in microseconds)
                gates.append("_actual >= @f@")
                free[v.index] = {"f": int(p.free_below_seconds.scaleb(6).to_integral_value(ROUND_CEILING))}
            live[v.index] = f"(CASE WHEN {' AND '.join(gates)} THEN 1 ELSE 0 END)"
            if cap is None:
                trail[v.index] = "(CASE WHEN _live = 1 THEN _actual ELSE 0 END)"
                scales[v.index] = 6
            else:
                _, ck = _fixed(cap)
                scale = max(6, ck)
                a, c = self.up("_actual", 6, scale), self.const(cap, scale)
                trail[v.index] = f"(CASE WHEN _live = 0 THEN 0 WHEN {a} > {c} THEN {c} ELSE {a} END)"
                scales[v.index] = scale
            meter_whens = " ".join(
                f"WHEN kind = {self.d.str_lit(kind)} THEN {self.d.str_lit(name)}"
                for kind, name in p.meters.items()
            )
            default = self.d.str_lit(self.policy.default_meter)
            if p.kinds is not None:
                meter_whens = f"WHEN NOT ({counted}) THEN {self.d.str_lit(NOT_COUNTED)} {meter_whens}"
            meters[v.index] = f"(CASE {meter_whens} ELSE {default} END)" if meter_whens else default
        self.layer({"_actual": self.per_variant(actual), "_meter": self.per_variant(meters)})
        live_expr = self.lifted(live, {i: free.get(i, {}) for i in live}, default="0")
        self.layer({"_live": live_expr, "_err_basis": self.per_variant(errors)})
        self.errors.append("_err_basis")
        self.layer({"_t0": self.per_variant(trail, "0")})
        return scales

    def number(self, name: str) -> tuple[str, int, str | None]:
        """A numeric field as (integer expression, scale, raw text for a format check or None)."""
        if name.startswith(ATTR_PREFIX):
            alias = self.attr_alias(name)
            return self.d.parse_us.format(x=alias), 6, alias
        if name in _SECONDS_COLUMNS:
            return _SECONDS_COLUMNS[name], 6, None
        if name in _COUNT_COLUMNS:
            return self.d.to_big.format(x=name, big=self.d.big), 0, None
        raise UnsupportedPolicy(
            f"policy {self.policy.id!r}: field {name!r} is not a number; segments and multipliers read "
            "numeric fields or attr.<name>"
        )

    def number_error(self, raw: str | None, field_name: str, reached: str) -> str | None:
        if raw is None:
            return None
        pattern = self.d.matches.format(x=raw, p=self.d.str_lit(NUMBER_PATTERN))
        return f"(CASE WHEN {reached} AND {raw} IS NOT NULL AND NOT {pattern} THEN 'number:{field_name}' END)"

    def segment_layers(self, scales: dict[int, int], current: str) -> tuple[str, dict[int, int]]:
        depth = max((len(v.params.segments) for v in self.variants), default=0)
        for j in range(depth):
            exprs: dict[int, str] = {}
            errors: dict[int, str] = {}
            new_scales: dict[int, int] = {}
            for v in self.variants:
                s = scales[v.index]
                if j >= len(v.params.segments):
                    exprs[v.index], new_scales[v.index] = current, s
                    continue
                seg = v.params.segments[j]
                value, vs, raw = self.number(seg.field)
                fp, fk = _fixed(seg.factor)
                scale = max(s, vs + fk)
                common = max(s, vs)
                t, x = self.up(current, s, common), self.up(value, vs, common)
                check = f"_live = 1 AND {value} IS NOT NULL AND ({x} < 0 OR {x} > {t})"
                fmt = self.number_error(raw, seg.field, "_live = 1")
                errors[v.index] = (
                    f"COALESCE({fmt}, (CASE WHEN {check} THEN 'segment:{seg.field}' END))"
                    if fmt
                    else f"(CASE WHEN {check} THEN 'segment:{seg.field}' END)"
                )
                reduced = (
                    f"{self.up(current, s, scale)} - {self.up(value, vs, scale)}"
                    f" + {self.up(f'{value} * {self.lit(fp)}', vs + fk, scale)}"
                )
                exprs[v.index] = (
                    f"(CASE WHEN _live = 1 AND {value} IS NOT NULL THEN {reduced} "
                    f"ELSE {self.up(current, s, scale)} END)"
                )
                new_scales[v.index] = scale
            name = f"_seg{j}"
            self.layer({name: self.per_variant(exprs), f"_err_seg{j}": self.per_variant(errors)})
            self.errors.append(f"_err_seg{j}")
            current, scales = name, new_scales
        return current, scales

    def increments(self, value: str, s: int, p: MeteringParams) -> tuple[str, int, dict[str, int]]:
        """``round_increments`` on an integer at scale ``s``: (template, scale, constants).

        The template names the block sizes ``@a@`` (first block) and ``@b@`` (increment), so variants that
        differ only in them share one expression (:meth:`lifted`). Each form names ``value`` as few times as
        it can: engines inline the layers below, so every mention repeats their whole expression (``x <= 0``
        bills 0, which ``greatest(x, 0)`` gives at once).
        """
        if p.rounding == "exact":
            return value, s, {}
        first, incr = p.first_block_seconds, p.increment_seconds
        scale = max(s, _fixed(first)[1], _fixed(incr)[1])
        x, a, b = self.up(value, s, scale), "@a@", "@b@"
        consts = {"a": _at(first, scale), "b": _at(incr, scale)}
        if p.rounding == "nearest":
            consts["c"] = 2 * consts["b"]

        def multiple(y: str) -> str:
            """``y`` (never below 0) rounded to a multiple of ``b`` in the policy's direction."""
            if p.rounding == "up":
                return f"({self.d.div(f'({y}) + {b} - 1', b)} * {b})"
            if p.rounding == "nearest":  # 2b as its own constant: 2 x a literal overflows 32-bit literals
                return f"({self.d.div(f'2 * ({y}) + {b}', '@c@')} * {b})"
            return f"({self.d.div(y, b)} * {b})"

        if first != incr:
            above = multiple(f"{x} - {a}")
            expr = f"(CASE WHEN {x} <= 0 THEN 0 WHEN {x} <= {a} THEN {a} ELSE {a} + {above} END)"
            return expr, scale, consts
        del consts["a"]
        return multiple(f"GREATEST({x}, 0)"), scale, consts

    def minimum(self, value: str, s: int, p: MeteringParams) -> tuple[str, int, dict[str, int]]:
        """The minimum on an integer at scale ``s`` (already rounded unless the rounding is exact):
        (template, scale, constants), the minimum named ``@m@``."""
        if p.minimum_seconds <= 0:
            return value, s, {}
        scale = max(s, _fixed(p.minimum_seconds)[1])
        x, consts = self.up(value, s, scale), {"m": _at(p.minimum_seconds, scale)}
        if p.rounding != "exact":  # x >= 0: the minimum lifts 0 < x < m to m, so greatest(x, m * least(x, 1))
            return f"GREATEST({x}, @m@ * LEAST({x}, 1))", scale, consts
        return f"(CASE WHEN {x} > 0 AND {x} < @m@ THEN @m@ ELSE {x} END)", scale, consts

    def fill(self, template: str, consts: dict[str, int]) -> str:
        for name, value in consts.items():
            template = template.replace(f"@{name}@", self.lit(value))
        return template

    def round_expr(self, value: str, s: int, p: MeteringParams) -> tuple[str, int]:
        """``round_increments`` then the minimum, on an integer at scale ``s``; returns (expr, scale)."""
        template, scale, consts = self.increments(value, s, p)
        rounded = self.fill(template, consts)
        template, scale, consts = self.minimum(rounded, scale, p)
        return self.fill(template, consts), scale

    def lifted(
        self, templates: dict[int, str], consts: dict[int, dict[str, int]], default: str = "NULL"
    ) -> str:
        """Per-variant expressions given as templates and their constants, with the constants lifted out:
        variants sharing a template share one expression, each constant a literal when they agree on it and
        a small CASE on the variant when not. Cheaper than one CASE branch per variant around the whole
        arithmetic (DuckDB evaluates every branch on its own selection of rows)."""
        groups: dict[str, list[int]] = {}
        for index, template in templates.items():
            groups.setdefault(template, []).append(index)
        exprs: dict[int, str] = {}
        for template, members in groups.items():
            text = template
            for name in sorted({n for i in members for n in consts[i]}):
                values = {i: consts[i][name] for i in members}
                if len(set(values.values())) == 1:
                    chosen = self.lit(next(iter(values.values())))
                else:
                    chosen = self.per_variant({i: self.lit(v) for i, v in values.items()})
                text = text.replace(f"@{name}@", chosen)
            exprs.update(dict.fromkeys(members, text))
        return self.per_variant(exprs, default)

    def record_rounding_layer(self, scales: dict[int, int], current: str) -> tuple[str, dict[int, int]]:
        """Increments, then the minimum, each its own layer (so the minimum names a column, not the
        rounding's whole expression), for the variants that round each record."""
        for name, step in (("_incr", self.increments), ("_rounded", self.minimum)):
            templates: dict[int, str] = {}
            consts: dict[int, dict[str, int]] = {}
            new_scales: dict[int, int] = {}
            for v in self.variants:
                if v.params.scope == "record":
                    templates[v.index], new_scales[v.index], consts[v.index] = step(
                        current, scales[v.index], v.params
                    )
                else:
                    templates[v.index], new_scales[v.index], consts[v.index] = current, scales[v.index], {}
            if any(templates[i] != current for i in templates):
                self.layer({name: self.lifted(templates, consts)})
                current = name
            scales = new_scales
        return current, scales

    def scale_layer(self, scales: dict[int, int], current: str) -> tuple[str, dict[int, int]]:
        """Channels and factor: both multiply, so one layer."""
        exprs: dict[int, str] = {}
        new_scales: dict[int, int] = {}
        for v in self.variants:
            p, s = v.params, scales[v.index]
            expr = current
            if p.channels == "per_channel":
                if p.extra_channel_factor == 1:
                    expr = f"{expr} * channels"
                else:
                    ep, ek = _fixed(p.extra_channel_factor)
                    expr = f"{expr} * ({self.lit(10**ek)} + (channels - 1) * {self.lit(ep)})"
                    s += ek
            if p.factor != 1:
                fp, fk = _fixed(p.factor)
                expr = f"{expr} * {self.lit(fp)}"
                s += fk
            exprs[v.index], new_scales[v.index] = expr, s
        self.layer({"_scaled": self.per_variant(exprs)})
        return "_scaled", new_scales

    def multiplier_layers(self, scales: dict[int, int], current: str) -> tuple[str, dict[int, int]]:
        if all(v.params.multiplier is None for v in self.variants):
            return current, scales
        numerators: dict[int, str] = {}
        results: dict[int, str] = {}
        errors: dict[int, str] = {}
        new_scales: dict[int, int] = {}
        for v in self.variants:
            rule, s = v.params.multiplier, scales[v.index]
            if rule is None:
                numerators[v.index], results[v.index], new_scales[v.index] = "NULL", current, s
                continue
            value, vs, raw = self.number(rule.field)
            pp, pk = _fixed(rule.per)
            bp, bk = _fixed(rule.round_to_seconds)
            above_scale = max(vs, _fixed(rule.above)[1])
            above = self.const(rule.above, above_scale)
            applies = f"{value} IS NOT NULL AND {self.up(value, vs, above_scale)} > {above}"
            numerators[v.index] = (
                f"(CASE WHEN {applies} THEN {current} * {value} * {self.lit(10 ** (pk + bk))} END)"
            )
            denominator = self.lit(pp * bp * 10 ** (s + vs))
            whole = self.d.div("_mult_n", denominator)
            rest = f"(_mult_n % {denominator})"
            if rule.direction == "up":
                whole = f"({whole} + (CASE WHEN {rest} > 0 THEN 1 ELSE 0 END))"
            elif rule.direction == "nearest":
                whole = f"({whole} + (CASE WHEN 2 * {rest} >= {denominator} THEN 1 ELSE 0 END))"
            scale = max(s, bk)
            results[v.index] = (
                f"(CASE WHEN _mult_n IS NULL THEN {self.up(current, s, scale)} "
                f"ELSE {self.up(f'{whole} * {self.lit(bp)}', bk, scale)} END)"
            )
            new_scales[v.index] = scale
            error = self.number_error(raw, rule.field, "_live = 1")
            if error:
                errors[v.index] = error
        layer = {"_mult_n": self.per_variant(numerators)}
        if errors:
            layer["_err_mult"] = self.per_variant(errors)
            self.errors.append("_err_mult")
        self.layer(layer)
        self.layer({"_multiplied": self.per_variant(results)})
        return "_multiplied", new_scales

    # --- scopes and outputs --------------------------------------------------------------------------

    def build(self) -> Compiled:
        d = self.d
        first = "SELECT *, {errors} AS _err_fmt FROM (" + self.source() + f") AS _s0{d.layer_fence}"
        self.layers = [first.format(errors=self.format_errors())]
        self.errors = ["_err_fmt"]
        self.layer({"_v": self.variant_expr()})
        self.layer({"_err_version": "(CASE WHEN _v IS NULL THEN 'before_policy' END)"})
        self.errors.append("_err_version")
        scales = self.basis_layer()
        current, scales = self.segment_layers(scales, "_t0")
        current, scales = self.record_rounding_layer(scales, current)
        current, scales = self.scale_layer(scales, current)
        current, scales = self.multiplier_layers(scales, current)
        contribution_scale = max(scales.values())
        contribution = {v.index: self.up(current, scales[v.index], contribution_scale) for v in self.variants}
        self.layer(
            {
                "_c": self.per_variant(contribution),
                "_error": f"COALESCE({', '.join(self.errors)})" if len(self.errors) > 1 else self.errors[0],
            }
        )
        per_record = self.ctes()
        without_id = self.ctes(first.format(errors=self.format_errors(with_id=False)))
        last = self.last()
        grouped = [v for v in self.variants if v.params.scope != "record"]
        billable_scale = contribution_scale
        if grouped:
            final, billable_scale = self.scoped(last, contribution_scale)
        else:
            final = f"SELECT *, _c AS _billable FROM {last}"
        qty = self.quantity("_billable", billable_scale)
        body = f"{per_record}, _final AS ({final})"
        carried = "".join(f", {d.ident(name)}" for name in self.carry)
        measures = (
            "_meter, COUNT(*) AS records, SUM(_actual) AS actual, SUM(_reported) AS reported, "
            "COUNT(_reported) AS reported_records, SUM(_billable) AS billable"
        )
        records = (
            f"{body} SELECT _row, id, customer, provider, session, _meter, _v, _start, _actual, _reported, "
            f"_billable, {qty} AS _quantity{carried} FROM _final ORDER BY _row"
        )
        totals = f"{body} SELECT {measures} FROM _final GROUP BY _meter"
        checked_totals = (
            f"{without_id}, _final AS ({final}) "
            f"SELECT {measures}, COUNT(_error) AS errors FROM _final GROUP BY _meter"
        )
        trimmed_id = f"(SELECT {d.trim.format(x='id')} AS _id FROM {self.relation}) AS _ids"
        distinct = f"COUNT(DISTINCT {d.id_hash.format(x='_id')})"
        id_screen = (
            f"SELECT COUNT(*) - COUNT(_id) AS missing, COUNT(_id) - {distinct} AS repeats FROM {trimmed_id}"
        )
        id_hashes = f"SELECT {d.screen_hash.format(x='id')} AS _h FROM {self.relation}"
        id_count = f"SELECT COUNT(*) FROM {self.relation}"
        # The first bad row, or when none is bad the first row (its error NULL). Not ``WHERE _error IS NOT
        # NULL``: Spark pushes that filter down through every layer, substituting each column by its
        # expression, and the layers name earlier columns several times, so the filter grew exponentially
        # with the layers (a drawn policy took a CI test process to 18 GB).
        validation = (
            f"{per_record} SELECT _row, id, _error FROM {last} "
            f"ORDER BY (CASE WHEN _error IS NULL THEN 1 ELSE 0 END), _row LIMIT 1"
        )
        formats = (
            f"WITH _src AS ({self.layers[0]}) SELECT _row, id, _err_fmt FROM _src "
            f"ORDER BY (CASE WHEN _err_fmt IS NULL THEN 1 ELSE 0 END), _row LIMIT 1"
        )
        duplicates = (
            f"WITH _d AS (SELECT _row, {d.trim.format(x='id')} AS id, ROW_NUMBER() OVER "
            f"(PARTITION BY {d.trim.format(x='id')} ORDER BY _row) AS _n FROM {self.relation}) "
            f"SELECT _row, id FROM _d WHERE _n = 2 AND id IS NOT NULL ORDER BY _row LIMIT 1"
        )
        any_duplicate = (
            f"SELECT 1 FROM {self.relation} GROUP BY {d.trim.format(x='id')} HAVING COUNT(*) > 1 LIMIT 1"
        )
        return Compiled(
            validation,
            any_duplicate,
            duplicates,
            records,
            totals,
            checked_totals,
            id_screen,
            id_hashes,
            id_count,
            billable_scale,
            self.variants,
            formats,
        )

    def ctes(self, first: str | None = None) -> str:
        """The layers as ``WITH`` clauses; ``first`` replaces the source layer (same columns)."""
        return (
            "WITH _src AS ("
            + (first or self.layers[0])
            + "), "
            + ", ".join(f"_l{i} AS ({sql})" for i, sql in enumerate(self.layers[1:]))
        )

    def scoped(self, last: str, c: int) -> tuple[str, int]:
        """Session/period rounding: the first record's parameters round the group total, and the difference
        is shared like ``meter._share_delta``, records in group order (started_at, then id).

        With ``p`` a record's contribution (never below 0) and ``after`` the sum of ``p`` over the records
        after it in the group: a gain goes on the record with ``p > 0`` and ``after = 0`` (the last that
        bills); a loss of ``need`` takes ``least(p, greatest(0, need - after))`` from each record, which is
        the scalar meter's walk from the last record back.
        """
        d = self.d
        scope_tag: dict[int, str] = {}
        key1: dict[int, str] = {}
        key2: dict[int, str] = {}
        for v in self.variants:
            p = v.params
            if p.scope == "session":
                scope_tag[v.index] = "'session'"
                key1[v.index] = "COALESCE(session, 'record:' || id)"
                key2[v.index] = "''"
            elif p.scope == "period":
                scope_tag[v.index] = "'period'"
                key1[v.index] = "COALESCE(customer, '')"
                key2[v.index] = d.month.format(x="_started_ts", tz=d.str_lit(p.period_timezone))
        rounded: dict[int, str] = {}
        round_scales: dict[int, int] = {}
        for v in self.variants:
            if v.params.scope != "record":
                rounded[v.index], round_scales[v.index] = self.round_expr("_gtotal", c, v.params)
        g = max([c, *round_scales.values()])
        rounded = {i: self.up(e, round_scales[i], g) for i, e in rounded.items()}
        group_round = self.per_variant(rounded, key="_gfirst")
        part = "PARTITION BY _meter, _gscope, _gk1, _gk2"
        order = f"_start, {d.order_text.format(x='id')}"
        backwards = f"_start DESC, {d.order_text.format(x='id')} DESC"
        keyed = (
            f"SELECT *, {self.per_variant(scope_tag)} AS _gscope, {self.per_variant(key1)} AS _gk1, "
            f"{self.per_variant(key2)} AS _gk2, (CASE WHEN _c > 0 THEN _c ELSE 0 END) AS _gp FROM {last}"
        )
        windowed = (
            f"SELECT *, FIRST_VALUE(_v) OVER ({part} ORDER BY {order}) AS _gfirst, "
            f"SUM(_c) OVER ({part}) AS _gtotal, "
            f"SUM(_gp) OVER ({part} ORDER BY {backwards} ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) "
            f"- _gp AS _gafter "
            f"FROM _keyed WHERE _gscope IS NOT NULL"
        )
        delta = f"({group_round} - {self.up('_gtotal', c, g)})"
        p_g, after_g = self.up("_gp", c, g), self.up("_gafter", c, g)
        need = f"(-_gdelta - {after_g})"
        share = (
            f"(CASE WHEN _gdelta > 0 THEN (CASE WHEN _gp > 0 AND _gafter = 0 THEN _gdelta ELSE 0 END) "
            f"WHEN _gdelta < 0 AND {need} > 0 THEN -(CASE WHEN {p_g} < {need} THEN {p_g} ELSE {need} END) "
            f"ELSE 0 END)"
        )
        columns = "_row, id, customer, provider, session, _meter, _v, _start, _actual, _reported, _error"
        columns += "".join(f", {d.ident(name)}" for name in self.carry)
        final = (
            f"WITH _keyed AS ({keyed}), _win AS ({windowed}), "
            f"_shared AS (SELECT *, {delta} AS _gdelta FROM _win) "
            f"SELECT {columns}, {self.up('_c', c, g)} AS _billable FROM _keyed WHERE _gscope IS NULL "
            f"UNION ALL SELECT {columns}, {self.up('_c', c, g)} + {share} AS _billable FROM _shared"
        )
        return final, g

    def quantity(self, value: str, scale: int) -> str:
        """Billable seconds in the policy's unit, rounded half-even to 6 places, as an integer at scale 6.

        Billables are never negative (a session/period loss takes no record below zero); should one be,
        half-even is symmetric, so the magnitude is rounded and the sign put back (engines disagree on
        dividing negative integers).
        """
        unit = int(self.policy.unit_seconds)
        numerator = f"(CASE WHEN {value} < 0 THEN -({value}) ELSE {value} END) * {self.lit(10**6)}"
        denominator = self.lit(unit * 10**scale)
        whole = self.d.div(numerator, denominator)
        rest = f"({numerator} - {whole} * {denominator})"
        rounded = (
            f"(CASE WHEN 2 * {rest} > {denominator} OR (2 * {rest} = {denominator} AND {whole} % 2 = 1) "
            f"THEN {whole} + 1 ELSE {whole} END)"
        )
        return f"(CASE WHEN {value} < 0 THEN -{rounded} ELSE {rounded} END)"


def compile_policy(
    policy: Policy, dialect: Dialect, relation: str, *, carry: tuple[str, ...] = ()
) -> Compiled:
    """The queries metering ``relation`` (canonical record columns plus ``_row``) under ``policy``.

    ``carry`` names more columns of ``relation`` that the per-record rows (:attr:`Compiled.records`) pass
    through unchanged, after their own (a record's session key, say, so its caller need not join the
    metered records back to their calls). A policy with parts is compiled by :func:`compile_parts`;
    compiling the policy itself would meter none of its parts.
    """
    if policy.parts:
        raise UnsupportedPolicy(
            f"policy {policy.id!r} meters {len(policy.parts)} parts of each record: use compile_parts"
        )
    return _Builder(policy, dialect, relation, carry).build()


@dataclass(frozen=True, slots=True)
class CompiledParts:
    """A policy with parts compiled over one relation: each part's queries, and queries over every part at
    once whose rows start with the part's position, ``_part`` (the order of ``policy.components()``)."""

    parts: list[Compiled]
    #: Every part's :attr:`Compiled.records` rows in the reference's order: by record, then by part.
    records: str
    #: Every part's :attr:`Compiled.checked_totals` rows.
    checked_totals: str
    #: The first part's first row that cannot be metered (else some first row, its error NULL): the
    #: reference meters each part over every record in turn. Rows as :attr:`Compiled.validation`'s.
    validation: str


def compile_parts(policy: Policy, dialect: Dialect, relation: str) -> CompiledParts:
    """The queries metering ``relation`` under each of the policy's parts (or the policy as its one part).

    Each part's query keeps its own ``WITH`` layers inside a derived table (their names cannot clash), and
    ``UNION ALL`` puts them in one query, so an engine reads the records once per query, not once per part.
    """
    parts = [_Builder(component, dialect, relation).build() for component in policy.components()]
    first_bad = "(CASE WHEN _error IS NULL THEN 1 ELSE 0 END), _part LIMIT 1"
    return CompiledParts(
        parts,
        records=_tagged([c.records for c in parts], order="_row, _part"),
        checked_totals=_tagged([c.checked_totals for c in parts]),
        validation=_tagged([c.validation for c in parts], columns="_row, id, _error", order=first_bad),
    )


def _tagged(queries: list[str], columns: str = "*", order: str = "") -> str:
    """The queries' rows in one result, each with its query's position first as ``_part``."""
    union = " UNION ALL ".join(
        f"SELECT {i} AS _part, * FROM ({sql}) AS _p{i}" for i, sql in enumerate(queries)
    )
    return f"SELECT {columns} FROM ({union}) AS _parts" + (f" ORDER BY {order}" if order else "")


def attr_columns(policy: Policy) -> list[str]:
    """The ``attr.<name>`` columns a policy reads, every part's included (a relation must provide them,
    NULL when absent)."""
    names = {name for part in policy.components() for name in _Builder(part, DUCKDB, "").attrs()}
    return sorted(names)
