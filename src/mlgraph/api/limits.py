"""What one GraphQL request may ask for: depth, aliases, tokens, page sizes and cost.

The cost is an estimate made before anything runs, from the query and its
variables: every object field costs 1 plus what it selects, and a field with
a page size (``first``) costs that page size times (1 + what it selects). A
query that could return more objects than ``max_cost`` is refused whole, with
the estimate in the message; ask for smaller pages or fewer nested lists.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from graphql import (
    DocumentNode,
    ExecutionResult,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLField,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    VariableNode,
    get_named_type,
    is_leaf_type,
)
from graphql.pyutils import Undefined
from strawberry.extensions import (
    AddValidationRules,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    QueryDepthLimiter,
    SchemaExtension,
)

from mlgraph.config import Settings
from mlgraph.errors import LimitExceeded

PAGE_ARGUMENTS = ("first",)


@dataclass(frozen=True, slots=True)
class Limits:
    max_depth: int = 16
    max_aliases: int = 30
    max_tokens: int = 5000
    max_page: int = 100
    max_cost: int = 50_000
    default_page: int = 20  # a connection's page when `first` is not given

    @classmethod
    def from_settings(cls, settings: Settings) -> Limits:
        return cls(
            max_depth=settings.graphql_max_depth,
            max_aliases=settings.graphql_max_aliases,
            max_tokens=settings.graphql_max_tokens,
            max_page=settings.api_max_page,
            max_cost=settings.graphql_max_cost,
            default_page=min(20, settings.api_max_page),
        )

    def page(self, first: int | None, default: int | None = None, *, where: str = "first") -> int:
        """The page size to use for ``first``; LimitExceeded outside 0..max_page."""
        if first is None:
            return self.max_page if default is None else min(default, self.max_page)
        if not 0 <= first <= self.max_page:
            raise LimitExceeded(f"{where} must be between 0 and {self.max_page}, got {first}")
        return first


class _Estimator:
    """Walks an operation with the schema's types, adding up the cost."""

    def __init__(
        self,
        schema: GraphQLSchema,
        fragments: Mapping[str, FragmentDefinitionNode],
        variables: Mapping[str, Any],
        limits: Limits,
    ) -> None:
        self.schema = schema
        self.fragments = fragments
        self.variables = variables
        self.limits = limits

    def selection(self, node: SelectionSetNode | None, parent: Any, seen: frozenset[str]) -> int:
        if node is None:
            return 0
        total = 0
        for sel in node.selections:
            if isinstance(sel, FieldNode):
                total += self.field(sel, parent, seen)
            elif isinstance(sel, InlineFragmentNode):
                cond = sel.type_condition
                on = self.schema.get_type(cond.name.value) if cond else parent
                total += self.selection(sel.selection_set, on or parent, seen)
            elif isinstance(sel, FragmentSpreadNode):
                name = sel.name.value
                frag = self.fragments.get(name)
                if frag is None or name in seen:  # unknown or cyclic: validation reports it
                    continue
                on = self.schema.get_type(frag.type_condition.name.value)
                total += self.selection(frag.selection_set, on or parent, seen | {name})
        return total

    def field(self, node: FieldNode, parent: Any, seen: frozenset[str]) -> int:
        name = node.name.value
        if name.startswith("__"):  # introspection and __typename: bounded by the schema
            return 0
        fields: dict[str, GraphQLField] = getattr(parent, "fields", {}) or {}
        definition = fields.get(name)
        if definition is None:  # validation reports unknown fields
            return 0
        named = get_named_type(definition.type)
        if is_leaf_type(named):
            return 0
        inner = 1 + self.selection(node.selection_set, named, seen)
        size = self.page_size(node, definition)
        return inner if size is None else size * inner

    def page_size(self, node: FieldNode, definition: GraphQLField) -> int | None:
        for arg in PAGE_ARGUMENTS:
            if arg not in definition.args:
                continue
            where = f"{arg} of {node.name.value}"
            value: Any = None
            for given in node.arguments or ():
                if given.name.value == arg:
                    value = self.literal(given.value)
                    break
            else:
                default = definition.args[arg].default_value
                value = None if default is Undefined else default
            if value is not None and not isinstance(value, int):
                return self.limits.max_page  # a bad value: type validation reports it
            return self.limits.page(value, where=where)
        return None

    def literal(self, value: Any) -> Any:
        if isinstance(value, IntValueNode):
            return int(value.value)
        if isinstance(value, VariableNode):
            return self.variables.get(value.name.value)
        return None


def estimate_cost(
    schema: GraphQLSchema,
    document: DocumentNode,
    operation_name: str | None,
    variables: Mapping[str, Any] | None,
    limits: Limits,
) -> int:
    """The estimated cost of the operation to run; LimitExceeded for a page size out of range."""
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    chosen = [
        op
        for op in operations
        if operation_name is None or (op.name is not None and op.name.value == operation_name)
    ][:1]
    estimator = _Estimator(schema, fragments, variables or {}, limits)
    total = 0
    for op in chosen:
        root: GraphQLObjectType | None = schema.get_root_type(op.operation)
        total += estimator.selection(op.selection_set, root, frozenset())
    return total


def refuse(message: str) -> ExecutionResult:
    return ExecutionResult(
        data=None, errors=[GraphQLError(message, extensions={"code": "LIMIT_EXCEEDED"})]
    )


class CostLimiter(SchemaExtension):
    """Refuses an operation whose estimated cost exceeds the limit, before it runs."""

    limits = Limits()

    def __init__(self) -> None:
        self.cost: int | None = None

    def on_execute(self) -> Iterator[None]:
        ctx = self.execution_context
        if ctx.graphql_document is not None and not ctx.result:
            try:
                self.cost = estimate_cost(
                    ctx.schema._schema,
                    ctx.graphql_document,
                    ctx.operation_name,
                    ctx.variables,
                    self.limits,
                )
            except LimitExceeded as exc:
                ctx.result = refuse(str(exc))
            else:
                if self.cost > self.limits.max_cost:
                    ctx.result = refuse(
                        f"the query's estimated cost {self.cost:,} exceeds the limit of "
                        f"{self.limits.max_cost:,}: each page size (`first`) multiplies the "
                        f"cost of what it selects; ask for smaller pages or fewer nested lists"
                    )
        yield

    def get_results(self) -> dict[str, Any]:
        return {} if self.cost is None else {"cost": self.cost}


def limit_extensions(limits: Limits) -> list[Callable[[], SchemaExtension]]:
    """Strawberry extensions enforcing ``limits`` (factories: one instance per request).

    The validation rules are made once and shared, so that the validation cache
    (keyed by the rules too) serves a repeated query without validating it again.
    """
    cost = type("BoundCostLimiter", (CostLimiter,), {"limits": limits})
    rules = [
        *QueryDepthLimiter(max_depth=limits.max_depth).validation_rules,
        *MaxAliasesLimiter(max_alias_count=limits.max_aliases).validation_rules,
    ]
    return [
        lambda: MaxTokensLimiter(max_token_count=limits.max_tokens),
        lambda: AddValidationRules(rules),
        cost,
    ]
