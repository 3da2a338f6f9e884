"""The run-search filter and order_by parsers: the exact AST for each construct, the exact error for
each malformed input (position, what was expected, what was found)."""

from __future__ import annotations

import pytest

from mloop.errors import InvalidInputError
from mloop.store._filter import (
    MODEL_ATTRIBUTES,
    VERSION_ATTRIBUTES,
    Comparison,
    OrderKey,
    parse_filter,
    parse_order_by,
)

C = Comparison
IDENT = "an identifier such as metrics.acc, params.lr, tags.team or status"
RUN_ATTRS = "an attribute (run_id, run_name, status, user, start_time, end_time)"
NUMBER_OPS = "(=, !=, >, >=, <, <=)"
STRING_OPS = "(=, !=, LIKE, ILIKE, IN, NOT IN)"
ANY_OP = "a comparison operator (=, !=, >, >=, <, <=, LIKE, ILIKE, IN)"


def _fails(text: str, **kwargs: object) -> InvalidInputError:
    with pytest.raises(InvalidInputError) as e:
        parse_filter(text, **kwargs)  # type: ignore[arg-type]
    return e.value


# ------------------------------------------------------------------------------------------ ASTs
@pytest.mark.parametrize("text", ["", " ", " \t\n "])
def test_an_empty_or_blank_filter_is_no_condition(text: str) -> None:
    assert parse_filter(text) == []


@pytest.mark.parametrize("op", ["=", "!=", ">", ">=", "<", "<="])
def test_every_number_operator_on_metrics(op: str) -> None:
    assert parse_filter(f"metrics.acc {op} 0.5") == [C("metric", "acc", op, 0.5)]
    assert parse_filter(f"metrics.acc{op}2") == [C("metric", "acc", op, 2.0)]  # no spaces


@pytest.mark.parametrize("op", ["=", "!=", ">", ">=", "<", "<="])
def test_every_number_operator_on_number_attributes(op: str) -> None:
    assert parse_filter(f"start_time {op} 1000") == [C("attribute", "start_time", op, 1000.0)]
    assert parse_filter(f"attributes.end_time {op} 5") == [C("attribute", "end_time", op, 5.0)]


@pytest.mark.parametrize(
    ("text", "entity", "key"),
    [
        ("params.model", "param", "model"),
        ("tags.team", "tag", "team"),
        ("run_name", "attribute", "run_name"),
        ("attributes.run_id", "attribute", "run_id"),
        ("user", "attribute", "user"),
    ],
)
@pytest.mark.parametrize("op", ["=", "!=", "LIKE", "ILIKE"])
def test_every_single_value_string_operator(text: str, entity: str, key: str, op: str) -> None:
    assert parse_filter(f"{text} {op} 'Rf%'") == [C(entity, key, op, "Rf%")]  # type: ignore[arg-type]


@pytest.mark.parametrize(("op", "spelled"), [("IN", "in"), ("NOT IN", "not in")])
def test_in_and_not_in_take_a_list_of_strings(op: str, spelled: str) -> None:
    assert parse_filter(f"params.depth {op} ('1', \"2\",'3')") == [
        C("param", "depth", op, ("1", "2", "3"))
    ]
    assert parse_filter(f"tags.team {spelled} ('a')") == [C("tag", "team", op, ("a",))]
    assert parse_filter(f"run_name {op}('x','y')") == [C("attribute", "run_name", op, ("x", "y"))]


def test_keywords_are_case_insensitive() -> None:
    assert parse_filter(
        "params.a like 'x' AnD params.b Ilike 'y' and params.c In ('z') aNd params.d NoT iN ('w')"
    ) == [
        C("param", "a", "LIKE", "x"),
        C("param", "b", "ILIKE", "y"),
        C("param", "c", "IN", ("z",)),
        C("param", "d", "NOT IN", ("w",)),
    ]


def test_comparisons_joined_by_and_keep_their_order() -> None:
    assert parse_filter("metrics.acc > 0.9 AND params.depth = '3' and tags.team != 'b'") == [
        C("metric", "acc", ">", 0.9),
        C("param", "depth", "=", "3"),
        C("tag", "team", "!=", "b"),
    ]


@pytest.mark.parametrize(
    ("prefix", "entity"),
    [
        ("metrics", "metric"),
        ("metric", "metric"),
        ("METRICS", "metric"),
        ("params", "param"),
        ("param", "param"),
        ("parameters", "param"),
        ("Params", "param"),
        ("tags", "tag"),
        ("tag", "tag"),
    ],
)
def test_entity_prefixes_and_their_aliases(prefix: str, entity: str) -> None:
    value = "0" if entity == "metric" else "'0'"
    assert parse_filter(f"{prefix}.k = {value}") == [
        C(entity, "k", "=", 0.0 if entity == "metric" else "0")  # type: ignore[arg-type]
    ]


@pytest.mark.parametrize("prefix", ["attributes", "attribute", "attr", "run", "ATTRIBUTES", ""])
def test_attribute_prefixes(prefix: str) -> None:
    name = f"{prefix}.run_name" if prefix else "run_name"
    assert parse_filter(f"{name} = 'r'") == [C("attribute", "run_name", "=", "r")]


@pytest.mark.parametrize(
    ("written", "key"),
    [
        ("id", "run_id"),
        ("name", "run_name"),
        ("user_id", "user"),
        ("Status", "status"),
        ("RUN_NAME", "run_name"),
        ("attributes.ID", "run_id"),
    ],
)
def test_run_attribute_aliases_and_case(written: str, key: str) -> None:
    assert parse_filter(f"{written} = 'x'") == [C("attribute", key, "=", "x")]


def test_created_is_an_alias_of_start_time_and_numeric() -> None:
    assert parse_filter("created >= 7") == [C("attribute", "start_time", ">=", 7.0)]


def test_model_and_version_attributes_replace_the_run_ones() -> None:
    # "name" and "created" are real model attributes there: not rewritten to run_name/start_time
    assert parse_filter("name = 'churn' and created > 1", attributes=MODEL_ATTRIBUTES) == [
        C("attribute", "name", "=", "churn"),
        C("attribute", "created", ">", 1.0),
    ]
    assert parse_filter("updated <= 2", attributes=MODEL_ATTRIBUTES) == [
        C("attribute", "updated", "<=", 2.0)
    ]
    assert parse_filter(
        "version >= 3 and flavor = 'sklearn' and run_id IN ('r') and name LIKE 'c%' and created < 9",
        attributes=VERSION_ATTRIBUTES,
    ) == [
        C("attribute", "version", ">=", 3.0),
        C("attribute", "flavor", "=", "sklearn"),
        C("attribute", "run_id", "IN", ("r",)),
        C("attribute", "name", "LIKE", "c%"),
        C("attribute", "created", "<", 9.0),
    ]
    err = _fails("status = 'x'", attributes=MODEL_ATTRIBUTES)
    assert err.details == {"position": 0, "expected": "an attribute (name, created, updated)"}


@pytest.mark.parametrize(
    ("literal", "value"),
    [
        ("1", 1.0),
        ("-2", -2.0),
        ("+3", 3.0),
        ("0.25", 0.25),
        ("1.", 1.0),
        (".5", 0.5),
        ("-.5e-1", -0.05),
        ("1E3", 1000.0),
        ("2.5e+2", 250.0),
        ("7e0", 7.0),
    ],
)
def test_number_literals(literal: str, value: float) -> None:
    (c,) = parse_filter(f"metrics.m > {literal}")
    assert c.value == value and type(c.value) is float


def test_status_values_are_lower_cased_and_nothing_else_is() -> None:
    assert parse_filter("status = 'FINISHED'") == [C("attribute", "status", "=", "finished")]
    assert parse_filter("attributes.status IN ('RUNNING', 'Failed')") == [
        C("attribute", "status", "IN", ("running", "failed"))
    ]
    assert parse_filter("status NOT IN ('KILLED')") == [
        C("attribute", "status", "NOT IN", ("killed",))
    ]
    # a param or tag that happens to be called "status", and other attributes, keep their case
    assert parse_filter("params.status = 'OK' and tags.status IN ('A') and run_name = 'R'") == [
        C("param", "status", "=", "OK"),
        C("tag", "status", "IN", ("A",)),
        C("attribute", "run_name", "=", "R"),
    ]


@pytest.mark.parametrize(
    ("literal", "value"),
    [
        ("'plain'", "plain"),
        ('"double"', "double"),
        ("''", ""),
        ("'it\\'s'", "it's"),  # backslash escapes the string's own quote
        ('"say \\"hi\\""', 'say "hi"'),
        ("'a\\\\b'", "a\\b"),  # and a backslash
        ("'a\\\\\\'b'", "a\\'b"),  # an escaped backslash, then an escaped quote
        ("'x\\\\'", "x\\"),  # an escaped backslash just before the closing quote
        ("'a\\\"b'", 'a\\"b'),  # the other kind of quote is not unescaped
        ("'a\\nb'", "a\\nb"),  # other escapes stay as written
        ('"it\'s"', "it's"),
        ("'say \"hi\"'", 'say "hi"'),
        ("'AND metrics.x > 1'", "AND metrics.x > 1"),
        ("'%_'", "%_"),
    ],
)
def test_quoting_and_escaping(literal: str, value: str) -> None:
    assert parse_filter(f"params.p = {literal}") == [C("param", "p", "=", value)]
    assert parse_filter(f"params.p IN ({literal}, 'z')") == [C("param", "p", "IN", (value, "z"))]


@pytest.mark.parametrize(
    ("written", "key"),
    [
        ("`my key`", "my key"),
        ("`a.b`", "a.b"),
        ("`a\\\\b`", "a\\\\b"),  # backquotes take everything verbatim, backslashes included
        ("`it's`", "it's"),
        ('"a b"', "a b"),
        ("'a b'", "a b"),
        ("'it\\'s'", "it's"),
        ("val.acc", "val.acc"),
        ("a.b.c", "a.b.c"),
        ("a-b/c:d_1", "a-b/c:d_1"),
        ("_x", "_x"),
        ("1st", "1st"),
        ("2e5x", "2e5x"),
        ("layer.0.norm", "layer.0.norm"),  # a run of digits is a key part too
        ("10", "10"),
        ("v2.10", "v2.10"),
    ],
)
def test_keys_quoted_backquoted_dotted_and_with_punctuation(written: str, key: str) -> None:
    assert parse_filter(f"metrics.{written} > 0.5") == [C("metric", key, ">", 0.5)]
    assert parse_filter(f"tags.{written} = 'v'") == [C("tag", key, "=", "v")]


def test_whitespace_of_any_kind_separates_tokens() -> None:
    assert parse_filter("\tmetrics.acc\n>=\r\n0.5\t AND\nparams.a\t=\t'b'  ") == [
        C("metric", "acc", ">=", 0.5),
        C("param", "a", "=", "b"),
    ]


# ---------------------------------------------------------------------------------------- errors
def test_error_message_names_position_expectation_token_and_filter() -> None:
    err = _fails("metrics.acc > 'high'")
    assert str(err) == (
        "invalid filter at position 14: expected a number; got \"'high'\". "
        "Filter: \"metrics.acc > 'high'\""
    )
    assert err.details == {"position": 14, "expected": "a number"}
    assert err.error_code == "INVALID_PARAMETER_VALUE" and isinstance(err, ValueError)


@pytest.mark.parametrize(
    ("text", "position", "expected", "got"),
    [
        # OR is refused, never read as AND
        ("metrics.a > 1 OR metrics.b < 2", 14, "AND (OR is not supported, as in MLflow)", "OR"),
        ("metrics.a > 1 or b < 2", 14, "AND (OR is not supported, as in MLflow)", "or"),
        ("metrics.a > 1 metrics.b < 2", 14, "AND or the end of the filter", "metrics"),
        ("metrics.a > 1 'AND' metrics.b < 2", 14, "AND or the end of the filter", "'AND'"),
        ("metrics.a > 1 AND", 17, IDENT, "end of filter"),
        ("metrics.a > 1 AND AND metrics.b < 2", 18, RUN_ATTRS, "AND"),
        # cut off
        ("metrics.acc >", 13, "a value", "end of filter"),
        ("metrics.acc", 11, "a comparison operator", "end of filter"),
        ("metrics.", 8, "a key after 'metrics.'", "end of filter"),
        ("Metrics.", 8, "a key after 'Metrics.'", "end of filter"),
        ("metrics.val.", 12, "the rest of the key after 'val.'", "end of filter"),
        ("metrics.val.acc.", 16, "the rest of the key after 'val.acc.'", "end of filter"),
        # starting with a value or an operator
        ("> 1", 0, IDENT, ">"),
        ("'acc' > 1", 0, IDENT, "'acc'"),
        ("1 > 2", 0, IDENT, "1"),
        ("`status` = 'x'", 0, IDENT, "`status`"),
        ("(metrics.a > 1)", 0, IDENT, "("),
        (".metrics > 1", 0, IDENT, "."),
        # identifiers
        ("foo.bar = 1", 0, "metrics., params., tags. or attributes.", "foo."),
        ("metrics.> 1", 8, "a key after 'metrics.'", ">"),
        ("tags.`` = 'x'", 5, "a non-empty key after 'tags.'", "``"),
        ("params.'' = 'x'", 7, "a non-empty key after 'params.'", "''"),
        ('metrics."" > 1', 8, "a non-empty key after 'metrics.'", '""'),
        ("params.(x) = 'a'", 7, "a key after 'params.'", "("),
        ("metrics.a.> 1", 10, "the rest of the key after 'a.'", ">"),
        ("metrics.a. > 1", 11, "the rest of the key after 'a.'", ">"),
        ("metrics.a.'x' > 1", 10, "the rest of the key after 'a.'", "'x'"),
        ("metrics.a.1e5 > 1", 10, "the rest of the key after 'a.'", "1e5"),
        ("metrics.a.-1 > 1", 10, "the rest of the key after 'a.'", "-1"),
        ("metrics.a.1.5 > 1", 10, "the rest of the key after 'a.'", "1.5"),
        ("metrics.1.5 > 1", 8, "a key after 'metrics.'", "1.5"),
        ("metrics.a .5 > 1", 10, ANY_OP, ".5"),  # not glued to the name: a number
        ("acc > 1", 0, RUN_ATTRS, "acc"),
        ("attributes.acc > 1", 11, RUN_ATTRS, "acc"),
        ("attributes.`status` = 'x' and x = 1", 30, RUN_ATTRS, "x"),
        # operators
        ("metrics.acc 1", 12, ANY_OP, "1"),
        ("metrics.acc ~ 1", 12, "a name, a value or an operator", "~"),
        ("metrics.acc == 1", 13, "a number", "="),
        ("metrics.acc => 1", 13, "a number", ">"),  # "=" then ">"
        ("metrics.acc BETWEEN 1", 12, ANY_OP, "BETWEEN"),
        ("metrics.acc LIKE 'x'", 12, f"an operator valid for metrics.acc {NUMBER_OPS}", "LIKE"),
        (
            "metrics.acc NOT IN ('a')",
            12,
            f"an operator valid for metrics.acc {NUMBER_OPS}",
            "NOT IN",
        ),
        ("params.lr > '1'", 10, f"an operator valid for params.lr {STRING_OPS}", ">"),
        ("tags.team <= 'x'", 10, f"an operator valid for tags.team {STRING_OPS}", "<="),
        ("run_name >= 'x'", 9, f"an operator valid for run_name {STRING_OPS}", ">="),
        ("start_time ILIKE 'x'", 11, f"an operator valid for start_time {NUMBER_OPS}", "ILIKE"),
        ("end_time IN ('1')", 9, f"an operator valid for end_time {NUMBER_OPS}", "IN"),
        # NOT followed by anything but IN
        ("params.a NOT LIKE 'x'", 13, "IN after NOT", "LIKE"),
        ("params.a NOT = 'x'", 13, "IN after NOT", "="),
        ("params.a NOT 'in'", 13, "IN after NOT", "'in'"),
        ("params.a NOT", 12, "IN after NOT", "end of filter"),
        # values
        ("metrics.acc > 'high'", 14, "a number", "'high'"),
        ("metrics.acc > nan", 14, "a number", "nan"),
        ("metrics.acc > 1abc", 14, "a number", "1abc"),
        ("start_time = '5'", 13, "a number", "'5'"),
        ("params.lr = 0.1", 12, "a quoted string", "0.1"),
        ("params.lr = lr", 12, "a quoted string", "lr"),
        ("params.lr = `x`", 12, "a quoted string", "`x`"),
        ("run_name = 5", 11, "a quoted string", "5"),
        ("status = (", 9, "a quoted string", "("),
        # IN lists
        ("params.a IN 'x'", 12, "'(' starting a list of strings", "'x'"),
        ("params.a IN", 11, "'(' starting a list of strings", "end of filter"),
        ("params.a IN ()", 13, "a quoted string", ")"),
        ("params.a IN (1, 2)", 13, "a quoted string", "1"),
        ("params.a IN ('1', 2)", 18, "a quoted string", "2"),
        ("params.a IN (x)", 13, "a quoted string", "x"),
        ("params.a IN ('x' 'y')", 17, "',' or ')'", "'y'"),
        ("params.a IN ('x',)", 17, "a quoted string", ")"),
        ("params.a IN ('x'", 16, "',' or ')'", "end of filter"),
        ("params.a NOT IN ('x', ", 22, "a quoted string", "end of filter"),
        # illegal characters and unterminated quotes
        ("metrics.acc > 1 ; drop table runs", 16, "a name, a value or an operator", ";"),
        ("params.a = 'x' # comment", 15, "a name, a value or an operator", "#"),
        ("$", 0, "a name, a value or an operator", "$"),
        ("émetrics.acc > 1", 0, "a name, a value or an operator", "é"),
        ("params.a = 'abc", 11, "a closing ' for the quote opened here", "'abc"),
        (
            "params.a = 'abc AND metrics.acc > 1",
            11,
            "a closing ' for the quote opened here",
            "'abc AND metrics.acc > 1",
        ),
        ('params.a = "abc', 11, 'a closing " for the quote opened here', '"abc'),
        ("params.a = 'it\\'s", 11, "a closing ' for the quote opened here", "'it\\'s"),
        ("params.`a = 'x'", 7, "a closing ` for the quote opened here", "`a = 'x'"),
    ],
)
def test_malformed_filters_name_position_expectation_and_token(
    text: str, position: int, expected: str, got: str
) -> None:
    err = _fails(text)
    assert err.details == {"position": position, "expected": expected}
    assert str(err) == (
        f"invalid filter at position {position}: expected {expected}; got {got!r}. Filter: {text!r}"
    )


@pytest.mark.parametrize(("value", "type_name"), [(None, "NoneType"), (b"x", "bytes"), (1, "int")])
def test_a_filter_must_be_a_string(value: object, type_name: str) -> None:
    with pytest.raises(InvalidInputError) as e:
        parse_filter(value)  # type: ignore[arg-type]
    assert str(e.value) == f"`filter` must be a str; got {type_name}."


# -------------------------------------------------------------------------------------- order_by
def test_order_by_defaults_to_ascending_and_reads_directions_in_any_case() -> None:
    assert parse_order_by(
        [
            "metrics.acc",
            "metrics.loss DESC",
            "params.lr asc",
            "attributes.end_time Desc",
            "start_time ASC",
            "tags.`a b` desc",
            "metrics.val.acc",
            "name",
        ]
    ) == [
        OrderKey("metric", "acc", True),
        OrderKey("metric", "loss", False),
        OrderKey("param", "lr", True),
        OrderKey("attribute", "end_time", False),
        OrderKey("attribute", "start_time", True),
        OrderKey("tag", "a b", False),
        OrderKey("metric", "val.acc", True),
        OrderKey("attribute", "run_name", True),
    ]


def test_order_by_accepts_one_string_and_an_empty_list() -> None:
    assert parse_order_by("metrics.acc DESC") == [OrderKey("metric", "acc", False)]
    assert parse_order_by(()) == []


def test_order_by_uses_the_entity_attributes() -> None:
    assert parse_order_by(["updated DESC", "name"], attributes=MODEL_ATTRIBUTES) == [
        OrderKey("attribute", "updated", False),
        OrderKey("attribute", "name", True),
    ]
    with pytest.raises(InvalidInputError) as e:
        parse_order_by(["start_time"], attributes=VERSION_ATTRIBUTES)
    assert e.value.details == {
        "position": 0,
        "expected": "an attribute (name, version, run_id, flavor, created)",
    }


@pytest.mark.parametrize(
    ("clause", "position", "expected", "got"),
    [
        ("metrics.acc DOWN", 12, "ASC, DESC or the end of the clause", "DOWN"),
        ("metrics.acc 'DESC'", 12, "ASC, DESC or the end of the clause", "'DESC'"),
        ("metrics.acc >", 12, "ASC, DESC or the end of the clause", ">"),
        ("metrics.acc DESC x", 17, "the end of the clause", "x"),
        ("metrics.acc ASC DESC", 16, "the end of the clause", "DESC"),
        ("", 0, IDENT, "end of order_by clause"),
        ("DESC", 0, RUN_ATTRS, "DESC"),
        ("metrics.", 8, "a key after 'metrics.'", "end of order_by clause"),
        ("metrics.acc;", 11, "a name, a value or an operator", ";"),
    ],
)
def test_malformed_order_by_clauses(clause: str, position: int, expected: str, got: str) -> None:
    with pytest.raises(InvalidInputError) as e:
        parse_order_by(["start_time", clause])
    assert e.value.details == {"position": position, "expected": expected}
    assert str(e.value) == (
        f"invalid order_by clause at position {position}: expected {expected}; got {got!r}. "
        f"Order_by clause: {clause!r}"
    )


def test_order_by_items_must_be_strings() -> None:
    with pytest.raises(InvalidInputError) as e:
        parse_order_by(["metrics.acc", 3])  # type: ignore[list-item]
    assert str(e.value) == "`order_by` items must be str; got int."


def test_parsed_values_are_frozen_and_hashable() -> None:
    import dataclasses

    comparison, key = C("metric", "acc", ">", 0.5), OrderKey("metric", "acc", False)
    assert (
        len({comparison, C("metric", "acc", ">", 0.5), key, OrderKey("metric", "acc", False)}) == 2
    )
    for obj, attr in ((comparison, "value"), (key, "ascending")):
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(obj, attr, None)


def test_module_exports() -> None:
    from mloop.store import _filter

    assert sorted(_filter.__all__) == ["Comparison", "OrderKey", "parse_filter", "parse_order_by"]
    assert all(hasattr(_filter, name) for name in _filter.__all__)
