// Validates an AsyncAPI document with the official parser; prints every diagnostic as JSON lines.
// Exit 0: no error-severity diagnostic; 1: the document is invalid; 2: bad usage or crash.
// Usage: node validate.mjs path/to/asyncapi.json
import { readFile } from 'node:fs/promises';
import parserPackage from '@asyncapi/parser';

const { Parser, DiagnosticSeverity } = parserPackage;
const SEVERITY = Object.fromEntries(Object.entries(DiagnosticSeverity).map(([k, v]) => [v, k]));

const file = process.argv[2];
if (!file) {
  console.error('usage: node validate.mjs <asyncapi document>');
  process.exit(2);
}

const { document, diagnostics } = await new Parser().parse(await readFile(file, 'utf8'), {
  source: file,
});
for (const d of diagnostics) {
  console.log(JSON.stringify({
    severity: SEVERITY[d.severity] ?? d.severity, code: d.code,
    path: d.path.join('/'), message: d.message,
  }));
}
const errors = diagnostics.filter((d) => d.severity === DiagnosticSeverity.Error);
console.log(`${errors.length} error(s), ${diagnostics.length} diagnostic(s); ` +
  `document ${document ? 'parsed' : 'NOT parsed'}`);
process.exit(errors.length === 0 && document ? 0 : 1);
