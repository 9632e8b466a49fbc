// One line per HTTP request once its response starts: time, method, path, operation
// (GraphQL's operation name or root fields; the /v1 route), model, status, duration,
// client (key number or address, never the key) and error codes of GraphQL results, in
// plain text or JSON. /health and /ready (probes) are not logged. A streamed response is
// logged when it starts, so its duration is the time to the first piece.
import { Kind, type DocumentNode, type FieldNode, type OperationDefinitionNode } from 'graphql';
import type { Plugin } from 'graphql-yoga';
import type { AccessLogFormat } from '../../config/config.ts';
import { IrisError } from '../../contract/types.ts';

export interface RequestNote {
  operation?: string;
  model?: string;
  errors?: string[];
}

/** What the routes learn about a request for its log line. */
export interface RequestNotes {
  note(request: Request | undefined, note: RequestNote): void;
  get(request: Request): RequestNote | undefined;
}

export function createRequestNotes(): RequestNotes {
  const notes = new WeakMap<Request, RequestNote>();
  return {
    note(request, note) {
      if (request) notes.set(request, { ...notes.get(request), ...note });
    },
    get: (request) => notes.get(request),
  };
}

export interface AccessLogOptions {
  readonly format: Exclude<AccessLogFormat, 'off'>;
  readonly write: (line: string) => void;
  readonly notes: RequestNotes;
  readonly defaultModel: string;
  readonly clientOf: (request: Request) => { id: string } | undefined;
  readonly now?: () => number;
}

const QUIET = new Set(['/health', '/ready']);

function operationOf(document: DocumentNode, operationName: string | null | undefined): { name: string | undefined; fields: FieldNode[] } {
  const operations = document.definitions.filter((d): d is OperationDefinitionNode => d.kind === Kind.OPERATION_DEFINITION);
  const operation = operationName ? operations.find((o) => o.name?.value === operationName) : operations[0];
  const fields = (operation?.selectionSet.selections ?? []).filter((s): s is FieldNode => s.kind === Kind.FIELD);
  return { name: operation?.name?.value, fields };
}

/** The model a document's first generation field names (a literal or a variable), if any. */
function modelOf(fields: readonly FieldNode[], variables: Readonly<Record<string, unknown>> | undefined): string | undefined {
  for (const field of fields) {
    const arg = field.arguments?.find((a) => a.name.value === 'model');
    if (arg?.value.kind === Kind.STRING) return arg.value.value;
    if (arg?.value.kind === Kind.VARIABLE && typeof variables?.[arg.value.name.value] === 'string') return variables[arg.value.name.value] as string;
    if (field.arguments?.some((a) => a.name.value === 'image')) return undefined; // the default model
  }
  return '';
}

export function useAccessLog(options: AccessLogOptions): Plugin {
  const now = options.now ?? (() => performance.now());
  const started = new WeakMap<Request, number>();
  return {
    onRequest({ request }) {
      started.set(request, now());
    },
    onExecute({ args }) {
      const request = (args.contextValue as { request?: Request }).request;
      const { name, fields } = operationOf(args.document, args.operationName);
      const model = modelOf(fields, args.variableValues ?? undefined);
      options.notes.note(request, { operation: name ?? fields.map((f) => f.name.value).join(','), model: model === '' ? undefined : model ?? options.defaultModel });
      return {
        onExecuteDone({ result }) {
          const errors = 'errors' in result ? result.errors : undefined;
          // Before masking: an IrisError is still the original error, not yet an extension.
          const codeOf = (e: (typeof errors & object)[number]) => (e.originalError instanceof IrisError ? e.originalError.code : String(e.extensions?.code ?? 'INTERNAL'));
          if (errors?.length) options.notes.note(request, { errors: errors.map(codeOf) });
        },
      };
    },
    onResponse({ request, response }) {
      const path = new URL(request.url).pathname;
      if (QUIET.has(path)) return;
      const start = started.get(request);
      const note = options.notes.get(request) ?? {};
      const entry = {
        time: new Date().toISOString(),
        method: request.method,
        path,
        operation: note.operation ?? null,
        model: note.model ?? null,
        status: response.status,
        ms: start === undefined ? null : Math.round((now() - start) * 10) / 10,
        client: options.clientOf(request)?.id ?? null,
        ...(note.errors ? { errors: note.errors } : {}),
      };
      if (options.format === 'json') return options.write(JSON.stringify(entry));
      const field = (v: unknown) => (v === null || v === undefined ? '-' : String(v));
      const errors = note.errors ? ` errors=${note.errors.join(',')}` : '';
      options.write(`${entry.time} ${entry.method} ${path} ${field(entry.operation)} model=${field(entry.model)} ${entry.status} ${field(entry.ms)}ms client=${field(entry.client)}${errors}`);
    },
  };
}
