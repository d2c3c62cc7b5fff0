"""ROVER (Fiscus 1997): several systems' word hypotheses combined by voting.

The hypotheses of one utterance are aligned one after another into a word transition network:
a list of columns, each holding every system's word at that position or nothing (``None``,
the null arc). The first system is the starting network; each next hypothesis is aligned to
the columns by dynamic programming with sclite's costs (correct 0, substitution 4, insertion
3, deletion 3), a word being correct in a column when any earlier system put it there. An
inserted word opens a new column, null for the earlier systems; a skipped column gets this
system's null. Each column then elects the word (or null) with the most votes, ties going to
the system given first: list the systems best first (on dev), as NIST's ``rover -m
maxfreq`` does with its own order.

Voting needs at least three systems to change anything: with two, every disagreement is a tie
that the first system wins.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

Entry = tuple[int, int] | None  # (system, word position in its hypothesis), or the null arc
Column = list[Entry]

CORRECT_COST, SUB_COST, INS_COST, DEL_COST = 0, 4, 3, 3


def align_to_network(network: list[Column], hypotheses: Sequence[Sequence[str]], system: int) -> list[Column]:
    """``network`` (columns of the entries of systems ``0 .. system - 1``) with hypothesis
    ``system`` of ``hypotheses`` aligned in: a new network whose columns have one more entry."""
    words = hypotheses[system]
    column_words = [{hypotheses[e[0]][e[1]] for e in column if e is not None} for column in network]
    rows, cols = len(network), len(words)
    # cost[i][j]: the cheapest alignment of the first i columns with the first j words.
    cost = [[0] * (cols + 1) for _ in range(rows + 1)]
    back = [[""] * (cols + 1) for _ in range(rows + 1)]
    for i in range(1, rows + 1):
        cost[i][0], back[i][0] = cost[i - 1][0] + DEL_COST, "D"
    for j in range(1, cols + 1):
        cost[0][j], back[0][j] = cost[0][j - 1] + INS_COST, "I"
    for i in range(1, rows + 1):
        present = column_words[i - 1]
        for j in range(1, cols + 1):
            match = CORRECT_COST if words[j - 1] in present else SUB_COST
            diagonal = cost[i - 1][j - 1] + match
            deletion = cost[i - 1][j] + DEL_COST
            insertion = cost[i][j - 1] + INS_COST
            # sclite's tie-breaking: the diagonal, then a deletion, then an insertion.
            if diagonal <= deletion and diagonal <= insertion:
                cost[i][j], back[i][j] = diagonal, "S"
            elif deletion < insertion:
                cost[i][j], back[i][j] = deletion, "D"
            else:
                cost[i][j], back[i][j] = insertion, "I"
    merged: list[Column] = []
    i, j = rows, cols
    while i > 0 or j > 0:
        step = back[i][j]
        if step == "S":
            merged.append([*network[i - 1], (system, j - 1)])
            i, j = i - 1, j - 1
        elif step == "D":
            merged.append([*network[i - 1], None])
            i -= 1
        else:
            merged.append([None] * system + [(system, j - 1)])
            j -= 1
    merged.reverse()
    return merged


def vote(column: Column, hypotheses: Sequence[Sequence[str]]) -> Entry:
    """The entry of the column's most frequent word (or None for the gap); of the entries with
    that word, and in a tie of words, the earliest system's."""
    labels = [hypotheses[e[0]][e[1]] if e is not None else None for e in column]
    counts: dict[str | None, int] = {}
    for label in labels:
        counts[label] = counts.get(label, 0) + 1
    best = max(counts.values())
    return next(e for e, label in zip(column, labels, strict=True) if counts[label] == best)


def combine_positions(hypotheses: Sequence[Sequence[str]]) -> list[tuple[int, int]]:
    """The ROVER result of one utterance's hypotheses (best system first) as ``(system, word
    position)`` pairs: which system's word each combined word is (for its time and
    confidence)."""
    if not hypotheses:
        return []
    network: list[Column] = [[(0, j)] for j in range(len(hypotheses[0]))]
    for system in range(1, len(hypotheses)):
        network = align_to_network(network, hypotheses, system)
    return [e for e in (vote(column, hypotheses) for column in network) if e is not None]


def combine_words(hypotheses: Sequence[Sequence[str]]) -> list[str]:
    """The ROVER word sequence of one utterance's hypotheses (best system first)."""
    return [hypotheses[s][j] for s, j in combine_positions(hypotheses)]


def combine(systems: Sequence[Mapping[str, Sequence[str]]]) -> dict[str, list[str]]:
    """ROVER of whole systems: each maps utterance id -> words (best system first). An
    utterance that a system has no hypothesis for counts as its empty hypothesis. Returns
    utterance id -> combined words, in the first system's order, then any others sorted."""
    order = list(systems[0]) if systems else []
    seen = set(order)
    order += sorted({utt for system in systems[1:] for utt in system} - seen)
    return {utt: combine_words([list(system.get(utt, ())) for system in systems]) for utt in order}
