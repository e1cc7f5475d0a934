"""The run search language: a small, MLflow-compatible filter and order-by syntax.

    metrics.auc > 0.8 and params.model = 'rf' and tags.team = 'x'
    attributes.status = 'FINISHED' and run_name LIKE 'cv-%'
    params.model IN ('rf', 'gbm')

Clauses are joined with ``and`` (as in MLflow there is no ``or``). Keys containing spaces or
dots are quoted with backticks or double quotes: ``metrics.`val auc` > 0.5``. Parsing is pure;
``store.runs`` turns the clauses into SQL. Errors point at the offending token.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ctloop.errors import InvalidInput

__all__ = ["Clause", "OrderKey", "parse_filter", "parse_order_by"]

ENTITIES = {
    "metric": "metric",
    "metrics": "metric",
    "param": "param",
    "params": "param",
    "parameter": "param",
    "parameters": "param",
    "tag": "tag",
    "tags": "tag",
    "attribute": "attribute",
    "attributes": "attribute",
    "attr": "attribute",
    "run": "attribute",
}
ATTRIBUTES = {
    "status": "status",
    "run_name": "name",
    "name": "name",
    "start_time": "start_time",
    "end_time": "end_time",
    "user": "user",
    "user_id": "user",
    "run_id": "id",
    "id": "id",
}
NUMERIC_ATTRIBUTES = {"start_time", "end_time"}
OPS = ("=", "!=", "<", "<=", ">", ">=", "LIKE", "ILIKE", "IN", "NOT IN")
STRING_OPS = ("=", "!=", "LIKE", "ILIKE", "IN", "NOT IN")
NUMERIC_OPS = ("=", "!=", "<", "<=", ">", ">=")

_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<string>'(?:[^'\\]|\\.|'')*'|"(?:[^"\\]|\\.)*")
  | (?P<backtick>`[^`]*`)
  | (?P<number>[+-]?(?:\d+\.?\d*(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?))
  | (?P<op><=|>=|!=|<>|==|=|<|>)
  | (?P<lparen>\()
  | (?P<rparen>\))
  | (?P<comma>,)
  | (?P<dot>\.)
  | (?P<word>[A-Za-z_][A-Za-z0-9_\-/:]*)
  """,
    re.VERBOSE,
)


@dataclass(frozen=True)
class Token:
    kind: str
    text: str
    pos: int


@dataclass(frozen=True)
class Clause:
    """One comparison: ``entity.key op value``."""

    entity: str  # metric | param | tag | attribute
    key: str  # for attributes: the runs column name
    op: str
    value: Any  # float, str, or tuple of str for IN


@dataclass(frozen=True)
class OrderKey:
    entity: str
    key: str
    ascending: bool


def _error(text: str, token: Token | None, expected: str) -> InvalidInput:
    if token is None:
        where, found = f"at the end (character {len(text) + 1})", "nothing"
    else:
        where, found = f"at character {token.pos + 1}", repr(token.text)
    exc = InvalidInput(f"invalid filter {text!r}: expected {expected} {where}, found {found}")
    exc.position = token.pos if token else len(text)  # type: ignore[attr-defined]
    exc.token = token.text if token else None  # type: ignore[attr-defined]
    return exc


def _tokenize(text: str) -> list[Token]:
    tokens: list[Token] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            bad = Token("bad", text[pos], pos)
            raise _error(text, bad, "a key, an operator or a value")
        kind = m.lastgroup or ""
        if kind != "ws":
            tokens.append(Token(kind, m.group(), pos))
        pos = m.end()
    return tokens


def _unquote(tok: Token) -> str:
    body = tok.text[1:-1]
    if tok.text[0] == "'":
        body = body.replace("''", "'")
    return re.sub(r"\\(.)", r"\1", body)


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokenize(text)
        self.i = 0

    def peek(self) -> Token | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self) -> Token | None:
        tok = self.peek()
        self.i += 1
        return tok

    def identifier(self) -> tuple[str, str, Token]:
        first = self.take()
        if first is None or first.kind not in ("word", "backtick", "string"):
            raise _error(self.text, first, "a key such as metrics.auc, params.x or status")
        nxt = self.peek()
        if first.kind == "word" and nxt is not None and nxt.kind == "dot":
            entity = ENTITIES.get(first.text.lower())
            if entity is None:
                raise _error(
                    self.text, first, "metrics., params., tags. or attributes. before a key"
                )
            self.take()
            key_tok = self.take()
            if key_tok is None or key_tok.kind not in ("word", "backtick", "string"):
                raise _error(self.text, key_tok, f"a key after '{first.text}.'")
            # keys may themselves contain dots: metrics.val.auc
            key = key_tok.text if key_tok.kind == "word" else _unquote(key_tok)
            while key_tok.kind == "word" and (d := self.peek()) is not None and d.kind == "dot":
                self.take()
                part = self.take()
                if part is None or part.kind not in ("word", "number"):
                    raise _error(self.text, part, "the rest of the key")
                key += "." + part.text.lstrip(".")
            if entity == "attribute":
                return entity, self._attribute(key, key_tok), key_tok
            return entity, key, key_tok
        if first.kind != "word":
            raise _error(self.text, first, "metrics., params., tags. or attributes. before a key")
        return "attribute", self._attribute(first.text, first), first

    def _attribute(self, name: str, tok: Token) -> str:
        column = ATTRIBUTES.get(name.lower())
        if column is None:
            known = ", ".join(sorted(ATTRIBUTES))
            raise _error(self.text, tok, f"an attribute ({known}) or a prefixed key")
        return column

    def operator(self) -> str:
        tok = self.take()
        if tok is None:
            raise _error(self.text, tok, "a comparison operator (" + ", ".join(OPS) + ")")
        if tok.kind == "op":
            return {"==": "=", "<>": "!="}.get(tok.text, tok.text)
        word = tok.text.upper() if tok.kind == "word" else ""
        if word in ("LIKE", "ILIKE", "IN"):
            return word
        if word == "NOT":
            nxt = self.take()
            if nxt is not None and nxt.text.upper() == "IN":
                return "NOT IN"
            raise _error(self.text, nxt, "IN after NOT")
        raise _error(self.text, tok, "a comparison operator (" + ", ".join(OPS) + ")")

    def value(self, entity: str, key: str, op: str) -> Any:
        if op in ("IN", "NOT IN"):
            open_tok = self.take()
            if open_tok is None or open_tok.kind != "lparen":
                raise _error(self.text, open_tok, "'(' to start the list after " + op)
            items: list[str] = []
            while True:
                tok = self.take()
                if tok is None or tok.kind not in ("string", "number"):
                    raise _error(self.text, tok, "a quoted value in the list")
                items.append(_unquote(tok) if tok.kind == "string" else tok.text)
                sep = self.take()
                if sep is not None and sep.kind == "rparen":
                    return tuple(items)
                if sep is None or sep.kind != "comma":
                    raise _error(self.text, sep, "',' or ')' in the list")
        tok = self.take()
        numeric = entity == "metric" or (entity == "attribute" and key in NUMERIC_ATTRIBUTES)
        if numeric:
            if tok is None or tok.kind != "number":
                raise _error(self.text, tok, "a number")
            return float(tok.text) if entity == "metric" else int(float(tok.text))
        if tok is None or tok.kind not in ("string", "number"):
            raise _error(self.text, tok, "a quoted string value, such as 'rf'")
        return _unquote(tok) if tok.kind == "string" else tok.text

    def clause(self) -> Clause:
        entity, key, key_tok = self.identifier()
        op_tok = self.peek()
        op = self.operator()
        numeric = entity == "metric" or (entity == "attribute" and key in NUMERIC_ATTRIBUTES)
        allowed = NUMERIC_OPS if numeric else STRING_OPS
        if op not in allowed:
            what = "numbers" if numeric else "strings"
            raise _error(self.text, op_tok, f"an operator valid for {what} ({', '.join(allowed)})")
        value = self.value(entity, key, op)
        if entity == "attribute" and key == "status":
            value = tuple(v.upper() for v in value) if isinstance(value, tuple) else value.upper()
        return Clause(entity, key, op, value)

    def parse(self) -> list[Clause]:
        clauses = [self.clause()]
        while (tok := self.take()) is not None:
            if tok.kind == "word" and tok.text.upper() == "AND":
                clauses.append(self.clause())
                continue
            if tok.kind == "word" and tok.text.upper() == "OR":
                raise _error(self.text, tok, "'and' ('or' is not supported, as in MLflow)")
            raise _error(self.text, tok, "'and' or the end of the filter")
        return clauses


def parse_filter(text: str | None) -> list[Clause]:
    """Parse a filter string into clauses (empty for None or blank)."""
    if text is None or not text.strip():
        return []
    return _Parser(text).parse()


def parse_order_by(items: list[str] | str | None) -> list[OrderKey]:
    """Parse ``["metrics.auc DESC", "start_time"]`` into order keys."""
    if items is None:
        return []
    if isinstance(items, str):
        items = [items]
    keys: list[OrderKey] = []
    for item in items:
        parser = _Parser(item)
        entity, key, _ = parser.identifier()
        direction = parser.take()
        ascending = True
        if direction is not None:
            word = direction.text.upper()
            if word not in ("ASC", "DESC"):
                raise _error(item, direction, "ASC or DESC")
            ascending = word == "ASC"
        extra = parser.take()
        if extra is not None:
            raise _error(item, extra, "the end of the order-by item")
        keys.append(OrderKey(entity, key, ascending))
    return keys
