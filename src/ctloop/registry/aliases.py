"""Rules of alias moves: what a rollback goes back to.

Rollback is an undo stack, not a toggle. Every ``set`` or ``delete`` of an alias is a move
pushed on the stack; a ``rollback`` pops the newest move that has not been undone yet and
restores the version that move replaced. So a second rollback walks further back
(champion 1 → 2 → 3, rollback → 2, rollback → 1) instead of returning to a version that
was just rolled back for a reason. A new ``set`` after rollbacks is pushed as usual. To
return to a version that was rolled back, promote it again by number.
"""

from __future__ import annotations

from collections.abc import Sequence

from ctloop.errors import Conflict
from ctloop.registry.entities import AliasEvent

__all__ = ["ROLLBACK", "SET", "DELETE", "undoable_move"]

SET = "set"
DELETE = "delete"
ROLLBACK = "rollback"


def undoable_move(name: str, alias: str, events: Sequence[AliasEvent]) -> AliasEvent:
    """The move a rollback of ``alias`` undoes, given its events oldest first.

    Raises:
        Conflict: when no move is left to undo, or the one left created the alias (there
            is no earlier version to go back to).
    """
    stack: list[AliasEvent] = []
    for event in events:
        if event.action == ROLLBACK:
            if stack:
                stack.pop()
        else:
            stack.append(event)
    promote = f"ctloop models promote {name} VERSION --alias {alias} --reason …"
    if not stack:
        raise Conflict(
            f"alias '{alias}' of model '{name}' has no move left to roll back: every earlier "
            f"move was rolled back already; to choose a version, run: {promote}"
        )
    move = stack[-1]
    if move.from_version is None:
        raise Conflict(
            f"alias '{alias}' of model '{name}' has no previous version to roll back to: it "
            f"was created pointing at version {move.to_version} by {move.actor}; "
            f"to point it elsewhere, run: {promote}"
        )
    return move
