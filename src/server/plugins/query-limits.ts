// Depth, alias and cost limits, checked during validation so a rejected document runs
// nothing. Fragments are expanded (ten spreads of a fragment with ten generations are a
// hundred generations), and the walk stops as soon as the cost limit is passed, so a
// fragment bomb costs the server no more than the limit. Introspection is under the same
// limits (1,000 aliased `__schema` once made a 15.7 MB answer); only `ofType` does not
// deepen it, being a chain rather than a fan-out, so GraphiQL's introspection query
// (depth 4, cost about 150) passes the defaults.
import {
  GraphQLError,
  SchemaMetaFieldDef,
  TypeMetaFieldDef,
  getNamedType,
  isCompositeType,
  Kind,
  type ASTVisitor,
  type GraphQLCompositeType,
  type GraphQLField,
  type SelectionSetNode,
  type ValidationContext,
  type ValidationRule,
} from 'graphql';
import type { Plugin } from 'graphql-yoga';

export interface QueryLimits {
  readonly depth: number;
  readonly aliases: number;
  readonly cost: number;
}

interface Tally {
  cost: number;
  aliases: number;
  depth: number;
}

const META_FIELDS: Record<string, GraphQLField<unknown, unknown>> = { __schema: SchemaMetaFieldDef, __type: TypeMetaFieldDef };

function fieldOf(type: GraphQLCompositeType | undefined, name: string): GraphQLField<unknown, unknown> | undefined {
  if (name in META_FIELDS) return META_FIELDS[name];
  return type && 'getFields' in type ? type.getFields()[name] : undefined;
}

function fieldCost(field: GraphQLField<unknown, unknown> | undefined): number {
  const directive = field?.astNode?.directives?.find((d) => d.name.value === 'cost');
  const weight = directive?.arguments?.find((a) => a.name.value === 'weight')?.value;
  return weight?.kind === Kind.INT ? Number(weight.value) : 1;
}

function limitError(code: string, message: string): GraphQLError {
  // spec: false keeps yoga from downgrading the status to 200 for `Accept: application/json`
  // clients: a refused document is a client error whatever the client accepts.
  return new GraphQLError(message, { extensions: { code, http: { status: 400, spec: false } } });
}

function createWalker(ctx: ValidationContext, limits: QueryLimits, tally: Tally) {
  const walk = (set: SelectionSetNode, type: GraphQLCompositeType | undefined, depth: number, path: ReadonlySet<string>): void => {
    tally.depth = Math.max(tally.depth, depth);
    for (const selection of set.selections) {
      if (tally.cost > limits.cost) return;
      if (selection.kind === Kind.FIELD) {
        if (selection.alias) tally.aliases++;
        if (selection.name.value === '__typename') continue;
        const field = fieldOf(type, selection.name.value);
        tally.cost += fieldCost(field);
        const child = field ? getNamedType(field.type) : undefined;
        const next = type?.name === '__Type' && selection.name.value === 'ofType' ? depth : depth + 1;
        if (selection.selectionSet) walk(selection.selectionSet, isCompositeType(child) ? child : undefined, next, path);
      } else if (selection.kind === Kind.INLINE_FRAGMENT) {
        const cond = selection.typeCondition ? ctx.getSchema().getType(selection.typeCondition.name.value) : type;
        walk(selection.selectionSet, isCompositeType(cond) ? cond : undefined, depth, path);
      } else {
        const name = selection.name.value;
        const fragment = ctx.getFragment(name);
        if (!fragment || path.has(name)) continue; // unknown or cyclic: other rules report it
        const cond = ctx.getSchema().getType(fragment.typeCondition.name.value);
        walk(fragment.selectionSet, isCompositeType(cond) ? cond : undefined, depth, new Set([...path, name]));
      }
    }
  };
  return walk;
}

export function createQueryLimitsRule(limits: QueryLimits): ValidationRule {
  return (ctx: ValidationContext): ASTVisitor => ({
    OperationDefinition(node) {
      const root = ctx.getSchema().getRootType(node.operation) ?? undefined;
      // graphql-js 16 validates no such rule; execute() then failed with no code.
      if (!root) {
        ctx.reportError(new GraphQLError(`this schema has no ${node.operation} operations`, { nodes: node }));
        return;
      }
      const tally: Tally = { cost: 0, aliases: 0, depth: 0 };
      createWalker(ctx, limits, tally)(node.selectionSet, root, 1, new Set());
      const name = node.name ? `operation ${node.name.value}` : 'the operation';
      if (tally.cost > limits.cost) {
        ctx.reportError(limitError('QUERY_TOO_COSTLY', `${name} costs more than ${limits.cost} (a generation costs 100, other fields 1)`));
      } else if (tally.depth > limits.depth) {
        ctx.reportError(limitError('QUERY_TOO_DEEP', `${name} is ${tally.depth} levels deep; the limit is ${limits.depth}`));
      } else if (tally.aliases > limits.aliases) {
        ctx.reportError(limitError('TOO_MANY_ALIASES', `${name} has ${tally.aliases} aliases; the limit is ${limits.aliases}`));
      }
    },
  });
}

export function useQueryLimits(limits: QueryLimits): Plugin {
  const rule = createQueryLimitsRule(limits);
  return {
    onValidate({ addValidationRule }) {
      addValidationRule(rule);
    },
  };
}
