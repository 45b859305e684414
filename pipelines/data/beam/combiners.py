"""Beam ``CombineFn`` s over the in-process pass-1 and malformed-row objects.

Each combines the object the in-process path builds in one loop (:class:`_TokenCounter`,
:class:`_Moments`, :class:`_Malformed` of :mod:`pipelines.data.prepare`) from partial results
that workers compute per block, so both paths share the counting, the statistics and the report.
"""

from __future__ import annotations

import apache_beam as beam

from pipelines.data.prepare import _Malformed, _Moments, _TokenCounter


class TokenCountsFn(beam.CombineFn):
    """Merges partial token counts (``pd.Series`` token -> count) into a
    :class:`_TokenCounter` and outputs the merged counts.

    Keyed by ``(field, bucket)``: a field's tokens are spread over buckets by a hash of the
    token, so no worker holds all distinct values of a large field.
    """

    def create_accumulator(self) -> _TokenCounter:
        return _TokenCounter()

    def add_input(self, counter: _TokenCounter, counts) -> _TokenCounter:
        counter.add_counts(counts)
        return counter

    def merge_accumulators(self, counters) -> _TokenCounter:
        counters = iter(counters)
        merged = next(counters)
        for counter in counters:
            merged.merge(counter)
        return merged

    def extract_output(self, counter: _TokenCounter):
        return counter.counts()


class MomentsFn(beam.CombineFn):
    """Combines the moments of a dense field's blocks, given as ``(position, _Moments)``.

    Chan's update is exact in real arithmetic but not in floating point, so the blocks are
    merged in input order (position = file index, block index), the order of the in-process
    loop: the normalization is bit-identical to the in-process one. The accumulator is one small
    object per block.
    """

    def create_accumulator(self) -> list:
        return []

    def add_input(self, parts: list, part) -> list:
        parts.append(part)
        return parts

    def merge_accumulators(self, accumulators) -> list:
        return [part for parts in accumulators for part in parts]

    def extract_output(self, parts: list) -> _Moments:
        total = _Moments()
        for _, moments in sorted(parts, key=lambda part: part[0]):
            total.merge(moments)
        return total


class MalformedFn(beam.CombineFn):
    """Merges per-block :class:`_Malformed` reports: counts per split, file and reason, rows
    per file and the first examples in input order (as one in-process pass reports them).

    Args:
        max_bad_fraction: the job's threshold (the report's :meth:`_Malformed.check`).
        unit: what a row number counts (``line``, ``row``, ``record``), for the examples.
    """

    def __init__(self, max_bad_fraction: float, unit: str) -> None:
        self.max_bad_fraction = max_bad_fraction
        self.unit = unit

    def create_accumulator(self) -> _Malformed:
        return _Malformed(self.max_bad_fraction, log=False, unit=self.unit)

    def add_input(self, report: _Malformed, part: _Malformed) -> _Malformed:
        report.merge(part)
        return report

    def merge_accumulators(self, reports) -> _Malformed:
        reports = iter(reports)
        merged = next(reports)
        for report in reports:
            merged.merge(report)
        return merged

    def extract_output(self, report: _Malformed) -> _Malformed:
        return report
