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

Column = list["str | None"]

CORRECT_COST, SUB_COST, INS_COST, DEL_COST = 0, 4, 3, 3


def align_to_network(network: list[Column], words: Sequence[str], systems: int) -> list[Column]:
    """``network`` (columns of ``systems`` entries) with ``words`` aligned in as entry number
    ``systems``: a new network whose columns have ``systems + 1`` entries."""
    rows, cols = len(network), len(words)
    # cost[i][j]: the cheapest alignment of the first i columns with the first j words.
    cost = [[0] * (cols + 1) for _ in range(rows + 1)]
    back = [[""] * (cols + 1) for _ in range(rows + 1)]
    for i in range(1, rows + 1):
        cost[i][0], back[i][0] = cost[i - 1][0] + DEL_COST, "D"
    for j in range(1, cols + 1):
        cost[0][j], back[0][j] = cost[0][j - 1] + INS_COST, "I"
    for i in range(1, rows + 1):
        column = network[i - 1]
        for j in range(1, cols + 1):
            match = CORRECT_COST if words[j - 1] in column else SUB_COST
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
            merged.append([*network[i - 1], words[j - 1]])
            i, j = i - 1, j - 1
        elif step == "D":
            merged.append([*network[i - 1], None])
            i -= 1
        else:
            merged.append([None] * systems + [words[j - 1]])
            j -= 1
    merged.reverse()
    return merged


def vote(column: Column) -> str | None:
    """The column's most frequent entry (a word or None); a tie goes to the earliest system's."""
    counts: dict[str | None, int] = {}
    for entry in column:
        counts[entry] = counts.get(entry, 0) + 1
    best = max(counts.values())
    return next(entry for entry in column if counts[entry] == best)


def combine_words(hypotheses: Sequence[Sequence[str]]) -> list[str]:
    """The ROVER word sequence of one utterance's hypotheses (best system first)."""
    if not hypotheses:
        return []
    network: list[Column] = [[word] for word in hypotheses[0]]
    for systems, words in enumerate(hypotheses[1:], start=1):
        network = align_to_network(network, words, systems)
    return [word for word in map(vote, network) if word is not None]


def combine(systems: Sequence[Mapping[str, Sequence[str]]]) -> dict[str, list[str]]:
    """ROVER of whole systems: each maps utterance id -> words (best system first). An
    utterance that a system has no hypothesis for counts as its empty hypothesis. Returns
    utterance id -> combined words, in the first system's order, then any others sorted."""
    order = list(systems[0]) if systems else []
    seen = set(order)
    order += sorted({utt for system in systems[1:] for utt in system} - seen)
    return {utt: combine_words([list(system.get(utt, ())) for system in systems]) for utt in order}
