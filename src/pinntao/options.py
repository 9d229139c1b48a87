"""One registry of pinntao's PETSc options: name, type, default, help, allowed values.

Each :class:`OptionSet` reads its options from the PETSc options database under a prefix,
validates them (a :class:`PinnInputError` names the option and what is allowed), prints
PETSc-style ``-help`` lines, and renders the options table in docs/options.md.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from .errors import PinnInputError


def _parse_list(text: str, cast: Callable[[str], Any], ok: Callable[[Any], bool], expected: str) -> tuple[Any, ...]:
    """A comma-separated list, every entry cast and passing ``ok``; ValueError names what was expected."""
    try:
        vals = tuple(cast(t) for t in str(text).replace(" ", "").split(",") if t != "")
    except ValueError:
        vals = ()
    if not vals or not all(ok(v) for v in vals):
        raise ValueError(f"expected comma-separated {expected}")
    return vals


def parse_int_list(text: str) -> tuple[int, ...]:
    """'20,20,20' → (20, 20, 20); every entry a positive integer."""
    return _parse_list(text, int, lambda v: v > 0, "positive integers such as 20,20,20")


def parse_float_list(text: str) -> tuple[float, ...]:
    """'1,4.5' → (1.0, 4.5); every entry a finite number (the option's check says which)."""
    return _parse_list(text, float, math.isfinite, "finite numbers such as 1,4.5")


def positive(v: float) -> bool:
    return v > 0


def nonnegative(v: float) -> bool:
    return v >= 0


@dataclass(frozen=True)
class Option:
    """One option ``-<prefix><name>``. ``kind``: int, float, str, bool, ints, floats."""

    name: str
    kind: str
    default: Any
    help: str
    choices: Sequence[str] | None = None
    check: Callable[[Any], bool] | None = None
    check_text: str = ""
    finite: bool = True  # a float option refuses inf and nan unless declared otherwise

    def convert(self, raw: str, flag: str) -> Any:
        try:
            if self.kind == "int":
                val: Any = int(raw)
            elif self.kind == "float":
                val = float(raw)
            elif self.kind == "bool":
                low = str(raw).strip().lower()
                if low in ("", "1", "true", "yes", "on"):
                    val = True
                elif low in ("0", "false", "no", "off"):
                    val = False
                else:
                    raise ValueError("expected true or false")
            elif self.kind == "ints":
                val = parse_int_list(raw)
            elif self.kind == "floats":
                val = parse_float_list(raw)
            else:
                val = str(raw)
        except ValueError as exc:
            raise PinnInputError(f"{flag}: cannot read {raw!r} as {self.kind} ({exc})") from None
        self.validate(val, flag)
        return val

    def validate(self, val: Any, flag: str) -> None:
        if self.kind == "float" and self.finite and val is not None and not math.isfinite(val):
            must = f"finite and {self.check_text}" if self.check_text else "finite"
            raise PinnInputError(f"{flag}: {val!r} is not allowed; must be {must}")
        if self.choices is not None and val not in self.choices:
            raise PinnInputError(f"{flag}: unknown value {val!r}; allowed: {', '.join(self.choices)}")
        if self.check is not None and val is not None and not self.check(val):
            raise PinnInputError(f"{flag}: {val!r} is not allowed; must be {self.check_text}")

    def default_text(self) -> str:
        if self.kind in ("ints", "floats") and self.default is not None:
            return ",".join(f"{v:g}" for v in self.default)
        return "" if self.default is None else str(self.default)


_PRINTED: set[tuple[str, str]] = set()


class OptionSet:
    """A named group of options under a prefix (``pinn_`` or an object's own prefix)."""

    def __init__(self, title: str, prefix: str, options: Sequence[Option]) -> None:
        self.title, self.prefix = title, prefix
        self.options = {o.name: o for o in options}

    def read(self, prefix: str | None = None, db: Any = None) -> dict[str, Any]:
        """Values from the PETSc options database (full prefix = object prefix + own prefix)."""
        from petsc4py import PETSc

        db = db if db is not None else PETSc.Options()
        full = (prefix or "") + self.prefix
        out = {}
        for o in self.options.values():
            key = full + o.name
            if db.hasName(key):
                out[o.name] = o.convert(db.getString(key, ""), "-" + key)
            else:
                out[o.name] = o.default
        return out

    def help_lines(self, prefix: str | None = None, current: bool = False) -> list[str]:
        """PETSc-style lines; ``current``: show the value in the database now, as PETSc's
        ``<now X : formerly Y>`` where it differs from the default."""
        full = (prefix or "") + self.prefix
        lines = [f"{self.title} options:"]
        db = None
        if current:
            from petsc4py import PETSc

            db = PETSc.Options()
        for o in self.options.values():
            allowed = f" ({'|'.join(o.choices)})" if o.choices else ""
            value = f"<{o.default_text()}>"
            if db is not None and db.hasName(full + o.name):
                now = db.getString(full + o.name, "")
                if now != o.default_text():
                    value = f"<now {now} : formerly {o.default_text()}>"
            lines.append(f"  -{full}{o.name} {value}: {o.help}{allowed}")
        return lines

    def print_help(self, comm: Any = None, prefix: str | None = None, current: bool = False) -> None:
        """Print the set once per full prefix and process (an object configured twice, or a PC
        seen by its KSP and by -help's listing, does not repeat it)."""
        from petsc4py import PETSc

        key = (self.title, (prefix or "") + self.prefix)
        if key in _PRINTED:
            return
        _PRINTED.add(key)
        PETSc.Sys.Print("\n".join(self.help_lines(prefix, current)), comm=comm)

    def check_unknown(self, prefix: str | None = None, ignore: Sequence[str] = (), db: Any = None) -> None:
        """A misspelt option under this set's full prefix (close to a declared name, e.g.
        ``-tao_isgd_alpah``) is one PinnInputError with "did you mean", before it is silently
        unused. Keys under ``ignore`` (sub-objects' prefixes such as ``ksp_``, ``pc_``) are skipped."""
        import difflib

        from petsc4py import PETSc

        db = db if db is not None else PETSc.Options()
        full = (prefix or "") + self.prefix
        names = list(self.options)
        for key in sorted(db.getAll()):
            if not key.startswith(full):
                continue
            rest = key[len(full):]
            if rest in self.options or rest.startswith(tuple(ignore)):
                continue
            close = difflib.get_close_matches(rest, names, n=1, cutoff=0.75)
            if close:
                raise PinnInputError(f"-{key}: unknown option; did you mean -{full}{close[0]}?")

    def markdown(self, prefix: str = "") -> str:
        rows = ["| option | default | meaning |", "|---|---|---|"]
        for o in self.options.values():
            allowed = f" Allowed: {', '.join(f'`{c}`' for c in o.choices)}." if o.choices else ""
            rows.append(f"| `-{prefix}{self.prefix}{o.name}` | `{o.default_text()}` | {o.help}.{allowed} |")
        return "\n".join(rows)


def help_requested() -> bool:
    from petsc4py import PETSc

    db = PETSc.Options()
    return db.hasName("help") or db.hasName("h")


def check_tao_type(prefix: str) -> None:
    """A clear error for an unknown ``-<prefix>tao_type`` before PETSc meets it (nested Taos)."""
    from petsc4py import PETSc

    db = PETSc.Options()
    key = prefix + "tao_type"
    if db.hasName(key):
        allowed = sorted(v for k, v in vars(PETSc.TAO.Type).items() if not k.startswith("_") and isinstance(v, str))
        value = db.getString(key, "")
        if value not in allowed:
            raise PinnInputError(f"-{key}: unknown TAO type {value!r}; allowed: {', '.join(allowed)}")
