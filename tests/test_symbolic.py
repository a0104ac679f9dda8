from fractions import Fraction

from resnetlint.model.symbolic import EMPTY_FACTS, Cmp, Num, Or, Truth, provably_different

a, b, c = Num.atom("in_channels"), Num.atom("out_channels"), Num.atom("stride")
one, four = Num.const(1), Num.const(4)


def test_canonical_forms_compare_structurally():
    assert a * four == four * a
    assert (a + b) * four == a * four + b * four
    assert (a * four).floordiv(Num.const(2)) == a * Num.const(2)
    assert a.floordiv(Num.const(2)) != a.truediv(Num.const(2))  # floor division stays opaque


def test_render_reads_like_python():
    assert (b * four).render() == "out_channels * 4"
    assert (a - one).render() == "in_channels - 1"
    assert Num.const(Fraction(1, 2)).render() == "1 / 2"


def test_provably_different_needs_parameter_only_expressions():
    assert provably_different(a, b)
    assert provably_different(a, a * four)
    assert not provably_different(a, a)
    assert not provably_different(None, a)
    opaque = Num.opaque("make_divisible", [a])
    assert not provably_different(opaque, a)  # make_divisible(64) may be 64


def test_facts_from_a_negated_guard_substitute():
    guard = Or((Cmp("!=", c, one), Cmp("!=", a, b)))
    facts = EMPTY_FACTS.assume(guard, False)  # the else branch of `if stride != 1 or in != out`
    assert facts.evaluate(Cmp("==", c, one)) is True
    assert facts.norm(b) == facts.norm(a)
    assert not provably_different(facts.norm(a), facts.norm(b))


def test_contradictions_prune_branches():
    facts = EMPTY_FACTS.assume(Cmp("==", a, b), True)
    assert facts.assume(Cmp("!=", a, b), True) is None
    truth = EMPTY_FACTS.assume(Truth("self.training"), True)
    assert truth.assume(Truth("self.training"), False) is None
    assert truth.evaluate(Truth("self.training")) is True


def test_disequality_is_remembered():
    facts = EMPTY_FACTS.assume(Cmp("!=", a, b), True)
    assert facts.evaluate(Cmp("==", a, b)) is False
    assert facts.evaluate(Cmp("==", a, c)) is None
