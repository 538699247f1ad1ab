/**
 * docs/api.md, rendered from the OpenAPI document: a route list a person can
 * read in the repository. test/integration/docs.test.ts regenerates it with
 * UPDATE_DOCS=1 and fails when the committed file is stale.
 */
type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

function schemaLine(schema: Json | undefined): string {
  if (!schema) return '';
  if (schema.$ref) return String(schema.$ref).split('/').pop() ?? '';
  const props = (schema.properties ?? {}) as Record<string, Json>;
  const required = new Set<string>((schema.required as string[] | undefined) ?? []);
  return Object.entries(props)
    .map(([name, p]) => {
      const type = p.enum ? (p.enum as unknown[]).map((v) => JSON.stringify(v)).join(' \\| ') : Array.isArray(p.type) ? p.type.join(' \\| ') : (p.type ?? 'any');
      return `\`${name}\`${required.has(name) ? '' : '?'}: ${type}`;
    })
    .join(', ');
}

export function openApiMarkdown(doc: Json): string {
  const out: string[] = [
    '# Admin API reference',
    '',
    '<!-- Generated from GET /openapi.json by test/integration/docs.test.ts (UPDATE_DOCS=1). Do not edit by hand. -->',
    '',
    `${String(doc.info?.description ?? '')}`,
    '',
    'The machine-readable form of this page is `GET /openapi.json` on the admin listener (OpenAPI 3.1, no credential).',
    'Every error is the JSON body `{"error": {"code", "message", "details?"}, "requestId"}`; codes are listed per route.',
    '',
  ];
  const byTag = new Map<string, string[]>();
  for (const [path, item] of Object.entries(doc.paths as Record<string, Json>)) {
    for (const [method, op] of Object.entries(item as Record<string, Json>)) {
      const tag = (op.tags as string[] | undefined)?.[0] ?? 'other';
      const lines: string[] = [`### \`${method.toUpperCase()} ${path}\``, '', String(op.summary ?? ''), ''];
      const params = ((op.parameters ?? []) as Json[]).map((p) => `\`${String(p.name)}\` (${String(p.in)})`);
      if (params.length > 0) lines.push(`- Parameters: ${params.join(', ')}`);
      const body = op.requestBody?.content?.['application/json'];
      if (body) {
        lines.push(`- Body (JSON): ${schemaLine(body.schema as Json)}`);
        const example = body.example ?? Object.values((body.examples ?? {}) as Record<string, Json>)[0]?.value;
        if (example !== undefined) lines.push(`- Example: \`${JSON.stringify(example)}\``);
      }
      lines.push(`- Credential: ${(op.security as unknown[] | undefined)?.length ? 'admin key' : 'none'}`);
      for (const [status, r] of Object.entries(op.responses as Record<string, Json>)) {
        const schema = (r.content?.['application/json']?.schema ?? r.content?.['text/plain']?.schema ?? r.content?.['text/html']?.schema) as Json | undefined;
        const what = Number(status) >= 400 ? String(r.description) : schema ? schemaLine(schema) || String(schema.type ?? '') : 'no body';
        lines.push(`- ${status}: ${what}`);
      }
      lines.push('');
      byTag.set(tag, [...(byTag.get(tag) ?? []), ...lines]);
    }
  }
  for (const [tag, lines] of byTag) out.push(`## ${tag[0]?.toUpperCase()}${tag.slice(1)}`, '', ...lines);
  out.push('## Schemas', '');
  for (const [name, schema] of Object.entries((doc.components?.schemas ?? {}) as Record<string, Json>)) {
    const text = schema.allOf ? (schema.allOf as Json[]).map(schemaLine).join(' + ') : schemaLine(schema);
    out.push(`- **${name}**: ${text}${schema.description ? `. ${String(schema.description)}` : ''}`);
  }
  return `${out.join('\n').replace(/\n{3,}/g, '\n\n').trimEnd()}\n`;
}
