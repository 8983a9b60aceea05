"""The saved-search grammar (Lark, LALR), in the style of Netflix's Graph Search DSL.

    type == 'Model' AND tags.team == 'personalization' AND owners ANY ['alice', 'bob']

Keywords are case-insensitive; ``#`` starts a comment that runs to the end of
the line. A path segment that is not a plain name (a tag key with a space) is
written in backquotes: ``tags.`cost center```.
"""

from __future__ import annotations

GRAMMAR = r"""
start: or_expr

?or_expr: and_expr (_OR and_expr)*
?and_expr: unary (_AND unary)*
?unary: NOT unary                       -> negation
      | "(" or_expr ")"
      | comparison

?comparison: path OPERATOR value        -> compare
           | path [NOT] IN value_list   -> within
           | path [NOT] ANY value_list  -> any_of
           | path [NOT] CONTAINS value   -> contains
           | path [NOT] LIKE value       -> like
           | path [NOT] EXISTS           -> exists

value_list: "[" [value ("," value)*] "]"

value: STRING | NUMBER | DATE | RELATIVE | TRUE | FALSE

path: SEGMENT ("." SEGMENT)*

OPERATOR: "==" | "!=" | ">=" | "<=" | ">" | "<"

_OR.2: /or\b/i
_AND.2: /and\b/i
NOT.2: /not\b/i
IN.2: /in\b/i
ANY.2: /any\b/i
CONTAINS.2: /contains\b/i
LIKE.2: /like\b/i
EXISTS.2: /exists\b/i
TRUE.2: /true\b/i
FALSE.2: /false\b/i
RELATIVE.3: /now(\s*[+-]\s*\d+\s*[smhdw])?\b/i
DATE.3: /\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?/
NUMBER.2: /[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?/
STRING: /'(\\.|[^'\\\n])*'/ | /"(\\.|[^"\\\n])*"/
// Keywords are reserved: a field named AND would turn a typo into nonsense.
SEGMENT: /(?!(and|or|not|in|any|contains|like|exists|true|false)\b)[A-Za-z_][A-Za-z0-9_\-]*/i
       | /`[^`\n]+`/

%ignore /\s+/
%ignore /#[^\n]*/
"""

# How the parser's terminal names read in an error message.
TERMINAL_WORDS: dict[str, str] = {
    "OPERATOR": "an operator (==, !=, >, >=, <, <=)",
    "IN": "IN",
    "ANY": "ANY",
    "CONTAINS": "CONTAINS",
    "LIKE": "LIKE",
    "EXISTS": "EXISTS",
    "NOT": "NOT",
    "_AND": "AND",
    "_OR": "OR",
    "SEGMENT": "a field name",
    "STRING": "a value",
    "NUMBER": "a value",
    "DATE": "a value",
    "RELATIVE": "a value",
    "TRUE": "a value",
    "FALSE": "a value",
    "LPAR": "'('",
    "RPAR": "')'",
    "LSQB": "'['",
    "RSQB": "']'",
    "COMMA": "','",
    "DOT": "'.'",
    "$END": "the end of the search",
}

OPERATOR_TERMINALS = frozenset({"OPERATOR", "IN", "ANY", "CONTAINS", "LIKE", "EXISTS"})
VALUE_TERMINALS = frozenset({"STRING", "NUMBER", "DATE", "RELATIVE", "TRUE", "FALSE"})
