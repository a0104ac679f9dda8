"""The control-flow engine both interpreters share.

``__init__`` (:mod:`resnetlint.model.init_exec`) and ``forward``
(:mod:`resnetlint.model.forward_exec`) are run the same way: a list of
states goes through a body statement by statement; an ``if`` the facts
cannot decide *forks* a state, each copy *assuming* the test true or false
(a copy whose assumptions contradict each other is dropped); states that
left the body early (``return``, ``break``) skip the rest; a budget of
statements and a bound on the number of states give up on code too large to
explore.  That is this module.  What a state holds (a world of attributes,
a path of tensor values), what a simple statement does, how a test is
evaluated and what a loop means are the interpreters' business: they
subclass :class:`ControlFlow` and fill in its hooks.
"""
from __future__ import annotations

from typing import Generic, List, Optional, Sequence, Tuple, Type, TypeVar

import libcst as cst

from .symbolic import Cond, Facts

try:  # Python 3.8+: typing.Protocol
    from typing import Protocol
except ImportError:  # pragma: no cover
    Protocol = object  # type: ignore


class PathState(Protocol):
    """What the engine needs of a state: its facts, whether it has left the
    body, and a copy to fork."""

    facts: Facts
    returned: bool

    def fork(self) -> "PathState": ...

    @property
    def stopped(self) -> bool: ...


S = TypeVar("S", bound=PathState)


class ControlFlow(Generic[S]):
    """Sequencing, branching, ``with`` and ``try``, and the budget.

    Subclasses set :attr:`max_states`, :attr:`too_complex` and
    :attr:`states_noun`, and implement :meth:`tick`, :meth:`exec_small`,
    :meth:`exec_loop`, :meth:`branch_tests` and :meth:`handle_exceptions`;
    the other hooks have defaults."""

    max_states: int = 64
    too_complex: Type[Exception] = RuntimeError
    states_noun: str = "paths"

    # -- hooks ---------------------------------------------------------------
    def tick(self) -> None:
        """Count one statement against the budget (raise when spent)."""
        raise NotImplementedError

    def exec_small(self, small: cst.BaseSmallStatement, state: S) -> List[S]:
        raise NotImplementedError

    def exec_loop(self, stmt, state: S) -> List[S]:
        raise NotImplementedError

    def branch_tests(self, test: cst.BaseExpression, state: S) -> List[Tuple[S, Cond]]:
        """Evaluate an ``if`` test: the condition it stands for, per state
        (evaluating it may itself fork)."""
        raise NotImplementedError

    def handle_exceptions(self, stmt, before: S, states: List[S]) -> List[S]:
        """The states after a ``try``'s handlers, given the state before the
        ``try`` and those after its body (and ``else``)."""
        raise NotImplementedError

    def decided(self, state: S, cond: Cond, taken: bool, node: cst.CSTNode) -> None:
        """A fork assumed ``cond`` to be ``taken`` at ``node`` (a record of it
        may be kept)."""

    def enter_with(self, stmt: cst.With, state: S) -> List[S]:
        return [state]

    def define(self, stmt, state: S) -> List[S]:
        """A nested ``def`` or ``class``."""
        return [state]

    def unmodelled(self, stmt, state: S) -> List[S]:
        """A compound statement the engine does not know (``match``...)."""
        raise self.too_complex(f"{type(stmt).__name__} is not modelled")

    # -- the engine ----------------------------------------------------------
    def exec_block(self, block, states: List[S]) -> List[S]:
        statements = block.body if isinstance(block, (cst.IndentedBlock, cst.SimpleStatementSuite)) else block
        for stmt in statements:
            following: List[S] = []
            for state in states:
                if state.stopped:
                    following.append(state)
                else:
                    following.extend(self.exec_stmt(stmt, state))
            states = following
            if len(states) > self.max_states:
                raise self.too_complex(f"more than {self.max_states} {self.states_noun}")
        return states

    def exec_stmt(self, stmt, state: S) -> List[S]:
        self.tick()
        if isinstance(stmt, (cst.SimpleStatementLine, cst.SimpleStatementSuite)):
            return self.exec_line(stmt.body, state)
        if isinstance(stmt, cst.BaseSmallStatement):
            return self.exec_small(stmt, state)
        if isinstance(stmt, cst.If):
            return self.exec_if(stmt, state)
        if isinstance(stmt, (cst.For, cst.While)):
            return self.exec_loop(stmt, state)
        if isinstance(stmt, cst.With):
            return self.exec_block(stmt.body, self.enter_with(stmt, state))
        if isinstance(stmt, (cst.Try, cst.TryStar)):
            return self.exec_try(stmt, state)
        if isinstance(stmt, (cst.FunctionDef, cst.ClassDef)):
            return self.define(stmt, state)
        return self.unmodelled(stmt, state)

    def exec_line(self, smalls: Sequence[cst.BaseSmallStatement], state: S) -> List[S]:
        """``a = f(x); b = g(a)`` on one line."""
        states = [state]
        for small in smalls:
            following: List[S] = []
            for current in states:
                following.extend([current] if current.stopped else self.exec_small(small, current))
            states = following
        return states

    def exec_if(self, stmt: cst.If, state: S) -> List[S]:
        out: List[S] = []
        for current, cond in self.branch_tests(stmt.test, state):
            for branch, taken in self.split(current, cond, stmt.test):
                body = stmt.body if taken else stmt.orelse
                if body is None:
                    out.append(branch)
                elif isinstance(body, cst.If):  # elif
                    out.extend(self.exec_if(body, branch))
                elif isinstance(body, cst.Else):
                    out.extend(self.exec_block(body.body, [branch]))
                else:
                    out.extend(self.exec_block(body, [branch]))
        return out

    def split(self, state: S, cond: Cond, node: cst.CSTNode) -> List[Tuple[S, bool]]:
        """The ways ``cond`` can go in ``state``: the one the facts decide, or
        both (a fork each, assuming it), less any the facts contradict."""
        known = state.facts.evaluate(cond)
        if known is not None:
            return [(state, known)]
        out = []
        for taken in (True, False):
            branch = self.assume(state, cond, taken, node, fork=True)
            if branch is not None:
                out.append((branch, taken))
        return out

    def assume(self, state: S, cond: Cond, taken: bool, node: cst.CSTNode, fork: bool) -> Optional[S]:
        """``state`` (or a fork of it) assuming ``cond`` is ``taken``; None
        when that contradicts what it knows."""
        facts = state.facts.assume(cond, taken)
        if facts is None:
            return None
        branch = state.fork() if fork else state
        branch.facts = facts
        self.decided(branch, cond, taken, node)
        return branch

    def exec_try(self, stmt, state: S) -> List[S]:
        before = state.fork()
        states = self.exec_block(stmt.body, [state])
        if stmt.orelse is not None:
            states = self.exec_block(stmt.orelse.body, states)
        states = self.handle_exceptions(stmt, before, states)
        if stmt.finalbody is not None:
            states = self.exec_block(stmt.finalbody.body, states)
        return states
