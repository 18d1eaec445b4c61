"""Why an event does not match a filter: the words for each kind of term, and agreement with the
filter itself (no reasons exactly when the event matches)."""

from __future__ import annotations

import json
from typing import Any, NamedTuple

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eventtui.explain import Explainer, name_likeness
from eventtui.filters import FilterError, Group, Not, Term, parse_filter
from eventtui.matching import row_matcher


class Row(NamedTuple):
    """The `events` columns, as a stored row has them."""

    id: int = 1
    session_id: int = 1
    received_at: float = 0.0
    sent_at: float | None = None
    name: str = "signup"
    type: str = "track"
    user_id: str | None = "u1"
    anonymous_id: str | None = None
    message_id: str | None = None
    client: str | None = None
    properties: str = "{}"
    context: str = "{}"
    valid: bool = True
    errors: str | None = None
    extra: str | None = None


def row(**fields: Any) -> Row:
    for column in ("properties", "context"):
        if not isinstance(fields.get(column, ""), str):
            fields[column] = json.dumps(fields[column])
    return Row(**fields)


SIGNUP = row(
    properties={"plan": "free", "cart": {"total": "98"}, "n": 98, "flag": True},
    context={"app": {"version": "1.2"}},
)


@pytest.mark.parametrize(
    ("text", "reasons"),
    [
        ("name:sign_up", ["name 'signup' ≠ 'sign_up' (it differs in separators)"]),
        ("name:SignUp", ["name 'signup' ≠ 'SignUp' (it differs in case)"]),
        ("name:login", ["name 'signup' ≠ 'login'"]),
        ("name:check*", ["name 'signup' does not match 'check*'"]),
        ("checkout", ["name 'signup' does not contain 'checkout' (in any case)"]),
        ("plan=pro", ["properties.plan is 'free', wanted 'pro'"]),
        ("plan!=free", ["properties.plan is 'free', wanted anything but 'free'"]),
        ("plan~pr", ["properties.plan is 'free', wanted it to contain 'pr' (in any case)"]),
        ("coupon=X", ["properties.coupon is missing, wanted 'X'"]),
        ("n>100", ["properties.n is 98, wanted > 100"]),
        ("cart.total>90", ["properties.cart.total is '98', wanted a number > 90"]),
        ('n="98"', ["properties.n is 98, wanted '98' (text, and it is a number)"]),
        ("flag=false", ["properties.flag is true, wanted false"]),
        ("context.app.version=2", ["context.app.version is '1.2', wanted 2"]),
        ("has:coupon", ["properties.coupon is missing"]),
        ("user:42", ["userId 'u1', wanted '42'"]),
        ("type:page", ["type is 'track', wanted 'page'"]),
        ("session:2", ["session is 1, wanted 2"]),
        ("invalid", ["the event is valid (it met the tracking plan), wanted an invalid one"]),
        ('"zebra"', ["'zebra' appears nowhere in the event"]),
        ("-plan=free", ["it matches 'plan=free', which the filter excludes"]),
        (
            "name:sign_up plan=pro",
            [
                "name 'signup' ≠ 'sign_up' (it differs in separators)",
                "properties.plan is 'free', wanted 'pro'",
            ],
        ),
        (
            "plan=pro OR has:coupon",
            [
                "none of its alternatives: properties.plan is 'free', wanted 'pro';"
                " or properties.coupon is missing"
            ],
        ),
        # A term that holds is not a reason.
        ("name:signup plan=pro", ["properties.plan is 'free', wanted 'pro'"]),
    ],
)
def test_each_kind_of_term_says_why_it_failed(text: str, reasons: list[str]) -> None:
    assert Explainer(text).reasons(SIGNUP) == reasons


def test_event_data_in_a_reason_is_clean_and_short() -> None:
    hostile = row(name="\x1b]52;c;aGk=\x07sign", properties={"plan": "x" * 500})
    [name_reason, plan_reason] = Explainer("name:signup plan=pro").reasons(hostile)
    assert "\x1b" not in name_reason and "\\x1b" in name_reason
    assert len(plan_reason) < 120 and "…" in plan_reason


EVENTS = [
    SIGNUP,
    row(name="sign_up", properties={"plan": "pro"}),
    row(name="checkout", user_id=None, anonymous_id="a9", properties={"cart": {"total": 120}}),
    row(name="Home", type="page", valid=False, errors='["x"]'),
]
FILTERS = [
    "name:sign_up plan=pro",
    "-plan=free",
    "plan!=pro has:plan",
    "cart.total>=100 OR user:u1",
    "-(checkout OR type:page) -invalid",
    "(name:sign* OR name:check*) -cart.total<100",
    '"pro" type:track',
    "invalid OR session:2",
]


@pytest.mark.parametrize("text", FILTERS)
def test_no_reasons_exactly_when_the_filter_matches(text: str) -> None:
    matches = row_matcher(text)
    explainer = Explainer(text)
    for event in EVENTS:
        assert (explainer.reasons(event) == []) == matches(event), (text, event.name)


def test_the_tree_holds_every_term_as_a_filter_of_its_own() -> None:
    tree = parse_filter('a OR -(plan="pro plan" cart.total>=1) name:x*')
    assert isinstance(tree, Group) and tree.op == "OR"
    first, second = tree.parts
    assert first == Term("a", "word", "a")
    assert isinstance(second, Group) and second.op == "AND"
    negated, glob = second.parts
    assert isinstance(negated, Not) and isinstance(negated.part, Group)
    assert negated.part.parts == (
        Term('plan="pro plan"', "compare", "pro plan", "=", "properties", ("plan",), True),
        Term("cart.total>=1", "compare", "1", ">=", "properties", ("cart", "total")),
    )
    assert glob == Term("name:x*", "glob", "x*")
    assert parse_filter("") is None
    with pytest.raises(FilterError):
        parse_filter("plan=")


def test_wanted_names_are_the_name_terms_every_match_meets() -> None:
    terms = Explainer("name:signup plan=pro checkout -name:x (name:a OR name:b)").wanted_names()
    assert [t.text for t in terms] == ["name:signup", "checkout"]


@pytest.mark.parametrize(
    ("text", "name", "alike"),
    [
        ("name:sign_up", "signup", True),
        ("name:sign_up", "Sign-Up", True),
        ("name:checkout_started", "checkout_startd", True),
        ("name:sign_up", "login", False),
        ("name:sign_up", "sign_up", False),  # it matches: not a near name, the name
    ],
)
def test_similar_names(text: str, name: str, alike: bool) -> None:
    term = parse_filter(text)
    assert isinstance(term, Term)
    assert (name_likeness(term, name) >= 0.8) is alike


FRAGMENTS = st.sampled_from(
    [
        " ", " ", " ", "OR", "AND", "(", ")", "-", '"', "sign", "name:", "name:sign*", "plan",
        "=", "!=", "<", ">=", "~", "free", "pro", "98", "1.2", "true", "null", "has:", "user:",
        "u1", "type:", "page", "track", "session:1", "invalid", "cart.total", "context.app.version",
        "flag", "n", "é", "*",
    ]
)  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(text=st.lists(FRAGMENTS, max_size=14).map("".join))
def test_reasons_agree_with_the_filter_on_any_filter(text: str) -> None:
    try:
        explainer = Explainer(text)
    except FilterError:
        return
    matches = row_matcher(text)
    for event in EVENTS:
        reasons = explainer.reasons(event)
        assert (reasons == []) == matches(event), (text, event.name, reasons)
        assert all(reason and "\n" not in reason for reason in reasons)
