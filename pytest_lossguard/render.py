"""How reports read: the failure block of design.md section 6 and the summary table.

One row helper lays out every labelled line, and `text.prefixed` adds the `lossguard: `
prefix, so no caller aligns labels or prefixes by hand.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Mapping
from typing import Any

from pytest_lossguard.findings import Finding, Paths, PathStatus, Report, Verdict
from pytest_lossguard.json_report import totals, unchecked
from pytest_lossguard.text import WIDTH, number, prefixed

_LABEL = 12
_INDENT = " " * (2 + _LABEL)
_HEADLINES = {
    Verdict.BROADCAST: "broadcasts labels against predictions",
    Verdict.MISMATCH: "gives a different value when label and prediction ranks differ",
    Verdict.ERROR: "cannot be evaluated on canonical input",
    Verdict.RAISES: "raises on shapes that Keras's loss container aligns (strict)",
}
# When every finding of the worst verdict is about sample weights, the headline says so.
_WEIGHTS_HEADLINES = {
    Verdict.BROADCAST: "broadcasts sample weights against the per-sample loss",
    Verdict.MISMATCH: "gives a different value for (B,) and (B, 1) sample weights",
    Verdict.RAISES: "raises on (B,) or (B, 1) sample weights, which Keras treats alike (strict)",
}
# What the summary table says of a target that ran no probe.
_UNCHECKED = "not checked"
# When every one grew in the canonical layout, not in the probe.
_CANONICAL_HEADLINE = "broadcasts on its own canonical shapes, where a probe does not"


# How a verdict reads on a colour terminal, in pytest's markup names.
COLOURS = {Verdict.SAFE: "green", Verdict.BROADCAST: "red", Verdict.MISMATCH: "red",
           Verdict.RAISES: "yellow", Verdict.ERROR: "red"}
# (text, colour) -> text: pytest's TerminalWriter.markup, `ansi`, or `plain` (no colour).
Markup = Callable[[str, str], str]
_ANSI = {"red": 31, "green": 32, "yellow": 33}


def plain(text: str, colour: str) -> str:
    """No colour: the text as it is."""
    return text


def ansi(text: str, colour: str) -> str:
    """`text` in `colour` with the escape codes pytest's TerminalWriter writes."""
    return f"\x1b[{_ANSI[colour]}m{text}\x1b[0m"


def colour_wanted(isatty: bool, environ: Mapping[str, str]) -> bool:
    """Whether to colour, by the rules of pytest's TerminalWriter: PY_COLORS=1/0, NO_COLOR,
    FORCE_COLOR, else a terminal that is not TERM=dumb."""
    if environ.get("PY_COLORS") in ("0", "1"):
        return environ["PY_COLORS"] == "1"
    if environ.get("NO_COLOR"):
        return False
    if environ.get("FORCE_COLOR"):
        return True
    return isatty and environ.get("TERM") != "dumb"


def row(label: str, text: str) -> str:
    """One labelled line of a block: `  label       text`."""
    return f"  {label:<{_LABEL}}{text}"


def _wrapped(label: str, text: str, width: int = WIDTH) -> list[str]:
    """A labelled line wrapped at `width`, continuation lines under the text."""
    return textwrap.wrap(row(label, text), width, subsequent_indent=_INDENT,
                         break_long_words=False)


def _shape(shape: tuple[int, ...] | None) -> str:
    return "?" if shape is None else str(tuple(shape))


def _shapes_line(finding: Finding) -> str:
    text = f"y_true {_shape(finding.y_true)}  y_pred {_shape(finding.y_pred)}"
    if finding.sample_weight is not None:
        text += f"  sample_weight {_shape(finding.sample_weight)}"
    return text


def describe_paths(paths: Paths) -> str:
    """e.g. affected: direct call, compile(metrics=...); protected: compile(loss=...)."""
    groups = [(status, [path for path, s in paths if s is status]) for status in PathStatus]
    return "; ".join(f"{status}: {', '.join(names)}" for status, names in groups if names)


def _result_lines(finding: Finding) -> list[str]:
    """What the probe gave against its reference: a value, or a model step's report."""
    if finding.method is None:
        result = f"{_shape(finding.result_shape)} -> {number(finding.value)}"
        reference = (f"reference ({finding.reference}) {_shape(finding.reference_shape)}"
                     f" -> {number(finding.reference_value)}")
        return [row("result", f"{result:<27}{reference}")]
    quantity = finding.method.quantity
    result = f"{quantity} {number(finding.value)}"
    output = finding.output if finding.output.isdigit() else repr(finding.output)
    head = f" on output {output}" if finding.output else ""
    lines = [row("method", f"{finding.method}{head}: {finding.message}"),
             row("result", f"{result:<27}reference ({finding.reference}) {quantity} "
                           f"{number(finding.reference_value)}")]
    if finding.update_difference is not None:
        lines.append(row("update", f"largest weight-update difference "
                                   f"{number(finding.update_difference)} (largest update "
                                   f"{number(finding.update_size)}) after one step"))
    return lines


def _location_lines(report: Report, finding: Finding) -> list[str]:
    where = finding.location
    if where is None:
        return [row("broadcast", "not located: no single op grew or mixed ranks")] \
            if finding.failed else []
    label = "broadcast" if finding.verdict is Verdict.BROADCAST else "rank mix"
    lines = []
    if where.layout:  # the reference layout grew, not the probe: say which, with its shapes
        batch = finding.y_true[0]
        shapes = f"y_true {(batch, *report.true_shape)}  y_pred {(batch, *report.pred_shape)}"
        lines.append(row(label, f"the {where.layout} layout {shapes} broadcasts; the probe "
                                "does not"))
        label = ""
    internals = f"library internals at {where.internals}" if where.internals else ""
    if not where.where:
        return [*lines, *_wrapped(label, f"not in your code: {where.operation}, in "
                                         f"{internals or 'a library it calls'}")]
    line = row(label, f"{where.where}   {where.source}").rstrip()
    lines += [line if len(line) <= WIDTH else f"{row(label, where.where)}\n{_INDENT}{where.source}",
              _INDENT + where.operation]
    if internals:
        lines.extend(_wrapped("", f"not in your code: in {internals}, which this line calls"))
    if len(where.chain) > 1:
        lines.extend(_via(list(where.chain)))
    return lines


def _via(links: list[str]) -> list[str]:
    """The call chain, each link's path as the broadcast line shows it (bare file names would
    leave two model.py files apart), wrapped between links rather than inside one."""
    wrapped = [links[0]]
    for link in links[1:]:
        if len(_INDENT) + len(wrapped[-1]) + len(link) + 4 > WIDTH:
            wrapped[-1] += " ->"
            wrapped.append(link)
        else:
            wrapped[-1] += f" -> {link}"
    return [row("via", wrapped[0]), *(_INDENT + line for line in wrapped[1:])]


def _block(report: Report, finding: Finding) -> list[str]:
    lines = [row("probe", f"{finding.probe:<26} {_shapes_line(finding)}")]
    if finding.verdict in (Verdict.RAISES, Verdict.ERROR):
        # An error with no exception (a result that is None, randomness) raised nothing.
        said = "raised" if finding.verdict is Verdict.RAISES or finding.exception else "error"
        return [*lines, *_wrapped(said, finding.message), *_warned(finding)]
    lines.extend(_result_lines(finding))
    lines.extend(_location_lines(report, finding))
    lines.extend(_warned(finding))
    if finding.paths:
        lines.append(row("paths", describe_paths(finding.paths)))
    return lines


def _warned(finding: Finding) -> list[str]:
    """What the target warned on this probe, one `note` line each."""
    return [line for note in finding.notes for line in _wrapped("note", note)]


def _note(finding: Finding) -> list[str]:
    return [*_wrapped("note", f"{finding.probe} raises (loud, not silent): {finding.message}"),
            *_warned(finding)]


def _restored(report: Report) -> list[str]:
    if not report.restored:
        return []
    return [row("restored", f"the target changed {', '.join(report.restored)}; "
                            "lossguard put it back")]


def _passed(report: Report, markup: Markup) -> str:
    """The one-line pass summary, counting as the summary table does."""
    probes = len(report.findings)
    if not report.notes:
        safe = markup("is safe", COLOURS[Verdict.SAFE])
        return prefixed(f"{report.target} {safe} under {probes} probe(s)")
    counts = report.counts()
    parts = [markup(f"{counts[Verdict.SAFE.value]} safe", COLOURS[Verdict.SAFE])] \
        if counts[Verdict.SAFE.value] else []
    parts.append(markup(f"{counts[Verdict.RAISES.value]} raises (loud)", COLOURS[Verdict.RAISES]))
    return prefixed(f"{report.target} passes: {', '.join(parts)} under {probes} probe(s)")


def _headline(worst: Verdict, failures: tuple[Finding, ...]) -> str:
    """What the worst verdict's findings have in common: weights, a canonical layout that
    grows, or label and prediction ranks."""
    findings = [f for f in failures if f.verdict is worst]
    if worst in _WEIGHTS_HEADLINES and all(f.sample_weight is not None for f in findings):
        return _WEIGHTS_HEADLINES[worst]
    if all(f.location is not None and f.location.layout for f in findings):
        return _CANONICAL_HEADLINE
    return _HEADLINES[worst]


def render(report: Report, markup: Markup = plain) -> str:
    """The failure block of design.md section 6, or a one-line pass summary; `markup` colours
    the verdict words (the text is the same without it)."""
    failures = report.failures
    notes = [line for finding in report.notes for line in _note(finding)]
    if not failures:  # what a safe probe noted (a call path left out, a warning) is shown too
        told = [line for finding in report.findings if finding.verdict is Verdict.SAFE
                for line in _warned(finding)]
        return "\n".join([_passed(report, markup), *dict.fromkeys(told), *notes,
                          *_restored(report)])
    worst = next(v for v in Verdict if v is not Verdict.SAFE
                 and any(f.verdict is v for f in failures))
    lines = [prefixed(f"{report.target} {markup(_headline(worst, failures), COLOURS[worst])}"),
             row("target", f"{report.source or '?'}  ({report.kind}, {report.feeds}, "
                           f"reference: {report.alignment})")]
    for finding in failures:
        lines.extend(_block(report, finding))
    lines.extend(notes)
    lines.extend(_restored(report))
    # One fix per distinct change to make: the first finding that needs it words it.
    changes: dict[str, str] = {}
    for finding in failures:
        if finding.fix is not None:
            changes.setdefault(finding.fix.change, finding.fix.text)
    for fix in changes.values():
        wrapped = textwrap.wrap(fix, WIDTH - len(_INDENT))
        lines.append(row("fix", wrapped[0]))
        lines.extend(_INDENT + rest for rest in wrapped[1:])
    return "\n".join(lines)


def summary_table(entries: list[dict[str, Any]], verbose: bool,
                  markup: Markup = plain) -> list[str]:
    """The summary table: one row per target (failing ones only unless verbose), then totals.

    The counts come first and the target last, so a long node id never pushes the numbers
    off a narrow terminal. `markup` colours the verdict words and every count that is not 0.
    A target that ran no probe (skipped by the `lossguard` command) says it was not checked,
    on its row and in the totals, so that all zeros never read as clean.
    """
    shown = [e for e in entries if verbose or not e["ok"] or e["raises"]]
    lines = ["probes  " + "  ".join(markup(v.value, COLOURS[v]) for v in Verdict)
             + "  seconds  target"]
    for entry in sorted(entries, key=lambda e: e["nodeid"]):
        if entry in shown:
            label = entry["nodeid"] + (f" ({_UNCHECKED})" if unchecked(entry) else "")
            lines.append(_table_row(label, entry, markup))
    missed = sum(map(unchecked, entries))
    lines.append(_table_row(f"{len(entries)} target(s)"
                            + (f", {missed} {_UNCHECKED}" if missed else ""),
                            totals(entries), markup))
    if len(shown) < len(entries):
        lines.append(f"({len(entries) - len(shown)} clean target(s) not shown; -v shows all)")
    return lines


def _table_row(label: str, counts: dict[str, Any], markup: Markup) -> str:
    probes = int(sum(counts[v.value] for v in Verdict))
    cells = "  ".join(_cell(int(counts[v.value]), v, markup) for v in Verdict)
    return f"{probes:>6}  {cells}  {counts['seconds']:>7.2f}  {label}"


def _cell(count: int, verdict: Verdict, markup: Markup) -> str:
    text = str(count)
    pad = " " * (len(verdict.value) - len(text))
    return pad + (markup(text, COLOURS[verdict]) if count else text)
